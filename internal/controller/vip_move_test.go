package controller

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/planner"
)

// clock is a settable test clock, safe for the Run goroutine.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// moveFixture is a leading controller over db1, db2 (synced, db1 writer),
// px1 (the VIP owner, renewed) and px2, every agent fresh.
func moveFixture(t *testing.T) (*Controller, *memRaft, *clock) {
	t.Helper()
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	st := newState()
	st.Members["px2"] = cluster.Member{Name: "px2", Roles: []cluster.Role{cluster.RoleProxy}, RaftAddr: "r4"}
	st.Topology = cluster.Topology{Epoch: 1, Writer: "db1", Readers: []cluster.NodeName{"db2"}}.Normalize()
	st.VIP = cluster.VIPState{Owner: "px1", LeaseEpoch: 1}
	r := &memRaft{st: st, leader: true}
	c := New(Config{Node: "db2", Policy: planner.DefaultPolicy(), Interval: time.Hour, VIPMoveTimeout: 10 * time.Second},
		Deps{Raft: r, Now: clk.Now})
	t.Cleanup(runLeading(t, c))
	reportAll(t, c, clk.Now(), true)
	if ok, why, err := c.RenewVIP("px1"); !ok || err != nil {
		t.Fatalf("renew px1: %v %s %v", ok, why, err)
	}
	return c, r, clk
}

func proxyRep(n cluster.NodeName, now time.Time, healthy bool, applied cluster.Epoch) cluster.Report {
	return cluster.Report{From: n, Sent: now, Proxy: &cluster.ProxyReport{Node: n, Time: now, Healthy: healthy, AppliedEpoch: applied}}
}

func reportAll(t *testing.T, c *Controller, now time.Time, px2Healthy bool) {
	t.Helper()
	for _, r := range []cluster.Report{synced("db1", now, 10), synced("db2", now, 10),
		proxyRep("px1", now, true, 1), proxyRep("px2", now, px2Healthy, 1)} {
		if err := c.Report(r); err != nil {
			t.Fatal(err)
		}
	}
}

func step(t *testing.T, c *Controller) {
	t.Helper()
	if err := c.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestMoveVIPReleaseThenAssign(t *testing.T) {
	c, r, clk := moveFixture(t)
	mv, err := c.MoveVIP("px2")
	if err != nil {
		t.Fatal(err)
	}
	if mv.To != "px2" || mv.From != "px1" || !mv.Since.Equal(clk.Now()) {
		t.Fatalf("move %+v", mv)
	}
	step(t, c)
	if st := r.State(); st.VIP.Owner != "" || st.VIP.LeaseEpoch != 2 {
		t.Fatalf("after the first step vip %+v, want released at lease epoch 2", st.VIP)
	}
	// px1 renewed just now and has not confirmed: px2 must wait.
	clk.Add(300 * time.Millisecond)
	reportAll(t, c, clk.Now(), true)
	step(t, c)
	if st := r.State(); st.VIP.Owner != "" {
		t.Fatalf("vip given to %s while px1's lease may live", st.VIP.Owner)
	}
	// A confirmation for an older lease epoch is stale and ignored.
	if err := c.ReleaseVIP("px1", 1); !errors.Is(err, ErrVIPReleaseStale) {
		t.Fatalf("stale release: %v; want ErrVIPReleaseStale", err)
	}
	step(t, c)
	if st := r.State(); st.VIP.Owner != "" {
		t.Fatalf("vip given to %s after a stale release", st.VIP.Owner)
	}
	if err := c.ReleaseVIP("px1", 2); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Millisecond)
	step(t, c)
	if st := r.State(); st.VIP.Owner != "px2" || st.VIP.LeaseEpoch != 3 {
		t.Fatalf("after px1's release vip %+v, want px2 at lease epoch 3", st.VIP)
	}
	step(t, c) // the step after the assignment sees the move done
	snap := c.Snapshot()
	if snap.VIPMove != nil {
		t.Fatalf("move still pending after it was done: %+v", snap.VIPMove)
	}
	if _, ok := snap.VIPReleased["px2"]; ok {
		t.Error("a release confirmation of the new owner survived its assignment")
	}
	var reasons []string
	for _, e := range r.State().Events {
		if e.Kind == cluster.EventVIP {
			reasons = append(reasons, e.Reason)
		}
	}
	if len(reasons) != 2 || reasons[0] != "planned move to px2: releasing px1" || !strings.HasPrefix(reasons[1], "planned move: assigned to px2") {
		t.Fatalf("vip events %q", reasons)
	}
}

func TestMoveVIPRefusals(t *testing.T) {
	c, _, _ := moveFixture(t)
	for _, tc := range []struct {
		to   cluster.NodeName
		want error
	}{
		{"nope", ErrVIPMoveUnknownTarget},
		{"db1", ErrVIPMoveRefused},
		{"px1", ErrVIPMoveRefused},
	} {
		if _, err := c.MoveVIP(tc.to); !errors.Is(err, tc.want) {
			t.Errorf("MoveVIP(%s) = %v, want %v", tc.to, err, tc.want)
		}
	}
	// An unhealthy target is refused with the reason.
	c2, _, clk := moveFixture(t)
	reportAll(t, c2, clk.Now(), false)
	_, err := c2.MoveVIP("px2")
	if !errors.Is(err, ErrVIPMoveRefused) || !strings.Contains(err.Error(), "proxy unhealthy") {
		t.Fatalf("move to an unhealthy proxy: %v", err)
	}
	if c.Snapshot().VIPMove != nil || c2.Snapshot().VIPMove != nil {
		t.Fatal("a refused move was recorded")
	}
	idle := New(Config{Node: "db2", Policy: planner.DefaultPolicy()}, Deps{Raft: &memRaft{st: newState()}})
	if _, err := idle.MoveVIP("px1"); !errors.Is(err, ErrNotLeading) {
		t.Fatalf("move on a follower: %v", err)
	}
	if err := idle.ReleaseVIP("px1", 1); !errors.Is(err, ErrNotLeading) {
		t.Fatalf("release on a follower: %v", err)
	}
}

func TestMoveVIPAbandonedAndTimedOut(t *testing.T) {
	lastVIPEvent := func(r *memRaft) cluster.Event {
		evs := r.State().Events
		for i := len(evs) - 1; i >= 0; i-- {
			if evs[i].Kind == cluster.EventVIP {
				return evs[i]
			}
		}
		return cluster.Event{}
	}
	t.Run("target turns unhealthy", func(t *testing.T) {
		c, r, clk := moveFixture(t)
		if _, err := c.MoveVIP("px2"); err != nil {
			t.Fatal(err)
		}
		reportAll(t, c, clk.Now(), false)
		step(t, c)
		if c.Snapshot().VIPMove != nil {
			t.Fatal("move kept after its target turned unhealthy")
		}
		e := lastVIPEvent(r)
		if e.Inputs["planned_move"] != "abandoned" || !strings.Contains(e.Reason, "proxy unhealthy") {
			t.Fatalf("event %+v", e)
		}
		if st := r.State(); st.VIP.Owner != "px1" {
			t.Fatalf("vip %+v, want it kept on px1", st.VIP)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		c, r, clk := moveFixture(t)
		if _, err := c.MoveVIP("px2"); err != nil {
			t.Fatal(err)
		}
		// px2 lags an epoch: fit, but not eligible, so the move stalls.
		stall := func() {
			for _, rep := range []cluster.Report{synced("db1", clk.Now(), 10), synced("db2", clk.Now(), 10),
				proxyRep("px1", clk.Now(), true, 1), proxyRep("px2", clk.Now(), true, 0)} {
				if err := c.Report(rep); err != nil {
					t.Fatal(err)
				}
			}
			// The owner is alive: it keeps renewing its lease.
			if ok, why, err := c.RenewVIP("px1"); err != nil || !ok {
				t.Fatalf("renewal from px1: %v %s", err, why)
			}
		}
		stall()
		step(t, c)
		if c.Snapshot().VIPMove == nil {
			t.Fatal("move dropped too early")
		}
		// Ten seconds pass with the owner renewing all along.
		for range 20 {
			clk.Add(500 * time.Millisecond)
			stall()
		}
		clk.Add(time.Millisecond)
		stall()
		step(t, c)
		if c.Snapshot().VIPMove != nil {
			t.Fatal("move kept after its timeout")
		}
		if e := lastVIPEvent(r); e.Inputs["planned_move"] != "timed_out" || !strings.Contains(e.Reason, "timed out after 10s") {
			t.Fatalf("event %+v", e)
		}
	})
}
