package controller

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/planner"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memRaft applies commands to an in-memory state, as the FSM would.
type memRaft struct {
	mu      sync.Mutex
	st      cluster.State
	applied []cluster.Command
	fail    error
	leader  bool
	moves   []cluster.NodeName
}

func (r *memRaft) State() cluster.State {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st.Clone()
}

func (r *memRaft) Apply(_ context.Context, c cluster.Command) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail != nil {
		return r.fail
	}
	if err := r.st.Apply(c); err != nil {
		return err
	}
	r.applied = append(r.applied, c)
	return nil
}

func (r *memRaft) LeaderSince() time.Time { return time.Unix(0, 0) }
func (r *memRaft) IsLeader() bool         { return r.leader }
func (r *memRaft) TransferLeadership(_ context.Context, to cluster.NodeName) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.moves = append(r.moves, to)
	return nil
}

func newState() cluster.State {
	st := cluster.NewState()
	for _, m := range []cluster.Member{
		{Name: "db1", Roles: []cluster.Role{cluster.RoleDB}, RaftAddr: "r1", MySQLAddr: "m1", Priority: 100},
		{Name: "db2", Roles: []cluster.Role{cluster.RoleDB}, RaftAddr: "r2", MySQLAddr: "m2", Priority: 100},
		{Name: "px1", Roles: []cluster.Role{cluster.RoleProxy}, RaftAddr: "r3"},
	} {
		st.Members[m.Name] = m
	}
	return st
}

func synced(node cluster.NodeName, now time.Time, streak int) cluster.Report {
	return cluster.Report{From: node, Sent: now, DB: &cluster.Observation{
		Node: node, Time: now, Reachable: true, Health: cluster.HealthOK, Streak: streak,
		Wsrep: &cluster.WsrepStatus{LocalState: cluster.WsrepSynced, LocalStateComment: "Synced", ClusterStatus: cluster.WsrepPrimary,
			Ready: true, Connected: true, ClusterSize: 2, ClusterStateUUID: "6e1d5bd4-4a0b-11ef-9b8a-6f3c4e2a1b10", LastCommitted: 10, RejectQueries: cluster.RejectNone},
	}}
}

// runLeading starts Run (as raft.Node.Run would on gaining leadership) and
// returns a stop function that ends it and waits.
func runLeading(t *testing.T, c *Controller) func() {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for !c.Snapshot().Leading {
		if time.Now().After(deadline) {
			t.Fatal("controller did not start")
		}
		time.Sleep(time.Millisecond)
	}
	return func() { cancel(); <-done }
}

func TestReportRefusedWhenNotLeading(t *testing.T) {
	c := New(Config{Node: "px1", Policy: planner.DefaultPolicy()}, Deps{Raft: &memRaft{st: newState()}})
	if err := c.Report(synced("db1", time.Now(), 5)); !errors.Is(err, ErrNotLeading) {
		t.Fatalf("report on a follower: %v; want ErrNotLeading", err)
	}
	if _, _, err := c.RenewVIP("px1"); !errors.Is(err, ErrNotLeading) {
		t.Fatalf("vip renewal on a follower: %v; want ErrNotLeading", err)
	}
	if err := c.Report(cluster.Report{}); err == nil {
		t.Fatal("a report with no sender was accepted")
	}
}

func TestStepCommitsOnlyChanges(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	r := &memRaft{st: newState(), leader: true}
	c := New(Config{Node: "px1", Policy: planner.DefaultPolicy(), Interval: time.Hour},
		Deps{Raft: r, Now: func() time.Time { return now }})
	stop := runLeading(t, c)
	defer stop()
	for _, n := range []cluster.NodeName{"db1", "db2"} {
		if err := c.Report(synced(n, now, 10)); err != nil {
			t.Fatal(err)
		}
	}
	// The planner brings new nodes in over a few epochs; step until the
	// routing settles, then check that further steps commit nothing.
	for i := 0; i < 10; i++ {
		if err := c.Step(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	st := r.State()
	if st.Topology.Writer == "" || len(st.Topology.Readers) == 0 {
		t.Fatalf("no writer or readers committed: %+v", st.Topology)
	}
	n := len(r.applied)
	for i := 0; i < 3; i++ {
		if err := c.Step(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if len(r.applied) != n {
		t.Fatalf("steps with unchanged inputs committed %d more commands", len(r.applied)-n)
	}
	if len(c.Snapshot().Why) == 0 {
		t.Error("no explanation recorded for the last decision")
	}
}

func TestStepStopsAtFailedCommit(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	r := &memRaft{st: newState(), leader: true, fail: errors.New("raft: leadership lost")}
	c := New(Config{Node: "px1", Policy: planner.DefaultPolicy(), Interval: time.Hour},
		Deps{Raft: r, Now: func() time.Time { return now }})
	stop := runLeading(t, c)
	defer stop()
	if err := c.Report(synced("db1", now, 10)); err != nil {
		t.Fatal(err)
	}
	if err := c.Step(context.Background()); err == nil {
		t.Fatal("a failed raft write was not reported")
	}
	if st := r.State(); st.Topology.Epoch != 0 {
		t.Fatalf("state changed despite the failed write: epoch %d", st.Topology.Epoch)
	}
}

func TestLeadershipLossForgetsReports(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	r := &memRaft{st: newState(), leader: true}
	c := New(Config{Node: "px1", Policy: planner.DefaultPolicy()}, Deps{Raft: r, Now: func() time.Time { return now }})
	stop := runLeading(t, c)
	if err := c.Report(synced("db1", now, 10)); err != nil {
		t.Fatal(err)
	}
	if len(c.Snapshot().Reports) != 1 {
		t.Fatal("report not kept while leading")
	}
	stop()
	snap := c.Snapshot()
	if snap.Leading || len(snap.Reports) != 0 {
		t.Fatalf("after losing leadership: leading=%v reports=%d", snap.Leading, len(snap.Reports))
	}
}

func TestLeaderMovesOffTheWriter(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	st := newState()
	st.Topology = cluster.Topology{Epoch: 1, Writer: "db1", Readers: []cluster.NodeName{"db2"}}.Normalize()
	r := &memRaft{st: st, leader: true}
	c := New(Config{Node: "db1", Policy: planner.DefaultPolicy(), KeepLeaderOffWriter: true, Interval: time.Hour},
		Deps{Raft: r, Now: func() time.Time { return now }, Voters: func() []cluster.NodeName { return []cluster.NodeName{"db1", "db2", "px1"} }})
	stop := runLeading(t, c)
	defer stop()
	for _, n := range []cluster.NodeName{"db1", "db2"} {
		if err := c.Report(synced(n, now, 10)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Report(cluster.Report{From: "px1", Sent: now, Proxy: &cluster.ProxyReport{Node: "px1", Time: now, Healthy: true, AppliedEpoch: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.moves) != 1 || r.moves[0] != "px1" {
		t.Fatalf("leadership moves %v; want one move to the proxy px1", r.moves)
	}
}
