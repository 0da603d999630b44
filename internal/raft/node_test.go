package raft_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/raft"
	"github.com/dbha/dbha/internal/raft/rafttest"
)

func TestMain(m *testing.M) {
	// Every raft, transport and leader-loop goroutine must be gone once the
	// clusters are shut down.
	goleak.VerifyTestMain(m)
}

const (
	electTimeout = 10 * time.Second
	applyTimeout = 10 * time.Second
)

var t0 = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func dbMember(n cluster.NodeName) cluster.Member {
	return cluster.Member{Name: n, Roles: []cluster.Role{cluster.RoleDB}, APIAddr: "127.0.0.1:1", RaftAddr: "127.0.0.1:2", MySQLAddr: "127.0.0.1:3306", Priority: 1}
}

// seed commits three members and topology epochs 1..epochs, each with an
// event, through the cluster's leader.
func seed(t *testing.T, c *rafttest.Cluster, epochs int) {
	t.Helper()
	for _, n := range []cluster.NodeName{"db1", "db2", "db3"} {
		if err := c.Apply(applyTimeout, cluster.UpsertMember{Member: dbMember(n), Event: &cluster.Event{Time: t0, Kind: cluster.EventMember, Node: n, Reason: "registered"}}); err != nil {
			t.Fatalf("upsert %s: %v", n, err)
		}
	}
	for e := 1; e <= epochs; e++ {
		topo := cluster.Topology{Epoch: cluster.Epoch(e), Writer: "db1", Readers: []cluster.NodeName{"db2", "db3"}}
		if err := c.Apply(applyTimeout, cluster.SetTopology{Topology: topo, Event: &cluster.Event{Time: t0, Kind: cluster.EventTopology, Reason: fmt.Sprintf("epoch %d", e)}}); err != nil {
			t.Fatalf("topology epoch %d: %v", e, err)
		}
	}
}

// sameAs returns a WaitState condition: the node's state equals want.
func sameAs(want cluster.State) func(cluster.State) error {
	return func(s cluster.State) error {
		if !reflect.DeepEqual(s, want) {
			return fmt.Errorf("state at epoch %d with %d events, want epoch %d with %d events",
				s.Topology.Epoch, len(s.Events), want.Topology.Epoch, len(want.Events))
		}
		return nil
	}
}

func TestElection(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d nodes", n), func(t *testing.T) {
			c := rafttest.New(t, n, rafttest.Options{})
			l := c.WaitLeader(electTimeout)
			servers, err := c.Node(l).Configuration()
			if err != nil {
				t.Fatal(err)
			}
			if len(servers) != n {
				t.Fatalf("configuration has %d servers, want %d: %+v", len(servers), n, servers)
			}
			leaders := 0
			for _, s := range servers {
				if s.Suffrage != raft.SuffrageVoter {
					t.Errorf("%s is %s, want voter", s.Name, s.Suffrage)
				}
				if s.Leader {
					leaders++
					if s.Name != c.Member(l).Name {
						t.Errorf("configuration marks %s leader, want %s", s.Name, c.Member(l).Name)
					}
				}
			}
			if leaders != 1 {
				t.Errorf("%d servers marked leader", leaders)
			}
			st := c.Node(l).Status()
			if st.State != "Leader" || st.Term == 0 || st.Leader != c.Member(l).Name {
				t.Errorf("leader status = %+v", st)
			}
		})
	}
}

func TestReplicateAndLeaderFailover(t *testing.T) {
	c := rafttest.New(t, 5, rafttest.Options{})
	old := c.WaitLeader(electTimeout)
	seed(t, c, 3)
	want := c.Node(old).State()
	if want.Topology.Epoch != 3 || len(want.Members) != 3 || len(want.Events) != 6 {
		t.Fatalf("leader state after seed: %+v", want)
	}
	c.WaitState(electTimeout, sameAs(want))

	c.Kill(old)
	l := c.WaitLeader(electTimeout)
	if l == old {
		t.Fatalf("killed node %d still leader", old)
	}
	c.WaitState(electTimeout, sameAs(want)) // survivors keep all of it

	// The new leader continues from the committed epoch.
	if err := c.Apply(applyTimeout, cluster.SetTopology{Topology: cluster.Topology{Epoch: 4, Writer: "db2", Readers: []cluster.NodeName{"db3"}, Offline: []cluster.OfflineNode{{Node: "db1", Reason: cluster.ReasonUnreachable}}}}); err != nil {
		t.Fatal(err)
	}
	c.WaitState(electTimeout, func(s cluster.State) error {
		if s.Topology.Epoch != 4 || s.Topology.Writer != "db2" {
			return fmt.Errorf("topology %+v", s.Topology)
		}
		return nil
	})

	// The old leader comes back as a follower and catches up.
	c.Restart(old)
	want = c.Node(l).State()
	c.WaitState(electTimeout, sameAs(want))
}

func TestApplyErrors(t *testing.T) {
	c := rafttest.New(t, 3, rafttest.Options{})
	l := c.WaitLeader(electTimeout)
	seed(t, c, 2)
	leader := c.Node(l)
	before := leader.State()
	ctx := context.Background()

	err := leader.Apply(ctx, cluster.SetTopology{Topology: cluster.Topology{Epoch: 2}})
	if !errors.Is(err, cluster.ErrStaleEpoch) {
		t.Fatalf("stale epoch apply = %v, want ErrStaleEpoch", err)
	}
	err = leader.Apply(ctx, cluster.SetTopology{Topology: cluster.Topology{Epoch: 9}})
	if !errors.Is(err, cluster.ErrStaleEpoch) {
		t.Fatalf("skipped epoch apply = %v, want ErrStaleEpoch", err)
	}
	if !reflect.DeepEqual(leader.State(), before) {
		t.Error("rejected commands changed the state")
	}

	follower := c.Node((l + 1) % 3)
	err = follower.Apply(ctx, cluster.RemoveMember{Name: "db1"})
	var nl *raft.NotLeaderError
	if !errors.Is(err, raft.ErrNotLeader) || !errors.As(err, &nl) {
		t.Fatalf("follower apply = %v, want ErrNotLeader", err)
	}
	if nl.Leader != c.Member(l).Name || nl.LeaderAddr != c.Member(l).Addr {
		t.Errorf("NotLeaderError names %s at %s, want %s at %s", nl.Leader, nl.LeaderAddr, c.Member(l).Name, c.Member(l).Addr)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := leader.Apply(cctx, cluster.RemoveMember{Name: "db1"}); !errors.Is(err, context.Canceled) {
		t.Errorf("apply with cancelled ctx = %v", err)
	}
	if err := leader.Apply(ctx, nil); !errors.Is(err, cluster.ErrInvalidCommand) {
		t.Errorf("apply nil = %v", err)
	}
	if err := leader.TransferLeadership(ctx, "nobody"); !errors.Is(err, raft.ErrUnknownServer) {
		t.Errorf("transfer to unknown = %v", err)
	}
	if err := follower.AddMember(ctx, "n9", "127.0.0.1:9"); !errors.Is(err, raft.ErrNotLeader) {
		t.Errorf("AddMember on follower = %v", err)
	}
	c.Kill(l)
	if err := leader.Apply(ctx, cluster.RemoveMember{Name: "db1"}); !errors.Is(err, raft.ErrShutdown) {
		t.Errorf("apply after shutdown = %v, want ErrShutdown", err)
	}
	if err := leader.Run(ctx, func(context.Context) {}); !errors.Is(err, raft.ErrShutdown) {
		t.Errorf("Run after shutdown = %v, want ErrShutdown", err)
	}
	if err := leader.Shutdown(); err != nil {
		t.Errorf("second Shutdown = %v", err)
	}
}

// loopTracker records which nodes run the leader function.
type loopTracker struct {
	mu      sync.Mutex
	running map[cluster.NodeName]int // live leaderFn calls per node
	starts  map[cluster.NodeName]int
	stops   map[cluster.NodeName]int
	maxConc int // most leaderFn calls running at once, across nodes
}

func newLoopTracker() *loopTracker {
	return &loopTracker{running: map[cluster.NodeName]int{}, starts: map[cluster.NodeName]int{}, stops: map[cluster.NodeName]int{}}
}

func (lt *loopTracker) fn(name cluster.NodeName) func(ctx context.Context) {
	return func(ctx context.Context) {
		lt.mu.Lock()
		lt.running[name]++
		lt.starts[name]++
		total := 0
		for _, v := range lt.running {
			total += v
		}
		lt.maxConc = max(lt.maxConc, total)
		lt.mu.Unlock()
		<-ctx.Done()
		lt.mu.Lock()
		lt.running[name]--
		lt.stops[name]++
		lt.mu.Unlock()
	}
}

// only checks that exactly one leaderFn runs, on node want.
func (lt *loopTracker) only(want cluster.NodeName) error {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	for n, v := range lt.running {
		if n == want && v != 1 {
			return fmt.Errorf("%s runs %d leader loops, want 1", n, v)
		}
		if n != want && v != 0 {
			return fmt.Errorf("%s runs %d leader loops, want 0 (leader is %s)", n, v, want)
		}
	}
	if lt.running[want] != 1 {
		return fmt.Errorf("leader %s runs no leader loop", want)
	}
	return nil
}

func (lt *loopTracker) counts(n cluster.NodeName) (starts, stops int) {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	return lt.starts[n], lt.stops[n]
}

func TestLeaderLoopFollowsLeadership(t *testing.T) {
	c := rafttest.New(t, 3, rafttest.Options{})
	lt := newLoopTracker()
	for i := range c.Len() {
		c.RunLeaderLoop(i, lt.fn(c.Member(i).Name))
	}
	first := c.WaitLeader(electTimeout)
	firstName := c.Member(first).Name
	rafttest.Eventually(t, electTimeout, func() error { return lt.only(firstName) })
	if c.Node(first).LeaderSince().IsZero() {
		t.Error("leader's LeaderSince is zero")
	}
	if err := c.Node(first).Run(context.Background(), func(context.Context) {}); !errors.Is(err, raft.ErrRunActive) {
		t.Errorf("second Run = %v, want ErrRunActive", err)
	}

	// Planned handover: the old leader stays up, its loop must stop.
	target := c.Member((first + 1) % 3).Name
	ctx, cancel := context.WithTimeout(context.Background(), electTimeout)
	defer cancel()
	if err := c.Node(first).TransferLeadership(ctx, target); err != nil {
		t.Fatalf("transfer to %s: %v", target, err)
	}
	second := c.WaitLeader(electTimeout)
	if c.Member(second).Name != target {
		t.Fatalf("leader after transfer is %s, want %s", c.Member(second).Name, target)
	}
	rafttest.Eventually(t, electTimeout, func() error { return lt.only(target) })
	if starts, stops := lt.counts(firstName); starts != 1 || stops != 1 {
		t.Errorf("old leader %s: %d starts, %d stops; want its one loop cancelled and returned", firstName, starts, stops)
	}
	if !c.Node(first).LeaderSince().IsZero() {
		t.Error("old leader still reports LeaderSince")
	}

	// Unplanned: kill the leader.
	c.Kill(second)
	third := c.WaitLeader(electTimeout)
	rafttest.Eventually(t, electTimeout, func() error { return lt.only(c.Member(third).Name) })
	if starts, stops := lt.counts(target); starts != 1 || stops != 1 {
		t.Errorf("killed leader %s: %d starts, %d stops", target, starts, stops)
	}
	// Overlap during a handover is allowed only for an instant; log it.
	lt.mu.Lock()
	t.Logf("most leader loops seen at once: %d", lt.maxConc)
	lt.mu.Unlock()
}

func TestLeaderFnRestartsIfItReturnsEarly(t *testing.T) {
	c := rafttest.New(t, 1, rafttest.Options{})
	var mu sync.Mutex
	calls := 0
	c.RunLeaderLoop(0, func(ctx context.Context) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n == 1 {
			return // a buggy leader fn that gives up
		}
		<-ctx.Done()
	})
	c.WaitLeader(electTimeout)
	rafttest.Eventually(t, 5*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if calls < 2 {
			return fmt.Errorf("leader fn called %d times", calls)
		}
		return nil
	})
}

func snapshotsIn(dir string) int {
	entries, _ := os.ReadDir(filepath.Join(dir, "snapshots"))
	n := 0
	for _, e := range entries {
		if e.IsDir() && filepath.Ext(e.Name()) != ".tmp" {
			n++
		}
	}
	return n
}

func TestSnapshotAndRestore(t *testing.T) {
	c := rafttest.New(t, 3, rafttest.Options{Configure: func(cfg *raft.Config) {
		cfg.TrailingLogs = 4 // so a lagging follower needs InstallSnapshot
		cfg.SnapshotThreshold = 8
	}})
	l := c.WaitLeader(electTimeout)
	lagger := (l + 1) % 3
	c.Kill(lagger)

	seed(t, c, 20)
	ctx, cancel := context.WithTimeout(context.Background(), applyTimeout)
	defer cancel()
	for _, i := range c.Live() {
		if err := c.Node(i).Snapshot(ctx); err != nil {
			t.Fatalf("snapshot on %s: %v", c.Member(i).Name, err)
		}
		if got := snapshotsIn(c.Member(i).Dir); got == 0 {
			t.Fatalf("no snapshot in %s", c.Member(i).Dir)
		}
	}
	want := c.Node(l).State()

	// The lagging follower is behind the leader's trailing logs: it can only
	// catch up from a snapshot sent by the leader.
	c.Restart(lagger)
	c.WaitState(electTimeout, sameAs(want))
	if idx := c.Node(lagger).Stats()["last_snapshot_index"]; idx == "" || idx == "0" {
		t.Errorf("lagging follower caught up without a snapshot (last_snapshot_index %q)", idx)
	}

	// Whole-cluster restart: every node rebuilds from its own data dir.
	for _, i := range c.Live() {
		c.Kill(i)
	}
	for i := range c.Len() {
		c.Restart(i)
	}
	c.WaitLeader(electTimeout)
	c.WaitState(electTimeout, sameAs(want))
	if err := c.Apply(applyTimeout, cluster.SetTopology{Topology: cluster.Topology{Epoch: 21}}); err != nil {
		t.Fatalf("apply after restart: %v", err)
	}
}

func TestAddAndRemoveMembers(t *testing.T) {
	c := rafttest.New(t, 3, rafttest.Options{})
	l := c.WaitLeader(electTimeout)
	seed(t, c, 2)
	ctx, cancel := context.WithTimeout(context.Background(), applyTimeout)
	defer cancel()

	j := c.Join("n4")
	leader := c.Node(l)
	if err := leader.AddMember(ctx, "n4", c.Member(j).Addr); err != nil {
		t.Fatal(err)
	}
	if err := leader.AddMember(ctx, "n4", c.Member(j).Addr); err != nil {
		t.Fatalf("second AddMember (idempotent) = %v", err)
	}
	c.WaitState(electTimeout, sameAs(leader.State()))
	suffrages := func(n *raft.Node) map[cluster.NodeName]string {
		servers, err := n.Configuration()
		if err != nil {
			t.Fatal(err)
		}
		out := map[cluster.NodeName]string{}
		for _, s := range servers {
			out[s.Name] = s.Suffrage
		}
		return out
	}
	if got := suffrages(c.Node(j)); len(got) != 4 || got["n4"] != raft.SuffrageVoter {
		t.Fatalf("joiner's configuration = %v, want 4 voters", got)
	}

	if err := leader.RemoveMember(ctx, "n4"); err != nil {
		t.Fatal(err)
	}
	if got := suffrages(leader); len(got) != 3 {
		t.Fatalf("after remove: %v", got)
	}
	if err := leader.RemoveMember(ctx, "n4"); err != nil {
		t.Fatalf("removing an absent member = %v", err)
	}
}

func TestVotersCappedThenNonvoters(t *testing.T) {
	c := rafttest.New(t, 3, rafttest.Options{Configure: func(cfg *raft.Config) { cfg.MaxVoters = 3 }})
	l := c.WaitLeader(electTimeout)
	ctx, cancel := context.WithTimeout(context.Background(), applyTimeout)
	defer cancel()
	j := c.Join("n4")
	leader := c.Node(l)
	if err := leader.AddMember(ctx, "n4", c.Member(j).Addr); err != nil {
		t.Fatal(err)
	}
	suffrageOf := func(name cluster.NodeName) string {
		servers, err := leader.Configuration()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range servers {
			if s.Name == name {
				return s.Suffrage
			}
		}
		return "absent"
	}
	if got := suffrageOf("n4"); got != raft.SuffrageNonvoter {
		t.Fatalf("4th server is %s, want nonvoter", got)
	}
	// The non-voter replicates too.
	if err := c.Apply(applyTimeout, cluster.UpsertMember{Member: dbMember("db1")}); err != nil {
		t.Fatal(err)
	}
	c.WaitState(electTimeout, sameAs(leader.State()))

	// Free a voter slot (not the leader's), then AddMember promotes n4.
	gone := (l + 1) % 3
	if err := leader.RemoveMember(ctx, c.Member(gone).Name); err != nil {
		t.Fatal(err)
	}
	c.Kill(gone)
	if err := leader.AddMember(ctx, "n4", c.Member(j).Addr); err != nil {
		t.Fatal(err)
	}
	if got := suffrageOf("n4"); got != raft.SuffrageVoter {
		t.Fatalf("n4 after promotion is %s, want voter", got)
	}
}
