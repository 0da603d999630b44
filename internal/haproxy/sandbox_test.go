package haproxy_test

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dbha/dbha/internal/api"
	"github.com/dbha/dbha/internal/api/apitest"
	"github.com/dbha/dbha/internal/api/client"
	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/sandbox"
)

// Issue 5's sandbox acceptance: a client writes through px1's writer
// frontend while the writer's mariadbd is SIGKILLed. The figure is the
// write-unavailability window (last acknowledged write before the kill to
// the first acknowledged write after it, on the new writer), for HAProxy
// driven by dbha and for the common HAProxy-only setup (`option
// mysql-check`, db1 active, the others backup, inter 2000 fall 3). Only
// correctness is asserted (writes resume, no acknowledged write is lost),
// never speed.

const (
	killRuns = 5
	// Hang guards, not expectations.
	resumeGuard  = 60 * time.Second
	syncedGuard  = 2 * time.Minute
	recoverGuard = 2 * time.Minute
	// workloadPause is the pause between write attempts (a workload's
	// pace, not a wait for a condition).
	workloadPause = 50 * time.Millisecond
	// acksAround is how many acknowledged writes each run wants before the
	// kill and after the failover.
	acksAround = 10
)

func TestSandboxWriteUnavailability(t *testing.T) {
	if testing.Short() {
		t.Skip("sandbox test: brings up two Galera sandboxes")
	}
	sandbox.RequireRoot(t)
	var dbha, baseline []time.Duration
	t.Run("dbha", func(t *testing.T) {
		s := sandbox.Start(t, sandbox.Options{DBNodes: 3, Proxies: 2, AgentBinary: sandbox.BuildAgent(t)})
		dbha = measureWindows(t, s, dbhaRouting(t, s))
	})
	t.Run("haproxy-mysql-check", func(t *testing.T) {
		s := sandbox.Start(t, sandbox.Options{DBNodes: 3, Proxies: 2, HAProxyMySQLCheck: true})
		baseline = measureWindows(t, s, mysqlCheckRouting(t, s))
	})
	x, y := sandbox.Median(dbha), sandbox.Median(baseline)
	if x > 0 {
		t.Logf("figure: write-unavailability window dbha median %s (runs %s)", x, sandbox.RoundAll(dbha))
	}
	if y > 0 {
		t.Logf("figure: write-unavailability window haproxy mysql-check (inter 2000 fall 3) median %s (runs %s)", y, sandbox.RoundAll(baseline))
	}
	if x > 0 && y > 0 {
		t.Logf("figure: ratio Y/X = %.1f", float64(y)/float64(x))
	}
}

// routing is what differs between the two setups: who the writer is, and
// how to wait until the killed node is back in its place.
type routing struct {
	// writer returns the node writes go to now.
	writer func(t *testing.T) cluster.NodeName
	// failedOver checks, once writes resumed, that they resumed on the node
	// this setup routes to.
	failedOver func(t *testing.T, victim, landed cluster.NodeName)
	// settled waits until the killed and restarted node is back in its
	// place (a reader for dbha, the active writer for mysql-check).
	settled func(t *testing.T, victim cluster.NodeName)
}

func dbhaRouting(t *testing.T, s *sandbox.Sandbox) routing {
	c, err := client.New(s.Endpoint("px1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	status := func() (api.Status, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		return c.Status(ctx)
	}
	return routing{
		writer: func(t *testing.T) cluster.NodeName {
			var st api.Status
			sandbox.Eventually(t, recoverGuard, "3 Synced nodes, a writer, proxies applied", func() error {
				var err error
				if st, err = status(); err != nil {
					return err
				}
				return apitest.Settled(st, 3, 2)
			})
			return st.Topology.Writer
		},
		failedOver: func(t *testing.T, victim, landed cluster.NodeName) {
			var st api.Status
			sandbox.Eventually(t, resumeGuard, "a new writer committed", func() error {
				var err error
				if st, err = status(); err != nil {
					return err
				}
				if st.Topology.Writer == "" || st.Topology.Writer == victim {
					return fmt.Errorf("writer %q at epoch %d", st.Topology.Writer, st.Topology.Epoch)
				}
				return nil
			})
			if st.Topology.Writer != landed {
				t.Errorf("writes after the failover landed on %s, but the committed writer is %s", landed, st.Topology.Writer)
			}
		},
		settled: func(t *testing.T, victim cluster.NodeName) {
			sandbox.Eventually(t, recoverGuard, string(victim)+" back as a reader", func() error {
				st, err := status()
				if err != nil {
					return err
				}
				if !st.Topology.IsReader(victim) {
					return fmt.Errorf("%s not a reader at epoch %d", victim, st.Topology.Epoch)
				}
				return apitest.Settled(st, 3, 2)
			})
		},
	}
}

func mysqlCheckRouting(t *testing.T, s *sandbox.Sandbox) routing {
	dbs := s.Nodes(sandbox.KindDB)
	active, firstBackup := dbs[0].Name, dbs[1].Name
	db := proxyDB(t, s)
	return routing{
		writer: func(*testing.T) cluster.NodeName { return active },
		failedOver: func(t *testing.T, _, landed cluster.NodeName) {
			// Without `option allbackups` HAProxy uses the first backup.
			if landed != firstBackup {
				t.Errorf("writes after the failover landed on %s; want the first backup %s", landed, firstBackup)
			}
		},
		settled: func(t *testing.T, victim cluster.NodeName) {
			// mysql-check brings the active server back after rise 2 once
			// it accepts logins (Synced or not; the workload is stopped).
			sandbox.Eventually(t, recoverGuard, "writes routed to "+string(victim)+" again", func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				defer cancel()
				var node string
				if err := db.QueryRowContext(ctx, "SELECT @@wsrep_node_name").Scan(&node); err != nil {
					return err
				}
				if cluster.NodeName(node) != victim {
					return fmt.Errorf("writer frontend reaches %s", node)
				}
				return nil
			})
		},
	}
}

// measureWindows runs killRuns kills of the current writer and returns
// each run's write-unavailability window.
func measureWindows(t *testing.T, s *sandbox.Sandbox, r routing) []time.Duration {
	t.Helper()
	ctx := context.Background()
	if _, err := s.Query(ctx, "db1", "CREATE TABLE IF NOT EXISTS app.ha (id BIGINT PRIMARY KEY, run INT NOT NULL, node VARCHAR(16) NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	db := proxyDB(t, s)
	var windows []time.Duration
	for run := 1; run <= killRuns; run++ {
		victim := r.writer(t)
		w := startWorkload(t, db, run)
		sandbox.Eventually(t, resumeGuard, "writes acknowledged before the kill", func() error {
			if n := len(w.since(time.Time{}, "")); n < acksAround {
				return fmt.Errorf("%d acknowledged writes", n)
			}
			return nil
		})
		killed := time.Now()
		if err := s.KillMariaDB(victim); err != nil {
			t.Fatal(err)
		}
		sandbox.Eventually(t, resumeGuard, "writes acknowledged after the kill", func() error {
			if n := len(w.since(killed, victim)); n < acksAround {
				return fmt.Errorf("%d acknowledged writes on a node other than %s", n, victim)
			}
			return nil
		})
		acks := w.stop()
		window, landed, err := unavailability(acks, killed, victim)
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		for _, a := range acks {
			if a.at.After(killed) && a.node != victim && a.node != landed {
				t.Errorf("run %d: write %d landed on %s after the failover to %s", run, a.id, a.node, landed)
			}
		}
		r.failedOver(t, victim, landed)
		t.Logf("run %d: killed writer %s; writes resumed on %s after %s (%d acknowledged, %d failed attempts)",
			run, victim, landed, window.Round(time.Millisecond), len(acks), w.failures())
		windows = append(windows, window)

		if err := s.WaitGone(ctx, victim, "mariadbd", 30*time.Second); err != nil {
			t.Fatal(err)
		}
		if err := s.RestartMariaDB(ctx, victim); err != nil {
			t.Fatal(err)
		}
		if err := s.WaitSynced(ctx, victim, syncedGuard); err != nil {
			t.Fatal(err)
		}
		assertNoLostWrite(t, s, run, acks)
		r.settled(t, victim)
	}
	return windows
}

// unavailability returns the time from the last write acknowledged before
// the kill to the first acknowledged after it by another node, and that
// node.
func unavailability(acks []ack, killed time.Time, victim cluster.NodeName) (time.Duration, cluster.NodeName, error) {
	var last, first *ack
	for i := range acks {
		a := &acks[i]
		if !a.at.After(killed) {
			last = a
		} else if a.node != victim && first == nil {
			first = a
		}
	}
	if last == nil || first == nil {
		return 0, "", fmt.Errorf("no acknowledged write on both sides of the kill (before %v, after %v)", last != nil, first != nil)
	}
	if last.node != victim {
		return 0, "", fmt.Errorf("write %d before the kill landed on %s, not on the writer %s", last.id, last.node, victim)
	}
	return first.at.Sub(last.at), first.node, nil
}

// assertNoLostWrite checks that every acknowledged id of the run is on
// every Synced DB node, recorded by the node the client saw. Galera applies
// on the other nodes shortly after the commit, hence the polling.
func assertNoLostWrite(t *testing.T, s *sandbox.Sandbox, run int, acks []ack) {
	t.Helper()
	ctx := context.Background()
	for _, n := range s.Nodes(sandbox.KindDB) {
		w, err := s.Wsrep(ctx, n.Name)
		if err != nil || w.LocalState != cluster.WsrepSynced {
			t.Errorf("run %d: %s not Synced (%v); its rows are not checked", run, n.Name, err)
			continue
		}
		sandbox.Eventually(t, 30*time.Second, fmt.Sprintf("run %d: every acknowledged write on %s", run, n.Name), func() error {
			rows, err := s.Query(ctx, n.Name, "SELECT id, node FROM app.ha WHERE run = ?", run)
			if err != nil {
				return err
			}
			have := make(map[string]string, len(rows))
			for _, r := range rows {
				have[r[0]] = r[1]
			}
			var missing []int64
			for _, a := range acks {
				node, ok := have[fmt.Sprint(a.id)]
				if !ok {
					missing = append(missing, a.id)
				} else if cluster.NodeName(node) != a.node {
					t.Fatalf("run %d: write %d acknowledged by %s is recorded as written on %s", run, a.id, a.node, node)
				}
			}
			if len(missing) > 0 {
				return fmt.Errorf("%d of %d acknowledged writes missing, first %v", len(missing), len(acks), missing[:min(5, len(missing))])
			}
			return nil
		})
	}
}

// ack is one acknowledged write.
type ack struct {
	id   int64
	at   time.Time
	node cluster.NodeName // the node the connection reached
}

// workload writes one short autocommit INSERT at a time through the
// writer frontend, re-connecting after any error.
type workload struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	acks   []ack
	failed int
}

func startWorkload(t *testing.T, db *sql.DB, run int) *workload {
	ctx, cancel := context.WithCancel(context.Background())
	w := &workload{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		w.loop(ctx, db, run)
	}()
	t.Cleanup(func() { w.stop() })
	return w
}

func (w *workload) loop(ctx context.Context, db *sql.DB, run int) {
	var conn *sql.Conn
	var node cluster.NodeName
	drop := func() {
		if conn != nil {
			// ErrBadConn makes database/sql discard the connection.
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			conn.Close()
			conn = nil
		}
	}
	defer drop()
	id := int64(run) * 1_000_000
	for {
		if conn == nil {
			var err error
			if conn, node, err = connect(ctx, db); err != nil {
				w.fail()
				conn = nil
			}
		}
		if conn != nil {
			id++
			ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := conn.ExecContext(ectx, "INSERT INTO app.ha (id, run, node) VALUES (?, ?, @@wsrep_node_name)", id, run)
			cancel()
			if err == nil {
				w.mu.Lock()
				w.acks = append(w.acks, ack{id: id, at: time.Now(), node: node})
				w.mu.Unlock()
			} else {
				w.fail()
				drop()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(workloadPause):
		}
	}
}

// connect opens a fresh connection and asks which node it reached: one
// client connection through HAProxy stays on one server.
func connect(ctx context.Context, db *sql.DB) (*sql.Conn, cluster.NodeName, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := db.Conn(cctx)
	if err != nil {
		return nil, "", err
	}
	var node string
	if err := conn.QueryRowContext(cctx, "SELECT @@wsrep_node_name").Scan(&node); err != nil {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		conn.Close()
		return nil, "", err
	}
	return conn, cluster.NodeName(node), nil
}

func (w *workload) fail() {
	w.mu.Lock()
	w.failed++
	w.mu.Unlock()
}

func (w *workload) failures() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failed
}

// since returns the acks after t, on nodes other than not.
func (w *workload) since(t time.Time, not cluster.NodeName) []ack {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []ack
	for _, a := range w.acks {
		if a.at.After(t) && a.node != not {
			out = append(out, a)
		}
	}
	return out
}

// stop ends the workload, waits for it and returns every ack.
func (w *workload) stop() []ack {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.acks)
}

// proxyDB opens the app database from the client namespace through px1's
// writer frontend.
func proxyDB(t *testing.T, s *sandbox.Sandbox) *sql.DB {
	t.Helper()
	client, err := s.Node("client")
	if err != nil {
		t.Fatal(err)
	}
	dial := sandbox.DialContextIn(client.Namespace)
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.DBName = sandbox.AppUser, sandbox.AppPassword, sandbox.AppDatabase
	cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(sandbox.ProxyAddr(1), fmt.Sprint(sandbox.WriterPort))
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) { return dial(ctx, network, addr) }
	cfg.Timeout = 3 * time.Second
	cfg.ReadTimeout, cfg.WriteTimeout = 15*time.Second, 15*time.Second
	// Failed attempts are counted by the workload; the driver's own
	// "unexpected EOF" lines are noise.
	cfg.Logger = &mysql.NopLogger{}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	// A connection through HAProxy stays on the server it reached: keep
	// none, so that every new connection is routed afresh.
	db.SetMaxIdleConns(0)
	t.Cleanup(func() { db.Close() })
	return db
}
