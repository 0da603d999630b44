package planner

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dbha/dbha/internal/cluster"
)

var (
	dbNames    = []cluster.NodeName{"db1", "db2", "db3"}
	proxyNames = []cluster.NodeName{"px1", "px2"}
)

// baseInput is a healthy cluster at epoch 5: writer db1, readers db2 and
// db3, VIP on px1 renewed just now, every agent fresh.
func baseInput() Input {
	now := start().Add(time.Hour)
	s := cluster.NewState()
	for _, n := range dbNames {
		s.Members[n] = dbMember(n, 0)
	}
	for _, n := range proxyNames {
		s.Members[n] = proxyMember(n)
	}
	s.Topology = cluster.Topology{Epoch: 5, Writer: "db1", Readers: []cluster.NodeName{"db2", "db3"}}.Normalize()
	s.VIP = cluster.VIPState{Owner: "px1", LeaseEpoch: 1}
	in := Input{
		Now: now, State: s, Policy: DefaultPolicy(), LeaderSince: start(),
		Reports:     map[cluster.NodeName]Received{},
		VIPRenewals: map[cluster.NodeName]time.Time{"px1": now},
	}
	for _, n := range dbNames {
		in.Reports[n] = dbReport(n, cluster.HealthOK, 20, 100, now)
	}
	for _, n := range proxyNames {
		in.Reports[n] = proxyReport(n, true, 5, dbNames, nil, now)
	}
	return in
}

type mod func(in *Input)

func health(n cluster.NodeName, h cluster.Health, streak int) mod {
	return func(in *Input) {
		c := int64(100)
		if r, ok := in.Reports[n]; ok && r.Report.DB != nil && r.Report.DB.Wsrep != nil {
			c = r.Report.DB.Wsrep.LastCommitted
		}
		in.Reports[n] = dbReport(n, h, streak, c, in.Now)
	}
}

func committed(n cluster.NodeName, c int64) mod {
	return func(in *Input) {
		r := in.Reports[n]
		in.Reports[n] = dbReport(n, r.Report.DB.Health, r.Report.DB.Streak, c, r.At)
	}
}

func silence(n cluster.NodeName) mod { return func(in *Input) { delete(in.Reports, n) } }

func staleBy(n cluster.NodeName, age time.Duration) mod {
	return func(in *Input) {
		r := in.Reports[n]
		r.At = in.Now.Add(-age)
		in.Reports[n] = r
	}
}

// probesDown makes the given proxies report db unreachable.
func probesDown(db cluster.NodeName, from ...cluster.NodeName) mod {
	return func(in *Input) {
		for _, px := range from {
			in.Reports[px] = proxyReport(px, true, in.State.Topology.Epoch, dbNames, []cluster.NodeName{db}, in.Now)
		}
	}
}

func member(n cluster.NodeName, f func(m *cluster.Member)) mod {
	return func(in *Input) {
		m := in.State.Members[n]
		f(&m)
		in.State.Members[n] = m
	}
}

func priority(n cluster.NodeName, p int) mod {
	return member(n, func(m *cluster.Member) { m.Priority = p })
}

func topology(writer cluster.NodeName, readers []cluster.NodeName, off ...cluster.OfflineNode) mod {
	return func(in *Input) {
		in.State.Topology = cluster.Topology{Epoch: 5, Writer: writer, Readers: readers, Offline: off}.Normalize()
	}
}

func off(n cluster.NodeName, r cluster.OfflineReason) cluster.OfflineNode {
	return cluster.OfflineNode{Node: n, Reason: r}
}

func plan(mods ...mod) (Input, Decision) {
	in := baseInput()
	for _, m := range mods {
		m(&in)
	}
	return in, Plan(in)
}

// TestPlanTopologyRules checks one rule per row. want is the routing of the
// emitted topology, or "" when nothing may be emitted.
func TestPlanTopologyRules(t *testing.T) {
	unreachable := cluster.HealthUnreachable
	tests := []struct {
		name string
		mods []mod
		want string
		kind cluster.EventKind
	}{
		{name: "no-op returns no commands", want: ""},
		{name: "sticky writer beats higher priority", mods: []mod{priority("db3", 100), committed("db2", 900)}, want: ""},
		{name: "priority picks the new writer",
			mods: []mod{health("db1", unreachable, 3), priority("db2", 1), priority("db3", 5), committed("db2", 999)},
			want: "w=db3 r=[db2] off=[db1:fenced]", kind: cluster.EventFailover},
		{name: "last_committed breaks a priority tie",
			mods: []mod{health("db1", unreachable, 3), committed("db2", 100), committed("db3", 105)},
			want: "w=db3 r=[db2] off=[db1:fenced]", kind: cluster.EventFailover},
		{name: "name breaks a full tie",
			mods: []mod{health("db1", unreachable, 3)},
			want: "w=db2 r=[db3] off=[db1:fenced]", kind: cluster.EventFailover},
		{name: "no_writer flag excludes a candidate",
			mods: []mod{health("db1", unreachable, 3), member("db2", func(m *cluster.Member) { m.NoWriter = true })},
			want: "w=db3 r=[db2] off=[db1:fenced]", kind: cluster.EventFailover},
		{name: "no_writer on the current writer keeps it as a reader",
			mods: []mod{member("db1", func(m *cluster.Member) { m.NoWriter = true })},
			want: "w=db2 r=[db1 db3] off=[]", kind: cluster.EventFailover},
		{name: "maintenance on the writer moves it without fencing",
			mods: []mod{member("db1", func(m *cluster.Member) { m.Maintenance = true })},
			want: "w=db2 r=[db3] off=[db1:maintenance]", kind: cluster.EventFailover},
		{name: "maintenance on a reader",
			mods: []mod{member("db3", func(m *cluster.Member) { m.Maintenance = true })},
			want: "w=db1 r=[db2] off=[db3:maintenance]", kind: cluster.EventTopology},
		{name: "draining on a reader",
			mods: []mod{member("db2", func(m *cluster.Member) { m.Draining = true })},
			want: "w=db1 r=[db3] off=[db2:draining]", kind: cluster.EventTopology},
		{name: "donor leaves at once",
			mods: []mod{health("db2", cluster.HealthDonor, 1)},
			want: "w=db1 r=[db3] off=[db2:donor]", kind: cluster.EventTopology},
		{name: "joining leaves at once",
			mods: []mod{health("db3", cluster.HealthJoining, 1)},
			want: "w=db1 r=[db2] off=[db3:joining]", kind: cluster.EventTopology},
		{name: "hysteresis keeps a bad writer below fail_after",
			mods: []mod{health("db1", unreachable, 2)}, want: ""},
		{name: "hysteresis keeps a bad reader below fail_after",
			mods: []mod{health("db2", cluster.HealthNonPrimary, 2)}, want: ""},
		{name: "desynced follows hysteresis too",
			mods: []mod{health("db2", cluster.HealthDesynced, 2)}, want: ""},
		{name: "fail_after bad polls fail a reader",
			mods: []mod{health("db2", cluster.HealthNonPrimary, 3)},
			want: "w=db1 r=[db3] off=[db2:non_primary]", kind: cluster.EventTopology},
		{name: "fail_after bad polls fail the writer",
			mods: []mod{health("db1", cluster.HealthNotReady, 3)},
			want: "w=db2 r=[db3] off=[db1:fenced]", kind: cluster.EventFailover},
		{name: "ok report with non-Primary status fails at once",
			mods: []mod{func(in *Input) { in.Reports["db1"].Report.DB.Wsrep.ClusterStatus = cluster.WsrepNonPrim }},
			want: "w=db2 r=[db3] off=[db1:fenced]", kind: cluster.EventFailover},
		{name: "ok report rejecting queries fails at once",
			mods: []mod{func(in *Input) { in.Reports["db2"].Report.DB.Wsrep.RejectQueries = "ALL" }},
			want: "w=db1 r=[db3] off=[db2:not_ready]", kind: cluster.EventTopology},
		{name: "recovering below recover_after",
			mods: []mod{topology("db2", []cluster.NodeName{"db3"}, off("db1", cluster.ReasonUnreachable)), health("db1", cluster.HealthOK, 2)},
			want: "w=db2 r=[db3] off=[db1:recovering]", kind: cluster.EventTopology},
		{name: "recover_after good polls return a reader",
			mods: []mod{topology("db2", []cluster.NodeName{"db3"}, off("db1", cluster.ReasonRecovering)), health("db1", cluster.HealthOK, 3)},
			want: "w=db2 r=[db1 db3] off=[]", kind: cluster.EventTopology},
		{name: "recovered old writer returns as reader despite priority",
			mods: []mod{topology("db2", []cluster.NodeName{"db3"}, off("db1", cluster.ReasonFenced)), health("db1", cluster.HealthOK, 3), priority("db1", 100)},
			want: "w=db2 r=[db1 db3] off=[]", kind: cluster.EventTopology},
		{name: "recovering node is not promoted while bad again",
			mods: []mod{topology("db2", []cluster.NodeName{"db3"}, off("db1", cluster.ReasonRecovering)), health("db1", unreachable, 1)},
			want: ""},
		{name: "fenced stays fenced while unhealthy",
			mods: []mod{topology("db2", []cluster.NodeName{"db3"}, off("db1", cluster.ReasonFenced)), health("db1", cluster.HealthNotSynced, 9)},
			want: ""},
		{name: "fenced gives way to maintenance",
			mods: []mod{topology("db2", []cluster.NodeName{"db3"}, off("db1", cluster.ReasonFenced)), silence("db1"),
				member("db1", func(m *cluster.Member) { m.Maintenance = true })},
			want: "w=db2 r=[db3] off=[db1:maintenance]", kind: cluster.EventTopology},
		{name: "silent agent with majority unreachable fails the writer",
			mods: []mod{silence("db1"), probesDown("db1", "px1", "px2")},
			want: "w=db2 r=[db3] off=[db1:fenced]", kind: cluster.EventFailover},
		{name: "stale report counts as silent",
			mods: []mod{staleBy("db1", 1500*time.Millisecond), probesDown("db1", "px1", "px2")},
			want: "w=db2 r=[db3] off=[db1:fenced]", kind: cluster.EventFailover},
		{name: "report at exactly agent_timeout is still fresh",
			mods: []mod{staleBy("db1", time.Second), probesDown("db1", "px1", "px2")},
			want: ""},
		{name: "silent agent reachable by proxies is not failed",
			mods: []mod{silence("db1")}, want: ""},
		{name: "silent agent with half the observers unreachable is not failed",
			mods: []mod{silence("db1"), probesDown("db1", "px1")}, want: ""},
		{name: "silent agent with no fresh observer is not failed",
			mods: []mod{silence("db1"), silence("px1"), silence("px2")}, want: ""},
		{name: "silent new node is unknown",
			mods: []mod{func(in *Input) { in.State.Members["db4"] = dbMember("db4", 50) }},
			want: "w=db1 r=[db2 db3] off=[db4:unknown]", kind: cluster.EventTopology},
		{name: "no candidate gives an empty writer",
			mods: []mod{health("db1", unreachable, 3), health("db2", unreachable, 3), health("db3", cluster.HealthNonPrimary, 5)},
			want: "w=- r=[] off=[db1:fenced db2:unreachable db3:non_primary]", kind: cluster.EventNoWriter},
		{name: "candidates need fresh ok reports",
			mods: []mod{health("db1", unreachable, 3), silence("db2"), health("db3", cluster.HealthOK, 1),
				topology("db1", []cluster.NodeName{"db2"}, off("db3", cluster.ReasonRecovering))},
			want: "w=- r=[db2] off=[db1:fenced db3:recovering]", kind: cluster.EventNoWriter},
		{name: "writer_is_reader",
			mods: []mod{func(in *Input) { in.Policy.WriterIsReader = true }},
			want: "w=db1 r=[db1 db2 db3] off=[]", kind: cluster.EventTopology},
		{name: "join grant: donor and joiner offline",
			mods: []mod{func(in *Input) {
				in.State.Grants.Join = &cluster.JoinGrant{Joiner: "db3", Donor: "db2", Since: in.Now}
			}, health("db3", cluster.HealthJoining, 1)},
			want: "w=db1 r=[] off=[db2:donor db3:joining]", kind: cluster.EventTopology},
		{name: "join grant: donor is never writer",
			mods: []mod{func(in *Input) {
				in.State.Grants.Join = &cluster.JoinGrant{Joiner: "db3", Donor: "db2", Since: in.Now}
			}, health("db1", unreachable, 3), priority("db2", 10), health("db3", cluster.HealthJoining, 1)},
			want: "w=- r=[] off=[db1:fenced db2:donor db3:joining]", kind: cluster.EventNoWriter},
		{name: "first election from an empty topology",
			mods: []mod{func(in *Input) { in.State.Topology = cluster.Topology{}.Normalize() }, priority("db2", 3)},
			want: "w=db2 r=[db1 db3] off=[]", kind: cluster.EventTopology},
		{name: "removed writer is replaced",
			mods: []mod{func(in *Input) { delete(in.State.Members, "db1") }},
			want: "w=db2 r=[db3] off=[]", kind: cluster.EventFailover},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in, d := plan(tc.mods...)
			st, ok := topoOf(d)
			if tc.want == "" {
				if ok {
					t.Fatalf("want no topology change, got %s\nwhy:\n%s", routing(st.Topology), strings.Join(d.Why, "\n"))
				}
				return
			}
			if !ok {
				t.Fatalf("want %s, got no topology change\nwhy:\n%s", tc.want, strings.Join(d.Why, "\n"))
			}
			if got := routing(st.Topology); got != tc.want {
				t.Fatalf("routing = %s, want %s\nwhy:\n%s", got, tc.want, strings.Join(d.Why, "\n"))
			}
			if st.Topology.Epoch != in.State.Topology.Epoch+1 {
				t.Errorf("epoch = %d, want %d", st.Topology.Epoch, in.State.Topology.Epoch+1)
			}
			if err := st.Topology.Validate(); err != nil {
				t.Errorf("invalid topology: %v", err)
			}
			if st.Event == nil {
				t.Fatal("no event")
			}
			if st.Event.Kind != tc.kind || st.Event.Epoch != st.Topology.Epoch || !st.Event.Time.Equal(in.Now) || st.Event.Reason == "" {
				t.Errorf("event = %+v, want kind %s at epoch %d", *st.Event, tc.kind, st.Topology.Epoch)
			}
		})
	}
}

func TestPlanNoCommandsWhenUnchangedAfterApply(t *testing.T) {
	in, d := plan(health("db1", cluster.HealthUnreachable, 3))
	if len(d.Commands) == 0 {
		t.Fatal("want a failover first")
	}
	applyDecision(t, &in.State, d)
	again := Plan(in)
	if len(again.Commands) != 0 {
		t.Fatalf("second plan emitted %d commands: %#v", len(again.Commands), again.Commands)
	}
	if len(again.Why) == 0 {
		t.Error("no explanation for a no-op decision")
	}
}

func TestPlanEventInputs(t *testing.T) {
	_, d := plan(health("db1", cluster.HealthUnreachable, 3), committed("db2", 142))
	st, ok := topoOf(d)
	if !ok {
		t.Fatal("no topology")
	}
	if got := st.Event.Inputs["db1"]; got != "failed: health=unreachable streak=3" {
		t.Errorf("inputs[db1] = %q", got)
	}
	if got := st.Event.Inputs["db2"]; got != "healthy: health=ok streak=20 last_committed=142" {
		t.Errorf("inputs[db2] = %q", got)
	}
	if st.Event.Node != "db2" {
		t.Errorf("event node = %s, want the new writer db2", st.Event.Node)
	}
	for _, want := range []string{"writer db1 replaced", "elected db2", "db1 writer -> offline(fenced)"} {
		if !strings.Contains(st.Event.Reason, want) {
			t.Errorf("reason %q lacks %q", st.Event.Reason, want)
		}
	}
}

func TestPlanVIP(t *testing.T) {
	wait := DefaultPolicy().VIPWait() // 1.1 s
	tests := []struct {
		name   string
		mods   []mod
		want   cluster.NodeName // owner in the emitted SetVIPOwner
		change bool
	}{
		{name: "keep an eligible owner"},
		{name: "keep an eligible owner without renewals", mods: []mod{func(in *Input) { clear(in.VIPRenewals) }}},
		{name: "assign when there is no owner", mods: []mod{func(in *Input) { in.State.VIP.Owner = "" }},
			want: "px1", change: true},
		{name: "assign skips an unhealthy proxy", mods: []mod{func(in *Input) {
			in.State.VIP.Owner = ""
			clear(in.VIPRenewals) // px1's old lease is over
			in.Reports["px1"] = proxyReport("px1", false, 5, dbNames, nil, in.Now)
		}}, want: "px2", change: true},
		{name: "assign skips a proxy behind on epochs", mods: []mod{func(in *Input) {
			in.State.VIP.Owner = ""
			clear(in.VIPRenewals) // px1's old lease is over
			in.Reports["px1"] = proxyReport("px1", true, 4, dbNames, nil, in.Now)
		}}, want: "px2", change: true},
		{name: "assign skips a draining proxy", mods: []mod{func(in *Input) { in.State.VIP.Owner = ""; clear(in.VIPRenewals) },
			member("px1", func(m *cluster.Member) { m.Draining = true })}, want: "px2", change: true},
		{name: "an owner that stopped renewing is replaced once its lease wait is over", mods: []mod{func(in *Input) {
			in.VIPRenewals["px1"] = in.Now.Add(-wait) // report still fresh, renewals stopped
		}}, want: "px2", change: true},
		{name: "an owner that stopped renewing keeps it until the wait is over", mods: []mod{func(in *Input) {
			in.VIPRenewals["px1"] = in.Now.Add(-DefaultPolicy().VIPLease - time.Millisecond)
		}}},
		{name: "a new leader does not judge renewals it could not have heard", mods: []mod{func(in *Input) {
			in.VIPRenewals["px1"] = in.Now.Add(-wait)
			in.LeaderSince = in.Now.Add(-DefaultPolicy().VIPLease / 2)
		}}},
		{name: "no owner waits for another proxy's live lease", mods: []mod{func(in *Input) {
			in.State.VIP.Owner = ""
			in.VIPRenewals["px1"] = in.Now.Add(-wait + time.Millisecond)
			in.Reports["px1"] = proxyReport("px1", false, 5, dbNames, nil, in.Now)
		}}},
		{name: "no owner assigns once the other lease ran out", mods: []mod{func(in *Input) {
			in.State.VIP.Owner = ""
			in.VIPRenewals["px1"] = in.Now.Add(-wait)
			in.Reports["px1"] = proxyReport("px1", false, 5, dbNames, nil, in.Now)
		}}, want: "px2", change: true},
		{name: "no owner assigns at once after a confirmed release", mods: []mod{func(in *Input) {
			in.State.VIP.Owner = ""
			in.VIPRenewals["px1"] = in.Now.Add(-100 * time.Millisecond)
			in.VIPReleased = map[cluster.NodeName]time.Time{"px1": in.Now.Add(-50 * time.Millisecond)}
			in.Reports["px1"] = proxyReport("px1", false, 5, dbNames, nil, in.Now)
		}}, want: "px2", change: true},
		{name: "a release older than the last renewal does not count", mods: []mod{func(in *Input) {
			in.State.VIP.Owner = ""
			in.VIPRenewals["px1"] = in.Now.Add(-100 * time.Millisecond)
			in.VIPReleased = map[cluster.NodeName]time.Time{"px1": in.Now.Add(-200 * time.Millisecond)}
			in.Reports["px1"] = proxyReport("px1", false, 5, dbNames, nil, in.Now)
		}}},
		{name: "new leader with no owner waits a full lease", mods: []mod{func(in *Input) {
			in.State.VIP.Owner = ""
			clear(in.VIPRenewals)
			in.LeaderSince = in.Now.Add(-wait + time.Millisecond)
		}}},
		{name: "no owner ever: a new leader assigns at once", mods: []mod{func(in *Input) {
			in.State.VIP = cluster.VIPState{}
			clear(in.VIPRenewals)
			in.LeaderSince = in.Now
		}}, want: "px1", change: true},
		{name: "owner that confirmed its release is replaced at once", mods: []mod{func(in *Input) {
			in.VIPRenewals["px1"] = in.Now.Add(-100 * time.Millisecond)
			in.VIPReleased = map[cluster.NodeName]time.Time{"px1": in.Now.Add(-50 * time.Millisecond)}
		}}, want: "px2", change: true},
		{name: "no owner and nobody eligible", mods: []mod{func(in *Input) { in.State.VIP.Owner = "" }, silence("px1"), silence("px2")}},
		{name: "wait while the lost owner's lease may live", mods: []mod{silence("px1"),
			func(in *Input) { in.VIPRenewals["px1"] = in.Now.Add(-wait + time.Millisecond) }}},
		{name: "reassign once the lease ran out", mods: []mod{silence("px1"),
			func(in *Input) { in.VIPRenewals["px1"] = in.Now.Add(-wait) }}, want: "px2", change: true},
		{name: "unhealthy owner is replaced after its lease", mods: []mod{func(in *Input) {
			in.Reports["px1"] = proxyReport("px1", false, 5, dbNames, nil, in.Now)
			in.VIPRenewals["px1"] = in.Now.Add(-5 * time.Second)
		}}, want: "px2", change: true},
		{name: "release when nobody is eligible", mods: []mod{silence("px1"), silence("px2"),
			func(in *Input) { in.VIPRenewals["px1"] = in.Now.Add(-wait) }}, want: "", change: true},
		{name: "new leader waits a full lease", mods: []mod{silence("px1"), func(in *Input) {
			clear(in.VIPRenewals)
			in.LeaderSince = in.Now.Add(-wait + time.Millisecond)
		}}},
		{name: "new leader reassigns after a full lease", mods: []mod{silence("px1"), func(in *Input) {
			clear(in.VIPRenewals)
			in.LeaderSince = in.Now.Add(-wait)
		}}, want: "px2", change: true},
		{name: "new leader waits even after an old renewal", mods: []mod{silence("px1"), func(in *Input) {
			in.VIPRenewals["px1"] = in.Now.Add(-time.Hour)
			in.LeaderSince = in.Now.Add(-time.Second)
		}}},
		{name: "kernel lifetime longer than the lease is waited for", mods: []mod{silence("px1"), func(in *Input) {
			in.Policy.VIPKernelLifetime = 3 * time.Second
			in.VIPRenewals["px1"] = in.Now.Add(-2 * time.Second)
		}}},
		{name: "a fit owner lagging one epoch keeps the vip", mods: []mod{func(in *Input) {
			in.Reports["px1"] = proxyReport("px1", true, 4, dbNames, nil, in.Now)
			clear(in.VIPRenewals)
		}}},
		{name: "a draining owner is replaced after its lease", mods: []mod{
			member("px1", func(m *cluster.Member) { m.Draining = true }),
			func(in *Input) { in.VIPRenewals["px1"] = in.Now.Add(-2 * wait) }}, want: "px2", change: true},
		{name: "removed owner is replaced after its lease", mods: []mod{func(in *Input) {
			delete(in.State.Members, "px1")
			in.VIPRenewals["px1"] = in.Now.Add(-wait)
		}}, want: "px2", change: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in, d := plan(tc.mods...)
			v, ok := vipOf(d)
			if ok != tc.change {
				t.Fatalf("vip change = %v (%+v), want %v\nwhy:\n%s", ok, v.VIP, tc.change, strings.Join(d.Why, "\n"))
			}
			if !ok {
				return
			}
			if v.VIP.Owner != tc.want || v.VIP.LeaseEpoch != in.State.VIP.LeaseEpoch+1 {
				t.Fatalf("vip = %+v, want owner %q lease epoch %d", v.VIP, tc.want, in.State.VIP.LeaseEpoch+1)
			}
			if v.VIP.Owner == in.State.VIP.Owner {
				t.Fatalf("vip command keeps the same owner %q", v.VIP.Owner)
			}
			if v.Event == nil || v.Event.Kind != cluster.EventVIP || v.Event.Reason == "" || !v.Event.Time.Equal(in.Now) {
				t.Fatalf("vip event = %+v", v.Event)
			}
		})
	}
}

func TestPlanVIPEventEpochFollowsTopology(t *testing.T) {
	_, d := plan(health("db1", cluster.HealthUnreachable, 3), func(in *Input) { in.State.VIP.Owner = "" })
	st, ok1 := topoOf(d)
	v, ok2 := vipOf(d)
	if !ok1 || !ok2 {
		t.Fatalf("want both commands, got %#v", d.Commands)
	}
	if v.Event.Epoch != st.Topology.Epoch {
		t.Errorf("vip event epoch %d, topology epoch %d", v.Event.Epoch, st.Topology.Epoch)
	}
	if _, first := d.Commands[0].(cluster.SetTopology); !first {
		t.Error("SetTopology must come before SetVIPOwner")
	}
}

func TestPlanDeterministicAndDoesNotMutateInput(t *testing.T) {
	in, d1 := plan(health("db1", cluster.HealthUnreachable, 3), silence("px1"))
	before := baseInput()
	health("db1", cluster.HealthUnreachable, 3)(&before)
	silence("px1")(&before)
	d2 := Plan(in)
	if !reflect.DeepEqual(d1, d2) {
		t.Fatal("two plans of the same input differ")
	}
	if !reflect.DeepEqual(in, before) {
		t.Fatal("Plan changed its input")
	}
}

func TestPolicyValidate(t *testing.T) {
	if err := DefaultPolicy().Validate(); err != nil {
		t.Fatalf("default policy invalid: %v", err)
	}
	err := Policy{FailAfter: 0, RecoverAfter: -1, VIPSkew: -1}.Validate()
	if !errors.Is(err, ErrInvalidPolicy) {
		t.Fatalf("err = %v, want ErrInvalidPolicy", err)
	}
	// Every problem is listed at once: fail_after, recover_after,
	// agent_timeout, vip lease and vip skew.
	if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != 5 {
		t.Errorf("got %d problems, want 5: %v", n, err)
	}
	if got := DefaultPolicy().VIPWait(); got != 1100*time.Millisecond {
		t.Errorf("VIPWait = %s", got)
	}
}

func TestPlanClampsPollCounts(t *testing.T) {
	// fail_after 0 behaves like 1: one bad poll fails the node.
	_, d := plan(health("db2", cluster.HealthNotReady, 1), func(in *Input) { in.Policy.FailAfter = 0 })
	st, ok := topoOf(d)
	if !ok || routing(st.Topology) != "w=db1 r=[db3] off=[db2:not_ready]" {
		t.Fatalf("got %v %s", ok, routing(st.Topology))
	}
}

// newLeader makes the leader's time in office d.
func newLeader(d time.Duration) mod {
	return func(in *Input) { in.LeaderSince = in.Now.Add(-d) }
}

func TestCanRenewVIP(t *testing.T) {
	tests := []struct {
		name string
		node cluster.NodeName
		mods []mod
		want bool
	}{
		{name: "fit owner", node: "px1", want: true},
		{name: "fit owner lagging an epoch", node: "px1", want: true,
			mods: []mod{func(in *Input) { in.Reports["px1"] = proxyReport("px1", true, 1, dbNames, nil, in.Now) }}},
		{name: "not the owner", node: "px2"},
		{name: "empty name", node: "", mods: []mod{func(in *Input) { in.State.VIP.Owner = "" }}},
		{name: "unhealthy owner", node: "px1",
			mods: []mod{func(in *Input) { in.Reports["px1"] = proxyReport("px1", false, 5, dbNames, nil, in.Now) }}},
		{name: "silent owner", node: "px1", mods: []mod{staleBy("px1", 2*time.Second)}},
		{name: "owner in maintenance", node: "px1", mods: []mod{member("px1", func(m *cluster.Member) { m.Maintenance = true })}},
		{name: "owner is no proxy member", node: "db1", mods: []mod{func(in *Input) { in.State.VIP.Owner = "db1" }}},
		// A leader that just took office has no reports yet.
		{name: "new leader, no report from the owner yet", node: "px1", want: true,
			mods: []mod{newLeader(300 * time.Millisecond), func(in *Input) { delete(in.Reports, "px1") }}},
		{name: "leader in office over a lease, no report from the owner", node: "px1",
			mods: []mod{newLeader(1100 * time.Millisecond), func(in *Input) { delete(in.Reports, "px1") }}},
		{name: "new leader, stale report from the owner", node: "px1",
			mods: []mod{newLeader(300 * time.Millisecond), staleBy("px1", 2*time.Second)}},
		{name: "new leader, owner in maintenance without a report", node: "px1",
			mods: []mod{newLeader(300 * time.Millisecond), func(in *Input) { delete(in.Reports, "px1") },
				member("px1", func(m *cluster.Member) { m.Maintenance = true })}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput()
			for _, m := range tc.mods {
				m(&in)
			}
			got, why := CanRenewVIP(in, tc.node)
			if got != tc.want {
				t.Fatalf("CanRenewVIP(%s) = %v (%s), want %v", tc.node, got, why, tc.want)
			}
			if !got && why == "" {
				t.Error("refusal without a reason")
			}
		})
	}
}
