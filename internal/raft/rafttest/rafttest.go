// Package rafttest starts in-process raft clusters over loopback TCP for
// tests: N nodes with a static peer list, each on 127.0.0.1 with a port the
// kernel picked, data dirs under t.TempDir(), and everything shut down by
// t.Cleanup.
package rafttest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/raft"
)

// Options tune a test cluster. The zero value is fine.
type Options struct {
	// Configure, when set, adjusts each node's config before start (for
	// example low snapshot thresholds). It also runs on Restart and Join.
	Configure func(c *raft.Config)
	// TLS, when set, returns the TLS config for a node (mutual TLS tests).
	TLS func(name cluster.NodeName) *tls.Config
	// LogLevel is the minimum level written to t.Log; default Warn.
	LogLevel slog.Level
	// NamePrefix names nodes NamePrefix1..N; default "n".
	NamePrefix string
}

// Member is one node slot of the cluster. Node is nil while it is down.
type Member struct {
	Name cluster.NodeName
	Addr string // 127.0.0.1:port, stable across restarts
	Dir  string // data dir, stable across restarts
	Node *raft.Node

	runCancel context.CancelFunc
	runDone   chan struct{}
}

// Cluster is a set of raft nodes in this process.
type Cluster struct {
	t    testing.TB
	opts Options
	log  *slog.Logger
	tw   *tbWriter

	mu      sync.Mutex
	members []*Member
	peers   []raft.Peer
}

// New starts n nodes that bootstrap together from a static peer list and
// registers their shutdown with t.Cleanup. It does not wait for a leader.
func New(t testing.TB, n int, opts Options) *Cluster {
	t.Helper()
	if opts.NamePrefix == "" {
		opts.NamePrefix = "n"
	}
	if opts.LogLevel == 0 {
		opts.LogLevel = slog.LevelWarn
	}
	tw := &tbWriter{t: t}
	c := &Cluster{
		t:    t,
		opts: opts,
		tw:   tw,
		log:  slog.New(slog.NewTextHandler(tw, &slog.HandlerOptions{Level: opts.LogLevel})),
	}
	t.Cleanup(c.shutdownAll)

	listeners := make([]net.Listener, n)
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			for _, l := range listeners[:i] {
				_ = l.Close()
			}
			t.Fatalf("rafttest: listen: %v", err)
		}
		listeners[i] = ln
		name := cluster.NodeName(fmt.Sprintf("%s%d", opts.NamePrefix, i+1))
		c.members = append(c.members, &Member{Name: name, Addr: ln.Addr().String(), Dir: t.TempDir()})
		c.peers = append(c.peers, raft.Peer{Name: name, RaftAddr: ln.Addr().String()})
	}
	for i, m := range c.members {
		if err := c.start(m, c.peers, listeners[i]); err != nil {
			for _, l := range listeners[i+1:] {
				_ = l.Close()
			}
			t.Fatalf("rafttest: start %s: %v", m.Name, err)
		}
	}
	return c
}

// Peers returns the static peer list the cluster was bootstrapped with.
func (c *Cluster) Peers() []raft.Peer { return append([]raft.Peer(nil), c.peers...) }

// Logger returns the logger the nodes write to (t.Log at Options.LogLevel).
func (c *Cluster) Logger() *slog.Logger { return c.log }

func (c *Cluster) config(m *Member, peers []raft.Peer) raft.Config {
	cfg := raft.Config{
		NodeName:      m.Name,
		BindAddr:      m.Addr,
		AdvertiseAddr: m.Addr,
		DataDir:       m.Dir,
		Peers:         peers,
	}
	if c.opts.Configure != nil {
		c.opts.Configure(&cfg)
	}
	return cfg
}

func (c *Cluster) start(m *Member, peers []raft.Peer, ln net.Listener) error {
	deps := raft.Deps{Logger: c.log, Listener: ln}
	if c.opts.TLS != nil {
		deps.TLS = c.opts.TLS(m.Name)
	}
	node, err := raft.New(c.config(m, peers), deps)
	if err != nil {
		return err
	}
	c.mu.Lock()
	m.Node = node
	c.mu.Unlock()
	return nil
}

// Len is the number of node slots, up or down.
func (c *Cluster) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.members)
}

// Member returns slot i.
func (c *Cluster) Member(i int) *Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.members[i]
}

// Node returns node i, or nil while it is down.
func (c *Cluster) Node(i int) *raft.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.members[i].Node
}

// Live returns the indexes of the nodes that are up.
func (c *Cluster) Live() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int
	for i, m := range c.members {
		if m.Node != nil {
			out = append(out, i)
		}
	}
	return out
}

// Index returns the slot of the named node, or -1.
func (c *Cluster) Index(name cluster.NodeName) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, m := range c.members {
		if m.Name == name {
			return i
		}
	}
	return -1
}

// WaitLeader waits until exactly one live node is leader and every live
// voter names it as leader, and returns its index.
func (c *Cluster) WaitLeader(timeout time.Duration) int {
	c.t.Helper()
	leader := -1
	Eventually(c.t, timeout, func() error {
		leader = -1
		var leaders []cluster.NodeName
		for _, i := range c.Live() {
			if c.Node(i).IsLeader() {
				leaders = append(leaders, c.Member(i).Name)
				leader = i
			}
		}
		if len(leaders) != 1 {
			return fmt.Errorf("leaders: %v", leaders)
		}
		want := c.Member(leader).Name
		for _, i := range c.Live() {
			if got, _ := c.Node(i).Leader(); got != want {
				return fmt.Errorf("%s sees leader %q, want %s", c.Member(i).Name, got, want)
			}
		}
		return nil
	})
	return leader
}

// RunLeaderLoop starts node i's Run(ctx, fn) in a goroutine owned by the
// cluster; Kill and cleanup stop it and wait for it.
func (c *Cluster) RunLeaderLoop(i int, fn func(ctx context.Context)) {
	c.t.Helper()
	m := c.Member(i)
	if m.Node == nil {
		c.t.Fatalf("rafttest: RunLeaderLoop on %s: node is down", m.Name)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	node := m.Node
	go func() {
		defer close(done)
		if err := node.Run(ctx, fn); err != nil && !errors.Is(err, raft.ErrShutdown) {
			c.log.Error("rafttest: Run returned", "node", string(m.Name), "err", err)
		}
	}()
	c.mu.Lock()
	m.runCancel, m.runDone = cancel, done
	c.mu.Unlock()
}

// Kill shuts node i down (stopping its Run first). Its data dir and address
// are kept for Restart.
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	if err := c.stop(c.Member(i)); err != nil {
		c.t.Errorf("rafttest: kill %s: %v", c.Member(i).Name, err)
	}
}

func (c *Cluster) stop(m *Member) error {
	c.mu.Lock()
	node, cancel, done := m.Node, m.runCancel, m.runDone
	m.Node, m.runCancel, m.runDone = nil, nil, nil
	c.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	if node == nil {
		return nil
	}
	return node.Shutdown()
}

// Restart starts node i again on its data dir and address. It bootstraps
// nothing new: the node recovers from its own log and snapshots.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	m := c.Member(i)
	if m.Node != nil {
		c.t.Fatalf("rafttest: restart %s: still running", m.Name)
	}
	var ln net.Listener
	// The old listener is closed, but the port may take a moment to free.
	Eventually(c.t, 5*time.Second, func() error {
		var err error
		ln, err = net.Listen("tcp", m.Addr)
		return err
	})
	if err := c.start(m, c.peers, ln); err != nil {
		c.t.Fatalf("rafttest: restart %s: %v", m.Name, err)
	}
}

// Join starts a new node with no peer list (the join path) and returns its
// slot. The caller adds it to the group with the leader's AddMember.
func (c *Cluster) Join(name cluster.NodeName) int {
	c.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatalf("rafttest: listen: %v", err)
	}
	m := &Member{Name: name, Addr: ln.Addr().String(), Dir: c.t.TempDir()}
	c.mu.Lock()
	c.members = append(c.members, m)
	i := len(c.members) - 1
	c.mu.Unlock()
	if err := c.start(m, nil, ln); err != nil {
		c.t.Fatalf("rafttest: start joiner %s: %v", name, err)
	}
	return i
}

// errNoLeader: no live node currently leads.
var errNoLeader = errors.New("no leader")

// Apply applies cmd through the current leader, retrying while there is no
// leader or leadership moves, until timeout. Other errors (such as the
// FSM rejecting the command) are returned at once.
func (c *Cluster) Apply(timeout time.Duration, cmd cluster.Command) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := errNoLeader
		for _, i := range c.Live() {
			if n := c.Node(i); n != nil && n.IsLeader() {
				err = n.Apply(ctx, cmd)
				break
			}
		}
		retry := errors.Is(err, errNoLeader) || errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost)
		if !retry {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("rafttest apply: %w", err)
		case <-tick.C:
		}
	}
}

// WaitState waits until cond holds for the state of every live node.
func (c *Cluster) WaitState(timeout time.Duration, cond func(cluster.State) error) {
	c.t.Helper()
	Eventually(c.t, timeout, func() error {
		for _, i := range c.Live() {
			if err := cond(c.Node(i).State()); err != nil {
				return fmt.Errorf("%s: %w", c.Member(i).Name, err)
			}
		}
		return nil
	})
}

// shutdownAll stops every node, in parallel, then silences logging.
func (c *Cluster) shutdownAll() {
	c.mu.Lock()
	ms := append([]*Member(nil), c.members...)
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, m := range ms {
		wg.Go(func() {
			if err := c.stop(m); err != nil {
				c.t.Errorf("rafttest: shutdown %s: %v", m.Name, err)
			}
		})
	}
	wg.Wait()
	c.tw.close()
}

// Eventually polls cond every 10 ms until it returns nil, failing the test
// with cond's last error after timeout.
func Eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("rafttest: condition not met after %s: %v", timeout, err)
		}
		<-tick.C
	}
}

// tbWriter sends log output to t.Log until the cluster is cleaned up; raft
// goroutines that log after that are silenced rather than panicking.
type tbWriter struct {
	mu     sync.Mutex
	t      testing.TB
	closed bool
}

var _ io.Writer = (*tbWriter)(nil)

func (w *tbWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *tbWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
}
