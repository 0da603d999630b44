package haproxy_test

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/haproxy"
	"github.com/dbha/dbha/internal/haproxy/haproxytest"
	"github.com/dbha/dbha/internal/proxy"
)

type nodes = []cluster.NodeName
type reasons = map[cluster.NodeName]cluster.OfflineReason

func allOn(landed []string, node string) bool {
	for _, l := range landed {
		if l != node {
			return false
		}
	}
	return len(landed) > 0
}

func TestApplyRoutesWritesToTheWriterOnly(t *testing.T) {
	t.Parallel()
	b := newBed(t)

	// Before anything is applied the writer backend is empty, never wrong.
	if got := b.snapshot().ready("writer"); len(got) != 0 {
		t.Fatalf("fresh haproxy has ready writers %v", got)
	}
	if c, err := b.dial(b.writerAddr); err == nil {
		c.Close()
		t.Fatalf("fresh haproxy routed a write to %s", c.Landed)
	}

	b.apply(b.routing(1, "db1", nodes{"db2", "db3"}, nil))
	snap := b.snapshot()
	want := snapshot{
		"writer/db1": "ready", "writer/db2": "maint", "writer/db3": "maint",
		"reader/db1": "maint", "reader/db2": "ready", "reader/db3": "ready",
	}
	if !maps.Equal(snap, want) {
		t.Fatalf("state after apply = %v, want %v", snap, want)
	}
	if landed := b.landings(b.writerAddr, 6); !allOn(landed, "db1") {
		t.Fatalf("writer connections landed on %v, want all on db1", landed)
	}
	landed := b.landings(b.readerAddr, 6)
	if slices.Contains(landed, "db1") {
		t.Fatalf("reader connections landed on the writer: %v", landed)
	}
	if b.drv.AppliedEpoch() != 1 {
		t.Fatalf("applied epoch %d, want 1", b.drv.AppliedEpoch())
	}
	obs := b.observe()
	if len(obs.Servers) != 6 {
		t.Fatalf("observe lists %d servers, want 6: %+v", len(obs.Servers), obs.Servers)
	}
}

func TestWriterChangeCutsOldWriterSessions(t *testing.T) {
	t.Parallel()
	b := newBed(t)
	b.apply(b.routing(1, "db1", nodes{"db2", "db3"}, nil))
	old, err := b.dial(b.writerAddr)
	if err != nil || old.Landed != "db1" {
		t.Fatalf("dial writer: %v, landed %v", err, old)
	}
	defer old.Close()
	if err := old.Echo("write 1", time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "session visible in show stat", func() bool {
		for _, s := range b.observe().Servers {
			if s.Pool == haproxy.PoolWriter && s.Node == "db1" {
				return s.ConnUsed == 1
			}
		}
		return false
	})

	// db1 is demoted to a plain reader (not fenced): its writer session
	// must still go.
	b.apply(b.routing(2, "db2", nodes{"db1", "db3"}, nil))
	if !old.WaitClosed(3 * time.Second) {
		t.Fatal("old writer's session still open 3s after the writer changed")
	}
	if landed := b.landings(b.writerAddr, 5); !allOn(landed, "db2") {
		t.Fatalf("writer connections landed on %v, want all on db2", landed)
	}
	if got := b.snapshot().ready("writer"); !slices.Equal(got, []string{"db2"}) {
		t.Fatalf("ready writers %v, want [db2]", got)
	}
}

func TestFencedNodeLosesAllSessions(t *testing.T) {
	t.Parallel()
	b := newBed(t)
	r := b.routing(1, "db1", nodes{"db1"}, reasons{"db2": cluster.ReasonJoining, "db3": cluster.ReasonJoining})
	r.WriterIsReader = true
	b.apply(r)
	wc, err := b.dial(b.writerAddr)
	if err != nil || wc.Landed != "db1" {
		t.Fatalf("dial writer: %v %v", err, wc)
	}
	defer wc.Close()
	rc, err := b.dial(b.readerAddr)
	if err != nil || rc.Landed != "db1" {
		t.Fatalf("dial reader: %v %v", err, rc)
	}
	defer rc.Close()

	b.apply(b.routing(2, "db2", nodes{"db3"}, reasons{"db1": cluster.ReasonFenced}))
	if !wc.WaitClosed(3 * time.Second) {
		t.Fatal("fenced node's writer session survived")
	}
	if !rc.WaitClosed(3 * time.Second) {
		t.Fatal("fenced node's reader session survived")
	}
	if got := b.snapshot(); got["writer/db1"] != "maint" || got["reader/db1"] != "maint" || got["writer/db2"] != "ready" {
		t.Fatalf("state after fencing: %v", got)
	}
}

func TestDrainKeepsSessionsAndAvoidsNewOnes(t *testing.T) {
	t.Parallel()
	b := newBed(t)
	b.apply(b.routing(1, "db1", nodes{"db2", "db3"}, nil))
	rc, err := b.dial(b.readerAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	drained := cluster.NodeName(rc.Landed)
	other := map[cluster.NodeName]string{"db2": "db3", "db3": "db2"}[drained]
	if other == "" {
		t.Fatalf("reader session landed on %s", drained)
	}

	var readers nodes
	for _, n := range []cluster.NodeName{"db2", "db3"} {
		if n != drained {
			readers = append(readers, n)
		}
	}
	b.apply(b.routing(2, "db1", readers, reasons{drained: cluster.ReasonDraining}))

	if got := b.snapshot()["reader/"+string(drained)]; got != "drain" {
		t.Fatalf("drained node's reader status %q, want drain", got)
	}
	if landed := b.landings(b.readerAddr, 6); !allOn(landed, other) {
		t.Fatalf("new reader sessions landed on %v, want all on %s", landed, other)
	}
	for i := range 3 {
		if err := rc.Echo("still here", time.Second); err != nil {
			t.Fatalf("drained session broke (round %d): %v", i, err)
		}
	}
	var conn int
	for _, s := range b.observe().Servers {
		if s.Pool == haproxy.PoolReader && s.Node == drained {
			conn = s.ConnUsed
		}
	}
	if conn != 1 {
		t.Fatalf("drained node reports %d sessions, want 1", conn)
	}
}

// A planned switchover: first no writer with the old writer draining (its
// sessions keep working, no new writes are routed), then the new writer
// (the old writer's remaining sessions are cut).
func TestSwitchoverDrainsThenCuts(t *testing.T) {
	t.Parallel()
	b := newBed(t)
	b.apply(b.routing(1, "db1", nodes{"db2", "db3"}, nil))
	wc, err := b.dial(b.writerAddr)
	if err != nil || wc.Landed != "db1" {
		t.Fatalf("dial writer: %v %v", err, wc)
	}
	defer wc.Close()

	b.apply(b.routing(2, "", nodes{"db2", "db3"}, reasons{"db1": cluster.ReasonDraining}))
	if err := wc.Echo("in flight", time.Second); err != nil {
		t.Fatalf("draining writer's session broke: %v", err)
	}
	if got := b.snapshot(); got["writer/db1"] != "drain" || len(got.ready("writer")) != 0 {
		t.Fatalf("state during drain: %v", got)
	}
	if c, err := b.dial(b.writerAddr); err == nil {
		c.Close()
		t.Fatalf("a new write was routed to %s with no writer", c.Landed)
	}

	b.apply(b.routing(3, "db2", nodes{"db1", "db3"}, nil))
	if !wc.WaitClosed(3 * time.Second) {
		t.Fatal("old writer's session survived the new writer")
	}
	if landed := b.landings(b.writerAddr, 3); !allOn(landed, "db2") {
		t.Fatalf("writes landed on %v", landed)
	}
}

func TestApplyIsIdempotent(t *testing.T) {
	t.Parallel()
	b := newBed(t)
	r := b.routing(1, "db1", nodes{"db2", "db3"}, nil)
	b.apply(r)
	first := b.drv.Commands()
	if first.Set == 0 {
		t.Fatal("first apply sent no set commands")
	}
	b.apply(r)
	r.Topology.Epoch = 2
	b.apply(r)
	again := b.drv.Commands()
	if again.Set != first.Set || again.Shutdown != first.Shutdown {
		t.Fatalf("re-applying a matching routing sent commands: before %+v, after %+v", first, again)
	}
	if again.Show <= first.Show {
		t.Fatalf("re-apply did not read the state: before %+v, after %+v", first, again)
	}
	if b.drv.AppliedEpoch() != 2 {
		t.Fatalf("applied epoch %d, want 2", b.drv.AppliedEpoch())
	}
}

func TestRestartedHAProxyGetsReapplied(t *testing.T) {
	t.Parallel()
	b := newBed(t)
	r := b.routing(1, "db1", nodes{"db2", "db3"}, nil)
	b.apply(r)

	// Restart with nothing re-applying: the writer backend is empty.
	b.proc.Restart()
	if got := b.snapshot().ready("writer"); len(got) != 0 {
		t.Fatalf("restarted haproxy has ready writers %v before any apply", got)
	}
	if c, err := b.dial(b.writerAddr); err == nil {
		c.Close()
		t.Fatalf("restarted haproxy routed a write to %s before any apply", c.Landed)
	}

	rec := haproxy.NewReconciler(b.drv, haproxy.ReconcilerConfig{Interval: 100 * time.Millisecond}, testLogger(t))
	if err := rec.SetDesired(r); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = rec.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })

	eventually(t, 3*time.Second, "reconciler restores the writer", func() bool {
		return slices.Equal(b.snapshot().ready("writer"), []string{"db1"})
	})
	if !rec.Healthy() || rec.AppliedEpoch() != 1 {
		t.Fatalf("healthy=%v applied=%d err=%v", rec.Healthy(), rec.AppliedEpoch(), rec.Err())
	}

	// Kill: the reconciler turns unhealthy. Start again: it re-applies by
	// itself, and no sample ever shows a wrong ready writer.
	b.proc.Kill()
	eventually(t, 3*time.Second, "reconciler unhealthy with haproxy down", func() bool { return !rec.Healthy() })
	if !errors.Is(rec.Err(), haproxy.ErrSocket) {
		t.Fatalf("reconciler error %v, want ErrSocket", rec.Err())
	}
	b.proc.Relaunch()
	sawEmpty := false
	eventually(t, 3*time.Second, "reconciler re-applies after restart", func() bool {
		ready := b.snapshot().ready("writer")
		switch {
		case len(ready) == 0:
			sawEmpty = true
			return false
		case slices.Equal(ready, []string{"db1"}):
			return true
		default:
			t.Fatalf("restarted haproxy has ready writers %v", ready)
			return false
		}
	})
	t.Logf("observed the empty writer backend before re-apply: %v", sawEmpty)
	eventually(t, 2*time.Second, "reconciler healthy again", rec.Healthy)
	if landed := b.landings(b.writerAddr, 3); !allOn(landed, "db1") {
		t.Fatalf("writes landed on %v after restart", landed)
	}

	// A newer routing is picked up at once; an older one is refused.
	r2 := b.routing(2, "db2", nodes{"db1", "db3"}, nil)
	if err := rec.SetDesired(r2); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "new writer applied", func() bool { return rec.AppliedEpoch() == 2 })
	if err := rec.SetDesired(r); !errors.Is(err, haproxy.ErrStaleEpoch) {
		t.Fatalf("older epoch: got %v, want ErrStaleEpoch", err)
	}
}

// assertNamed checks that err names the proxy, wraps sentinel and, in its
// text, names each of names.
func assertNamed(t *testing.T, err, sentinel error, names ...string) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("got %v, want errors.Is %v", err, sentinel)
	}
	for _, n := range append([]string{proxyName}, names...) {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("error %q does not name %q", err, n)
		}
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	t.Parallel()
	b := newBed(t)
	good := b.routing(5, "db1", nodes{"db2", "db3"}, nil)
	b.apply(good)
	before := b.snapshot()
	change := b.routing(6, "db2", nodes{"db1", "db3"}, nil)
	ctx := context.Background()

	file := filepath.Join(b.dir, "regular-file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		cfg      haproxy.Config
		routing  proxy.Routing
		sentinel error
		names    []string
	}{
		{"socket missing", haproxy.Config{Socket: filepath.Join(b.dir, "missing.sock")}, change, haproxy.ErrSocket, []string{"missing.sock"}},
		{"socket is a regular file", haproxy.Config{Socket: file}, change, haproxy.ErrSocket, []string{"regular-file"}},
		{"socket is a directory", haproxy.Config{Socket: b.dir}, change, haproxy.ErrSocket, []string{b.dir}},
		{"socket without admin level", haproxy.Config{Socket: b.userSocket}, change, haproxy.ErrPermissionDenied, []string{"dbha_writer/db1"}},
		{"writer backend missing", haproxy.Config{WriterBackend: "no_such_writers"}, change, haproxy.ErrNoSuchBackend, []string{"no_such_writers"}},
		{"reader backend missing", haproxy.Config{ReaderBackend: "no_such_readers"}, change, haproxy.ErrNoSuchBackend, []string{"no_such_readers"}},
		{"server missing", haproxy.Config{}, func() proxy.Routing {
			r := b.routing(6, "db2", nodes{"db1", "db3", "db9"}, nil)
			r.Backends["db9"] = proxy.Backend{Host: "127.0.0.1", Port: 9}
			return r
		}(), haproxy.ErrNoSuchServer, []string{"db9", "dbha_writer", "dbha_reader"}},
		{"address mismatch", haproxy.Config{}, func() proxy.Routing {
			r := b.routing(6, "db2", nodes{"db1", "db3"}, nil)
			r.Backends["db2"] = proxy.Backend{Host: "127.0.0.2", Port: 3306}
			return r
		}(), haproxy.ErrAddrMismatch, []string{"db2", "127.0.0.2:3306"}},
		{"inconsistent topology", haproxy.Config{}, b.routing(6, "db2", nodes{"db1"}, reasons{"db2": cluster.ReasonFenced}), haproxy.ErrInvalidRouting, []string{"db2"}},
		{"missing backend address", haproxy.Config{}, func() proxy.Routing {
			r := b.routing(6, "db2", nodes{"db1", "db3"}, nil)
			delete(r.Backends, "db3")
			return r
		}(), haproxy.ErrInvalidRouting, []string{"db3"}},
		{"node name with blanks", haproxy.Config{}, func() proxy.Routing {
			r := b.routing(6, "db2", nodes{"db1", "db3", "x y"}, nil)
			r.Backends["x y"] = proxy.Backend{Host: "127.0.0.1", Port: 9}
			return r
		}(), haproxy.ErrInvalidRouting, []string{`"x y"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := b.driver(tc.cfg)
			tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			err := d.Apply(tctx, tc.routing)
			t.Logf("error: %v", err)
			assertNamed(t, err, tc.sentinel, tc.names...)
			if got := b.snapshot(); !maps.Equal(got, before) {
				t.Fatalf("state changed by a failed apply:\nbefore %v\nafter  %v", before, got)
			}
			if d.AppliedEpoch() != 0 {
				t.Fatalf("failed apply recorded epoch %d", d.AppliedEpoch())
			}
		})
	}

	t.Run("permission denied is a CommandError naming the server", func(t *testing.T) {
		err := b.driver(haproxy.Config{Socket: b.userSocket}).Apply(ctx, change)
		var ce *haproxy.CommandError
		if !errors.As(err, &ce) || ce.Proxy != proxyName || ce.Backend != "dbha_writer" || ce.Server != "db1" {
			t.Fatalf("got %#v (%v), want a CommandError for dbha_writer/db1 on %s", ce, err, proxyName)
		}
	})
	t.Run("observe errors name the proxy", func(t *testing.T) {
		_, err := b.driver(haproxy.Config{Socket: filepath.Join(b.dir, "missing.sock")}).Observe(ctx)
		assertNamed(t, err, haproxy.ErrSocket)
		_, err = b.driver(haproxy.Config{ReaderBackend: "nope"}).Observe(ctx)
		assertNamed(t, err, haproxy.ErrNoSuchBackend, "nope")
	})
	t.Run("stale epoch", func(t *testing.T) {
		stale := good
		stale.Topology.Epoch = 4
		assertNamed(t, b.drv.Apply(ctx, stale), haproxy.ErrStaleEpoch, "epoch 4")
		if got := b.snapshot(); !maps.Equal(got, before) {
			t.Fatalf("stale apply changed state: %v", got)
		}
	})
}

// HAProxy's own error answers, straight from the Runtime API.
func TestRuntimeErrorAnswers(t *testing.T) {
	t.Parallel()
	b := newBed(t)
	for cmd, want := range map[string]string{
		"set server dbha_writer/db9 state ready":   "No such server.",
		"set server nosuch/db1 state ready":        "No such backend.",
		"show servers state nosuch":                "Can't find backend.",
		"shutdown sessions server dbha_writer/db9": "No such server.",
	} {
		got, err := haproxytest.Exec(filepath.Join(b.dir, "admin.sock"), cmd)
		if err != nil || strings.TrimSpace(got) != want {
			t.Errorf("%s: got %q, %v; the driver's error table expects %q", cmd, got, err, want)
		}
	}
	got, err := haproxytest.Exec(b.userSocket, "set server dbha_writer/db1 state ready")
	if err != nil || strings.TrimSpace(got) != "Permission denied" {
		t.Errorf("user-level set: got %q, %v", got, err)
	}
}
