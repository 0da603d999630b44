package planner

import (
	"strings"
	"testing"
	"time"

	"github.com/dbha/dbha/internal/cluster"
)

func moveTo(n cluster.NodeName) mod { return func(in *Input) { in.VIPMoveTo = n } }

// TestPlanVIPMove covers the planned move (dbctl vip move): the owner is
// released first, and the target acquires only once the old lease is over.
func TestPlanVIPMove(t *testing.T) {
	wait := DefaultPolicy().VIPWait()
	tests := []struct {
		name       string
		mods       []mod
		change     bool
		want       cluster.NodeName
		wantReason string // substring of the event reason, or of Why when nothing changes
	}{
		{name: "move releases the owner first", mods: []mod{moveTo("px2")},
			change: true, want: "", wantReason: "planned move to px2: releasing px1"},
		{name: "after the release the target waits for the old lease", mods: []mod{moveTo("px2"), func(in *Input) {
			in.State.VIP = cluster.VIPState{LeaseEpoch: 2}
			in.VIPRenewals["px1"] = in.Now.Add(-200 * time.Millisecond)
		}}, wantReason: "px1's lease may live"},
		{name: "the target acquires once the old lease ran out", mods: []mod{moveTo("px2"), func(in *Input) {
			in.State.VIP = cluster.VIPState{LeaseEpoch: 2}
			in.VIPRenewals["px1"] = in.Now.Add(-wait)
		}}, change: true, want: "px2", wantReason: "planned move: assigned to px2"},
		{name: "the target acquires at once after a confirmed release", mods: []mod{moveTo("px2"), func(in *Input) {
			in.State.VIP = cluster.VIPState{LeaseEpoch: 2}
			in.VIPRenewals["px1"] = in.Now.Add(-200 * time.Millisecond)
			in.VIPReleased = map[cluster.NodeName]time.Time{"px1": in.Now.Add(-10 * time.Millisecond)}
		}}, change: true, want: "px2", wantReason: "planned move: assigned to px2"},
		{name: "with no owner the target wins over the lowest name", mods: []mod{moveTo("px2"), func(in *Input) {
			in.State.VIP = cluster.VIPState{LeaseEpoch: 2}
			clear(in.VIPRenewals)
		}}, change: true, want: "px2"},
		{name: "move to an unhealthy target is refused", mods: []mod{moveTo("px2"), func(in *Input) {
			in.Reports["px2"] = proxyReport("px2", false, 5, dbNames, nil, in.Now)
		}}, wantReason: "planned move to px2 refused: proxy unhealthy"},
		{name: "move to a draining target is refused", mods: []mod{moveTo("px2"),
			member("px2", func(m *cluster.Member) { m.Draining = true })}, wantReason: "refused: draining flag"},
		{name: "move to a lagging target is refused", mods: []mod{moveTo("px2"), func(in *Input) {
			in.Reports["px2"] = proxyReport("px2", true, 4, dbNames, nil, in.Now)
		}}, wantReason: "applied epoch 4 behind 5"},
		{name: "move to a db node is refused", mods: []mod{moveTo("db2")}, wantReason: "refused: not a proxy member"},
		{name: "move to an unknown node is refused", mods: []mod{moveTo("px9")}, wantReason: "refused: not a proxy member"},
		{name: "no move when the target owns the vip", mods: []mod{moveTo("px1")}, wantReason: "it is the owner already"},
		{name: "the release waits for a topology change to be applied", mods: []mod{moveTo("px2"),
			health("db1", cluster.HealthUnreachable, 3)}, wantReason: "waits for the topology change"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in, d := plan(tc.mods...)
			v, ok := vipOf(d)
			why := strings.Join(d.Why, "\n")
			if ok != tc.change {
				t.Fatalf("vip change = %v (%+v), want %v\nwhy:\n%s", ok, v.VIP, tc.change, why)
			}
			if !ok {
				if !strings.Contains(why, tc.wantReason) {
					t.Fatalf("why lacks %q:\n%s", tc.wantReason, why)
				}
				return
			}
			if v.VIP.Owner != tc.want || v.VIP.LeaseEpoch != in.State.VIP.LeaseEpoch+1 {
				t.Fatalf("vip = %+v, want owner %q lease epoch %d", v.VIP, tc.want, in.State.VIP.LeaseEpoch+1)
			}
			if v.Event == nil || v.Event.Kind != cluster.EventVIP || !strings.Contains(v.Event.Reason, tc.wantReason) {
				t.Fatalf("vip event = %+v, want a vip event with %q", v.Event, tc.wantReason)
			}
			if v.Event.Inputs["planned_move_to"] != string(in.VIPMoveTo) {
				t.Errorf("event inputs %v lack planned_move_to=%s", v.Event.Inputs, in.VIPMoveTo)
			}
		})
	}
}

// TestPlanVIPMoveSequence walks a whole move with the planner alone: the
// release, the wait for the old lease, then the assignment, and never two
// owners in between.
func TestPlanVIPMoveSequence(t *testing.T) {
	in := baseInput()
	in.VIPMoveTo = "px2"
	step := func() Decision {
		d := Plan(in)
		applyDecision(t, &in.State, d)
		return d
	}
	if step(); in.State.VIP.Owner != "" {
		t.Fatalf("after the first step owner = %q, want released", in.State.VIP.Owner)
	}
	// px1's last renewal was at in.Now; 500 ms later its lease may live.
	in.Now = in.Now.Add(500 * time.Millisecond)
	if d := step(); len(d.Commands) != 0 {
		t.Fatalf("assigned while px1's lease may live: %#v", d.Commands)
	}
	// px1 confirms the release: px2 gets the VIP at once.
	in.Now = in.Now.Add(10 * time.Millisecond)
	in.VIPReleased = map[cluster.NodeName]time.Time{"px1": in.Now}
	if step(); in.State.VIP.Owner != "px2" {
		t.Fatalf("after the confirmed release owner = %q, want px2", in.State.VIP.Owner)
	}
	if d := step(); len(d.Commands) != 0 {
		t.Fatalf("the move did not settle: %#v", d.Commands)
	}
	if in.State.VIP.LeaseEpoch != 3 {
		t.Errorf("lease epoch %d, want 3 (release + assign)", in.State.VIP.LeaseEpoch)
	}
}

func TestVIPEligibleAndFit(t *testing.T) {
	in := baseInput()
	if ok, why := VIPEligible(in, "px2"); !ok {
		t.Fatalf("px2 not eligible: %s", why)
	}
	in.Reports["px2"] = proxyReport("px2", true, 4, dbNames, nil, in.Now)
	if ok, why := VIPEligible(in, "px2"); ok || !strings.Contains(why, "behind") {
		t.Fatalf("lagging px2 eligible=%v (%s)", ok, why)
	}
	if ok, why := VIPFit(in, "px2"); !ok {
		t.Fatalf("lagging px2 not fit: %s", why)
	}
	for _, n := range []cluster.NodeName{"db1", "nope", ""} {
		if ok, _ := VIPEligible(in, n); ok {
			t.Errorf("%q eligible", n)
		}
		if ok, _ := VIPFit(in, n); ok {
			t.Errorf("%q fit", n)
		}
	}
	if live, until := VIPLeaseLive(in, "px1"); !live || !until.Equal(in.Now.Add(in.Policy.VIPWait())) {
		t.Errorf("px1 lease live=%v until %v", live, until)
	}
	in.VIPReleased = map[cluster.NodeName]time.Time{"px1": in.Now.Add(time.Millisecond)}
	if live, _ := VIPLeaseLive(in, "px1"); live {
		t.Error("px1 lease live after a confirmed release")
	}
}
