package controller

import (
	"context"
	"errors"
	"fmt"

	"time"

	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/planner"
)

// VIPMove is a planned VIP move in progress (dbctl vip move). The leader
// keeps it in memory only: a new leader starts without one, and the
// operator asks again.
type VIPMove struct {
	To    cluster.NodeName
	From  cluster.NodeName // the owner when the move was asked for
	Since time.Time
}

// Sentinel errors of MoveVIP. The agent maps them to API codes.
var (
	// ErrVIPMoveRefused: the target is not a proxy member, not eligible, or
	// owns the VIP already.
	ErrVIPMoveRefused = errors.New("vip move refused")
	// ErrVIPMoveUnknownTarget: the target is not a member at all.
	ErrVIPMoveUnknownTarget = errors.New("vip move target is not a member")
	// ErrVIPReleaseStale: a release confirmation for a lease epoch that is
	// not the committed one.
	ErrVIPReleaseStale = errors.New("stale vip release")
)

// MoveVIP starts a planned move of the VIP to node `to`: the planner
// releases the current owner first and gives the VIP to `to` once the old
// owner's lease is over (planner.Input.VIPMoveTo). It replaces a move in
// progress. The move ends when `to` owns the VIP, when `to` is no longer
// fit (with an event), or after Config.VIPMoveTimeout (with an event).
func (c *Controller) MoveVIP(to cluster.NodeName) (VIPMove, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.leading {
		return VIPMove{}, ErrNotLeading
	}
	in := c.inputLocked()
	m, ok := in.State.Members[to]
	switch {
	case !ok:
		return VIPMove{}, fmt.Errorf("vip move to %s: %w", to, ErrVIPMoveUnknownTarget)
	case !m.Has(cluster.RoleProxy):
		return VIPMove{}, fmt.Errorf("vip move to %s: %w: %s is not a proxy member (roles %v)", to, ErrVIPMoveRefused, to, m.Roles)
	case in.State.VIP.Owner == to:
		return VIPMove{}, fmt.Errorf("vip move to %s: %w: %s already owns the vip (lease epoch %d)", to, ErrVIPMoveRefused, to, in.State.VIP.LeaseEpoch)
	}
	if ok, why := planner.VIPEligible(in, to); !ok {
		return VIPMove{}, fmt.Errorf("vip move to %s: %w: not eligible: %s", to, ErrVIPMoveRefused, why)
	}
	mv := VIPMove{To: to, From: in.State.VIP.Owner, Since: in.Now}
	c.vipMove = &mv
	c.deps.Logger.Info("planned vip move requested", "node", c.cfg.Node, "from", mv.From, "to", to)
	c.wakeLocked()
	return mv, nil
}

// ReleaseVIP records node's confirmation that it removed the VIP address
// (after losing ownership, or on shutdown with vip.on_stop: release) while
// the committed lease epoch was leaseEpoch. A confirmation received after
// node's last renewal ends its lease at once, so the planner may hand the
// VIP over without waiting for it.
//
// A confirmation for another lease epoch is refused with
// ErrVIPReleaseStale: it was sent before a later assignment, and counting
// it could end a lease node took after sending it.
func (c *Controller) ReleaseVIP(node cluster.NodeName, leaseEpoch uint64) error {
	if node == "" {
		return fmt.Errorf("vip release: empty node")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.leading {
		return ErrNotLeading
	}
	if cur := c.deps.Raft.State().VIP.LeaseEpoch; leaseEpoch != cur {
		return fmt.Errorf("vip release from %s at lease epoch %d (committed %d): %w", node, leaseEpoch, cur, ErrVIPReleaseStale)
	}
	c.vipReleased[node] = c.deps.Now()
	c.wakeLocked()
	return nil
}

func (c *Controller) wakeLocked() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// settleVIPMove ends the planned move when it is done, when its target is
// no longer fit, or when it timed out; the last two commit an event that
// says why.
func (c *Controller) settleVIPMove(ctx context.Context) error {
	c.mu.Lock()
	if c.vipMove == nil {
		c.mu.Unlock()
		return nil
	}
	mv := *c.vipMove
	in := c.inputLocked()
	var reason, outcome string
	switch fit, why := planner.VIPFit(in, mv.To); {
	case in.State.VIP.Owner == mv.To:
		c.vipMove = nil
		c.mu.Unlock()
		c.deps.Logger.Info("planned vip move done", "node", c.cfg.Node, "to", mv.To,
			"lease_epoch", in.State.VIP.LeaseEpoch, "took", in.Now.Sub(mv.Since))
		return nil
	case !fit:
		reason, outcome = fmt.Sprintf("planned move to %s abandoned: %s", mv.To, why), "abandoned"
	case in.Now.Sub(mv.Since) > c.cfg.VIPMoveTimeout:
		reason, outcome = fmt.Sprintf("planned move to %s timed out after %s", mv.To, c.cfg.VIPMoveTimeout), "timed_out"
	default:
		c.mu.Unlock()
		return nil
	}
	c.vipMove = nil
	c.mu.Unlock()
	c.deps.Logger.Warn("planned vip move ended", "node", c.cfg.Node, "to", mv.To, "reason", reason)
	ev := cluster.Event{Time: in.Now, Epoch: in.State.Topology.Epoch, Kind: cluster.EventVIP, Node: mv.To, Reason: reason,
		Inputs: map[string]string{"planned_move_to": string(mv.To), "planned_move": outcome, "owner": string(in.State.VIP.Owner)}}
	actx, cancel := context.WithTimeout(ctx, c.cfg.ApplyTimeout)
	defer cancel()
	if err := c.deps.Raft.Apply(actx, cluster.AppendEvent{Event: ev}); err != nil {
		return fmt.Errorf("commit vip move event for %s: %w", mv.To, err)
	}
	return nil
}
