package sandbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dbha/dbha/internal/cluster"
)

// clientDB opens a MySQL connection from the client namespace to addr.
func clientDB(t *testing.T, s *Sandbox, addr string) *sql.DB {
	t.Helper()
	client, err := s.Node("client")
	if err != nil {
		t.Fatal(err)
	}
	netName := "sandbox-" + client.Namespace
	mysql.RegisterDialContext(netName, func(ctx context.Context, addr string) (net.Conn, error) {
		return DialContextIn(client.Namespace)(ctx, "tcp", addr)
	})
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.DBName = AppUser, AppPassword, AppDatabase
	cfg.Net, cfg.Addr = netName, addr
	cfg.Timeout = 5 * time.Second
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	return db
}

func TestSandbox(t *testing.T) {
	s := Start(t, Options{DBNodes: 3, Proxies: 2})
	ctx := context.Background()

	t.Run("AllSynced", func(t *testing.T) {
		for _, n := range s.Nodes(KindDB) {
			w, err := s.Wsrep(ctx, n.Name)
			if err != nil {
				t.Fatal(err)
			}
			if w.LocalState != cluster.WsrepSynced || w.ClusterSize != 3 || w.ClusterStatus != cluster.WsrepPrimary {
				t.Errorf("%s: state %s size %d status %s; want Synced 3 Primary", n.Name, w.LocalStateComment, w.ClusterSize, w.ClusterStatus)
			}
		}
		for _, st := range s.Status(ctx) {
			if st.Kind == KindProxy && !st.Procs["haproxy"] {
				t.Errorf("%s: haproxy not running", st.Name)
			}
		}
	})

	t.Run("WriteThroughHAProxyReadOnEveryNode", func(t *testing.T) {
		for _, px := range s.Nodes(KindProxy) {
			db := clientDB(t, s, fmt.Sprintf("%s:%d", px.Addr, WriterPort))
			if _, err := db.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS t (id INT PRIMARY KEY, via VARCHAR(16))"); err != nil {
				t.Fatalf("create through %s: %v", px.Name, err)
			}
			for i := 0; i < 20; i++ {
				id := i
				if px.Name == "px2" {
					id += 100
				}
				if _, err := db.ExecContext(ctx, "INSERT INTO t VALUES (?, ?)", id, string(px.Name)); err != nil {
					t.Fatalf("insert through %s: %v", px.Name, err)
				}
			}
		}
		for _, n := range s.Nodes(KindDB) {
			rows, err := s.Query(ctx, n.Name, "SELECT COUNT(*), COUNT(DISTINCT via) FROM app.t")
			if err != nil {
				t.Fatal(err)
			}
			if rows[0][0] != "40" || rows[0][1] != "2" {
				t.Errorf("%s: count %v; want 40 rows through 2 proxies", n.Name, rows[0])
			}
		}
	})

	t.Run("KillRestartRejoinIST", func(t *testing.T) {
		victim := cluster.NodeName("db3")
		killed := time.Now()
		if err := s.KillMariaDB(victim); err != nil {
			t.Fatal(err)
		}
		if err := s.WaitGone(ctx, victim, "mariadbd", 30*time.Second); err != nil {
			t.Fatal(err)
		}
		if err := s.WaitEvicted(ctx, victim, time.Minute); err != nil {
			t.Fatal(err)
		}
		t.Logf("figure: survivors evicted SIGKILLed %s after %s", victim, time.Since(killed).Round(10*time.Millisecond))
		// Writes while it is down are what IST must carry.
		if _, err := s.Query(ctx, "db1", "INSERT INTO app.t VALUES (1000, 'during')"); err != nil {
			t.Fatal(err)
		}
		if err := s.RestartMariaDB(ctx, victim); err != nil {
			t.Fatal(err)
		}
		if err := s.WaitSynced(ctx, victim, 2*time.Minute); err != nil {
			t.Fatal(err)
		}
		rows, err := s.Query(ctx, victim, "SELECT via FROM app.t WHERE id = 1000")
		if err != nil || len(rows) != 1 || rows[0][0] != "during" {
			t.Fatalf("row written while %s was down: %v %v", victim, rows, err)
		}
		log, err := os.ReadFile(pathsFor(s.State.Dir, victim).Dir + "/error.log")
		if err != nil {
			t.Fatal(err)
		}
		// The restart from the recovered position must be an IST.
		if !strings.Contains(string(log), "IST received") {
			t.Errorf("%s rejoined without IST; error.log tail:\n%s", victim, tail(pathsFor(s.State.Dir, victim).Dir+"/error.log", 20))
		}
	})
}

// TestSandboxCleanupAfterFailure runs a child test that fails on purpose
// halfway through a sandbox's life, then checks that nothing of that run is
// left: no namespace, no process, no run dir.
func TestSandboxCleanupAfterFailure(t *testing.T) {
	RequireRoot(t)
	if os.Getenv("DBHA_SANDBOX_FAIL_CHILD") != "" {
		t.Skip("child mode")
	}
	prefix := fmt.Sprintf("dbhaf%04x", os.Getpid()%0x10000)
	dir := tempDir(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestSandboxFailsHalfway$", "-test.v")
	cmd.Env = append(os.Environ(), "DBHA_SANDBOX_FAIL_CHILD="+prefix, "DBHA_SANDBOX_FAIL_DIR="+dir)
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	if !errors.As(err, &exitErr) {
		t.Fatalf("child test should fail on purpose; err=%v output:\n%s", err, out)
	}
	if !strings.Contains(string(out), "failing on purpose") {
		t.Fatalf("child did not reach the failure point:\n%s", out)
	}
	assertNothingLeft(t, prefix, dir)
}

// TestSandboxFailsHalfway is the child of TestSandboxCleanupAfterFailure.
func TestSandboxFailsHalfway(t *testing.T) {
	prefix := os.Getenv("DBHA_SANDBOX_FAIL_CHILD")
	if prefix == "" {
		t.Skip("runs only as the child of TestSandboxCleanupAfterFailure")
	}
	s := Start(t, Options{DBNodes: 1, Proxies: 1, Prefix: prefix, Dir: os.Getenv("DBHA_SANDBOX_FAIL_DIR") + "/run"})
	if _, err := s.Wsrep(context.Background(), "db1"); err != nil {
		t.Fatal(err)
	}
	t.Fatal("failing on purpose with the sandbox up")
}

// TestUpFailureTearsDown cancels Up while Galera is starting: Up must tear
// down what it built before it returns.
func TestUpFailureTearsDown(t *testing.T) {
	RequireRoot(t)
	prefix := fmt.Sprintf("dbhac%04x", os.Getpid()%0x10000)
	dir := tempDir(t) + "/run"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Cancel as soon as the first mariadbd is started.
	go func() {
		for ctx.Err() == nil {
			if s, err := Load(dir); err == nil {
				if n, err := s.Node("db1"); err == nil && n.Procs["mariadbd"].PID > 0 {
					cancel()
					return
				}
			}
			time.Sleep(20 * time.Millisecond) // polling another process's file
		}
	}()
	_, err := Up(ctx, Options{DBNodes: 3, Proxies: 1, Prefix: prefix, Dir: dir})
	if err == nil {
		t.Fatal("Up succeeded although its context was cancelled")
	}
	assertNothingLeft(t, prefix, dir)
}

func TestOptionsValidate(t *testing.T) {
	cases := []struct {
		o       Options
		wantErr bool
		warn    bool
	}{
		{Options{DBNodes: 3, Proxies: 2}, false, false},
		{Options{DBNodes: 0, Proxies: 2}, true, false},
		{Options{DBNodes: 2, Proxies: 2}, false, true},
		{Options{DBNodes: 3, Proxies: 0}, true, false},
		{Options{DBNodes: 3, Proxies: 1}, false, true},
		{Options{DBNodes: 10, Proxies: 2}, true, false},
		{Options{DBNodes: 3, Proxies: 2, Prefix: "Bad-Prefix"}, true, false},
	}
	for _, c := range cases {
		warn, err := c.o.Validate()
		if (err != nil) != c.wantErr || (len(warn) > 0) != c.warn {
			t.Errorf("%+v: err=%v warnings=%v; want err %v, warning %v", c.o, err, warn, c.wantErr, c.warn)
		}
	}
}

// tempDir is like t.TempDir but searchable by user mysql.
func tempDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "dbha-sandbox-test-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func assertNothingLeft(t *testing.T, prefix, dir string) {
	t.Helper()
	out, _ := exec.Command("ip", "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, prefix+"-") {
			t.Errorf("namespace left behind: %s", line)
		}
	}
	for _, pat := range []string{dir, prefix} {
		if out, err := exec.Command("pgrep", "-af", pat).Output(); err == nil && len(strings.TrimSpace(string(out))) > 0 {
			for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if !strings.Contains(l, "-test.") {
					t.Errorf("process left behind: %s", l)
				}
			}
		}
	}
	if _, err := os.Stat(dir + "/" + StateFile); err == nil {
		t.Errorf("state file left behind in %s", dir)
	}
}
