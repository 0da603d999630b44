package raft

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	hraft "github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/dbha/dbha/internal/cluster"
)

// Sentinel errors. Errors from Node wrap them (with the operation and the
// node); test with errors.Is, or errors.As for *NotLeaderError.
var (
	// ErrNotLeader: the operation must run on the leader. The error is a
	// *NotLeaderError carrying the leader as this node knows it.
	ErrNotLeader = errors.New("not the raft leader")
	// ErrLeadershipLost: leadership was lost while a write was in flight.
	// The write may or may not have been committed.
	ErrLeadershipLost = errors.New("raft leadership lost, outcome unknown")
	// ErrShutdown: the node has been shut down.
	ErrShutdown = errors.New("raft node shut down")
	// ErrUnknownServer: the named server is not in the raft configuration.
	ErrUnknownServer = errors.New("unknown raft server")
	// ErrRunActive: Run is already running on this node.
	ErrRunActive = errors.New("raft leadership watcher already running")
)

// NotLeaderError is returned when an operation needs the leader. Leader and
// LeaderAddr are empty when no leader is known.
type NotLeaderError struct {
	Leader     cluster.NodeName
	LeaderAddr string
	err        error // the underlying hashicorp error, if any
}

func (e *NotLeaderError) Error() string {
	if e.Leader == "" {
		return "not the raft leader (no leader known)"
	}
	return fmt.Sprintf("not the raft leader (leader is %s at %s)", e.Leader, e.LeaderAddr)
}

// Is makes errors.Is(err, ErrNotLeader) true.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

func (e *NotLeaderError) Unwrap() error { return e.err }

// Suffrage values reported by Configuration.
const (
	SuffrageVoter    = "voter"
	SuffrageNonvoter = "nonvoter"
	SuffrageStaging  = "staging"
)

// Server is one entry of the raft configuration.
type Server struct {
	Name     cluster.NodeName `json:"name"`
	RaftAddr string           `json:"raft_addr"`
	Suffrage string           `json:"suffrage"`
	Leader   bool             `json:"leader"`
}

// Status is a point-in-time view of the node for status output and metrics.
type Status struct {
	Name         cluster.NodeName `json:"name"`
	State        string           `json:"state"` // Follower, Candidate, Leader, Shutdown
	Term         uint64           `json:"term"`
	LastIndex    uint64           `json:"last_index"`
	CommitIndex  uint64           `json:"commit_index"`
	AppliedIndex uint64           `json:"applied_index"`
	Leader       cluster.NodeName `json:"leader,omitempty"`
	LeaderAddr   string           `json:"leader_addr,omitempty"`
	LeaderSince  time.Time        `json:"leader_since,omitzero"` // set only on the leader, while Run runs
	LastContact  time.Time        `json:"last_contact,omitzero"` // last contact with the leader (followers)
	Servers      []Server         `json:"servers"`
}

// defaultEnqueueTimeout bounds how long a write waits to enter raft's queue
// when the context has no deadline.
const defaultEnqueueTimeout = 5 * time.Second

// waiterDrainTimeout bounds how long Shutdown waits for goroutines blocked
// on raft futures (raft resolves them on shutdown).
const waiterDrainTimeout = 2 * time.Second

// Node is one raft server with the dbha FSM. It is the only code that
// touches *hraft.Raft.
type Node struct {
	cfg   Config
	addr  string // advertised raft address
	log   *slog.Logger
	fsm   *FSM
	raft  *hraft.Raft
	trans *hraft.NetworkTransport
	store *raftboltdb.BoltStore

	mu          sync.Mutex
	closed      bool
	leaderSince time.Time
	running     bool

	shutdownCh   chan struct{}
	shutdownOnce sync.Once
	shutdownErr  error
	runWG        sync.WaitGroup // Run calls in progress
	waiters      sync.WaitGroup // goroutines blocked on raft futures
}

// New opens the raft storage under cfg.DataDir, starts the transport and the
// raft server, and bootstraps from cfg.Peers when the data dir is new.
func New(cfg Config, deps Deps) (n *Node, err error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		if deps.Listener != nil {
			_ = deps.Listener.Close()
		}
		return nil, err
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("node", string(cfg.NodeName))
	op := fmt.Sprintf("raft start %s", cfg.NodeName)

	// Undo whatever was opened if a later step fails.
	var closers []func() error
	defer func() {
		if err != nil {
			for _, c := range slices.Backward(closers) {
				_ = c()
			}
		}
	}()

	ln := deps.Listener
	if ln == nil {
		if cfg.BindAddr == "" {
			return nil, fmt.Errorf("%s: %w: no bind address and no listener", op, ErrInvalidConfig)
		}
		if ln, err = net.Listen("tcp", cfg.BindAddr); err != nil {
			return nil, fmt.Errorf("%s: listen: %w", op, err)
		}
	}
	closers = append(closers, ln.Close)
	advertise := cfg.AdvertiseAddr
	if advertise == "" {
		advertise = ln.Addr().String()
		if err := advertisable(advertise); err != nil {
			return nil, fmt.Errorf("%s: %w: bound address %s: %v (set an advertise address)", op, ErrInvalidConfig, advertise, err)
		}
	}
	advAddr, err := net.ResolveTCPAddr("tcp", advertise)
	if err != nil {
		return nil, fmt.Errorf("%s: resolve advertise address %s: %w", op, advertise, err)
	}
	for _, p := range cfg.Peers {
		if p.Name == cfg.NodeName && p.RaftAddr != advertise {
			return nil, fmt.Errorf("%s: %w: peer list gives this node %s, but it advertises %s", op, ErrInvalidConfig, p.RaftAddr, advertise)
		}
	}

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	store, err := raftboltdb.New(raftboltdb.Options{
		Path: filepath.Join(cfg.DataDir, "raft.db"),
		// Fail instead of hanging when another process holds the file.
		BoltOptions: &bbolt.Options{Timeout: time.Second},
	})
	if err != nil {
		return nil, fmt.Errorf("%s: open raft.db in %s: %w", op, cfg.DataDir, err)
	}
	closers = append(closers, store.Close)

	hlog := newHCLogger(logger, "raft", hclog.Info)
	snaps, err := hraft.NewFileSnapshotStoreWithLogger(cfg.DataDir, cfg.SnapshotRetain, hlog.Named("snapshot"))
	if err != nil {
		return nil, fmt.Errorf("%s: snapshot store in %s: %w", op, cfg.DataDir, err)
	}

	trans := hraft.NewNetworkTransportWithConfig(&hraft.NetworkTransportConfig{
		Logger:  hlog.Named("net"),
		Stream:  newStreamLayer(ln, advAddr, deps.TLS),
		MaxPool: 3,
		Timeout: 10 * time.Second,
	})
	// The transport now owns the listener.
	closers[0] = trans.Close

	rc := hraft.DefaultConfig()
	rc.LocalID = hraft.ServerID(cfg.NodeName)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	rc.Logger = hlog
	rc.NoLegacyTelemetry = true
	if err := hraft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", op, ErrInvalidConfig, err)
	}

	hasState, err := hraft.HasExistingState(store, store, snaps)
	if err != nil {
		return nil, fmt.Errorf("%s: inspect existing state: %w", op, err)
	}

	fsm := NewFSM()
	r, err := hraft.NewRaft(rc, fsm, store, store, snaps, trans)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	closers = append(closers, func() error { return r.Shutdown().Error() })

	if !hasState && len(cfg.Peers) > 0 {
		conf := bootstrapConfiguration(cfg.Peers, cfg.MaxVoters)
		if err := r.BootstrapCluster(conf).Error(); err != nil && !errors.Is(err, hraft.ErrCantBootstrap) {
			return nil, fmt.Errorf("%s: bootstrap: %w", op, err)
		}
		logger.Info("raft bootstrapped", "peers", len(cfg.Peers))
	}

	n = &Node{
		cfg:        cfg,
		addr:       advertise,
		log:        logger,
		fsm:        fsm,
		raft:       r,
		trans:      trans,
		store:      store,
		shutdownCh: make(chan struct{}),
	}
	logger.Info("raft started", "raft_addr", advertise, "existing_state", hasState)
	return n, nil
}

// bootstrapConfiguration sorts peers by name and makes the first maxVoters
// voters, so every node derives the same configuration from the same list.
func bootstrapConfiguration(peers []Peer, maxVoters int) hraft.Configuration {
	ps := slices.Clone(peers)
	slices.SortFunc(ps, func(a, b Peer) int { return cmpName(a.Name, b.Name) })
	var conf hraft.Configuration
	for i, p := range ps {
		s := hraft.Voter
		if i >= maxVoters {
			s = hraft.Nonvoter
		}
		conf.Servers = append(conf.Servers, hraft.Server{Suffrage: s, ID: hraft.ServerID(p.Name), Address: hraft.ServerAddress(p.RaftAddr)})
	}
	return conf
}

func cmpName(a, b cluster.NodeName) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Name is this node's raft server ID.
func (n *Node) Name() cluster.NodeName { return n.cfg.NodeName }

// RaftAddr is the address other nodes dial to reach this node.
func (n *Node) RaftAddr() string { return n.addr }

// State returns a deep copy of the committed state as applied locally.
func (n *Node) State() cluster.State { return n.fsm.State() }

// Changed returns a channel closed at the next local state change.
func (n *Node) Changed() <-chan struct{} { return n.fsm.Changed() }

// Watch returns the state and a channel closed at the next change after it.
func (n *Node) Watch() (cluster.State, <-chan struct{}) { return n.fsm.Watch() }

// Apply commits one command through raft and returns once it has been
// applied on this (leader) node. It fails with ErrNotLeader (a
// *NotLeaderError) on a follower, with ErrLeadershipLost when the outcome is
// unknown, and with the FSM's error (for example cluster.ErrStaleEpoch) when
// the command was committed but rejected, which changes nothing. ctx bounds
// both the wait to enter raft's queue and the wait for the result; when ctx
// ends first the command may still commit.
func (n *Node) Apply(ctx context.Context, c cluster.Command) error {
	if c == nil {
		return fmt.Errorf("raft apply on %s: nil command: %w", n.cfg.NodeName, cluster.ErrInvalidCommand)
	}
	op := fmt.Sprintf("raft apply command type %d on %s", c.Type(), n.cfg.NodeName)
	b, err := cluster.Encode(c)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	f := n.raft.Apply(b, enqueueTimeout(ctx))
	if err := n.wait(ctx, f); err != nil {
		return fmt.Errorf("%s: %w", op, n.mapErr(err))
	}
	if resp, ok := f.Response().(error); ok && resp != nil {
		return fmt.Errorf("%s: %w", op, resp)
	}
	return nil
}

func enqueueTimeout(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), time.Millisecond)
	}
	return defaultEnqueueTimeout
}

// wait blocks until f resolves or ctx ends. hashicorp futures cannot be
// cancelled, so the blocking call runs in a goroutine owned by the node
// (tracked in n.waiters); raft resolves every future on commit, on
// leadership loss or on shutdown.
func (n *Node) wait(ctx context.Context, f hraft.Future) error {
	done := make(chan error, 1)
	n.waiters.Add(1)
	go func() {
		defer n.waiters.Done()
		done <- f.Error()
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// mapErr turns hashicorp's errors into this package's sentinels, keeping the
// original in the chain.
func (n *Node) mapErr(err error) error {
	switch {
	case errors.Is(err, hraft.ErrNotLeader), errors.Is(err, hraft.ErrLeadershipTransferInProgress):
		addr, id := n.raft.LeaderWithID()
		return &NotLeaderError{Leader: cluster.NodeName(id), LeaderAddr: string(addr), err: err}
	case errors.Is(err, hraft.ErrLeadershipLost):
		return fmt.Errorf("%w: %w", ErrLeadershipLost, err)
	case errors.Is(err, hraft.ErrRaftShutdown):
		return fmt.Errorf("%w: %w", ErrShutdown, err)
	}
	return err
}

func (n *Node) notLeader() error {
	addr, id := n.raft.LeaderWithID()
	return &NotLeaderError{Leader: cluster.NodeName(id), LeaderAddr: string(addr)}
}

// IsLeader reports whether this node is the raft leader right now.
func (n *Node) IsLeader() bool { return n.raft.State() == hraft.Leader }

// Leader returns the current leader's name and raft address as this node
// knows them; both are empty when no leader is known.
func (n *Node) Leader() (cluster.NodeName, string) {
	addr, id := n.raft.LeaderWithID()
	return cluster.NodeName(id), string(addr)
}

// LeaderSince is when this node last became leader, as seen by Run. It is
// zero when the node is not leading or Run is not running.
func (n *Node) LeaderSince() time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.leaderSince
}

// Configuration returns the latest raft configuration, sorted by name.
func (n *Node) Configuration() ([]Server, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("raft configuration on %s: %w", n.cfg.NodeName, n.mapErr(err))
	}
	_, leader := n.raft.LeaderWithID()
	var out []Server
	for _, s := range f.Configuration().Servers {
		out = append(out, Server{
			Name:     cluster.NodeName(s.ID),
			RaftAddr: string(s.Address),
			Suffrage: suffrage(s.Suffrage),
			Leader:   s.ID == leader && leader != "",
		})
	}
	slices.SortFunc(out, func(a, b Server) int { return cmpName(a.Name, b.Name) })
	return out, nil
}

func suffrage(s hraft.ServerSuffrage) string {
	switch s {
	case hraft.Voter:
		return SuffrageVoter
	case hraft.Nonvoter:
		return SuffrageNonvoter
	default:
		return SuffrageStaging
	}
}

// Status returns a point-in-time summary of this node.
func (n *Node) Status() Status {
	leader, leaderAddr := n.Leader()
	servers, _ := n.Configuration() // cannot fail: hashicorp answers from memory
	return Status{
		Name:         n.cfg.NodeName,
		State:        n.raft.State().String(),
		Term:         n.raft.CurrentTerm(),
		LastIndex:    n.raft.LastIndex(),
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.raft.AppliedIndex(),
		Leader:       leader,
		LeaderAddr:   leaderAddr,
		LeaderSince:  n.LeaderSince(),
		LastContact:  n.raft.LastContact(),
		Servers:      servers,
	}
}

// Stats returns hashicorp/raft's own stats map, for debugging output.
func (n *Node) Stats() map[string]string { return n.raft.Stats() }

// AddMember adds a server to the raft group, on the leader. The first
// MaxVoters servers are voters, later ones non-voters. It is idempotent: a
// server already present at the same address is left alone, unless it is a
// non-voter and a voter slot is free, in which case it is promoted.
func (n *Node) AddMember(ctx context.Context, name cluster.NodeName, raftAddr string) error {
	op := fmt.Sprintf("raft add member %s at %s on %s", name, raftAddr, n.cfg.NodeName)
	if name == "" {
		return fmt.Errorf("%s: %w: empty name", op, ErrInvalidConfig)
	}
	if err := advertisable(raftAddr); err != nil {
		return fmt.Errorf("%s: %w: %v", op, ErrInvalidConfig, err)
	}
	if !n.IsLeader() {
		return fmt.Errorf("%s: %w", op, n.notLeader())
	}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return fmt.Errorf("%s: %w", op, n.mapErr(err))
	}
	voters := 0
	var existing *hraft.Server
	for _, s := range cf.Configuration().Servers {
		if s.ID == hraft.ServerID(name) {
			existing = &s
			continue
		}
		if s.Suffrage == hraft.Voter {
			voters++
		}
	}
	asVoter := voters < n.cfg.MaxVoters
	if existing != nil && string(existing.Address) == raftAddr && (existing.Suffrage == hraft.Voter || !asVoter) {
		return nil
	}
	var f hraft.IndexFuture
	if asVoter {
		f = n.raft.AddVoter(hraft.ServerID(name), hraft.ServerAddress(raftAddr), cf.Index(), enqueueTimeout(ctx))
	} else {
		f = n.raft.AddNonvoter(hraft.ServerID(name), hraft.ServerAddress(raftAddr), cf.Index(), enqueueTimeout(ctx))
	}
	if err := n.wait(ctx, f); err != nil {
		return fmt.Errorf("%s: %w", op, n.mapErr(err))
	}
	n.log.Info("raft member added", "member", string(name), "raft_addr", raftAddr, "voter", asVoter)
	return nil
}

// RemoveMember removes a server from the raft group, on the leader.
// Removing a server that is not there is not an error.
func (n *Node) RemoveMember(ctx context.Context, name cluster.NodeName) error {
	op := fmt.Sprintf("raft remove member %s on %s", name, n.cfg.NodeName)
	if !n.IsLeader() {
		return fmt.Errorf("%s: %w", op, n.notLeader())
	}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return fmt.Errorf("%s: %w", op, n.mapErr(err))
	}
	if !slices.ContainsFunc(cf.Configuration().Servers, func(s hraft.Server) bool { return s.ID == hraft.ServerID(name) }) {
		return nil
	}
	f := n.raft.RemoveServer(hraft.ServerID(name), cf.Index(), enqueueTimeout(ctx))
	if err := n.wait(ctx, f); err != nil {
		return fmt.Errorf("%s: %w", op, n.mapErr(err))
	}
	n.log.Info("raft member removed", "member", string(name))
	return nil
}

// TransferLeadership hands leadership to the named voter (DESIGN §3: keep
// the leader off the writer's node), or to any up-to-date voter when to is
// empty. It returns once the transfer has finished or failed.
func (n *Node) TransferLeadership(ctx context.Context, to cluster.NodeName) error {
	op := fmt.Sprintf("raft transfer leadership from %s to %q", n.cfg.NodeName, to)
	if !n.IsLeader() {
		return fmt.Errorf("%s: %w", op, n.notLeader())
	}
	var f hraft.Future
	if to == "" {
		f = n.raft.LeadershipTransfer()
	} else {
		servers, err := n.Configuration()
		if err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		i := slices.IndexFunc(servers, func(s Server) bool { return s.Name == to })
		if i < 0 {
			return fmt.Errorf("%s: %w", op, ErrUnknownServer)
		}
		if servers[i].Suffrage != SuffrageVoter {
			return fmt.Errorf("%s: %s is a %s: %w", op, to, servers[i].Suffrage, ErrUnknownServer)
		}
		f = n.raft.LeadershipTransferToServer(hraft.ServerID(to), hraft.ServerAddress(servers[i].RaftAddr))
	}
	if err := n.wait(ctx, f); err != nil {
		return fmt.Errorf("%s: %w", op, n.mapErr(err))
	}
	return nil
}

// Snapshot forces a raft snapshot now (normally raft takes them itself after
// SnapshotThreshold entries). Having nothing new to snapshot is not an error.
func (n *Node) Snapshot(ctx context.Context) error {
	err := n.wait(ctx, n.raft.Snapshot())
	if err != nil && !errors.Is(err, hraft.ErrNothingNewToSnapshot) {
		return fmt.Errorf("raft snapshot on %s: %w", n.cfg.NodeName, n.mapErr(err))
	}
	return nil
}

// Shutdown stops the node: it stops a running Run (waiting for the leader
// function to return), shuts raft and its transport down, and closes the
// log store. It is safe to call more than once; later calls return the
// first result.
func (n *Node) Shutdown() error {
	n.shutdownOnce.Do(func() {
		n.mu.Lock()
		n.closed = true
		close(n.shutdownCh)
		n.mu.Unlock()
		n.runWG.Wait()

		var errs []error
		if err := n.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("raft shutdown: %w", err))
		}
		// raft closed the transport (listener and accepted connections);
		// also drop the pooled outbound connections.
		_ = n.trans.Close()
		n.trans.CloseStreams()
		if err := n.store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft.db: %w", err))
		}
		drained := make(chan struct{})
		go func() {
			n.waiters.Wait()
			close(drained)
		}()
		select {
		case <-drained:
		case <-time.After(waiterDrainTimeout):
			// hashicorp/raft can drop a future that was queued for the
			// FSM when shutdown raced with it; its waiter goroutine then
			// never ends. Do not hang shutdown on it.
			n.log.Warn("raft shutdown: a write is still waiting on raft")
		}
		if len(errs) > 0 {
			n.shutdownErr = fmt.Errorf("raft shutdown %s: %w", n.cfg.NodeName, errors.Join(errs...))
		}
		n.log.Info("raft stopped")
	})
	return n.shutdownErr
}

// Close is Shutdown, for io.Closer.
func (n *Node) Close() error { return n.Shutdown() }

// streamLayer is raft's TCP stream layer with optional TLS on both sides.
// It tracks accepted connections and closes them on Close: hashicorp's
// NetworkTransport leaves inbound connection handlers blocked on reads
// otherwise, and a shut-down node would keep goroutines and sockets alive.
type streamLayer struct {
	ln        net.Listener
	advertise net.Addr
	tls       *tls.Config

	mu     sync.Mutex
	closed bool
	conns  map[*trackedConn]struct{}
}

func newStreamLayer(ln net.Listener, advertise net.Addr, tc *tls.Config) *streamLayer {
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	return &streamLayer{ln: ln, advertise: advertise, tls: tc, conns: map[*trackedConn]struct{}{}}
}

func (s *streamLayer) Accept() (net.Conn, error) {
	c, err := s.ln.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, s: s}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	s.conns[tc] = struct{}{}
	return tc, nil
}

// Close closes the listener and every accepted connection.
func (s *streamLayer) Close() error {
	s.mu.Lock()
	s.closed = true
	conns := s.conns
	s.conns = map[*trackedConn]struct{}{}
	s.mu.Unlock()
	err := s.ln.Close()
	for c := range conns {
		_ = c.Conn.Close()
	}
	return err
}

// Addr is the advertised address, which raft sends to its peers.
func (s *streamLayer) Addr() net.Addr { return s.advertise }

func (s *streamLayer) Dial(addr hraft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	if s.tls != nil {
		return (&tls.Dialer{NetDialer: d, Config: s.tls}).Dial("tcp", string(addr))
	}
	return d.Dial("tcp", string(addr))
}

type trackedConn struct {
	net.Conn
	s *streamLayer
}

func (c *trackedConn) Close() error {
	c.s.mu.Lock()
	delete(c.s.conns, c)
	c.s.mu.Unlock()
	return c.Conn.Close()
}
