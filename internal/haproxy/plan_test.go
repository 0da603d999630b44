package haproxy

import (
	"fmt"
	"slices"
	"testing"

	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/proxy"
	"pgregory.net/rapid"
)

const (
	wb = "dbha_writer"
	rb = "dbha_reader"
)

// srv is a compact server spec for tables: "r" ready, "d" drain, "m" maint,
// with an optional session count.
type srv struct {
	state    string
	sessions int
}

func mkState(writer, reader map[cluster.NodeName]srv) runtimeState {
	flags := map[string]int{"r": 0x04, "d": 0x08, "m": 0x05}
	conv := func(backend string, in map[cluster.NodeName]srv) backendState {
		out := backendState{}
		for n, s := range in {
			f, ok := flags[s.state]
			if !ok {
				panic("bad state " + s.state)
			}
			out[n] = serverRuntime{Backend: backend, Name: n, OpState: opRunning, AdminFlags: f, Sessions: s.sessions}
		}
		return out
	}
	return runtimeState{writer: conv(wb, writer), reader: conv(rb, reader)}
}

func all(state string, names ...cluster.NodeName) map[cluster.NodeName]srv {
	m := map[cluster.NodeName]srv{}
	for _, n := range names {
		m[n] = srv{state: state}
	}
	return m
}

func with(m map[cluster.NodeName]srv, n cluster.NodeName, state string, sessions int) map[cluster.NodeName]srv {
	out := map[cluster.NodeName]srv{}
	for k, v := range m {
		out[k] = v
	}
	out[n] = srv{state, sessions}
	return out
}

func topo(epoch cluster.Epoch, writer cluster.NodeName, readers []cluster.NodeName, offline map[cluster.NodeName]cluster.OfflineReason) proxy.Routing {
	t := cluster.Topology{Epoch: epoch, Writer: writer, Readers: readers}
	for n, r := range offline {
		t.Offline = append(t.Offline, cluster.OfflineNode{Node: n, Reason: r})
	}
	t = t.Normalize()
	be := map[cluster.NodeName]proxy.Backend{}
	for i, n := range []cluster.NodeName{"db1", "db2", "db3", "db4"} {
		be[n] = proxy.Backend{Host: "127.0.0.1", Port: 24001 + i}
	}
	return proxy.Routing{Topology: t, Backends: be}
}

type nodes = []cluster.NodeName
type reasons = map[cluster.NodeName]cluster.OfflineReason

func TestPlan(t *testing.T) {
	three := nodes{"db1", "db2", "db3"}
	steady := mkState(with(all("m", three...), "db1", "r", 2), with(all("r", three...), "db1", "m", 0))
	for _, tc := range []struct {
		name    string
		routing proxy.Routing
		actual  runtimeState
		want    []string
	}{
		{
			name:    "fresh haproxy: writer first, then readers",
			routing: topo(1, "db1", nodes{"db2", "db3"}, nil),
			actual:  mkState(all("m", three...), all("m", three...)),
			want: []string{
				"set server dbha_writer/db1 state ready",
				"set server dbha_reader/db2 state ready",
				"set server dbha_reader/db3 state ready",
			},
		},
		{
			name:    "steady state sends nothing",
			routing: topo(1, "db1", nodes{"db2", "db3"}, nil),
			actual:  steady,
		},
		{
			name:    "writer change: old writer to maint and cut, before the new writer is ready",
			routing: topo(2, "db2", nodes{"db1", "db3"}, nil),
			actual:  steady,
			want: []string{
				"set server dbha_writer/db1 state maint",
				"shutdown sessions server dbha_writer/db1",
				"set server dbha_reader/db2 state maint",
				"set server dbha_writer/db2 state ready",
				"set server dbha_reader/db1 state ready",
			},
		},
		{
			name:    "fenced old writer loses sessions in both backends",
			routing: topo(2, "db2", nodes{"db3"}, reasons{"db1": cluster.ReasonFenced}),
			actual:  mkState(with(all("m", three...), "db1", "r", 2), with(all("r", three...), "db1", "r", 1)),
			want: []string{
				"set server dbha_writer/db1 state maint",
				"shutdown sessions server dbha_writer/db1",
				"set server dbha_reader/db1 state maint",
				"shutdown sessions server dbha_reader/db1",
				"set server dbha_reader/db2 state maint",
				"set server dbha_writer/db2 state ready",
			},
		},
		{
			name:    "fenced node already in maint without sessions: nothing",
			routing: topo(3, "db2", nodes{"db3"}, reasons{"db1": cluster.ReasonFenced}),
			actual:  mkState(with(all("m", three...), "db2", "r", 0), with(all("m", three...), "db3", "r", 0)),
		},
		{
			name:    "sessions left on a maint writer-backend server are cut",
			routing: topo(3, "db2", nodes{"db3"}, reasons{"db1": cluster.ReasonUnreachable}),
			actual:  mkState(with(with(all("m", three...), "db2", "r", 0), "db1", "m", 1), with(all("m", three...), "db3", "r", 0)),
			want:    []string{"shutdown sessions server dbha_writer/db1"},
		},
		{
			name:    "switchover step 1: no writer, old writer drains and keeps its sessions",
			routing: topo(2, "", nodes{"db2", "db3"}, reasons{"db1": cluster.ReasonDraining}),
			actual:  steady,
			want: []string{
				"set server dbha_writer/db1 state drain",
				"set server dbha_reader/db1 state drain",
			},
		},
		{
			name:    "switchover step 1 re-applied: stable",
			routing: topo(2, "", nodes{"db2", "db3"}, reasons{"db1": cluster.ReasonDraining}),
			actual:  mkState(with(all("m", three...), "db1", "d", 1), with(all("r", three...), "db1", "d", 0)),
		},
		{
			name:    "switchover step 4: new writer, the drained one is cut",
			routing: topo(3, "db2", nodes{"db1", "db3"}, nil),
			actual:  mkState(with(all("m", three...), "db1", "d", 1), with(all("r", three...), "db1", "m", 0)),
			want: []string{
				"set server dbha_writer/db1 state maint",
				"shutdown sessions server dbha_writer/db1",
				"set server dbha_reader/db2 state maint",
				"set server dbha_writer/db2 state ready",
				"set server dbha_reader/db1 state ready",
			},
		},
		{
			name:    "draining non-writer with no writer stays in maint in the writer backend",
			routing: topo(2, "", nodes{"db2"}, reasons{"db1": cluster.ReasonNonPrimary, "db3": cluster.ReasonDraining}),
			actual:  mkState(all("m", three...), all("r", three...)),
			want: []string{
				"set server dbha_reader/db1 state maint",
				"set server dbha_reader/db3 state drain",
			},
		},
		{
			name:    "no writer: the old writer is cut",
			routing: topo(2, "", nodes{"db2", "db3"}, reasons{"db1": cluster.ReasonNonPrimary}),
			actual:  steady,
			want: []string{
				"set server dbha_writer/db1 state maint",
				"shutdown sessions server dbha_writer/db1",
			},
		},
		{
			name:    "writer is reader",
			routing: func() proxy.Routing { r := topo(1, "db1", nodes{"db2"}, nil); r.WriterIsReader = true; return r }(),
			actual:  mkState(all("m", three...), all("m", three...)),
			want: []string{
				"set server dbha_writer/db1 state ready",
				"set server dbha_reader/db1 state ready",
				"set server dbha_reader/db2 state ready",
			},
		},
		{
			name:    "server the routing does not name goes to maint",
			routing: topo(1, "db1", nodes{"db2"}, nil),
			actual:  mkState(with(all("r", "db1"), "db4", "r", 0), all("r", "db1", "db2", "db4")),
			want: []string{
				"set server dbha_writer/db4 state maint",
				"shutdown sessions server dbha_writer/db4",
				"set server dbha_reader/db1 state maint",
				"set server dbha_reader/db4 state maint",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := validateRouting(tc.routing); err != nil {
				t.Fatal(err)
			}
			_, actions := plan(tc.routing, wb, rb, tc.actual)
			var got []string
			for _, a := range actions {
				got = append(got, a.command())
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("commands:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// simulate runs actions on st as HAProxy would: set state changes the admin
// flags (maint keeps the config's 0x04 bit), shutdown clears sessions.
func simulate(st runtimeState, a action) {
	b := st.writer
	if a.backend == rb {
		b = st.reader
	}
	s := b[a.server]
	switch a.kind {
	case actShutdown:
		s.Sessions = 0
	case actSetState:
		s.AdminFlags = map[AdminState]int{StateReady: 0x04, StateDrain: 0x0c, StateMaint: 0x05}[a.state]
	}
	b[a.server] = s
}

// TestPlanProperties: for any starting state and valid routing, applying
// the plan step by step never has a second ready writer-backend server when
// the writer goes ready, never leaves a writer-backend server that may hold
// sessions uncut while another writer is ready, ends in the desired state,
// and planning again from there sends nothing.
func TestPlanProperties(t *testing.T) {
	all := nodes{"db1", "db2", "db3", "db4"}
	rapid.Check(t, func(t *rapid.T) {
		gen := func(label string) map[cluster.NodeName]srv {
			m := map[cluster.NodeName]srv{}
			for _, n := range all {
				m[n] = srv{rapid.SampledFrom([]string{"r", "d", "m"}).Draw(t, label+string(n)), rapid.IntRange(0, 2).Draw(t, label+"s"+string(n))}
			}
			return m
		}
		st := mkState(gen("w"), gen("r"))
		// Build a valid topology: each node is writer, reader or offline.
		var writer cluster.NodeName
		var readers nodes
		off := reasons{}
		for _, n := range all {
			switch rapid.IntRange(0, 2).Draw(t, "role"+string(n)) {
			case 0:
				if writer == "" {
					writer = n
					continue
				}
				readers = append(readers, n)
			case 1:
				readers = append(readers, n)
			default:
				off[n] = rapid.SampledFrom([]cluster.OfflineReason{cluster.ReasonDraining, cluster.ReasonFenced, cluster.ReasonUnreachable}).Draw(t, "reason"+string(n))
			}
		}
		r := topo(7, writer, readers, off)
		r.WriterIsReader = rapid.Bool().Draw(t, "wir")
		want, actions := plan(r, wb, rb, st)
		for _, a := range actions {
			if a.kind == actSetState && a.backend == wb && a.state == StateReady {
				for n, s := range st.writer {
					if n == a.server {
						continue
					}
					if s.Admin() == StateReady {
						t.Fatalf("%s goes ready while %s is still ready", a.server, n)
					}
					if s.Admin() == StateMaint && s.Sessions > 0 {
						t.Fatalf("%s goes ready while %s still holds %d writer sessions", a.server, n, s.Sessions)
					}
				}
			}
			simulate(st, a)
		}
		if bad := mismatches(want, wb, rb, st); len(bad) > 0 {
			t.Fatalf("after plan: %v", bad)
		}
		ready := 0
		for n, s := range st.writer {
			if s.Admin() == StateReady {
				ready++
				if n != writer {
					t.Fatalf("%s ready in writer backend, writer is %q", n, writer)
				}
			}
		}
		if ready > 1 {
			t.Fatalf("%d ready writers", ready)
		}
		if _, again := plan(r, wb, rb, st); len(again) > 0 {
			t.Fatalf("second plan not empty: %v", fmt.Sprint(again))
		}
	})
}
