// Package apitest is a fake api.Backend for tests of the API handlers, the
// client and dbctl: its answers are configurable and it records every call.
package apitest

import (
	"context"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dbha/dbha/internal/api"
	"github.com/dbha/dbha/internal/cluster"
)

// Call is one recorded Backend call.
type Call struct {
	Method string // Status, Events, Why, Report, Join, Leave, Health, RenewVIP, MoveVIP, ReleaseVIP
	Arg    any    // the argument: nil, [2]any{since, limit}, Epoch, Report, Member, NodeName, role
}

// Backend is a fake api.Backend. It is safe for concurrent use. The zero
// value is not usable; call New.
type Backend struct {
	mu        sync.Mutex
	status    api.Status
	events    []cluster.Event
	whys      map[cluster.Epoch]api.Why
	health    map[string]api.Health
	errs      map[string]error
	leaderAPI string
	vipLease  api.VIPLease
	onMove    func(to cluster.NodeName) (api.VIPMove, error)
	calls     []Call
}

var _ api.Backend = (*Backend)(nil)

// New returns a fake that answers an empty Status, no events, ErrNotFound
// for every epoch, unhealthy for every role, and accepts every write.
func New() *Backend {
	return &Backend{
		whys:   map[cluster.Epoch]api.Why{},
		health: map[string]api.Health{},
		errs:   map[string]error{},
	}
}

// SetStatus sets the answer of Status.
func (b *Backend) SetStatus(s api.Status) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.status = s
}

// SetEvents sets the event ring that Events pages through (Seq > since,
// oldest first, at most limit).
func (b *Backend) SetEvents(evs []cluster.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events = slices.Clone(evs)
}

// SetWhy sets the answer of Why(w.Epoch); when w.Current it also answers
// Why(0).
func (b *Backend) SetWhy(w api.Why) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.whys[w.Epoch] = w
	if w.Current {
		b.whys[0] = w
	}
}

// SetHealth sets the answer of Health(h.Role).
func (b *Backend) SetHealth(h api.Health) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.health[h.Role] = h
}

// SetErr makes method (Status, Events, Why, Report, Join, Leave, RenewVIP,
// MoveVIP or ReleaseVIP) return
// err; nil clears it.
func (b *Backend) SetErr(method string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err == nil {
		delete(b.errs, method)
		return
	}
	b.errs[method] = err
}

// SetLeaderAPI sets the answer of LeaderAPI.
func (b *Backend) SetLeaderAPI(addr string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.leaderAPI = addr
}

// Calls returns the recorded calls, oldest first. LeaderAPI is not
// recorded.
func (b *Backend) Calls() []Call {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.calls)
}

// CallsTo returns the recorded calls of one method.
func (b *Backend) CallsTo(method string) []Call {
	var out []Call
	for _, c := range b.Calls() {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

func (b *Backend) record(method string, arg any) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, Call{Method: method, Arg: arg})
	return b.errs[method]
}

func (b *Backend) Status(ctx context.Context) (api.Status, error) {
	if err := b.record("Status", nil); err != nil {
		return api.Status{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.status, nil
}

func (b *Backend) Events(ctx context.Context, sinceSeq uint64, limit int) ([]cluster.Event, error) {
	if err := b.record("Events", [2]any{sinceSeq, limit}); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	out := []cluster.Event{}
	for _, e := range b.events {
		if e.Seq > sinceSeq && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (b *Backend) Why(ctx context.Context, epoch cluster.Epoch) (api.Why, error) {
	if err := b.record("Why", epoch); err != nil {
		return api.Why{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	w, ok := b.whys[epoch]
	if !ok {
		return api.Why{}, api.ErrNotFound
	}
	return w, nil
}

func (b *Backend) Report(ctx context.Context, r cluster.Report) error {
	return b.record("Report", r)
}

func (b *Backend) Join(ctx context.Context, m cluster.Member) error {
	return b.record("Join", m)
}

func (b *Backend) Leave(ctx context.Context, name cluster.NodeName) error {
	return b.record("Leave", name)
}

func (b *Backend) Health(ctx context.Context, role string) api.Health {
	_ = b.record("Health", role)
	b.mu.Lock()
	defer b.mu.Unlock()
	if h, ok := b.health[role]; ok {
		return h
	}
	return api.Health{Role: role, Reason: "apitest: no health configured for " + role}
}

func (b *Backend) LeaderAPI() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.leaderAPI
}

// NewServer serves b through api.NewHandler on a loopback httptest server
// that is closed when the test ends.
func NewServer(t testing.TB, b api.Backend, node cluster.NodeName) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(api.NewHandler(b, api.HandlerOptions{Node: node}))
	t.Cleanup(srv.Close)
	return srv
}

// HealthyStatus returns a plausible status of a healthy cluster as seen by
// the leader px1: db1 writer, db2 and db3 readers, px1 and px2 healthy and
// caught up, the VIP on px1. Tests change what they need.
func HealthyStatus(now time.Time) api.Status {
	const epoch = cluster.Epoch(12)
	wsrep := func(lc int64) *cluster.WsrepStatus {
		return &cluster.WsrepStatus{
			LocalState: cluster.WsrepSynced, LocalStateComment: "Synced", ClusterStatus: cluster.WsrepPrimary,
			Ready: true, Connected: true, ClusterSize: 3, ClusterStateUUID: "6f0c1a52-0000-0000-0000-000000000001",
			LastCommitted: lc, RejectQueries: cluster.RejectNone,
		}
	}
	members := []cluster.Member{
		{Name: "db1", Roles: []cluster.Role{cluster.RoleDB}, APIAddr: "198.18.0.11:7070", RaftAddr: "198.18.0.11:7071", MySQLAddr: "198.18.0.11:3306", Priority: 10},
		{Name: "db2", Roles: []cluster.Role{cluster.RoleDB}, APIAddr: "198.18.0.12:7070", RaftAddr: "198.18.0.12:7071", MySQLAddr: "198.18.0.12:3306", Priority: 5},
		{Name: "db3", Roles: []cluster.Role{cluster.RoleDB}, APIAddr: "198.18.0.13:7070", RaftAddr: "198.18.0.13:7071", MySQLAddr: "198.18.0.13:3306", Priority: 5, NoWriter: true},
		{Name: "px1", Roles: []cluster.Role{cluster.RoleProxy}, APIAddr: "198.18.0.21:7070", RaftAddr: "198.18.0.21:7071"},
		{Name: "px2", Roles: []cluster.Role{cluster.RoleProxy}, APIAddr: "198.18.0.22:7070", RaftAddr: "198.18.0.22:7071"},
	}
	var raft []api.RaftServer
	for _, m := range members {
		raft = append(raft, api.RaftServer{Name: m.Name, Address: m.RaftAddr, Suffrage: "voter", Leader: m.Name == "px1"})
	}
	return api.Status{
		Node: "px1", Leader: "px1", LeaderAPI: "198.18.0.21:7070", IsLeader: true, Term: 7,
		Raft:     raft,
		Topology: cluster.Topology{Epoch: epoch, Writer: "db1", Readers: []cluster.NodeName{"db2", "db3"}, Offline: []cluster.OfflineNode{}},
		Members:  members,
		Nodes: []api.NodeStatus{
			{Name: "db1", Role: "writer", Health: cluster.HealthOK, Streak: 40, Wsrep: wsrep(1042), LastReport: now, Priority: 10},
			{Name: "db2", Role: "reader", Health: cluster.HealthOK, Streak: 40, Wsrep: wsrep(1042), LastReport: now, Priority: 5},
			{Name: "db3", Role: "reader", Health: cluster.HealthOK, Streak: 40, Wsrep: wsrep(1041), LastReport: now, Priority: 5, Flags: []string{"no_writer"}},
		},
		Proxies: []api.ProxyStatus{
			{Name: "px1", Healthy: true, AppliedEpoch: epoch, LastReport: now},
			{Name: "px2", Healthy: true, AppliedEpoch: epoch, LastReport: now},
		},
		VIP:      api.VIPStatus{Address: "198.18.0.100", Owner: "px1", LeaseEpoch: 3, LeaseAge: 150 * time.Millisecond},
		Observed: true,
	}
}

// SetVIPLease sets the answer of RenewVIP (errors come from SetErr).
func (b *Backend) SetVIPLease(l api.VIPLease) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.vipLease = l
}

func (b *Backend) RenewVIP(ctx context.Context, node cluster.NodeName) (api.VIPLease, error) {
	if err := b.record("RenewVIP", node); err != nil {
		return api.VIPLease{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.vipLease, nil
}

// OnMoveVIP sets what MoveVIP does after SetErr's error, if any: f may
// change the fake's status (to play the move) and returns the answer. Nil
// (the default) answers a VIPMove to the target from the status's owner.
func (b *Backend) OnMoveVIP(f func(to cluster.NodeName) (api.VIPMove, error)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.onMove = f
}

// UpdateStatus changes the answer of Status in place, under the fake's lock.
func (b *Backend) UpdateStatus(f func(*api.Status)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f(&b.status)
}

func (b *Backend) MoveVIP(ctx context.Context, to cluster.NodeName) (api.VIPMove, error) {
	if err := b.record("MoveVIP", to); err != nil {
		return api.VIPMove{}, err
	}
	b.mu.Lock()
	f, from := b.onMove, b.status.VIP.Owner
	b.mu.Unlock()
	if f != nil {
		return f(to)
	}
	return api.VIPMove{To: to, From: from}, nil
}

// ReleaseVIP records an api.VIPReleaseRequest as the call's Arg.
func (b *Backend) ReleaseVIP(ctx context.Context, node cluster.NodeName, leaseEpoch uint64) error {
	return b.record("ReleaseVIP", api.VIPReleaseRequest{Node: node, LeaseEpoch: leaseEpoch})
}
