package raft

import (
	"fmt"
	"io"
	"sync"

	hraft "github.com/hashicorp/raft"

	"github.com/dbha/dbha/internal/cluster"
)

// FSM is the raft state machine: a cluster.State changed only by committed
// commands. It implements hraft.FSM. Reads return deep copies, so callers
// can never change the replicated state behind raft's back.
type FSM struct {
	mu      sync.Mutex
	state   cluster.State
	changed chan struct{} // closed and replaced on every change
}

// NewFSM returns an FSM holding cluster.NewState().
func NewFSM() *FSM {
	return &FSM{state: cluster.NewState(), changed: make(chan struct{})}
}

var _ hraft.FSM = (*FSM)(nil)

// Apply decodes one committed log entry and applies it. The response is the
// error from decoding or from cluster.State.Apply, or nil. A rejected command
// changes nothing, on every node alike, so a bad entry cannot fork the
// replicas; the proposer sees the error through Node.Apply.
func (f *FSM) Apply(l *hraft.Log) any {
	c, err := cluster.Decode(l.Data)
	if err != nil {
		return fmt.Errorf("fsm apply index %d: %w", l.Index, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.state.Apply(c); err != nil {
		return fmt.Errorf("fsm apply index %d: %w", l.Index, err)
	}
	f.notifyLocked()
	return nil
}

func (f *FSM) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// Snapshot copies the state under the lock. raft calls it on its FSM
// goroutine, so no Apply runs concurrently; Persist then encodes the copy
// on another goroutine without holding the lock.
func (f *FSM) Snapshot() (hraft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return &fsmSnapshot{state: f.state.Clone()}, nil
}

// Restore replaces the state with a snapshot: it decodes into a fresh State
// and swaps it in under the lock.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer func() { _ = rc.Close() }()
	b, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("fsm restore: read snapshot: %w", err)
	}
	s, err := cluster.DecodeSnapshot(b)
	if err != nil {
		return fmt.Errorf("fsm restore: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state = s
	f.notifyLocked()
	return nil
}

// State returns a deep copy of the current state.
func (f *FSM) State() cluster.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state.Clone()
}

// Changed returns a channel that is closed at the next state change (a
// command applied or a snapshot restored). Call it again after it fires.
// To read the state and wait for the next change without missing one in
// between, use Watch.
func (f *FSM) Changed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.changed
}

// Watch returns a copy of the state together with a channel that is closed
// at the first change after that copy was taken.
func (f *FSM) Watch() (cluster.State, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state.Clone(), f.changed
}

type fsmSnapshot struct{ state cluster.State }

// Persist writes the version-headed snapshot encoding to sink.
func (s *fsmSnapshot) Persist(sink hraft.SnapshotSink) error {
	b, err := cluster.EncodeSnapshot(s.state)
	if err == nil {
		_, err = sink.Write(b)
	}
	if err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("fsm snapshot persist at epoch %d: %w", s.state.Topology.Epoch, err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("fsm snapshot close at epoch %d: %w", s.state.Topology.Epoch, err)
	}
	return nil
}

func (s *fsmSnapshot) Release() {}
