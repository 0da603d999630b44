package proxysql

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/proxy"
)

// fakeTarget fails while down is set and records every attempt.
type fakeTarget struct {
	mu       sync.Mutex
	down     bool
	checks   int
	applies  []cluster.Epoch
	times    []time.Time
	appliedE cluster.Epoch
	// gate, when set, holds every Apply until it is closed.
	gate chan struct{}
}

func (f *fakeTarget) Check(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checks++
	if f.down {
		return fmt.Errorf("check: %w", ErrUnavailable)
	}
	return nil
}

func (f *fakeTarget) Apply(ctx context.Context, r proxy.Routing) error {
	f.mu.Lock()
	gate := f.gate
	f.applies = append(f.applies, r.Topology.Epoch)
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.times = append(f.times, time.Now())
	if f.down {
		return fmt.Errorf("apply: %w", ErrUnavailable)
	}
	f.appliedE = r.Topology.Epoch
	return nil
}

func (f *fakeTarget) AppliedEpoch() cluster.Epoch {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.appliedE
}

func (f *fakeTarget) setDown(v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = v
}

func (f *fakeTarget) snapshot() ([]cluster.Epoch, []time.Time, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]cluster.Epoch{}, f.applies...), append([]time.Time{}, f.times...), f.checks
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestReconcilerBackoffAndRecovery(t *testing.T) {
	f := &fakeTarget{down: true, gate: make(chan struct{})}
	r := newReconciler(f, ReconcilerConfig{MinBackoff: 10 * time.Millisecond, MaxBackoff: 80 * time.Millisecond, Resync: time.Hour}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	desired := make(chan proxy.Routing, 4)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, desired) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	// Before any routing it checks, and reports unhealthy while down.
	waitUntil(t, "a failed check", func() bool { _, _, c := f.snapshot(); return c >= 1 && !r.Healthy() })
	if !errors.Is(r.LastError(), ErrUnavailable) {
		t.Errorf("LastError %v", r.LastError())
	}
	// Routings that arrive while an Apply runs are coalesced to the latest.
	desired <- proxy.Routing{Topology: cluster.Topology{Epoch: 1}}
	waitUntil(t, "apply of epoch 1 in progress", func() bool { a, _, _ := f.snapshot(); return len(a) == 1 })
	desired <- proxy.Routing{Topology: cluster.Topology{Epoch: 2}}
	desired <- proxy.Routing{Topology: cluster.Topology{Epoch: 3}}
	close(f.gate)
	waitUntil(t, "six failed applies", func() bool { a, _, _ := f.snapshot(); return len(a) >= 6 })
	applies, times, _ := f.snapshot()
	for _, e := range applies {
		if e == 2 {
			t.Errorf("applied the stale epoch 2 of a burst: %v", applies)
		}
	}
	if applies[len(applies)-1] != 3 {
		t.Errorf("retrying epoch %d, want 3", applies[len(applies)-1])
	}
	// Backoff grows: the last gap is longer than the first retry's.
	first, last := times[1].Sub(times[0]), times[len(times)-1].Sub(times[len(times)-2])
	if last < 40*time.Millisecond || last <= first {
		t.Errorf("backoff did not grow: first gap %v, last gap %v", first, last)
	}
	if r.Healthy() {
		t.Error("healthy while every apply fails")
	}
	// ProxySQL comes back: the current routing is applied.
	f.setDown(false)
	waitUntil(t, "recovery", func() bool { return r.Healthy() && r.AppliedEpoch() == 3 })
	if r.LastError() != nil {
		t.Errorf("LastError after recovery: %v", r.LastError())
	}
	// Closing the channel keeps the last routing.
	close(desired)
	// An absence check: nothing may undo the applied routing in the
	// moments after the close, so there is no condition to poll for.
	time.Sleep(20 * time.Millisecond)
	if !r.Healthy() || r.AppliedEpoch() != 3 {
		t.Errorf("after close: healthy=%v epoch=%d", r.Healthy(), r.AppliedEpoch())
	}
}

func TestReconcilerResyncReapplies(t *testing.T) {
	f := &fakeTarget{}
	r := newReconciler(f, ReconcilerConfig{Resync: 20 * time.Millisecond}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	desired := make(chan proxy.Routing, 1)
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, desired) }()
	desired <- proxy.Routing{Topology: cluster.Topology{Epoch: 9}}
	waitUntil(t, "three applies of epoch 9", func() bool { a, _, _ := f.snapshot(); return len(a) >= 3 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	applies, _, _ := f.snapshot()
	for _, e := range applies {
		if e != 9 {
			t.Errorf("applied epoch %d", e)
		}
	}
}
