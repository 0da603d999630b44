package proxysql

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/proxy"
)

// Reconciler defaults.
const (
	DefaultMinBackoff = 200 * time.Millisecond
	DefaultMaxBackoff = 5 * time.Second
	DefaultResync     = 5 * time.Second
)

// ReconcilerConfig tunes a Reconciler. Zero fields take the defaults.
type ReconcilerConfig struct {
	// MinBackoff is the first retry delay after a failure; it doubles up
	// to MaxBackoff while failures continue.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// Resync is how often the current routing is re-applied while all is
	// well. The re-apply is a no-op unless ProxySQL drifted (a restart with
	// older config, a hand edit), which it then repairs.
	Resync time.Duration
}

func (c ReconcilerConfig) withDefaults() ReconcilerConfig {
	if c.MinBackoff <= 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = c.MinBackoff
	}
	if c.Resync <= 0 {
		c.Resync = DefaultResync
	}
	return c
}

// target is what the Reconciler drives; *Driver implements it.
type target interface {
	Apply(ctx context.Context, r proxy.Routing) error
	Check(ctx context.Context) error
	AppliedEpoch() cluster.Epoch
}

// Reconciler keeps ProxySQL at the latest routing: it applies each routing
// it receives, retries failures with exponential backoff (reporting
// unhealthy meanwhile), and re-applies on a ticker so that a restarted
// ProxySQL gets the current routing back. Before the first routing it
// runs Check instead, so a conflicting manager or an unreachable admin
// interface shows as unhealthy from the start.
type Reconciler struct {
	t   target
	cfg ReconcilerConfig
	log *slog.Logger

	mu        sync.Mutex
	attempted bool
	healthy   bool
	lastErr   error
}

// NewReconciler returns a Reconciler for d.
func NewReconciler(d *Driver, cfg ReconcilerConfig, log *slog.Logger) *Reconciler {
	return newReconciler(d, cfg, log)
}

func newReconciler(t target, cfg ReconcilerConfig, log *slog.Logger) *Reconciler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reconciler{t: t, cfg: cfg.withDefaults(), log: log}
}

// Healthy reports whether the latest attempt (Apply, or Check before the
// first routing) succeeded.
func (r *Reconciler) Healthy() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.healthy
}

// LastError is the error of the latest attempt, nil when it succeeded.
func (r *Reconciler) LastError() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastErr
}

// AppliedEpoch is the epoch of the latest routing verified in runtime.
func (r *Reconciler) AppliedEpoch() cluster.Epoch { return r.t.AppliedEpoch() }

// Run reconciles until ctx is done, then returns nil. Each value received
// on desired replaces the current routing (a burst is coalesced to its
// latest value). When desired is closed, Run keeps the last routing.
func (r *Reconciler) Run(ctx context.Context, desired <-chan proxy.Routing) error {
	var current *proxy.Routing
	backoff := time.Duration(0)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case rt, ok := <-desired:
			if !ok {
				desired = nil
				continue
			}
			current = &rt
			// Take the newest of a burst.
		drain:
			for {
				select {
				case rt, ok := <-desired:
					if !ok {
						desired = nil
						break drain
					}
					current = &rt
				default:
					break drain
				}
			}
		case <-timer.C:
		}

		err := r.attempt(ctx, current)
		if ctx.Err() != nil {
			return nil
		}
		next := r.cfg.Resync
		if err != nil {
			if backoff == 0 {
				backoff = r.cfg.MinBackoff
			} else {
				backoff = min(2*backoff, r.cfg.MaxBackoff)
			}
			next = backoff
		} else {
			backoff = 0
		}
		timer.Reset(next)
	}
}

func (r *Reconciler) attempt(ctx context.Context, current *proxy.Routing) error {
	var err error
	if current == nil {
		err = r.t.Check(ctx)
	} else {
		err = r.t.Apply(ctx, *current)
	}
	if ctx.Err() != nil {
		return err
	}
	r.mu.Lock()
	was, first := r.healthy, !r.attempted
	r.attempted, r.healthy, r.lastErr = true, err == nil, err
	r.mu.Unlock()
	var epoch cluster.Epoch
	if current != nil {
		epoch = current.Topology.Epoch
	}
	switch {
	case err != nil && (was || first):
		r.log.Warn("proxysql unhealthy", "epoch", epoch, "err", err)
	case err != nil:
		r.log.Debug("proxysql still unhealthy", "epoch", epoch, "err", err)
	case !was:
		r.log.Info("proxysql healthy", "epoch", epoch, "applied_epoch", r.t.AppliedEpoch())
	}
	return err
}
