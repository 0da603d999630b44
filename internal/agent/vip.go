package agent

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/dbha/dbha/internal/api"
	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/config"
	"github.com/dbha/dbha/internal/vip"
)

// VIPActuator makes the VIP present or absent on this node. *vip.VIP
// implements it; tests may inject their own through Deps.VIP.
type VIPActuator interface {
	Check() error
	Ensure(ctx context.Context, present bool) error
	Held() (bool, error)
	Close() error
}

// OnStop values of vip.on_stop.
const (
	vipOnStopRelease = "release"
	vipOnStopRetain  = "retain"
)

// vipReleaseTimeout bounds the release on shutdown.
const vipReleaseTimeout = 2 * time.Second

// ErrVIPPreflight wraps a failed VIP preflight at agent start (missing
// CAP_NET_ADMIN/CAP_NET_RAW, missing interface, bad vip config).
var ErrVIPPreflight = errors.New("vip preflight failed")

// vipConfigFrom builds the actuator's config from the agent's: vip.DefaultConfig
// with every key the agent config sets.
func vipConfigFrom(c config.VIPConfig) (vip.Config, error) {
	vc := vip.DefaultConfig()
	p, err := netip.ParsePrefix(c.Address)
	if err != nil {
		return vc, fmt.Errorf("vip.address %q: %w", c.Address, err)
	}
	vc.Address = p
	vc.Interface = c.Interface
	vc.Label = c.Label
	if c.GARPCount > 0 {
		vc.GARPCount = c.GARPCount
	}
	if c.GARPInterval > 0 {
		vc.GARPInterval = c.GARPInterval
	}
	if c.RefreshInterval > 0 {
		vc.RefreshInterval = c.RefreshInterval
	}
	// kernel_lifetime 0 means "forever" in both configs.
	vc.Lifetime = c.KernelLifetime
	return vc, vc.Validate()
}

// newVIP builds and preflights the VIP actuator of a proxy agent with a
// configured vip.address. It returns nil when there is no VIP to hold, and
// the VIP's config when it built the actuator itself.
func newVIP(cfg config.Config, deps Deps) (VIPActuator, *vip.Config, error) {
	if !cfg.Has(cluster.RoleProxy) || cfg.VIP.Address == "" {
		return nil, nil, nil
	}
	v := deps.VIP
	var built *vip.Config
	if v == nil {
		vc, err := vipConfigFrom(cfg.VIP)
		if err != nil {
			return nil, nil, fmt.Errorf("agent %s: %w: %w", cfg.Node.Name, ErrVIPPreflight, err)
		}
		nv, err := vip.New(vc, deps.Logger.With("node", cfg.Node.Name))
		if err != nil {
			return nil, nil, fmt.Errorf("agent %s: %w: %w", cfg.Node.Name, ErrVIPPreflight, err)
		}
		v, built = nv, &vc
	}
	if err := v.Check(); err != nil {
		_ = v.Close()
		return nil, nil, fmt.Errorf("agent %s: %w: %w", cfg.Node.Name, ErrVIPPreflight, err)
	}
	return v, built, nil
}

// startGuard starts the VIP guard (Deps.VIPGuard) for a VIP the agent
// built itself, or replaces a guard that died.
func (a *Agent) startGuard() error {
	if !a.guarded() {
		return nil
	}
	if a.guard != nil {
		if a.guard.Alive() {
			return nil
		}
		err := a.guard.Close()
		a.log.Error("vip guard died; starting a new one", "pid", a.guard.PID(), "err", err)
		a.guard = nil
	}
	g, err := vip.StartGuard(a.deps.VIPGuard, *a.vipCfg, a.cfg.Log.Format, os.Stderr)
	if err != nil {
		return fmt.Errorf("agent %s: %w", a.cfg.Node.Name, err)
	}
	a.guard = g
	a.log.Info("vip guard started", "pid", g.PID())
	return nil
}

// vipLease is the owner's lease as granted by the leader.
type vipLease struct {
	mu       sync.Mutex
	until    time.Time // sent time of the latest granted renewal + vip.lease
	epoch    uint64    // the lease epoch it was granted for
	gen      uint64    // number of grants so far
	answered bool      // the leader answered (granted or refused) since start
	wake     chan struct{}
}

func (l *vipLease) grant(sent time.Time, lease time.Duration, epoch uint64) {
	l.mu.Lock()
	if until := sent.Add(lease); epoch != l.epoch || until.After(l.until) {
		l.until, l.epoch = until, epoch
	}
	l.gen++
	l.answered = true
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *vipLease) refused() {
	l.mu.Lock()
	l.answered = true
	l.mu.Unlock()
}

func (l *vipLease) get() (until time.Time, epoch, gen uint64, answered bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.until, l.epoch, l.gen, l.answered
}

// vipLoop enforces the VIP lease (DESIGN §5) until ctx ends, then runs the
// on_stop policy. It starts the VIP guard and owns two goroutines: the
// renewer, which asks the leader for the lease while the committed state
// names this node the owner, and the enforcer, which holds the address
// only while the lease is valid. It fails only when the guard cannot
// start.
func (a *Agent) vipLoop(ctx context.Context) error {
	if err := a.startGuard(); err != nil {
		_ = a.vip.Close()
		return err
	}
	l := &vipLease{wake: make(chan struct{}, 1)}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		a.vipRenewLoop(ctx, l)
	}()
	a.vipEnforceLoop(ctx, l)
	wg.Wait()

	// Shutdown: release unless told to retain. The kernel lifetime bounds
	// a retained address anyway.
	if a.cfg.VIP.OnStop != vipOnStopRetain {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), vipReleaseTimeout)
		if err := a.vip.Ensure(rctx, false); err != nil {
			a.log.Error("vip release on shutdown failed", "vip", a.cfg.VIP.Address, "err", err)
		} else {
			a.log.Info("vip released on shutdown", "vip", a.cfg.VIP.Address)
			// Tell the leader, so it can hand the VIP over at once
			// instead of waiting for the lease to run out.
			if err := a.confirmVIPRelease(rctx, a.raft.State().VIP.LeaseEpoch); err != nil {
				a.log.Warn("vip release confirmation on shutdown failed; the leader waits for the lease", "err", err)
			}
		}
		cancel()
	} else {
		if err := a.guard.Retain(); err != nil {
			a.log.Warn("vip guard", "err", err)
		}
		a.log.Info("vip retained on shutdown (vip.on_stop=retain)", "vip", a.cfg.VIP.Address)
	}
	// The guard removes the address on exit unless told to retain; it
	// was removed above already.
	if err := a.guard.Close(); err != nil {
		a.log.Warn("vip guard close", "err", err)
	}
	if err := a.vip.Close(); err != nil {
		a.log.Warn("vip close", "err", err)
	}
	return nil
}

// vipRenewLoop renews the lease every vip.renew_interval while this node
// is the committed owner, and at once when it becomes the owner.
func (a *Agent) vipRenewLoop(ctx context.Context, l *vipLease) {
	t := time.NewTicker(a.cfg.VIP.RenewInterval)
	defer t.Stop()
	me := a.cfg.name()
	for {
		st, changed := a.raft.Watch()
		if st.VIP.Owner == me {
			a.renewVIPOnce(ctx, l)
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-t.C:
		}
	}
}

// renewVIPOnce sends one renewal and records a grant. The lease counts
// from the moment the renewal was sent, so a slow answer shortens it and
// never lengthens it.
func (a *Agent) renewVIPOnce(ctx context.Context, l *vipLease) {
	me := a.cfg.name()
	sent := a.now()
	lease, err := a.renewVIP(ctx, me)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			a.log.Debug("vip renewal failed", "err", err)
		}
	case lease.Granted && lease.Owner == me:
		l.grant(sent, a.cfg.VIP.Lease, lease.LeaseEpoch)
	default:
		l.refused()
		a.log.Debug("vip renewal refused", "owner", lease.Owner, "lease_epoch", lease.LeaseEpoch, "reason", lease.Reason)
	}
}

// renewVIP asks the leader for node's lease: through the controller when
// this agent leads, else over the leader's API.
func (a *Agent) renewVIP(ctx context.Context, node cluster.NodeName) (api.VIPLease, error) {
	// An answer that arrives after half a lease is worth little; do not
	// let a hung leader stall the next renewal for long.
	timeout := max(a.cfg.VIP.Lease/2, a.cfg.VIP.RenewInterval)
	if a.raft.IsLeader() {
		return backend{a}.RenewVIP(ctx, node)
	}
	leader := (backend{a}).LeaderAPI()
	if leader == "" {
		return api.VIPLease{}, fmt.Errorf("renew vip for %s: %w", node, api.ErrNoLeader)
	}
	c, err := a.client(leader)
	if err != nil {
		return api.VIPLease{}, fmt.Errorf("renew vip for %s: %w", node, err)
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return c.RenewVIP(cctx, node)
}

// guarded reports whether this agent runs a VIP guard (a VIP it built
// itself, with Deps.VIPGuard set).
func (a *Agent) guarded() bool { return a.vipCfg != nil && len(a.deps.VIPGuard) > 0 }

// vipReleaseAttempts bounds how often the enforcer tries to confirm one
// release to the leader. A lost confirmation only costs a lease wait.
const vipReleaseAttempts = 3

// confirmVIPRelease tells the leader that this node removed the VIP address
// (POST /v1/vip/release) while the committed lease epoch was epoch: through
// the controller when this agent leads, else over the leader's API. Call it
// only after Ensure(false) succeeded, with the epoch of the state that made
// this node let go.
func (a *Agent) confirmVIPRelease(ctx context.Context, epoch uint64) error {
	me := a.cfg.name()
	if a.raft.IsLeader() {
		return backend{a}.ReleaseVIP(ctx, me, epoch)
	}
	leader := (backend{a}).LeaderAPI()
	if leader == "" {
		return fmt.Errorf("confirm vip release from %s: %w", me, api.ErrNoLeader)
	}
	c, err := a.client(leader)
	if err != nil {
		return fmt.Errorf("confirm vip release from %s: %w", me, err)
	}
	cctx, cancel := context.WithTimeout(ctx, max(a.cfg.VIP.Lease/2, a.cfg.VIP.RenewInterval))
	defer cancel()
	return c.ReleaseVIP(cctx, me, epoch)
}

// vipEnforceLoop is the level-triggered reconciler: the address is present
// only while this node is the committed owner and holds an unexpired lease
// for the committed lease epoch. It re-checks on every grant, every FSM
// change, every vip.renew_interval, and when the lease runs out.
//
// Ensure(true) restarts the address's kernel lifetime, so it runs once per
// granted renewal and never in between: the kernel lease then ends at most
// kernel_lifetime after the leader's last answered renewal, which is what
// the leader waits for before moving the VIP. Between grants the address is
// left as it is (a deleted address returns at the next grant); Ensure(false)
// runs on every tick while the address must be absent.
func (a *Agent) vipEnforceLoop(ctx context.Context, l *vipLease) {
	t := time.NewTicker(a.cfg.VIP.RenewInterval)
	defer t.Stop()
	expiry := time.NewTimer(time.Hour)
	defer expiry.Stop()
	me := a.cfg.name()
	start := a.now()
	var applied uint64 // the grant generation last applied with Ensure(true)
	var held, known bool
	var lastErr, guardErr string
	// A node that loses ownership removes the address and then confirms
	// the release to the leader, which may then hand the VIP over without
	// waiting for this node's lease (a planned move).
	var wasOwner bool
	releaseTries := 0 // confirmation attempts left
	for {
		st, changed := a.raft.Watch()
		until, epoch, gen, answered := l.get()
		now := a.now()
		owner := st.VIP.Owner == me
		guardOK := !a.guarded() || a.guard.Alive()
		switch {
		case owner:
			releaseTries = 0
		case wasOwner:
			releaseTries = vipReleaseAttempts
		}
		wasOwner = owner
		want := owner && epoch == st.VIP.LeaseEpoch && now.Before(until)
		// A restarted agent (on_stop: retain) leaves a retained address
		// alone until the leader first answers, for at most one lease:
		// its committed state may still be catching up. This is safe
		// because nothing renews the address's kernel lifetime without a
		// grant, and the leader waits for that lifetime to run out before
		// it gives the VIP to another proxy.
		skip := !want && !answered && now.Sub(start) < a.cfg.VIP.Lease
		if want && gen == applied {
			skip = true // no new grant: do not extend the kernel lifetime
		}
		if want && !guardOK {
			// No working guard, no VIP: nothing would remove the
			// address if this agent died now. Let go first, then
			// start a new guard (below).
			want, skip = false, false
		}
		if want && !skip && a.guarded() {
			// The guard learns the lease's end before the kernel
			// lifetime is renewed, so it never removes a renewed
			// address on an older deadline.
			if err := a.guard.Hold(until.Sub(now)); err != nil {
				want, guardOK = false, false
				a.log.Error("vip guard unavailable; not holding the VIP", "err", err)
			}
		}
		if !skip {
			err := a.vip.Ensure(ctx, want)
			if !want && err == nil {
				if gerr := a.guard.None(); gerr != nil && ctx.Err() == nil {
					a.log.Debug("vip guard", "err", gerr)
				}
			}
			if want {
				// Also after a failure: a retry would extend the
				// kernel lifetime past this grant; the next grant
				// retries within vip.renew_interval.
				applied = gen
			}
			switch {
			case err != nil && ctx.Err() == nil:
				if err.Error() != lastErr {
					a.log.Warn("vip ensure failed", "want", want, "err", err)
				}
				lastErr = err.Error()
			case err == nil:
				lastErr = ""
				if !known || held != want {
					if want {
						a.log.Info("vip acquired", "vip", a.cfg.VIP.Address, "lease_epoch", epoch, "lease_until", until)
					} else if known {
						why := "lease expired"
						if !owner {
							why = fmt.Sprintf("owner is %q", st.VIP.Owner)
						}
						a.log.Info("vip released", "vip", a.cfg.VIP.Address, "reason", why)
					}
				}
				held, known = want, true
			}
			if err == nil && !want && !owner && releaseTries > 0 {
				releaseTries--
				if cerr := a.confirmVIPRelease(ctx, st.VIP.LeaseEpoch); cerr != nil {
					if errors.Is(cerr, api.ErrConflict) {
						releaseTries = 0 // stale: the leader moved on
					}
					if ctx.Err() == nil {
						a.log.Debug("vip release confirmation failed", "tries_left", releaseTries, "err", cerr)
					}
				} else {
					releaseTries = 0
					a.log.Info("vip release confirmed to the leader", "vip", a.cfg.VIP.Address, "owner", st.VIP.Owner)
				}
			}
		}
		if !guardOK {
			// After the release above, so a slow start never delays
			// letting go. The next round holds again if it is up.
			if err := a.startGuard(); err != nil && ctx.Err() == nil {
				if err.Error() != guardErr {
					a.log.Error("vip guard could not start; not holding the VIP", "err", err)
				}
				guardErr = err.Error()
			} else {
				guardErr = ""
			}
		}
		if want {
			expiry.Reset(until.Sub(now))
		}
		// A live guard's death wakes the loop at once; without a live
		// guard (or without one at all) the nil channel never fires and
		// the ticker retries.
		var guardDone <-chan struct{}
		if a.guard.Alive() {
			guardDone = a.guard.Done()
		}
		select {
		case <-ctx.Done():
			return
		case <-guardDone:
		case <-changed:
		case <-l.wake:
		case <-expiry.C:
		case <-t.C:
		}
	}
}
