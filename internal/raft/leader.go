package raft

import (
	"context"
	"errors"
	"time"

	hraft "github.com/hashicorp/raft"
)

// Leader loop timings.
const (
	barrierTimeout = 5 * time.Second        // to enqueue the barrier
	barrierRetry   = 100 * time.Millisecond // between failed barriers
	restartBackoff = time.Second            // before re-running a leader fn that returned early
)

// Run watches leadership until ctx ends or the node shuts down, and runs
// leaderFn while this node leads. It is the single consumer of raft's
// leadership signal, so only one Run may be active per node.
//
// On gaining leadership Run starts a goroutine that first issues a raft
// Barrier, so the FSM holds every entry committed by earlier leaders, and
// then calls leaderFn with a context that is cancelled when leadership is
// lost. Run cancels that context and waits for leaderFn to return before it
// reacts to anything else, so two generations of leaderFn never overlap on
// one node. A loss and regain that raft reports as a second "true" restarts
// leaderFn (after a new barrier) in the new term.
//
// leaderFn should run until its context is done. If it returns early while
// the node still leads, it is logged and called again after a backoff.
//
// leaderFn must not call Shutdown: Shutdown waits for Run, which waits for
// leaderFn.
//
// Run returns nil when ctx ends, ErrShutdown when the node is shut down, and
// ErrRunActive if another Run is active.
func (n *Node) Run(ctx context.Context, leaderFn func(ctx context.Context)) error {
	n.mu.Lock()
	switch {
	case n.closed:
		n.mu.Unlock()
		return ErrShutdown
	case n.running:
		n.mu.Unlock()
		return ErrRunActive
	}
	n.running = true
	n.runWG.Add(1)
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		n.running = false
		n.mu.Unlock()
		n.runWG.Done()
	}()

	var stop func() // cancels the running leader loop and waits for it
	stopLoop := func() {
		if stop != nil {
			stop()
			stop = nil
		}
		n.setLeaderSince(time.Time{})
	}
	defer stopLoop()

	leaderCh := n.raft.LeaderCh()
	// Drop a signal left over from before this Run and start from the
	// current state; later signals correct any race with this check.
	select {
	case <-leaderCh:
	default:
	}
	if n.raft.State() == hraft.Leader {
		stop = n.startLeaderLoop(ctx, leaderFn)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-n.shutdownCh:
			return ErrShutdown
		case isLeader := <-leaderCh:
			stopLoop()
			if isLeader {
				stop = n.startLeaderLoop(ctx, leaderFn)
			} else {
				n.log.Info("raft leadership lost", "term", n.raft.CurrentTerm())
			}
		}
	}
}

func (n *Node) setLeaderSince(t time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.leaderSince = t
}

// startLeaderLoop runs leaderFn in a goroutine under its own context and
// returns the function that cancels it and waits for it to return.
func (n *Node) startLeaderLoop(ctx context.Context, leaderFn func(context.Context)) func() {
	n.setLeaderSince(time.Now())
	n.log.Info("raft leadership gained", "term", n.raft.CurrentTerm())
	lctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.leading(lctx, leaderFn)
	}()
	return func() {
		cancel()
		<-done
	}
}

// leading issues a barrier, then runs leaderFn until ctx is cancelled,
// re-running it after a backoff if it returns early.
func (n *Node) leading(ctx context.Context, leaderFn func(context.Context)) {
	for {
		if !n.barrier(ctx) {
			return
		}
		n.log.Info("raft leader loop started", "term", n.raft.CurrentTerm())
		leaderFn(ctx)
		if ctx.Err() != nil {
			n.log.Info("raft leader loop stopped")
			return
		}
		n.log.Error("raft leader loop returned while still leader, restarting", "backoff", restartBackoff)
		if !sleepCtx(ctx, restartBackoff) {
			return
		}
	}
}

// barrier blocks until a raft barrier succeeds (true) or ctx ends (false).
func (n *Node) barrier(ctx context.Context) bool {
	for {
		err := n.wait(ctx, n.raft.Barrier(barrierTimeout))
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if errors.Is(err, hraft.ErrRaftShutdown) {
			return false
		}
		n.log.Warn("raft barrier failed, retrying", "err", err)
		if !sleepCtx(ctx, barrierRetry) {
			return false
		}
	}
}

// sleepCtx waits d; it returns false if ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
