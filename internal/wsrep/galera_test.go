package wsrep

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/sandbox"
)

// TestGalera runs the poller and the prober against a real one-node Galera
// cluster in the sandbox, from the proxy node's namespace. The subtests
// share one sandbox and run in order; the last one kills mariadbd.
func TestGalera(t *testing.T) {
	requireRoot(t)
	s := sandbox.Start(t, sandbox.Options{DBNodes: 1, Proxies: 1})
	ctx := context.Background()
	db, err := s.Node("db1")
	if err != nil {
		t.Fatal(err)
	}
	px, err := s.Node("px1")
	if err != nil {
		t.Fatal(err)
	}
	dial := DialFunc(sandbox.DialContextIn(px.Namespace))
	mysqlAddr := net.JoinHostPort(db.Addr, "3306")

	// Production interval and timeout.
	_, rec := startPoller(t, PollerConfig{Node: "db1", Addr: mysqlAddr, User: sandbox.MonitorUser, Password: sandbox.MonitorPassword,
		Interval: DefaultInterval, Timeout: DefaultTimeout}, PollerDeps{Dial: dial})
	garbage := garbageListenerIn(t, px.Namespace, net.JoinHostPort(px.Addr, "0"))
	prober, err := NewProber(ProberConfig{Targets: []Target{
		{Node: "db1", Addr: mysqlAddr},
		{Node: "closed", Addr: net.JoinHostPort(db.Addr, "3307")},
		{Node: "garbage", Addr: garbage},
	}}, ProberDeps{Dial: dial, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	sql := func(t *testing.T, q string) {
		t.Helper()
		if _, err := s.Query(ctx, "db1", q); err != nil {
			t.Fatal(err)
		}
	}
	next := 0 // index of the first observation a subtest may look at

	t.Run("SyncedOK", func(t *testing.T) {
		next = rec.waitFor(t, next, 10*time.Second, "ok x3", func(o cluster.Observation) bool {
			return o.Health == cluster.HealthOK && o.Streak >= 3
		})
		o := rec.all()[next]
		want, err := s.Wsrep(ctx, "db1")
		if err != nil {
			t.Fatal(err)
		}
		w := o.Wsrep
		if w == nil || w.LocalState != cluster.WsrepSynced || w.ClusterStatus != cluster.WsrepPrimary || w.ClusterSize != 1 ||
			w.ClusterStateUUID != want.ClusterStateUUID || !w.Ready || !w.Connected || w.RejectQueries != cluster.RejectNone {
			t.Errorf("status %+v: want Synced, Primary, size 1, ready, uuid %s", w, want.ClusterStateUUID)
		}
	})

	t.Run("Desync", func(t *testing.T) {
		sql(t, "SET GLOBAL wsrep_desync=ON")
		next = rec.waitFor(t, next, 5*time.Second, "desynced x2", func(o cluster.Observation) bool {
			return o.Health == cluster.HealthDesynced && o.Streak >= 2
		})
		if w := rec.all()[next].Wsrep; !w.Desync || w.LocalState != cluster.WsrepDonor {
			t.Errorf("desynced status %+v: want desync ON in Donor/Desynced", w)
		}
		sql(t, "SET GLOBAL wsrep_desync=OFF")
		next = rec.waitFor(t, next, 5*time.Second, "ok", func(o cluster.Observation) bool { return o.Health == cluster.HealthOK })
		if o := rec.all()[next]; o.Streak != 1 {
			t.Errorf("first ok after desync: streak %d, want 1", o.Streak)
		}
		next = rec.waitFor(t, next, 5*time.Second, "ok x3", func(o cluster.Observation) bool {
			return o.Health == cluster.HealthOK && o.Streak >= 3
		})
	})

	t.Run("ReadOnlyAndRejectQueries", func(t *testing.T) {
		sql(t, "SET GLOBAL read_only=ON")
		next = rec.waitFor(t, next, 5*time.Second, "not_ready (read_only)", func(o cluster.Observation) bool {
			return o.Health == cluster.HealthNotReady && o.Wsrep.ReadOnly
		})
		sql(t, "SET GLOBAL read_only=OFF")
		next = rec.waitFor(t, next, 5*time.Second, "ok", func(o cluster.Observation) bool { return o.Health == cluster.HealthOK })
		// The monitor user has SUPER, so its own queries still pass.
		sql(t, "SET GLOBAL wsrep_reject_queries=ALL")
		next = rec.waitFor(t, next, 5*time.Second, "not_ready (reject_queries)", func(o cluster.Observation) bool {
			return o.Health == cluster.HealthNotReady && o.Wsrep.RejectQueries == "ALL"
		})
		sql(t, "SET GLOBAL wsrep_reject_queries=NONE")
		next = rec.waitFor(t, next, 5*time.Second, "ok", func(o cluster.Observation) bool { return o.Health == cluster.HealthOK })
	})

	t.Run("ProbeLive", func(t *testing.T) {
		res := prober.Probe(ctx)
		want := map[cluster.NodeName]bool{"db1": true, "closed": false, "garbage": false}
		for _, r := range res {
			if r.Reachable != want[r.Node] || (r.Error == "") != want[r.Node] {
				t.Errorf("probe %+v: want reachable %v (an error only when unreachable)", r, want[r.Node])
			}
		}
	})

	// Greeting-only probes count as aborted connects; with skip-name-resolve
	// (as the sandbox and docs recommend) they never get the prober's host
	// blocked, even far past max_connect_errors.
	t.Run("ProbesDoNotBlockHost", func(t *testing.T) {
		sql(t, "SET GLOBAL max_connect_errors=2")
		t.Cleanup(func() { _, _ = s.Query(ctx, "db1", "SET GLOBAL max_connect_errors=100") })
		for range 5 {
			if r := prober.Probe(ctx)[0]; !r.Reachable || r.Error != "" {
				t.Fatalf("probe %+v: want db1 reachable", r)
			}
		}
		p, err := NewPoller(PollerConfig{Node: "db1", Addr: mysqlAddr, User: sandbox.MonitorUser, Password: sandbox.MonitorPassword},
			PollerDeps{Dial: dial})
		if err != nil {
			t.Fatal(err)
		}
		fresh, err := p.open()
		if err != nil {
			t.Fatal(err)
		}
		defer fresh.Close()
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := Read(rctx, fresh); err != nil {
			t.Errorf("new login from the prober's host after 5 probes: %v", err)
		}
	})

	t.Run("KillMariaDB", func(t *testing.T) {
		if err := s.KillMariaDB("db1"); err != nil {
			t.Fatal(err)
		}
		next = rec.waitFor(t, next, 10*time.Second, "unreachable x3", func(o cluster.Observation) bool {
			return o.Health == cluster.HealthUnreachable && o.Streak >= 3
		})
		if o := rec.all()[next]; o.Reachable || o.Error == "" || o.Wsrep != nil {
			t.Errorf("observation %+v: want unreachable with an error and no status", o)
		}
		res := prober.Probe(ctx)
		if res[0].Node != "db1" || res[0].Reachable || res[0].Error == "" {
			t.Errorf("probe after SIGKILL %+v: want db1 unreachable with an error", res[0])
		}
	})

	checkStreaks(t, rec.all())
}

// garbageListenerIn listens inside a namespace and answers every connection
// with an HTTP error, then closes it. It returns the listening address.
func garbageListenerIn(t *testing.T, ns, addr string) string {
	t.Helper()
	ln, err := sandbox.ListenIn(ns, addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte(strings.Repeat("HTTP/1.1 400 Bad Request\r\n", 2)))
			_ = c.Close()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
	})
	return ln.Addr().String()
}
