// Package controller is the leader-only loop: it feeds the agents' latest
// reports, the committed state, the policy and the time to the pure
// planner, and commits the planner's commands through the one raft write
// helper. Only changes are committed.
//
// Reports arrive on every agent's API, but only the leader keeps them: a
// follower's handler forwards them. When leadership starts, the controller
// starts with no reports, so nothing moves until agents report afresh (an
// agent that is silent is never enough to move the writer).
package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/planner"
)

// Raft is what the controller needs from the raft node. *raft.Node
// implements it.
type Raft interface {
	State() cluster.State
	Apply(ctx context.Context, c cluster.Command) error
	LeaderSince() time.Time
	IsLeader() bool
	TransferLeadership(ctx context.Context, to cluster.NodeName) error
}

// Config configures a controller.
type Config struct {
	Node     cluster.NodeName // this agent
	Policy   planner.Policy
	Interval time.Duration // planning interval; default 100 ms
	// ApplyTimeout bounds one raft write.
	ApplyTimeout time.Duration
	// KeepLeaderOffWriter moves raft leadership to another voter when this
	// leader runs on the writer's node (DESIGN §3: a dead writer node would
	// otherwise cost an election on the failover path).
	KeepLeaderOffWriter bool
	// VIPMoveTimeout bounds a planned VIP move (dbctl vip move): a move not
	// done by then is dropped with an event. Default DefaultVIPMoveTimeout.
	VIPMoveTimeout time.Duration
}

// DefaultVIPMoveTimeout is Config.VIPMoveTimeout when it is zero.
const DefaultVIPMoveTimeout = 10 * time.Second

// Deps are the controller's collaborators.
type Deps struct {
	Raft   Raft
	Logger *slog.Logger
	Now    func() time.Time
	// Voters lists the raft voters (for leader placement); may be nil.
	Voters func() []cluster.NodeName
}

// Controller runs the planning loop while this node leads.
type Controller struct {
	cfg  Config
	deps Deps

	// stepMu serializes Step: two concurrent plans of the same state
	// would both commit the next epoch, and the second would fail as
	// stale (the tests call Step while Run may step too).
	stepMu sync.Mutex

	mu          sync.Mutex
	leading     bool
	reports     map[cluster.NodeName]planner.Received
	vipRenewals map[cluster.NodeName]time.Time
	vipReleased map[cluster.NodeName]time.Time
	vipMove     *VIPMove
	lastWhy     []string
	lastMove    time.Time
	wake        chan struct{}
}

// New returns a controller.
func New(cfg Config, deps Deps) *Controller {
	if cfg.Interval <= 0 {
		cfg.Interval = 100 * time.Millisecond
	}
	if cfg.ApplyTimeout <= 0 {
		cfg.ApplyTimeout = 5 * time.Second
	}
	if cfg.VIPMoveTimeout <= 0 {
		cfg.VIPMoveTimeout = DefaultVIPMoveTimeout
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	return &Controller{
		cfg: cfg, deps: deps,
		reports:     map[cluster.NodeName]planner.Received{},
		vipRenewals: map[cluster.NodeName]time.Time{},
		vipReleased: map[cluster.NodeName]time.Time{},
		wake:        make(chan struct{}, 1),
	}
}

// ErrNotLeading is returned for leader-only calls while the loop is not
// running.
var ErrNotLeading = errors.New("controller not running: not the leader")

// Report stores an agent's latest report with the leader's receive time.
func (c *Controller) Report(r cluster.Report) error {
	if r.From == "" {
		return fmt.Errorf("report: empty sender")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.leading {
		return ErrNotLeading
	}
	prev, had := c.reports[r.From]
	c.reports[r.From] = planner.Received{Report: r, At: c.deps.Now()}
	// A change of health is worth planning at once.
	if !had || healthChanged(prev.Report, r) {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

func healthChanged(a, b cluster.Report) bool {
	switch {
	case a.DB != nil && b.DB != nil:
		return a.DB.Health != b.DB.Health || a.DB.Streak < b.DB.Streak && b.DB.Health != cluster.HealthOK
	case a.Proxy != nil && b.Proxy != nil:
		return a.Proxy.Healthy != b.Proxy.Healthy || a.Proxy.AppliedEpoch != b.Proxy.AppliedEpoch
	default:
		return true
	}
}

// RenewVIP answers a VIP lease renewal from node: granted only to the
// committed owner while it is fit. A granted renewal is recorded; the
// planner reassigns only after the last one plus the lease plus a margin.
func (c *Controller) RenewVIP(node cluster.NodeName) (bool, string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.leading {
		return false, "", ErrNotLeading
	}
	in := c.inputLocked()
	ok, why := planner.CanRenewVIP(in, node)
	if ok {
		c.vipRenewals[node] = in.Now
	}
	return ok, why, nil
}

// Snapshot returns the leader's latest reports and VIP renewals (for status).
type Snapshot struct {
	Leading     bool
	Reports     map[cluster.NodeName]planner.Received
	VIPRenewals map[cluster.NodeName]time.Time
	VIPReleased map[cluster.NodeName]time.Time
	VIPMove     *VIPMove // the planned VIP move in progress, if any
	Why         []string
}

// Snapshot returns a copy of what the leader currently knows.
func (c *Controller) Snapshot() Snapshot {
	c.mu.Lock()
	defer c.mu.Unlock()
	snap := Snapshot{Leading: c.leading, Reports: maps.Clone(c.reports), VIPRenewals: maps.Clone(c.vipRenewals),
		VIPReleased: maps.Clone(c.vipReleased), Why: slices.Clone(c.lastWhy)}
	if c.vipMove != nil {
		m := *c.vipMove
		snap.VIPMove = &m
	}
	return snap
}

func (c *Controller) inputLocked() planner.Input {
	return planner.Input{
		Now:         c.deps.Now(),
		State:       c.deps.Raft.State(),
		Reports:     maps.Clone(c.reports),
		VIPRenewals: maps.Clone(c.vipRenewals),
		VIPReleased: maps.Clone(c.vipReleased),
		VIPMoveTo:   c.moveToLocked(),
		LeaderSince: c.deps.Raft.LeaderSince(),
		Policy:      c.cfg.Policy,
	}
}

func (c *Controller) moveToLocked() cluster.NodeName {
	if c.vipMove == nil {
		return ""
	}
	return c.vipMove.To
}

// Run is the leader loop. raft.Node.Run calls it under a context that ends
// when leadership is lost; it returns only then.
func (c *Controller) Run(ctx context.Context) {
	c.mu.Lock()
	c.leading = true
	c.reports = map[cluster.NodeName]planner.Received{}
	c.vipRenewals = map[cluster.NodeName]time.Time{}
	c.vipReleased = map[cluster.NodeName]time.Time{}
	c.vipMove = nil
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.leading = false
		c.reports = map[cluster.NodeName]planner.Received{}
		c.vipRenewals = map[cluster.NodeName]time.Time{}
		c.vipReleased = map[cluster.NodeName]time.Time{}
		c.vipMove = nil
		c.mu.Unlock()
	}()
	log := c.deps.Logger.With("node", c.cfg.Node)
	log.Info("controller started: this agent leads")
	t := time.NewTicker(c.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			log.Info("controller stopped")
			return
		case <-t.C:
		case <-c.wake:
		}
		if err := c.Step(ctx); err != nil && ctx.Err() == nil {
			log.Warn("controller step failed", "err", err)
		}
	}
}

// Step runs the planner once and commits its commands in order. It stops at
// the first failed command: the next step plans again from the committed
// state.
func (c *Controller) Step(ctx context.Context) error {
	c.stepMu.Lock()
	defer c.stepMu.Unlock()
	if err := c.settleVIPMove(ctx); err != nil {
		return err
	}
	c.mu.Lock()
	in := c.inputLocked()
	c.mu.Unlock()
	d := planner.Plan(in)
	c.mu.Lock()
	c.lastWhy = d.Why
	c.mu.Unlock()
	for _, cmd := range d.Commands {
		actx, cancel := context.WithTimeout(ctx, c.cfg.ApplyTimeout)
		err := c.deps.Raft.Apply(actx, cmd)
		cancel()
		if err != nil {
			return fmt.Errorf("commit %T: %w", cmd, err)
		}
		if v, ok := cmd.(cluster.SetVIPOwner); ok && v.VIP.Owner != "" {
			// A release the new owner confirmed earlier is history now:
			// it must not count against the lease it is about to take.
			// Likewise a renewal from an earlier term of ownership: the
			// planner must not read it as "stopped renewing".
			c.mu.Lock()
			delete(c.vipReleased, v.VIP.Owner)
			delete(c.vipRenewals, v.VIP.Owner)
			c.mu.Unlock()
		}
		c.logCommitted(cmd, d.Why)
	}
	if c.cfg.KeepLeaderOffWriter {
		c.placeLeader(ctx, in.State)
	}
	return nil
}

func (c *Controller) logCommitted(cmd cluster.Command, why []string) {
	log := c.deps.Logger.With("node", c.cfg.Node)
	switch v := cmd.(type) {
	case *cluster.SetTopology:
		log.Info("committed topology", "epoch", v.Topology.Epoch, "writer", v.Topology.Writer,
			"readers", v.Topology.Readers, "offline", v.Topology.Offline, "why", why)
	case cluster.SetTopology:
		log.Info("committed topology", "epoch", v.Topology.Epoch, "writer", v.Topology.Writer,
			"readers", v.Topology.Readers, "offline", v.Topology.Offline, "why", why)
	case *cluster.SetVIPOwner:
		log.Info("committed vip owner", "owner", v.VIP.Owner, "lease_epoch", v.VIP.LeaseEpoch)
	case cluster.SetVIPOwner:
		log.Info("committed vip owner", "owner", v.VIP.Owner, "lease_epoch", v.VIP.LeaseEpoch)
	default:
		log.Info("committed command", "type", fmt.Sprintf("%T", cmd))
	}
}

// placeLeader hands raft leadership to another voter when this leader
// runs on the writer's or the VIP owner's node (planner.PlaceLeader
// decides). It tries at most once every 5 s.
func (c *Controller) placeLeader(ctx context.Context, st cluster.State) {
	if c.deps.Voters == nil {
		return
	}
	now := c.deps.Now()
	c.mu.Lock()
	if now.Sub(c.lastMove) < 5*time.Second {
		c.mu.Unlock()
		return
	}
	var fresh []cluster.NodeName
	for _, v := range c.deps.Voters() {
		if r, ok := c.reports[v]; ok && now.Sub(r.At) < c.cfg.Policy.AgentTimeout {
			fresh = append(fresh, v)
		}
	}
	to, move := planner.PlaceLeader(st, c.cfg.Node, fresh)
	if move {
		c.lastMove = now
	}
	c.mu.Unlock()
	if !move {
		return
	}
	c.deps.Logger.Info("moving raft leadership off the writer's or VIP owner's node", "node", c.cfg.Node, "to", to)
	tctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := c.deps.Raft.TransferLeadership(tctx, to); err != nil {
		c.deps.Logger.Warn("leadership transfer failed", "node", c.cfg.Node, "to", to, "err", err)
	}
}
