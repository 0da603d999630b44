package haproxy

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/proxy"
)

// Reconciler defaults.
const (
	DefaultReconcileInterval = 250 * time.Millisecond
	DefaultApplyTimeout      = 5 * time.Second
)

// ReconcilerConfig tunes a Reconciler. Zero values take the defaults.
type ReconcilerConfig struct {
	// Interval is how often the reconciler re-checks HAProxy against the
	// desired routing.
	Interval time.Duration
	// ApplyTimeout bounds one check-and-apply.
	ApplyTimeout time.Duration
}

// Reconciler keeps one HAProxy routing as the latest desired routing says.
// It is level-triggered: on every tick (and at once after SetDesired) it
// runs Driver.Apply, which reads HAProxy and changes only what differs. That
// also covers an HAProxy restart: the new process starts with every server
// disabled, as the rendered config says, and the next tick re-applies.
type Reconciler struct {
	d   *Driver
	cfg ReconcilerConfig
	log *slog.Logger

	wake chan struct{} // buffered 1: "desired changed"

	mu      sync.Mutex
	desired *proxy.Routing
	lastErr error
	checked bool // at least one check has finished
}

// NewReconciler returns a Reconciler driving d.
func NewReconciler(d *Driver, cfg ReconcilerConfig, log *slog.Logger) *Reconciler {
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultReconcileInterval
	}
	if cfg.ApplyTimeout <= 0 {
		cfg.ApplyTimeout = DefaultApplyTimeout
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reconciler{d: d, cfg: cfg, log: log.With("node", d.cfg.Name, "proxy", "haproxy"), wake: make(chan struct{}, 1)}
}

// SetDesired replaces the routing to keep and wakes the loop. A routing
// with an older epoch than the current desired one is refused.
func (r *Reconciler) SetDesired(rt proxy.Routing) error {
	if err := validateRouting(rt); err != nil {
		return fmt.Errorf("haproxy reconciler on %s: epoch %d: %w", r.d.cfg.Name, rt.Topology.Epoch, err)
	}
	r.mu.Lock()
	if r.desired != nil && rt.Topology.Epoch < r.desired.Topology.Epoch {
		cur := r.desired.Topology.Epoch
		r.mu.Unlock()
		return fmt.Errorf("haproxy reconciler on %s: epoch %d is older than desired epoch %d: %w", r.d.cfg.Name, rt.Topology.Epoch, cur, ErrStaleEpoch)
	}
	r.desired = &rt
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
	return nil
}

// Run re-checks until ctx ends, then returns nil. Run it once.
func (r *Reconciler) Run(ctx context.Context) error {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		r.check(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-r.wake:
		}
	}
}

// check applies the desired routing once, or pings when there is none yet.
func (r *Reconciler) check(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ApplyTimeout)
	defer cancel()
	r.mu.Lock()
	desired := r.desired
	r.mu.Unlock()

	var err error
	if desired == nil {
		err = r.d.Ping(ctx)
	} else {
		before := r.d.AppliedEpoch()
		var sent int
		sent, err = r.d.apply(ctx, *desired)
		if err == nil && sent > 0 && before == desired.Topology.Epoch {
			// The same epoch needed commands again: HAProxy drifted,
			// typically because it restarted with the config's states.
			r.log.Warn("haproxy state drifted from applied routing; re-applied", "epoch", before, "commands", sent)
		}
	}
	r.mu.Lock()
	prev := r.lastErr
	r.lastErr, r.checked = err, true
	r.mu.Unlock()
	switch {
	case err != nil && (prev == nil || prev.Error() != err.Error()):
		r.log.Error("haproxy reconcile failed", "err", err)
	case err == nil && prev != nil:
		r.log.Info("haproxy reconcile recovered", "epoch", r.d.AppliedEpoch())
	}
}

// Healthy reports whether the last check succeeded: the socket answered
// and, once a routing is desired, HAProxy matches it.
func (r *Reconciler) Healthy() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.checked && r.lastErr == nil
}

// Err returns the last check's error, nil when it succeeded.
func (r *Reconciler) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastErr
}

// AppliedEpoch is the epoch last verified on HAProxy.
func (r *Reconciler) AppliedEpoch() cluster.Epoch { return r.d.AppliedEpoch() }
