package proxysql_test

// The contract suite describes what the driver does to "a ProxySQL". Every
// case runs against the stand-in (proxysqltest) and, when
// DBHA_TEST_PROXYSQL_ADMIN=host:port is set (with DBHA_TEST_PROXYSQL_USER /
// DBHA_TEST_PROXYSQL_PASSWORD, default admin/admin), against that real
// ProxySQL too. On a real ProxySQL the suite uses hostgroups 9010 (writer),
// 9020 (reader) and 9030 (someone else's), clears them before and after
// each case, and never touches other rows. Cases that need fault injection
// skip on a real ProxySQL with a message.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"go.uber.org/goleak"

	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/proxy"
	"github.com/dbha/dbha/internal/proxysql"
	"github.com/dbha/dbha/internal/proxysql/proxysqltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// target is "a ProxySQL" the suite runs against.
type target struct {
	name        string
	addr        string
	user, pass  string
	stand       *proxysqltest.Server // nil on a real ProxySQL
	whg, rhg    int
	otherHG     int
	admin       *sql.DB // a pool, so it reconnects after stand-in restarts
	backendHost map[cluster.NodeName]proxy.Backend
}

var nodes = []cluster.NodeName{"db1", "db2", "db3", "db4"}

func forEachTarget(t *testing.T, standinOnly bool, run func(t *testing.T, tg *target)) {
	t.Run("standin", func(t *testing.T) {
		s := proxysqltest.Start(t)
		tg := &target{name: "standin", addr: s.Addr(), user: s.User(), pass: s.Password(), stand: s, whg: 10, rhg: 20, otherHG: 30}
		tg.init(t)
		run(t, tg)
	})
	t.Run("real", func(t *testing.T) {
		addr := os.Getenv("DBHA_TEST_PROXYSQL_ADMIN")
		if addr == "" {
			t.Skip("DBHA_TEST_PROXYSQL_ADMIN not set: no real ProxySQL to run the contract against")
		}
		if standinOnly {
			t.Skip("needs the stand-in's fault injection; skipped on a real ProxySQL")
		}
		user, pass := os.Getenv("DBHA_TEST_PROXYSQL_USER"), os.Getenv("DBHA_TEST_PROXYSQL_PASSWORD")
		if user == "" {
			user, pass = "admin", "admin"
		}
		tg := &target{name: "real", addr: addr, user: user, pass: pass, whg: 9010, rhg: 9020, otherHG: 9030}
		tg.init(t)
		tg.resetReal(t)
		t.Cleanup(func() { tg.resetReal(t) })
		run(t, tg)
	})
}

func (tg *target) init(t *testing.T) {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = tg.user, tg.pass, "tcp", tg.addr
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 2*time.Second, 5*time.Second, 5*time.Second
	cfg.Logger = &mysql.NopLogger{}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	if err := db.PingContext(context.Background()); err != nil {
		t.Fatalf("%s: admin connect %s: %v", tg.name, tg.addr, err)
	}
	tg.admin = db
	tg.backendHost = map[cluster.NodeName]proxy.Backend{}
	for i, n := range nodes {
		// Loopback addresses with nothing listening: a real ProxySQL's
		// monitor may shun them, which the driver treats as ONLINE.
		tg.backendHost[n] = proxy.Backend{Host: fmt.Sprintf("127.0.0.%d", 11+i), Port: 23306}
	}
}

// resetReal removes everything the suite may have left on a real ProxySQL.
func (tg *target) resetReal(t *testing.T) {
	t.Helper()
	hgs := fmt.Sprintf("(%d, %d, %d)", tg.whg, tg.rhg, tg.otherHG)
	for _, q := range []string{
		"DELETE FROM mysql_servers WHERE hostgroup_id IN " + hgs,
		"DELETE FROM mysql_galera_hostgroups WHERE comment='dbha-contract'",
		"DELETE FROM mysql_group_replication_hostgroups WHERE comment='dbha-contract'",
		"DELETE FROM mysql_replication_hostgroups WHERE comment='dbha-contract'",
		"DELETE FROM proxysql_servers WHERE comment='dbha-contract'",
		"LOAD MYSQL SERVERS TO RUNTIME",
		"SAVE MYSQL SERVERS TO DISK",
		"LOAD PROXYSQL SERVERS TO RUNTIME",
	} {
		tg.exec(t, q)
	}
}

func (tg *target) exec(t *testing.T, q string) {
	t.Helper()
	if _, err := tg.admin.ExecContext(context.Background(), q); err != nil {
		t.Fatalf("%s: %s: %v", tg.name, q, err)
	}
}

func (tg *target) rows(t *testing.T, q string) [][]string {
	t.Helper()
	rs, err := tg.admin.QueryContext(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %s: %v", tg.name, q, err)
	}
	defer rs.Close()
	cols, err := rs.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	for rs.Next() {
		v := make([]sql.NullString, len(cols))
		p := make([]any, len(cols))
		for i := range v {
			p[i] = &v[i]
		}
		if err := rs.Scan(p...); err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(cols))
		for i := range v {
			row[i] = v[i].String
		}
		out = append(out, row)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func (tg *target) driver(t *testing.T, mod ...func(*proxysql.Config)) *proxysql.Driver {
	t.Helper()
	cfg := proxysql.Config{
		Node: "px1", Addr: tg.addr, User: tg.user, Password: tg.pass,
		WriterHostgroup: tg.whg, ReaderHostgroup: tg.rhg,
		ConnectTimeout: time.Second, QueryTimeout: 2 * time.Second, ApplyTimeout: 5 * time.Second,
	}
	for _, m := range mod {
		m(&cfg)
	}
	d, err := proxysql.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// route builds a routing over db1..db4. offline maps node → reason.
func (tg *target) route(epoch cluster.Epoch, writer cluster.NodeName, readers []cluster.NodeName, offline map[cluster.NodeName]cluster.OfflineReason, writerIsReader bool) proxy.Routing {
	top := cluster.Topology{Epoch: epoch, Writer: writer, Readers: readers}
	for n, why := range offline {
		top.Offline = append(top.Offline, cluster.OfflineNode{Node: n, Reason: why})
	}
	b := map[cluster.NodeName]proxy.Backend{}
	for n, x := range tg.backendHost {
		b[n] = x
	}
	return proxy.Routing{Topology: top.Normalize(), Backends: b, WriterIsReader: writerIsReader}
}

// table renders dbha's rows of a mysql_servers-shaped table as sorted
// "pool node STATUS" lines; SHUNNED counts as ONLINE (a real ProxySQL
// shuns the unreachable test backends).
func (tg *target) table(t *testing.T, table string) string {
	t.Helper()
	rows := tg.rows(t, fmt.Sprintf("SELECT hostgroup_id, hostname, port, status FROM %s WHERE hostgroup_id IN (%d, %d)", table, tg.whg, tg.rhg))
	byAddr := map[string]cluster.NodeName{}
	for n, b := range tg.backendHost {
		byAddr[b.String()] = n
	}
	var lines []string
	for _, r := range rows {
		pool := "reader"
		if r[0] == fmt.Sprint(tg.whg) {
			pool = "writer"
		}
		node, ok := byAddr[r[1]+":"+r[2]]
		if !ok {
			node = cluster.NodeName(r[1] + ":" + r[2])
		}
		st := strings.ToUpper(r[3])
		if st == proxysql.StatusShunned {
			st = proxysql.StatusOnline
		}
		lines = append(lines, fmt.Sprintf("%s %s %s", pool, node, st))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// want checks main, runtime and disk all hold exactly the given lines.
func (tg *target) want(t *testing.T, lines ...string) {
	t.Helper()
	if diff := tg.differs(t, lines...); diff != "" {
		t.Fatal(diff)
	}
}

// differs describes how main, runtime or disk differ from lines ("" when
// all three hold exactly them).
func (tg *target) differs(t *testing.T, lines ...string) string {
	t.Helper()
	lines = slices.Clone(lines)
	slices.Sort(lines)
	want := strings.Join(lines, "\n")
	for _, table := range []string{"runtime_mysql_servers", "mysql_servers", "disk.mysql_servers"} {
		if got := tg.table(t, table); got != want {
			return fmt.Sprintf("%s %s:\n got:\n%s\nwant:\n%s", tg.name, table, got, want)
		}
	}
	return ""
}

// loadVersion is runtime_checksums_values' mysql_servers version: every
// LOAD MYSQL SERVERS TO RUNTIME raises it, even an identical one
// (reference 2.4), so an unchanged version proves no LOAD ran.
func (tg *target) loadVersion(t *testing.T) string {
	t.Helper()
	r := tg.rows(t, "SELECT version FROM runtime_checksums_values WHERE name='mysql_servers'")
	if len(r) != 1 {
		t.Fatalf("%s: runtime_checksums_values: %q", tg.name, r)
	}
	return r[0][0]
}

const cols = "hostgroup_id, hostname, port, gtid_port, status, weight, compression, max_connections, max_replication_lag, use_ssl, max_latency_ms, comment"

func mustApply(t *testing.T, d *proxysql.Driver, r proxy.Routing) {
	t.Helper()
	if err := d.Apply(context.Background(), r); err != nil {
		t.Fatalf("apply epoch %d: %v", r.Topology.Epoch, err)
	}
	if got := d.AppliedEpoch(); got != r.Topology.Epoch {
		t.Fatalf("AppliedEpoch %d after applying %d", got, r.Topology.Epoch)
	}
}

var (
	none = map[cluster.NodeName]cluster.OfflineReason(nil)
	rd   = func(n ...cluster.NodeName) []cluster.NodeName { return n }
)

func TestContractWriterAndReaders(t *testing.T) {
	forEachTarget(t, false, func(t *testing.T, tg *target) {
		d := tg.driver(t)
		if err := d.Check(context.Background()); err != nil {
			t.Fatalf("check: %v", err)
		}
		mustApply(t, d, tg.route(1, "db1", rd("db2", "db3"), map[cluster.NodeName]cluster.OfflineReason{"db4": cluster.ReasonJoining}, true))
		tg.want(t, "writer db1 ONLINE", "reader db1 ONLINE", "reader db2 ONLINE", "reader db3 ONLINE")
		mustApply(t, d, tg.route(2, "db1", rd("db2", "db3", "db4"), none, false))
		tg.want(t, "writer db1 ONLINE", "reader db2 ONLINE", "reader db3 ONLINE", "reader db4 ONLINE")
		obs, err := d.Observe(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if obs.AppliedEpoch != 2 {
			t.Errorf("observed applied epoch %d, want 2", obs.AppliedEpoch)
		}
		var got []string
		for _, s := range obs.Servers {
			st := s.Status
			if st == proxysql.StatusShunned {
				st = proxysql.StatusOnline
			}
			got = append(got, fmt.Sprintf("%s %s %s", s.Pool, s.Node, st))
		}
		want := []string{"writer db1 ONLINE", "reader db2 ONLINE", "reader db3 ONLINE", "reader db4 ONLINE"}
		if !slices.Equal(got, want) {
			t.Errorf("observed servers %q, want %q", got, want)
		}
		// Rows carry the node name for operators (and for Observe).
		c := tg.rows(t, fmt.Sprintf("SELECT comment FROM runtime_mysql_servers WHERE hostgroup_id=%d", tg.whg))
		if len(c) != 1 || c[0][0] != "dbha node=db1" {
			t.Errorf("writer row comment %q", c)
		}
	})
}

func TestContractWriterChangeFencesOldWriter(t *testing.T) {
	forEachTarget(t, false, func(t *testing.T, tg *target) {
		d := tg.driver(t)
		mustApply(t, d, tg.route(1, "db1", rd("db2", "db3"), none, false))
		tg.want(t, "writer db1 ONLINE", "reader db2 ONLINE", "reader db3 ONLINE")
		mustApply(t, d, tg.route(2, "db2", rd("db3"), map[cluster.NodeName]cluster.OfflineReason{"db1": cluster.ReasonFenced}, false))
		tg.want(t, "writer db1 OFFLINE_HARD", "writer db2 ONLINE", "reader db3 ONLINE")
		// The old writer recovers: gone from the writer hostgroup, then a reader.
		mustApply(t, d, tg.route(3, "db2", rd("db3"), map[cluster.NodeName]cluster.OfflineReason{"db1": cluster.ReasonRecovering}, false))
		tg.want(t, "writer db2 ONLINE", "reader db3 ONLINE")
		mustApply(t, d, tg.route(4, "db2", rd("db1", "db3"), none, false))
		tg.want(t, "writer db2 ONLINE", "reader db1 ONLINE", "reader db3 ONLINE")
		// No writer at all: the writer hostgroup is empty.
		mustApply(t, d, tg.route(5, "", rd("db1", "db3"), map[cluster.NodeName]cluster.OfflineReason{"db2": cluster.ReasonNonPrimary}, false))
		tg.want(t, "reader db1 ONLINE", "reader db3 ONLINE")
	})
}

func TestContractDrainingIsOfflineSoft(t *testing.T) {
	forEachTarget(t, false, func(t *testing.T, tg *target) {
		d := tg.driver(t)
		mustApply(t, d, tg.route(1, "db1", rd("db2", "db3"), none, true))
		mustApply(t, d, tg.route(2, "db1", rd("db2"), map[cluster.NodeName]cluster.OfflineReason{"db3": cluster.ReasonDraining}, true))
		tg.want(t, "writer db1 ONLINE", "reader db1 ONLINE", "reader db2 ONLINE", "reader db3 OFFLINE_SOFT")
		// Switchover step 1: no writer, the old writer drains where it was.
		mustApply(t, d, tg.route(3, "", rd("db2"), map[cluster.NodeName]cluster.OfflineReason{"db1": cluster.ReasonDraining, "db3": cluster.ReasonDraining}, true))
		tg.want(t, "writer db1 OFFLINE_SOFT", "reader db1 OFFLINE_SOFT", "reader db2 ONLINE", "reader db3 OFFLINE_SOFT")
		// New writer while db1 still drains: its writer sessions end
		// (OFFLINE_HARD), its reader sessions may finish. db3 is done
		// (maintenance: removed).
		mustApply(t, d, tg.route(4, "db2", nil, map[cluster.NodeName]cluster.OfflineReason{"db1": cluster.ReasonDraining, "db3": cluster.ReasonMaintenance}, true))
		tg.want(t, "writer db1 OFFLINE_HARD", "writer db2 ONLINE", "reader db1 OFFLINE_SOFT", "reader db2 ONLINE")
		// A node that drains without ever having had a row gets none.
		mustApply(t, d, tg.route(5, "db2", nil, map[cluster.NodeName]cluster.OfflineReason{"db1": cluster.ReasonDraining, "db4": cluster.ReasonDraining}, true))
		tg.want(t, "writer db1 OFFLINE_HARD", "writer db2 ONLINE", "reader db1 OFFLINE_SOFT", "reader db2 ONLINE")
	})
}

func TestContractOtherHostgroupsUntouched(t *testing.T) {
	forEachTarget(t, false, func(t *testing.T, tg *target) {
		db1 := tg.backendHost["db1"]
		tg.exec(t, fmt.Sprintf("INSERT INTO mysql_servers (hostgroup_id, hostname, port, weight, comment) VALUES (%d, '%s', %d, 5, 'same host, other hostgroup')", tg.otherHG, db1.Host, db1.Port))
		tg.exec(t, fmt.Sprintf("INSERT INTO mysql_servers (hostgroup_id, hostname, port, status, weight, max_connections, comment) VALUES (%d, '127.0.0.99', 3306, 'OFFLINE_SOFT', 7, 12, 'ops')", tg.otherHG))
		tg.exec(t, "LOAD MYSQL SERVERS TO RUNTIME")
		other := fmt.Sprintf("SELECT * FROM %%s WHERE hostgroup_id=%d ORDER BY hostname", tg.otherHG)
		beforeMain := tg.rows(t, fmt.Sprintf(other, "mysql_servers"))
		beforeRT := tg.rows(t, fmt.Sprintf(other, "runtime_mysql_servers"))
		if len(beforeMain) != 2 {
			t.Fatalf("setup: %q", beforeMain)
		}
		if tg.stand != nil {
			tg.stand.ResetStatements()
		}
		d := tg.driver(t)
		mustApply(t, d, tg.route(1, "db1", rd("db2"), none, true))
		mustApply(t, d, tg.route(2, "db2", rd("db3"), map[cluster.NodeName]cluster.OfflineReason{"db1": cluster.ReasonFenced}, false))
		mustApply(t, d, tg.route(3, "db2", rd("db3"), map[cluster.NodeName]cluster.OfflineReason{"db1": cluster.ReasonUnreachable}, false))
		tg.want(t, "writer db2 ONLINE", "reader db3 ONLINE")
		if got := tg.rows(t, fmt.Sprintf(other, "mysql_servers")); !slices.EqualFunc(got, beforeMain, slices.Equal) {
			t.Errorf("other hostgroup in mysql_servers changed:\n%q\n%q", beforeMain, got)
		}
		if got := tg.rows(t, fmt.Sprintf(other, "runtime_mysql_servers")); !slices.EqualFunc(got, beforeRT, slices.Equal) {
			t.Errorf("other hostgroup in runtime changed:\n%q\n%q", beforeRT, got)
		}
		if tg.stand != nil {
			// Every write names one of dbha's hostgroups.
			re := regexp.MustCompile(fmt.Sprintf(`(hostgroup_id=(%d|%d) AND|VALUES \((%d|%d), )`, tg.whg, tg.rhg, tg.whg, tg.rhg))
			for _, q := range tg.stand.Statements() {
				if regexp.MustCompile(`(?i)^\s*(INSERT|REPLACE|UPDATE|DELETE)`).MatchString(q) && !re.MatchString(q) {
					t.Errorf("write outside dbha's hostgroups: %s", q)
				}
			}
		}
	})
}

func TestContractIdempotent(t *testing.T) {
	forEachTarget(t, false, func(t *testing.T, tg *target) {
		d := tg.driver(t)
		r1 := tg.route(1, "db1", rd("db2", "db3"), map[cluster.NodeName]cluster.OfflineReason{"db4": cluster.ReasonFenced}, true)
		mustApply(t, d, r1)
		v := tg.loadVersion(t)
		if tg.stand != nil {
			tg.stand.ResetStatements()
		}
		mustApply(t, d, r1)
		// Same routing at a new epoch: nothing to write either.
		r2 := r1
		r2.Topology.Epoch = 2
		mustApply(t, d, r2)
		// A second driver (an agent restart) finds nothing to do.
		d2 := tg.driver(t)
		r3 := r1
		r3.Topology.Epoch = 3
		mustApply(t, d2, r3)
		if got := tg.loadVersion(t); got != v {
			t.Errorf("mysql_servers checksum version %s → %s: a LOAD ran", v, got)
		}
		if tg.stand != nil {
			writes := regexp.MustCompile(`(?i)^\s*(LOAD|SAVE|INSERT|REPLACE|UPDATE|DELETE)`)
			for _, q := range tg.stand.Statements() {
				if writes.MatchString(q) {
					t.Errorf("an idempotent apply sent: %s", q)
				}
			}
		}
		obs, err := d2.Observe(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if obs.AppliedEpoch != 3 {
			t.Errorf("observed applied epoch %d, want 3", obs.AppliedEpoch)
		}
	})
}

func TestContractRepairsDrift(t *testing.T) {
	forEachTarget(t, false, func(t *testing.T, tg *target) {
		d := tg.driver(t)
		r := tg.route(1, "db1", rd("db2"), none, false)
		mustApply(t, d, r)
		db1 := tg.backendHost["db1"]
		// A hand edit in main only (not loaded).
		tg.exec(t, fmt.Sprintf("UPDATE mysql_servers SET weight=77 WHERE hostgroup_id=%d AND hostname='%s'", tg.whg, db1.Host))
		v := tg.loadVersion(t)
		mustApply(t, d, r)
		if tg.loadVersion(t) == v {
			t.Error("main drift: no LOAD ran")
		}
		if w := tg.rows(t, fmt.Sprintf("SELECT weight FROM mysql_servers WHERE hostgroup_id=%d", tg.whg)); len(w) != 1 || w[0][0] != "1" {
			t.Errorf("weight after repair: %q", w)
		}
		// A hand edit loaded to runtime, and an extra row in dbha's hostgroup.
		tg.exec(t, fmt.Sprintf("UPDATE mysql_servers SET status='OFFLINE_SOFT' WHERE hostgroup_id=%d", tg.whg))
		tg.exec(t, fmt.Sprintf("INSERT INTO mysql_servers (hostgroup_id, hostname, port) VALUES (%d, '127.0.0.98', 3306)", tg.rhg))
		tg.exec(t, "LOAD MYSQL SERVERS TO RUNTIME")
		mustApply(t, d, r)
		tg.want(t, "writer db1 ONLINE", "reader db2 ONLINE")
		// Runtime drift alone (main right again): a LOAD, no writes.
		saved := tg.rows(t, fmt.Sprintf("SELECT %s FROM mysql_servers WHERE hostgroup_id=%d", cols, tg.rhg))
		tg.exec(t, fmt.Sprintf("DELETE FROM mysql_servers WHERE hostgroup_id=%d", tg.rhg))
		tg.exec(t, "LOAD MYSQL SERVERS TO RUNTIME")
		for _, row := range saved {
			tg.exec(t, fmt.Sprintf("INSERT INTO mysql_servers (%s) VALUES (%s, '%s', %s, %s, '%s', %s, %s, %s, %s, %s, %s, '%s')", cols,
				row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], row[8], row[9], row[10], row[11]))
		}
		v = tg.loadVersion(t)
		mustApply(t, d, r)
		if tg.loadVersion(t) == v {
			t.Error("runtime drift: no LOAD ran")
		}
		tg.want(t, "writer db1 ONLINE", "reader db2 ONLINE")
	})
}

func TestContractRefusesGaleraAndReplicationHostgroups(t *testing.T) {
	forEachTarget(t, false, func(t *testing.T, tg *target) {
		d := tg.driver(t)
		r := tg.route(1, "db1", rd("db2"), none, false)
		mustApply(t, d, r)
		w, rh, o := tg.whg, tg.rhg, tg.otherHG
		cases := []struct {
			name    string
			insert  string
			runtime bool // loaded to runtime, then deleted from main
			refuse  bool
		}{
			{"galera reader", fmt.Sprintf("INSERT INTO mysql_galera_hostgroups (writer_hostgroup, backup_writer_hostgroup, reader_hostgroup, offline_hostgroup, active, comment) VALUES (%d, %d, %d, %d, 0, 'dbha-contract')", o+100, o+101, rh, o+103), false, true},
			{"galera writer (runtime only)", fmt.Sprintf("INSERT INTO mysql_galera_hostgroups (writer_hostgroup, backup_writer_hostgroup, reader_hostgroup, offline_hostgroup, active, comment) VALUES (%d, %d, %d, %d, 0, 'dbha-contract')", w, o+101, o+102, o+103), true, true},
			{"galera offline", fmt.Sprintf("INSERT INTO mysql_galera_hostgroups (writer_hostgroup, backup_writer_hostgroup, reader_hostgroup, offline_hostgroup, active, comment) VALUES (%d, %d, %d, %d, 0, 'dbha-contract')", o+100, o+101, o+102, w), false, true},
			{"galera backup writer", fmt.Sprintf("INSERT INTO mysql_galera_hostgroups (writer_hostgroup, backup_writer_hostgroup, reader_hostgroup, offline_hostgroup, active, comment) VALUES (%d, %d, %d, %d, 0, 'dbha-contract')", o+100, rh, o+102, o+103), false, true},
			{"group replication", fmt.Sprintf("INSERT INTO mysql_group_replication_hostgroups (writer_hostgroup, backup_writer_hostgroup, reader_hostgroup, offline_hostgroup, active, comment) VALUES (%d, %d, %d, %d, 0, 'dbha-contract')", o+100, o+101, rh, o+103), false, true},
			{"replication reader", fmt.Sprintf("INSERT INTO mysql_replication_hostgroups (writer_hostgroup, reader_hostgroup, comment) VALUES (%d, %d, 'dbha-contract')", o+100, w), false, true},
			{"replication writer (runtime only)", fmt.Sprintf("INSERT INTO mysql_replication_hostgroups (writer_hostgroup, reader_hostgroup, comment) VALUES (%d, %d, 'dbha-contract')", rh, o+101), true, true},
			{"galera elsewhere", fmt.Sprintf("INSERT INTO mysql_galera_hostgroups (writer_hostgroup, backup_writer_hostgroup, reader_hostgroup, offline_hostgroup, active, comment) VALUES (%d, %d, %d, %d, 0, 'dbha-contract')", o+100, o+101, o+102, o+103), false, false},
		}
		for _, c := range cases {
			t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
				tg.exec(t, c.insert)
				table := strings.Fields(c.insert)[2]
				cleanup := func() {
					tg.exec(t, "DELETE FROM "+table+" WHERE comment='dbha-contract'")
					tg.exec(t, "LOAD MYSQL SERVERS TO RUNTIME")
				}
				defer cleanup()
				if c.runtime {
					tg.exec(t, "LOAD MYSQL SERVERS TO RUNTIME")
					tg.exec(t, "DELETE FROM "+table+" WHERE comment='dbha-contract'")
				}
				v := tg.loadVersion(t)
				err := d.Check(context.Background())
				aerr := d.Apply(context.Background(), tg.route(2, "db2", rd("db1"), none, false))
				if !c.refuse {
					if err != nil || aerr != nil {
						t.Fatalf("refused a galera row outside dbha's hostgroups: %v / %v", err, aerr)
					}
					mustApply(t, d, r)
					return
				}
				if !errors.Is(err, proxysql.ErrConflictingManager) {
					t.Errorf("Check: %v, want ErrConflictingManager", err)
				}
				if !errors.Is(aerr, proxysql.ErrConflictingManager) {
					t.Errorf("Apply: %v, want ErrConflictingManager", aerr)
				}
				if tg.loadVersion(t) != v {
					t.Error("a refused Apply ran LOAD")
				}
				tg.want(t, "writer db1 ONLINE", "reader db2 ONLINE")
			})
		}
	})
}

func TestContractRefusesClusterSync(t *testing.T) {
	forEachTarget(t, false, func(t *testing.T, tg *target) {
		orig := tg.rows(t, "SELECT variable_value FROM global_variables WHERE variable_name='admin-cluster_mysql_servers_diffs_before_sync'")
		if len(orig) != 1 {
			t.Fatalf("admin-cluster_mysql_servers_diffs_before_sync: %q", orig)
		}
		t.Cleanup(func() {
			tg.exec(t, "UPDATE global_variables SET variable_value='"+orig[0][0]+"' WHERE variable_name='admin-cluster_mysql_servers_diffs_before_sync'")
			tg.exec(t, "LOAD ADMIN VARIABLES TO RUNTIME")
		})
		tg.exec(t, "UPDATE global_variables SET variable_value='3' WHERE variable_name='admin-cluster_mysql_servers_diffs_before_sync'")
		tg.exec(t, "LOAD ADMIN VARIABLES TO RUNTIME")
		d := tg.driver(t)
		r := tg.route(1, "db1", rd("db2"), none, false)
		mustApply(t, d, r) // no peers: fine
		// A peer in main only (not loaded) already counts.
		tg.exec(t, "INSERT INTO proxysql_servers (hostname, port, comment) VALUES ('127.0.0.97', 26032, 'dbha-contract')")
		if err := d.Check(context.Background()); !errors.Is(err, proxysql.ErrConflictingManager) {
			t.Fatalf("Check with a peer: %v, want ErrConflictingManager", err)
		}
		if err := d.Apply(context.Background(), r); !errors.Is(err, proxysql.ErrConflictingManager) {
			t.Fatalf("Apply with a peer: %v, want ErrConflictingManager", err)
		}
		// Sync off in main only: runtime still syncs.
		tg.exec(t, "UPDATE global_variables SET variable_value='0' WHERE variable_name='admin-cluster_mysql_servers_diffs_before_sync'")
		if err := d.Check(context.Background()); !errors.Is(err, proxysql.ErrConflictingManager) {
			t.Fatalf("Check with sync off in main only: %v, want ErrConflictingManager", err)
		}
		tg.exec(t, "LOAD ADMIN VARIABLES TO RUNTIME")
		if err := d.Check(context.Background()); err != nil {
			t.Fatalf("Check with sync off: %v", err)
		}
		mustApply(t, d, tg.route(2, "db2", rd("db1"), none, false))
		tg.want(t, "writer db2 ONLINE", "reader db1 ONLINE")
	})
}

func TestContractObserveConnections(t *testing.T) {
	forEachTarget(t, true, func(t *testing.T, tg *target) {
		d := tg.driver(t)
		mustApply(t, d, tg.route(1, "db1", rd("db2", "db3"), none, false))
		db2 := tg.backendHost["db2"]
		if err := tg.stand.SetConnStats(tg.rhg, db2.Host, db2.Port, 3, 1); err != nil {
			t.Fatal(err)
		}
		find := func(obs proxy.Observation, n cluster.NodeName) proxy.ServerState {
			t.Helper()
			for _, s := range obs.Servers {
				if s.Node == n && s.Pool == proxysql.PoolReader {
					return s
				}
			}
			t.Fatalf("no reader %s in %+v", n, obs.Servers)
			return proxy.ServerState{}
		}
		obs, err := d.Observe(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if s := find(obs, "db2"); s.ConnUsed != 3 || s.ConnFree != 1 || s.Status != proxysql.StatusOnline {
			t.Errorf("db2: %+v", s)
		}
		// Drain db2: OFFLINE_SOFT frees idle connections; used ones stay.
		mustApply(t, d, tg.route(2, "db1", rd("db3"), map[cluster.NodeName]cluster.OfflineReason{"db2": cluster.ReasonDraining}, false))
		obs, err = d.Observe(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if s := find(obs, "db2"); s.ConnUsed != 3 || s.ConnFree != 0 || s.Status != proxysql.StatusOfflineSoft {
			t.Errorf("draining db2: %+v", s)
		}
		if err := tg.stand.SetConnStats(tg.rhg, db2.Host, db2.Port, 0, 0); err != nil {
			t.Fatal(err)
		}
		// A fresh driver (no routing yet) names nodes from the row comments.
		d2 := tg.driver(t)
		obs, err = d2.Observe(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if s := find(obs, "db2"); s.ConnUsed != 0 {
			t.Errorf("drained db2: %+v", s)
		}
		if obs.AppliedEpoch != 0 {
			t.Errorf("fresh driver observed applied epoch %d", obs.AppliedEpoch)
		}
	})
}

func TestContractUnavailable(t *testing.T) {
	forEachTarget(t, false, func(t *testing.T, tg *target) {
		// Nothing listens on this port.
		ln := closedPort(t)
		d := tg.driver(t, func(c *proxysql.Config) { c.Addr = ln })
		err := d.Apply(context.Background(), tg.route(1, "db1", nil, none, false))
		if !errors.Is(err, proxysql.ErrUnavailable) {
			t.Fatalf("Apply to a closed port: %v, want ErrUnavailable", err)
		}
		if !strings.Contains(err.Error(), "epoch 1 on px1") {
			t.Errorf("error lacks operation and node: %v", err)
		}
		if err := d.Check(context.Background()); !errors.Is(err, proxysql.ErrUnavailable) {
			t.Fatalf("Check to a closed port: %v, want ErrUnavailable", err)
		}
		if _, err := d.Observe(context.Background()); !errors.Is(err, proxysql.ErrUnavailable) {
			t.Fatalf("Observe to a closed port: %v, want ErrUnavailable", err)
		}
		bad := tg.driver(t, func(c *proxysql.Config) { c.Password = "wrong-" + c.Password })
		err = bad.Check(context.Background())
		var me *mysql.MySQLError
		if !errors.Is(err, proxysql.ErrRejected) || !errors.As(err, &me) || me.Number != 1045 {
			t.Fatalf("wrong password: %v, want ErrRejected wrapping errno 1045", err)
		}
	})
}

func closedPort(t *testing.T) string {
	t.Helper()
	s, err := proxysqltest.NewServer()
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// Stand-in only: faults.

func TestContractDownSlowAndRejected(t *testing.T) {
	forEachTarget(t, true, func(t *testing.T, tg *target) {
		d := tg.driver(t, func(c *proxysql.Config) { c.ApplyTimeout = 400 * time.Millisecond })
		r1 := tg.route(1, "db1", rd("db2"), none, false)
		mustApply(t, d, r1)

		tg.stand.Stop()
		if err := d.Apply(context.Background(), tg.route(2, "db2", rd("db1"), none, false)); !errors.Is(err, proxysql.ErrUnavailable) {
			t.Fatalf("Apply while down: %v", err)
		}
		if d.AppliedEpoch() != 1 {
			t.Errorf("AppliedEpoch %d after a failed apply", d.AppliedEpoch())
		}
		if err := tg.stand.Restart(); err != nil {
			t.Fatal(err)
		}

		tg.stand.SetDelay(2 * time.Second)
		start := time.Now()
		err := d.Apply(context.Background(), tg.route(2, "db2", rd("db1"), none, false))
		if !errors.Is(err, proxysql.ErrUnavailable) {
			t.Fatalf("Apply to a slow ProxySQL: %v", err)
		}
		if el := time.Since(start); el > 1500*time.Millisecond {
			t.Errorf("slow apply gave up after %v, want about the 400ms apply timeout", el)
		}
		tg.stand.SetDelay(0)

		// The caller's own cancellation is not ErrUnavailable.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := d.Apply(ctx, r1); err == nil || errors.Is(err, proxysql.ErrUnavailable) {
			t.Errorf("Apply with a cancelled context: %v", err)
		}

		if err := tg.stand.FailNext(`^REPLACE INTO mysql_servers`, 1, "injected failure"); err != nil {
			t.Fatal(err)
		}
		err = d.Apply(context.Background(), tg.route(3, "db2", rd("db1"), none, false))
		var me *mysql.MySQLError
		if !errors.Is(err, proxysql.ErrRejected) || !errors.As(err, &me) || me.Number != 1045 || me.Message != "ProxySQL Admin Error: injected failure" {
			t.Fatalf("Apply with a failing statement: %v", err)
		}
		mustApply(t, d, tg.route(3, "db2", rd("db1"), none, false))
		tg.want(t, "writer db2 ONLINE", "reader db1 ONLINE")

		// Session lost in the middle (after the writes, at LOAD): the next
		// Apply finds main right and runtime behind, and LOADs.
		if err := tg.stand.DropNext(`^LOAD MYSQL SERVERS`, 1); err != nil {
			t.Fatal(err)
		}
		r4 := tg.route(4, "db1", rd("db2"), map[cluster.NodeName]cluster.OfflineReason{"db3": cluster.ReasonFenced}, false)
		if err := d.Apply(context.Background(), r4); !errors.Is(err, proxysql.ErrUnavailable) {
			t.Fatalf("Apply with a dropped LOAD: %v", err)
		}
		tg.stand.ResetStatements()
		mustApply(t, d, r4)
		if n := tg.stand.CountStatements(`^(REPLACE|DELETE)`); n != 0 {
			t.Errorf("rewrote %d rows that were already in main", n)
		}
		if n := tg.stand.CountStatements(`^LOAD MYSQL SERVERS TO RUNTIME$`); n != 1 {
			t.Errorf("%d LOADs, want 1", n)
		}
		tg.want(t, "writer db1 ONLINE", "writer db3 OFFLINE_HARD", "reader db2 ONLINE")
	})
}

func TestContractVerifiesReadBack(t *testing.T) {
	forEachTarget(t, true, func(t *testing.T, tg *target) {
		d := tg.driver(t)
		mustApply(t, d, tg.route(1, "db1", rd("db2"), none, false))
		// The LOAD answers OK but does nothing.
		if err := tg.stand.IgnoreNext(`^LOAD MYSQL SERVERS TO RUNTIME$`, 1); err != nil {
			t.Fatal(err)
		}
		err := d.Apply(context.Background(), tg.route(2, "db2", rd("db1"), none, false))
		if !errors.Is(err, proxysql.ErrVerify) {
			t.Fatalf("Apply with an ineffective LOAD: %v, want ErrVerify", err)
		}
		if d.AppliedEpoch() != 1 {
			t.Errorf("AppliedEpoch %d after a failed verification", d.AppliedEpoch())
		}
		obs, err := d.Observe(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if obs.AppliedEpoch != 1 {
			t.Errorf("observed epoch %d: runtime still holds epoch 1", obs.AppliedEpoch)
		}
		mustApply(t, d, tg.route(2, "db2", rd("db1"), none, false))
		tg.want(t, "writer db2 ONLINE", "reader db1 ONLINE")
	})
}

func TestContractSaveRetried(t *testing.T) {
	forEachTarget(t, true, func(t *testing.T, tg *target) {
		d := tg.driver(t)
		mustApply(t, d, tg.route(1, "db1", rd("db2"), none, false))
		if err := tg.stand.FailNext(`^SAVE MYSQL SERVERS TO DISK$`, 1, "disk full"); err != nil {
			t.Fatal(err)
		}
		r2 := tg.route(2, "db2", rd("db1"), none, false)
		if err := d.Apply(context.Background(), r2); !errors.Is(err, proxysql.ErrRejected) {
			t.Fatalf("Apply with a failing SAVE: %v", err)
		}
		tg.stand.ResetStatements()
		mustApply(t, d, r2)
		if n := tg.stand.CountStatements(`^LOAD`); n != 0 {
			t.Errorf("runtime was right, yet %d LOADs ran", n)
		}
		if n := tg.stand.CountStatements(`^SAVE MYSQL SERVERS TO DISK$`); n != 1 {
			t.Errorf("%d SAVEs, want 1", n)
		}
		tg.want(t, "writer db2 ONLINE", "reader db1 ONLINE")
	})
}

// The driver's statements are single statements sent as COM_QUERY text,
// never prepared, and one Apply uses one admin session.
func TestContractWireDiscipline(t *testing.T) {
	forEachTarget(t, true, func(t *testing.T, tg *target) {
		d := tg.driver(t)
		before := tg.stand.Sessions()
		tg.stand.ResetStatements()
		mustApply(t, d, tg.route(1, "db1", rd("db2", "db3"), map[cluster.NodeName]cluster.OfflineReason{"db4": cluster.ReasonFenced}, true))
		if n := tg.stand.Sessions() - before; n != 1 {
			t.Errorf("one Apply opened %d admin sessions", n)
		}
		log := tg.stand.Log()
		if len(log) == 0 {
			t.Fatal("no statements logged")
		}
		for _, l := range log {
			if l.Session != log[0].Session {
				t.Errorf("statement on another session: %+v", l)
			}
			if strings.Contains(l.Text, ";") {
				t.Errorf("statement with ';' (multi-statement?): %s", l.Text)
			}
			if strings.HasPrefix(l.Text, proxysqltest.PrepareLogPrefix) {
				t.Errorf("prepared statement: %s", l.Text)
			}
		}
		// Order within the apply: writes, then LOAD, then SAVE, then read-back.
		var kinds []string
		for _, l := range log {
			f := strings.ToUpper(strings.Fields(l.Text)[0])
			if f == "SELECT" && strings.Contains(l.Text, "FROM runtime_mysql_servers") {
				f = "READ_RUNTIME"
			}
			if f == "SELECT" {
				continue
			}
			if len(kinds) == 0 || kinds[len(kinds)-1] != f {
				kinds = append(kinds, f)
			}
		}
		want := []string{"READ_RUNTIME", "REPLACE", "LOAD", "SAVE", "READ_RUNTIME"}
		if !slices.Equal(kinds, want) {
			t.Errorf("statement order %q, want %q", kinds, want)
		}
	})
}

// Reconciler: retries with backoff while ProxySQL is down, reports
// unhealthy, re-applies the current routing when it returns, and repairs a
// ProxySQL that restarted with older config.
func TestContractReconcilerRecovers(t *testing.T) {
	forEachTarget(t, true, func(t *testing.T, tg *target) {
		d := tg.driver(t, func(c *proxysql.Config) { c.ApplyTimeout = time.Second })
		rec := proxysql.NewReconciler(d, proxysql.ReconcilerConfig{MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, Resync: 100 * time.Millisecond}, nil)
		ctx, cancel := context.WithCancel(context.Background())
		desired := make(chan proxy.Routing)
		done := make(chan error, 1)
		go func() { done <- rec.Run(ctx, desired) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
		send := func(r proxy.Routing) {
			t.Helper()
			select {
			case desired <- r:
			case <-time.After(5 * time.Second):
				t.Fatal("reconciler did not take the routing")
			}
		}
		waitFor := func(what string, ok func() bool) {
			t.Helper()
			deadline := time.Now().Add(10 * time.Second)
			for !ok() {
				if time.Now().After(deadline) {
					t.Fatalf("timed out waiting for %s (healthy=%v epoch=%d err=%v)", what, rec.Healthy(), rec.AppliedEpoch(), rec.LastError())
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		waitFor("healthy before any routing", rec.Healthy)
		send(tg.route(1, "db1", rd("db2"), none, false))
		waitFor("epoch 1", func() bool { return rec.AppliedEpoch() == 1 && rec.Healthy() })

		tg.stand.Stop()
		waitFor("unhealthy while down", func() bool { return !rec.Healthy() })
		if !errors.Is(rec.LastError(), proxysql.ErrUnavailable) {
			t.Errorf("LastError while down: %v", rec.LastError())
		}
		send(tg.route(2, "db2", rd("db1"), map[cluster.NodeName]cluster.OfflineReason{"db3": cluster.ReasonFenced}, false))
		if err := tg.stand.Restart(); err != nil {
			t.Fatal(err)
		}
		waitFor("epoch 2 after restart", func() bool { return rec.AppliedEpoch() == 2 && rec.Healthy() })
		// AppliedEpoch is set only after LOAD, SAVE and the read-back.
		tg.want(t, "writer db2 ONLINE", "writer db3 OFFLINE_HARD", "reader db1 ONLINE")

		// ProxySQL restarts with an older disk: the resync repairs it.
		tg.stand.Stop()
		if err := tg.stand.Exec("DELETE FROM disk.mysql_servers"); err != nil {
			t.Fatal(err)
		}
		if err := tg.stand.Restart(); err != nil {
			t.Fatal(err)
		}
		// Observe reports the epoch only once runtime matches again; the
		// SAVE that follows the LOAD may land a moment later.
		waitFor("repair after a restart with stale disk", func() bool {
			obs, err := d.Observe(context.Background())
			return err == nil && obs.AppliedEpoch == 2 && rec.Healthy() &&
				tg.differs(t, "writer db2 ONLINE", "writer db3 OFFLINE_HARD", "reader db1 ONLINE") == ""
		})

		// A conflicting manager makes it unhealthy, with the sentinel.
		tg.exec(t, fmt.Sprintf("INSERT INTO mysql_replication_hostgroups (writer_hostgroup, reader_hostgroup) VALUES (%d, %d)", tg.whg, tg.otherHG))
		waitFor("unhealthy on conflict", func() bool { return !rec.Healthy() })
		if !errors.Is(rec.LastError(), proxysql.ErrConflictingManager) {
			t.Errorf("LastError on conflict: %v", rec.LastError())
		}
	})
}
