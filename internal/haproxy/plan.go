package haproxy

import (
	"fmt"
	"slices"

	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/proxy"
)

// backendState is one backend's servers, by name.
type backendState map[cluster.NodeName]serverRuntime

// runtimeState is what HAProxy runs in the two backends dbha owns.
type runtimeState struct {
	writer backendState
	reader backendState
}

// actionKind is a state-changing Runtime API command.
type actionKind int

const (
	actSetState actionKind = iota // set server B/S state X
	actShutdown                   // shutdown sessions server B/S
)

// action is one state-changing command.
type action struct {
	kind    actionKind
	backend string
	server  cluster.NodeName
	state   AdminState // for actSetState
}

func (a action) command() string {
	switch a.kind {
	case actShutdown:
		return fmt.Sprintf("shutdown sessions server %s/%s", a.backend, a.server)
	default:
		return fmt.Sprintf("set server %s/%s state %s", a.backend, a.server, a.state)
	}
}

// desiredState is the admin state of every server in both backends.
type desiredState struct {
	writer map[cluster.NodeName]AdminState
	reader map[cluster.NodeName]AdminState
}

// plan is pure: from a validated routing and the state HAProxy runs, it
// returns the admin state every server must have and the ordered commands
// that get there. An empty action list means HAProxy already matches.
//
// Writer backend: the committed writer is ready and every other server is
// in maint. One exception keeps a planned switchover lossless (DESIGN §7
// step 1): while the topology has no writer, a draining node that still
// takes writer sessions (ready or drain now) is set to drain, so its
// in-flight transactions finish. Sessions are shut down on a writer-backend
// server going to maint that is fenced or may still hold sessions (it is
// not in maint yet, or "show stat" counts sessions on it): when the writer
// changes, the old writer loses its sessions.
//
// Reader backend: readers are ready (and the writer when WriterIsReader),
// draining nodes drain, every other server is in maint. Only fenced nodes
// lose their reader sessions.
//
// Order: first everything that takes traffic away (maint, drain, session
// shutdowns) in the writer backend, then in the reader backend, and only
// then the ready states, the writer's last of all among the writer
// backend's. So no instant ever has two ready writers, and a fenced node's
// sessions are gone before any new writer takes writes.
func plan(r proxy.Routing, writerBackend, readerBackend string, actual runtimeState) (desiredState, []action) {
	t := r.Topology
	want := desiredState{writer: map[cluster.NodeName]AdminState{}, reader: map[cluster.NodeName]AdminState{}}

	for name, s := range actual.writer {
		reason, offline := t.OfflineReasonOf(name)
		switch {
		case name == t.Writer && t.Writer != "":
			want.writer[name] = StateReady
		case t.Writer == "" && offline && reason == cluster.ReasonDraining && s.Admin() != StateMaint:
			want.writer[name] = StateDrain
		default:
			want.writer[name] = StateMaint
		}
	}
	for name := range actual.reader {
		reason, offline := t.OfflineReasonOf(name)
		switch {
		case t.IsReader(name), name == t.Writer && t.Writer != "" && r.WriterIsReader:
			want.reader[name] = StateReady
		case offline && reason == cluster.ReasonDraining:
			want.reader[name] = StateDrain
		default:
			want.reader[name] = StateMaint
		}
	}

	fenced := func(n cluster.NodeName) bool {
		reason, ok := t.OfflineReasonOf(n)
		return ok && reason == cluster.ReasonFenced
	}
	var takeAway, readies []action
	// removals returns the maint/drain/shutdown actions for one backend.
	removals := func(backend string, cur backendState, want map[cluster.NodeName]AdminState, writer bool) {
		for _, name := range sortedNames(cur) {
			s, w := cur[name], want[name]
			if w == StateReady {
				continue
			}
			if s.Admin() != w {
				takeAway = append(takeAway, action{kind: actSetState, backend: backend, server: name, state: w})
			}
			if w != StateMaint {
				continue
			}
			mayHoldSessions := s.Admin() != StateMaint || s.Sessions > 0
			if mayHoldSessions && (fenced(name) || writer) {
				takeAway = append(takeAway, action{kind: actShutdown, backend: backend, server: name})
			}
		}
	}
	removals(writerBackend, actual.writer, want.writer, true)
	removals(readerBackend, actual.reader, want.reader, false)

	for _, name := range sortedNames(actual.reader) {
		if want.reader[name] == StateReady && actual.reader[name].Admin() != StateReady {
			readies = append(readies, action{kind: actSetState, backend: readerBackend, server: name, state: StateReady})
		}
	}
	if w := t.Writer; w != "" {
		if s, ok := actual.writer[w]; ok && s.Admin() != StateReady {
			// Writes matter most: the writer goes ready before the readers.
			readies = append([]action{{kind: actSetState, backend: writerBackend, server: w, state: StateReady}}, readies...)
		}
	}
	return want, append(takeAway, readies...)
}

// mismatches lists every server whose admin state differs from want.
func mismatches(want desiredState, writerBackend, readerBackend string, actual runtimeState) []string {
	var out []string
	check := func(backend string, cur backendState, want map[cluster.NodeName]AdminState) {
		for _, name := range sortedNames(cur) {
			w, ok := want[name]
			if !ok {
				out = append(out, fmt.Sprintf("%s/%s appeared during apply", backend, name))
				continue
			}
			if got := cur[name].Admin(); got != w {
				out = append(out, fmt.Sprintf("%s/%s is %s (admin flags %#x), want %s", backend, name, got, cur[name].AdminFlags, w))
			}
		}
		for name := range want {
			if _, ok := cur[name]; !ok {
				out = append(out, fmt.Sprintf("%s/%s vanished during apply", backend, name))
			}
		}
	}
	check(writerBackend, actual.writer, want.writer)
	check(readerBackend, actual.reader, want.reader)
	slices.Sort(out)
	return out
}

func sortedNames(b backendState) []cluster.NodeName {
	names := make([]cluster.NodeName, 0, len(b))
	for n := range b {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
