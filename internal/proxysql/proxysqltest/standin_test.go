package proxysqltest_test

// These tests pin the stand-in to the captured ProxySQL 2.7.2 reference
// (proxysql-2.7.2-admin-reference.md). Expected texts are copied from it.

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"go.uber.org/goleak"

	"github.com/dbha/dbha/internal/proxysql/proxysqltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// client is one admin session to the stand-in.
type client struct {
	t    *testing.T
	db   *sql.DB
	conn *sql.Conn
}

func dial(t *testing.T, s *proxysqltest.Server) *client {
	t.Helper()
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = s.User(), s.Password(), "tcp", s.Addr()
	cfg.Timeout, cfg.ReadTimeout, cfg.WriteTimeout = 2*time.Second, 5*time.Second, 5*time.Second
	cfg.Logger = &mysql.NopLogger{}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	c, err := db.Conn(context.Background())
	if err != nil {
		_ = db.Close()
		t.Fatalf("dial %s: %v", s.Addr(), err)
	}
	t.Cleanup(func() { _ = c.Close(); _ = db.Close() })
	return &client{t: t, db: db, conn: c}
}

// rows runs a query and renders every cell as text, NULL as "NULL".
func (c *client) rows(q string) [][]string {
	c.t.Helper()
	out, err := c.tryRows(q)
	if err != nil {
		c.t.Fatalf("%s: %v", q, err)
	}
	return out
}

func (c *client) tryRows(q string) ([][]string, error) {
	rs, err := c.conn.QueryContext(context.Background(), q)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	cols, err := rs.Columns()
	if err != nil {
		return nil, err
	}
	var out [][]string
	for rs.Next() {
		v := make([]sql.NullString, len(cols))
		p := make([]any, len(cols))
		for i := range v {
			p[i] = &v[i]
		}
		if err := rs.Scan(p...); err != nil {
			return nil, err
		}
		row := make([]string, len(cols))
		for i, x := range v {
			row[i] = x.String
			if !x.Valid {
				row[i] = "NULL"
			}
		}
		out = append(out, row)
	}
	return out, rs.Err()
}

func (c *client) columns(q string) []string {
	c.t.Helper()
	rs, err := c.conn.QueryContext(context.Background(), q)
	if err != nil {
		c.t.Fatalf("%s: %v", q, err)
	}
	defer rs.Close()
	cols, err := rs.Columns()
	if err != nil {
		c.t.Fatal(err)
	}
	return cols
}

func (c *client) exec(q string) int64 {
	c.t.Helper()
	res, err := c.conn.ExecContext(context.Background(), q)
	if err != nil {
		c.t.Fatalf("%s: %v", q, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		c.t.Fatal(err)
	}
	return n
}

// wantAdminError checks errno 1045, SQLSTATE 28000 and the exact message.
func (c *client) wantAdminError(q, msg string) {
	c.t.Helper()
	_, err := c.conn.ExecContext(context.Background(), q)
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		c.t.Fatalf("%s: want admin error %q, got %v", q, msg, err)
	}
	if me.Number != 1045 || string(me.SQLState[:]) != "28000" || me.Message != "ProxySQL Admin Error: "+msg {
		c.t.Fatalf("%s:\n got %d (%s) %q\nwant 1045 (28000) %q", q, me.Number, me.SQLState[:], me.Message, "ProxySQL Admin Error: "+msg)
	}
}

func lines(rows [][]string) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString(strings.Join(r, " | "))
		b.WriteString("\n")
	}
	return b.String()
}

func wantRows(t *testing.T, what string, got [][]string, want string) {
	t.Helper()
	if g := lines(got); g != want {
		t.Fatalf("%s:\n got:\n%s\nwant:\n%s", what, g, want)
	}
}

// Section 1: table definitions, verbatim in sqlite_master.
func TestSchemaMatchesReference(t *testing.T) {
	s := proxysqltest.Start(t)
	c := dial(t, s)
	want := map[string]string{
		"mysql_servers":                `CREATE TABLE mysql_servers (hostgroup_id INT CHECK (hostgroup_id>=0) NOT NULL DEFAULT 0 , hostname VARCHAR NOT NULL , port INT CHECK (port >= 0 AND port <= 65535) NOT NULL DEFAULT 3306 , gtid_port INT CHECK ((gtid_port <> port OR gtid_port=0) AND gtid_port >= 0 AND gtid_port <= 65535) NOT NULL DEFAULT 0 , status VARCHAR CHECK (UPPER(status) IN ('ONLINE','SHUNNED','OFFLINE_SOFT', 'OFFLINE_HARD')) NOT NULL DEFAULT 'ONLINE' , weight INT CHECK (weight >= 0 AND weight <=10000000) NOT NULL DEFAULT 1 , compression INT CHECK (compression IN(0,1)) NOT NULL DEFAULT 0 , max_connections INT CHECK (max_connections >=0) NOT NULL DEFAULT 1000 , max_replication_lag INT CHECK (max_replication_lag >= 0 AND max_replication_lag <= 126144000) NOT NULL DEFAULT 0 , use_ssl INT CHECK (use_ssl IN(0,1)) NOT NULL DEFAULT 0 , max_latency_ms INT UNSIGNED CHECK (max_latency_ms>=0) NOT NULL DEFAULT 0 , comment VARCHAR NOT NULL DEFAULT '' , PRIMARY KEY (hostgroup_id, hostname, port) )`,
		"mysql_galera_hostgroups":      `CREATE TABLE mysql_galera_hostgroups (writer_hostgroup INT CHECK (writer_hostgroup>=0) NOT NULL PRIMARY KEY , backup_writer_hostgroup INT CHECK (backup_writer_hostgroup>=0 AND backup_writer_hostgroup<>writer_hostgroup) NOT NULL , reader_hostgroup INT NOT NULL CHECK (reader_hostgroup<>writer_hostgroup AND backup_writer_hostgroup<>reader_hostgroup AND reader_hostgroup>0) , offline_hostgroup INT NOT NULL CHECK (offline_hostgroup<>writer_hostgroup AND offline_hostgroup<>reader_hostgroup AND backup_writer_hostgroup<>offline_hostgroup AND offline_hostgroup>=0) , active INT CHECK (active IN (0,1)) NOT NULL DEFAULT 1 , max_writers INT NOT NULL CHECK (max_writers >= 0) DEFAULT 1 , writer_is_also_reader INT CHECK (writer_is_also_reader IN (0,1,2)) NOT NULL DEFAULT 0 , max_transactions_behind INT CHECK (max_transactions_behind>=0) NOT NULL DEFAULT 0 , comment VARCHAR , UNIQUE (reader_hostgroup) , UNIQUE (offline_hostgroup) , UNIQUE (backup_writer_hostgroup))`,
		"mysql_replication_hostgroups": `CREATE TABLE mysql_replication_hostgroups (writer_hostgroup INT CHECK (writer_hostgroup>=0) NOT NULL PRIMARY KEY , reader_hostgroup INT NOT NULL CHECK (reader_hostgroup<>writer_hostgroup AND reader_hostgroup>=0) , check_type VARCHAR CHECK (LOWER(check_type) IN ('read_only','innodb_read_only','super_read_only','read_only|innodb_read_only','read_only&innodb_read_only')) NOT NULL DEFAULT 'read_only' , comment VARCHAR NOT NULL DEFAULT '', UNIQUE (reader_hostgroup))`,
		"proxysql_servers":             `CREATE TABLE proxysql_servers (hostname VARCHAR NOT NULL , port INT NOT NULL DEFAULT 6032 , weight INT CHECK (weight >= 0) NOT NULL DEFAULT 0 , comment VARCHAR NOT NULL DEFAULT '' , PRIMARY KEY (hostname, port) )`,
		"global_variables":             `CREATE TABLE global_variables (variable_name VARCHAR NOT NULL PRIMARY KEY , variable_value VARCHAR NOT NULL)`,
		"runtime_checksums_values":     `CREATE TABLE runtime_checksums_values (name VARCHAR NOT NULL , version INT NOT NULL , epoch INT NOT NULL , checksum VARCHAR NOT NULL , PRIMARY KEY (name))`,
	}
	for name, ddl := range want {
		got := c.rows("SELECT sql FROM sqlite_master WHERE type='table' AND name='" + name + "'")
		if len(got) != 1 || got[0][0] != ddl {
			t.Errorf("main.%s:\n got %q\nwant %q", name, got, ddl)
		}
		// runtime_ twins: identical with the name replaced.
		if name == "runtime_checksums_values" {
			continue
		}
		rt := c.rows("SELECT sql FROM sqlite_master WHERE type='table' AND name='runtime_" + name + "'")
		if wantRT := strings.Replace(ddl, "TABLE "+name+" ", "TABLE runtime_"+name+" ", 1); len(rt) != 1 || rt[0][0] != wantRT {
			t.Errorf("main.runtime_%s:\n got %q\nwant %q", name, rt, wantRT)
		}
		if name == "runtime_checksums_values" {
			continue
		}
		// 1.4: disk copies are byte-identical to main.
		disk := c.rows("SELECT sql FROM disk.sqlite_master WHERE type='table' AND name='" + name + "'")
		if len(disk) != 1 || disk[0][0] != ddl {
			t.Errorf("disk.%s:\n got %q\nwant %q", name, disk, ddl)
		}
	}
	gr := c.rows("SELECT sql FROM sqlite_master WHERE name='mysql_group_replication_hostgroups'")
	if wantGR := strings.Replace(want["mysql_galera_hostgroups"], "mysql_galera_hostgroups", "mysql_group_replication_hostgroups", 1); len(gr) != 1 || gr[0][0] != wantGR {
		t.Errorf("mysql_group_replication_hostgroups: got %q", gr)
	}
	pool := c.rows("SELECT sql FROM stats.sqlite_master WHERE name='stats_mysql_connection_pool'")
	wantPool := `CREATE TABLE stats_mysql_connection_pool (hostgroup INT , srv_host VARCHAR , srv_port INT , status VARCHAR , ConnUsed INT , ConnFree INT , ConnOK INT , ConnERR INT , MaxConnUsed INT , Queries INT , Queries_GTID_sync INT , Bytes_data_sent INT , Bytes_data_recv INT , Latency_us INT)`
	if len(pool) != 1 || pool[0][0] != wantPool {
		t.Errorf("stats_mysql_connection_pool: got %q", pool)
	}

	// Column lists as a client sees them.
	cols := map[string]string{
		"mysql_servers":                        "hostgroup_id hostname port gtid_port status weight compression max_connections max_replication_lag use_ssl max_latency_ms comment",
		"runtime_mysql_servers":                "hostgroup_id hostname port gtid_port status weight compression max_connections max_replication_lag use_ssl max_latency_ms comment",
		"disk.mysql_servers":                   "hostgroup_id hostname port gtid_port status weight compression max_connections max_replication_lag use_ssl max_latency_ms comment",
		"stats_mysql_connection_pool":          "hostgroup srv_host srv_port status ConnUsed ConnFree ConnOK ConnERR MaxConnUsed Queries Queries_GTID_sync Bytes_data_sent Bytes_data_recv Latency_us",
		"mysql_galera_hostgroups":              "writer_hostgroup backup_writer_hostgroup reader_hostgroup offline_hostgroup active max_writers writer_is_also_reader max_transactions_behind comment",
		"runtime_mysql_galera_hostgroups":      "writer_hostgroup backup_writer_hostgroup reader_hostgroup offline_hostgroup active max_writers writer_is_also_reader max_transactions_behind comment",
		"mysql_replication_hostgroups":         "writer_hostgroup reader_hostgroup check_type comment",
		"runtime_mysql_replication_hostgroups": "writer_hostgroup reader_hostgroup check_type comment",
		"proxysql_servers":                     "hostname port weight comment",
		"runtime_proxysql_servers":             "hostname port weight comment",
		"global_variables":                     "variable_name variable_value",
		"runtime_global_variables":             "variable_name variable_value",
	}
	for table, want := range cols {
		if got := strings.Join(c.columns("SELECT * FROM "+table+" LIMIT 0"), " "); got != want {
			t.Errorf("columns of %s:\n got %s\nwant %s", table, got, want)
		}
	}
	// Defaults (PRAGMA table_info): name, type, notnull, dflt_value.
	info := c.rows("PRAGMA table_info(mysql_servers)")
	var gotInfo []string
	for _, r := range info {
		gotInfo = append(gotInfo, r[1]+" "+r[2]+" "+r[3]+" "+r[4])
	}
	wantInfo := []string{
		"hostgroup_id INT 1 0", "hostname VARCHAR 1 NULL", "port INT 1 3306", "gtid_port INT 1 0",
		"status VARCHAR 1 'ONLINE'", "weight INT 1 1", "compression INT 1 0", "max_connections INT 1 1000",
		"max_replication_lag INT 1 0", "use_ssl INT 1 0", "max_latency_ms INT UNSIGNED 1 0", "comment VARCHAR 1 ''",
	}
	if !slices.Equal(gotInfo, wantInfo) {
		t.Errorf("table_info(mysql_servers):\n got %q\nwant %q", gotInfo, wantInfo)
	}
	// 4: the cluster variables a fresh instance has.
	vars := c.rows("SELECT variable_name, variable_value FROM global_variables WHERE variable_name LIKE 'admin-cluster_mysql_servers%' ORDER BY variable_name")
	wantRows(t, "cluster variables", vars, "admin-cluster_mysql_servers_diffs_before_sync | 3\nadmin-cluster_mysql_servers_save_to_disk | true\nadmin-cluster_mysql_servers_sync_algorithm | 1\n")
	rvars := c.rows("SELECT * FROM runtime_global_variables WHERE variable_name IN ('admin-cluster_mysql_servers_diffs_before_sync','admin-version')")
	if len(rvars) != 2 {
		t.Errorf("runtime_global_variables: got %q", rvars)
	}
}

// Section 2.1: INSERT/UPDATE/DELETE, their errors, and the LOAD that
// normalises and sorts runtime_mysql_servers.
func TestStatementsAndNormalisation(t *testing.T) {
	s := proxysqltest.Start(t)
	c := dial(t, s)
	wantRows(t, "empty", c.rows("SELECT * FROM mysql_servers"), "")
	if n := c.exec("INSERT INTO mysql_servers (hostgroup_id, hostname, port, weight, comment) VALUES (10, '127.0.0.1', 23306, 1000, 'n1')"); n != 1 {
		t.Fatalf("insert: %d rows", n)
	}
	c.wantAdminError("INSERT INTO mysql_servers (hostgroup_id, hostname, port, status) VALUES (10, '127.0.0.2', 23306, 'FOO')",
		"CHECK constraint failed: UPPER(status) IN ('ONLINE','SHUNNED','OFFLINE_SOFT', 'OFFLINE_HARD')")
	c.wantAdminError("INSERT INTO mysql_servers (hostgroup_id, hostname, port) VALUES (10, '127.0.0.1', 23306)",
		"UNIQUE constraint failed: mysql_servers.hostgroup_id, mysql_servers.hostname, mysql_servers.port")
	if n := c.exec("INSERT INTO mysql_servers (hostgroup_id, hostname, port, status, weight, comment) VALUES (30, '127.0.0.3', 23306, 'offline_soft', 100, 'n3'), (20, '127.0.0.2', 23306, 'Online', 500, 'n2'), (10, 'LOCALHOST', 23307, 'SHUNNED', 7, 'upper host')"); n != 3 {
		t.Fatalf("insert 3: %d", n)
	}
	c.exec("INSERT INTO mysql_servers (hostgroup_id, hostname) VALUES (20, '127.0.0.9')")
	if n := c.exec("INSERT OR REPLACE INTO mysql_servers (hostgroup_id, hostname, port, weight) VALUES (20, '127.0.0.9', 3306, 9)"); n != 1 {
		t.Fatalf("insert or replace: %d", n)
	}
	if n := c.exec("REPLACE INTO mysql_servers (hostgroup_id, hostname, port, weight) VALUES (20, '127.0.0.9', 3306, 10)"); n != 1 {
		t.Fatalf("replace: %d", n)
	}
	c.wantAdminError("INSERT INTO mysql_servers (hostgroup_id, hostname, port) VALUES (-1, '127.0.0.8', 3306)", "CHECK constraint failed: hostgroup_id>=0")
	c.wantAdminError("INSERT INTO mysql_servers (hostgroup_id, hostname, port) VALUES (10, '127.0.0.8', 70000)", "CHECK constraint failed: port >= 0 AND port <= 65535")
	c.exec("INSERT INTO mysql_servers (hostgroup_id, hostname, port) VALUES ('abc', '127.0.0.8', 3306)")
	c.exec("INSERT INTO mysql_servers (hostgroup_id, hostname, port) VALUES (10, '127.0.0.7', '3306')")
	wantRows(t, "mysql_servers after inserts", c.rows("SELECT * FROM mysql_servers"), ""+
		"10 | 127.0.0.1 | 23306 | 0 | ONLINE | 1000 | 0 | 1000 | 0 | 0 | 0 | n1\n"+
		"30 | 127.0.0.3 | 23306 | 0 | offline_soft | 100 | 0 | 1000 | 0 | 0 | 0 | n3\n"+
		"20 | 127.0.0.2 | 23306 | 0 | Online | 500 | 0 | 1000 | 0 | 0 | 0 | n2\n"+
		"10 | LOCALHOST | 23307 | 0 | SHUNNED | 7 | 0 | 1000 | 0 | 0 | 0 | upper host\n"+
		"20 | 127.0.0.9 | 3306 | 0 | ONLINE | 10 | 0 | 1000 | 0 | 0 | 0 | \n"+
		"abc | 127.0.0.8 | 3306 | 0 | ONLINE | 1 | 0 | 1000 | 0 | 0 | 0 | \n"+
		"10 | 127.0.0.7 | 3306 | 0 | ONLINE | 1 | 0 | 1000 | 0 | 0 | 0 | \n")
	wantRows(t, "typeof", c.rows("SELECT hostgroup_id, typeof(hostgroup_id), port, typeof(port) FROM mysql_servers WHERE hostname IN ('127.0.0.8','127.0.0.7')"),
		"10 | integer | 3306 | integer\nabc | text | 3306 | integer\n")
	if n := c.exec("UPDATE mysql_servers SET status='OFFLINE_SOFT' WHERE hostname='127.0.0.1' AND port=23306"); n != 1 {
		t.Fatalf("update: %d", n)
	}
	if n := c.exec("UPDATE mysql_servers SET status='OFFLINE_SOFT' WHERE hostname='127.0.0.1' AND port=23306"); n != 1 {
		t.Fatalf("identical update: %d (reference: 1 row affected)", n)
	}
	c.wantAdminError("UPDATE mysql_servers SET status='BAR' WHERE hostname='127.0.0.1'", "CHECK constraint failed: UPPER(status) IN ('ONLINE','SHUNNED','OFFLINE_SOFT', 'OFFLINE_HARD')")
	if n := c.exec("UPDATE mysql_servers SET weight=1 WHERE hostname='nonexistent'"); n != 0 {
		t.Fatalf("update none: %d", n)
	}
	c.exec("DELETE FROM mysql_servers WHERE hostgroup_id=20 AND hostname='127.0.0.9'")
	c.exec("DELETE FROM mysql_servers WHERE hostgroup_id='abc'")
	c.exec("LOAD MYSQL SERVERS TO RUNTIME")
	wantRT := "" +
		"10 | 127.0.0.1 | 23306 | 0 | OFFLINE_SOFT | 1000 | 0 | 1000 | 0 | 0 | 0 | n1\n" +
		"10 | 127.0.0.7 | 3306 | 0 | ONLINE | 1 | 0 | 1000 | 0 | 0 | 0 | \n" +
		"10 | LOCALHOST | 23307 | 0 | SHUNNED | 7 | 0 | 1000 | 0 | 0 | 0 | upper host\n" +
		"20 | 127.0.0.2 | 23306 | 0 | ONLINE | 500 | 0 | 1000 | 0 | 0 | 0 | n2\n" +
		"30 | 127.0.0.3 | 23306 | 0 | OFFLINE_SOFT | 100 | 0 | 1000 | 0 | 0 | 0 | n3\n"
	wantRows(t, "runtime after LOAD", c.rows("SELECT * FROM runtime_mysql_servers"), wantRT)
	wantRows(t, "main unchanged by LOAD", c.rows("SELECT hostgroup_id, hostname, status FROM mysql_servers"),
		"10 | 127.0.0.1 | OFFLINE_SOFT\n30 | 127.0.0.3 | offline_soft\n20 | 127.0.0.2 | Online\n10 | LOCALHOST | SHUNNED\n10 | 127.0.0.7 | ONLINE\n")
	wantRows(t, "pool after LOAD", c.rows("SELECT * FROM stats_mysql_connection_pool"), ""+
		"10 | 127.0.0.1 | 23306 | OFFLINE_SOFT | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0\n"+
		"10 | 127.0.0.7 | 3306 | ONLINE | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0\n"+
		"10 | LOCALHOST | 23307 | SHUNNED | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0\n"+
		"20 | 127.0.0.2 | 23306 | ONLINE | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0\n"+
		"30 | 127.0.0.3 | 23306 | OFFLINE_SOFT | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0\n")

	// 2.2: 'abc' becomes hostgroup 0 at runtime; LOAD ... TO RUN alias.
	c.exec("INSERT INTO mysql_servers (hostgroup_id, hostname, port) VALUES ('abc', '127.0.0.8', 3306)")
	c.exec("LOAD MYSQL SERVERS TO RUN")
	wantRows(t, "runtime with abc", c.rows("SELECT hostgroup_id, hostname, port FROM runtime_mysql_servers"),
		"0 | 127.0.0.8 | 3306\n10 | 127.0.0.1 | 23306\n10 | 127.0.0.7 | 3306\n10 | LOCALHOST | 23307\n20 | 127.0.0.2 | 23306\n30 | 127.0.0.3 | 23306\n")
	c.exec("DELETE FROM mysql_servers WHERE hostgroup_id='abc'")
	c.exec("load mysql servers to runtime")
	wantRows(t, "disk before save", c.rows("SELECT * FROM disk.mysql_servers"), "")
	c.exec("SAVE MYSQL SERVERS TO DISK")
	wantRows(t, "disk after save", c.rows("SELECT hostgroup_id, hostname, status FROM disk.mysql_servers"),
		"10 | 127.0.0.1 | OFFLINE_SOFT\n30 | 127.0.0.3 | offline_soft\n20 | 127.0.0.2 | Online\n10 | LOCALHOST | SHUNNED\n10 | 127.0.0.7 | ONLINE\n")
	c.exec("SAVE MYSQL SERVERS FROM RUNTIME")
	wantRows(t, "main after save from runtime (SHUNNED saved as ONLINE, sorted)", c.rows("SELECT * FROM mysql_servers"), ""+
		"10 | 127.0.0.1 | 23306 | 0 | OFFLINE_SOFT | 1000 | 0 | 1000 | 0 | 0 | 0 | n1\n"+
		"10 | 127.0.0.7 | 3306 | 0 | ONLINE | 1 | 0 | 1000 | 0 | 0 | 0 | \n"+
		"10 | LOCALHOST | 23307 | 0 | ONLINE | 7 | 0 | 1000 | 0 | 0 | 0 | upper host\n"+
		"20 | 127.0.0.2 | 23306 | 0 | ONLINE | 500 | 0 | 1000 | 0 | 0 | 0 | n2\n"+
		"30 | 127.0.0.3 | 23306 | 0 | OFFLINE_SOFT | 100 | 0 | 1000 | 0 | 0 | 0 | n3\n")
	if n := c.exec("DELETE FROM mysql_servers"); n != 5 {
		t.Fatalf("delete all: %d", n)
	}
	c.exec("LOAD MYSQL SERVERS FROM DISK")
	wantRows(t, "main after load from disk", c.rows("SELECT hostgroup_id, hostname, port, status, weight FROM mysql_servers"), ""+
		"10 | 127.0.0.1 | 23306 | OFFLINE_SOFT | 1000\n30 | 127.0.0.3 | 23306 | offline_soft | 100\n20 | 127.0.0.2 | 23306 | Online | 500\n"+
		"10 | LOCALHOST | 23307 | SHUNNED | 7\n10 | 127.0.0.7 | 3306 | ONLINE | 1\n")
	for _, q := range []string{"LOAD MYSQL SERVERS FROM MEMORY", "LOAD MYSQL SERVERS FROM MEM", "SAVE MYSQL SERVERS TO MEM",
		"SAVE MYSQL SERVERS TO MEMORY", "SAVE MYSQL SERVERS FROM RUN", "LOAD MYSQL SERVERS TO MEMORY",
		"LOAD MYSQL SERVERS TO RUNTIME;", "LOAD  MYSQL  SERVERS  TO  RUNTIME", "LOAD MYSQL SERVERS FROM CONFIG"} {
		if n := c.exec(q); n != 0 {
			t.Errorf("%s: %d rows affected, want 0", q, n)
		}
	}
	c.wantAdminError("SAVE MYSQL SERVERS TO RUNTIME", `near "SAVE": syntax error`)
	c.wantAdminError("LOAD FOO TO RUNTIME", `near "LOAD": syntax error`)
	c.wantAdminError("LOAD MYSQL SERVERS TO FOO", `near "LOAD": syntax error`)
	c.wantAdminError("LOAD MYSQL SERVER TO RUNTIME", `near "LOAD": syntax error`)
	wantRows(t, "runtime after aliases", c.rows("SELECT hostgroup_id, hostname, port, status FROM runtime_mysql_servers"),
		"10 | 127.0.0.1 | 23306 | OFFLINE_SOFT\n10 | 127.0.0.7 | 3306 | ONLINE\n10 | LOCALHOST | 23307 | SHUNNED\n20 | 127.0.0.2 | 23306 | ONLINE\n30 | 127.0.0.3 | 23306 | OFFLINE_SOFT\n")
}

// Sections 2.3–2.5: odds, transactions, checksums, multi-statements, errors.
func TestMiscStatementsAndErrors(t *testing.T) {
	s := proxysqltest.Start(t)
	c := dial(t, s)
	wantRows(t, "SELECT 1", c.rows("SELECT 1"), "1\n")
	if got := c.columns("SELECT 1"); !slices.Equal(got, []string{"1"}) {
		t.Errorf("SELECT 1 columns: %q", got)
	}
	wantRows(t, "@@version", c.rows("SELECT @@version"), "2.7.2-14-g5cc418b\n")
	if got := c.columns("SELECT @@version_comment"); !slices.Equal(got, []string{"@@version"}) {
		t.Errorf("@@version_comment column: %q", got)
	}
	wantRows(t, "@@version_comment LIMIT 1", c.rows("SELECT @@version_comment LIMIT 1"), "(ProxySQL Admin Module)\n")
	wantRows(t, "DATABASE()", c.rows("SELECT DATABASE()"), "admin\n")
	wantRows(t, "CURRENT_USER()", c.rows("SELECT CURRENT_USER()"), "admin@127.0.0.1\n")
	wantRows(t, "@@autocommit", c.rows("SELECT @@autocommit"), "")
	wantRows(t, "NULL and empty", c.rows("SELECT NULL, '' AS empty"), "NULL | \n")
	wantRows(t, "sqlite function", c.rows("SELECT datetime('now') IS NOT NULL AS sqlite_fn"), "1\n")
	c.wantAdminError("SELECT * FROM nonexistent_table", "no such table: nonexistent_table")
	c.wantAdminError("SELECT NOW()", "no such function: NOW")
	c.wantAdminError("SHOW WARNINGS", `near "SHOW": syntax error`)
	c.wantAdminError("show warnings", `near "show": syntax error`)
	tables := c.rows("SHOW TABLES")
	if len(tables) == 0 || tables[0][0] != "global_variables" || !slices.ContainsFunc(tables, func(r []string) bool { return r[0] == "runtime_mysql_servers" }) {
		t.Errorf("SHOW TABLES: %q", tables)
	}
	dbs := c.rows("SHOW DATABASES")
	var names []string
	for _, r := range dbs {
		names = append(names, r[1])
	}
	if !slices.Equal(names, []string{"main", "disk", "stats", "monitor"}) {
		t.Errorf("SHOW DATABASES: %q", dbs)
	}
	for _, q := range []string{"BEGIN", "START TRANSACTION", "COMMIT", "ROLLBACK", "SET autocommit=0", "SET NAMES utf8mb4"} {
		if n := c.exec(q); n != 0 {
			t.Errorf("%s: %d", q, n)
		}
	}
	// 2.4: ROLLBACK does not undo.
	c.exec("BEGIN")
	c.exec("INSERT INTO mysql_servers (hostgroup_id, hostname, port) VALUES (40, '127.0.0.40', 3306)")
	c.exec("ROLLBACK")
	wantRows(t, "after rollback", c.rows("SELECT hostgroup_id, hostname FROM mysql_servers WHERE hostgroup_id=40"), "40 | 127.0.0.40\n")
	c.exec("DELETE FROM mysql_servers WHERE hostgroup_id=40")

	// Checksum version rises on every LOAD, even an identical one.
	before := c.rows("SELECT name, version, checksum FROM runtime_checksums_values WHERE name LIKE 'mysql_servers%'")
	c.exec("LOAD MYSQL SERVERS TO RUNTIME")
	after := c.rows("SELECT name, version, checksum FROM runtime_checksums_values WHERE name LIKE 'mysql_servers%'")
	if len(before) != 2 || len(after) != 2 || before[0][0] != "mysql_servers" || after[1][0] != "mysql_servers_v2" {
		t.Fatalf("checksum rows: %q → %q", before, after)
	}
	if before[0][1] == after[0][1] || before[0][2] != after[0][2] {
		t.Errorf("identical LOAD: want version bump with the same checksum, got %q → %q", before, after)
	}
	var all [][]string
	for _, r := range c.rows("SELECT * FROM runtime_checksums_values") {
		all = append(all, r[:1])
	}
	wantRows(t, "checksum names", all, "admin_variables\nmysql_query_rules\nmysql_servers\nmysql_users\nmysql_variables\nproxysql_servers\nmysql_servers_v2\n")

	// Multi-statement COM_QUERY: only the first statement runs.
	c.exec("INSERT INTO mysql_servers (hostgroup_id, hostname, port) VALUES (10, '127.0.0.7', 3306)")
	c.exec("LOAD MYSQL SERVERS TO RUNTIME")
	if n := c.exec("UPDATE mysql_servers SET weight=2 WHERE hostname='127.0.0.7'; LOAD MYSQL SERVERS TO RUNTIME;"); n != 1 {
		t.Fatalf("multi update: %d", n)
	}
	wantRows(t, "main weight", c.rows("SELECT hostname, weight FROM mysql_servers WHERE hostname='127.0.0.7'"), "127.0.0.7 | 2\n")
	wantRows(t, "runtime weight (LOAD dropped)", c.rows("SELECT hostname, weight FROM runtime_mysql_servers WHERE hostname='127.0.0.7'"), "127.0.0.7 | 1\n")
	wantRows(t, "SELECT 1; SELECT 2", c.rows("SELECT 1; SELECT 2"), "1\n")
	c.exec("LOAD MYSQL SERVERS TO RUNTIME;")
	wantRows(t, "runtime weight after LOAD;", c.rows("SELECT hostname, weight FROM runtime_mysql_servers WHERE hostname='127.0.0.7'"), "127.0.0.7 | 2\n")
	if n := c.exec("INSERT INTO mysql_servers (hostgroup_id, hostname, port) VALUES (41, '127.0.0.41', 3306); INSERT INTO mysql_servers (hostgroup_id, hostname, port) VALUES (42, '127.0.0.42', 3306)"); n != 1 {
		t.Fatalf("multi insert: %d", n)
	}
	wantRows(t, "only first insert", c.rows("SELECT hostgroup_id, hostname FROM mysql_servers WHERE hostgroup_id IN (41,42)"), "41 | 127.0.0.41\n")
	// A ';' inside a string literal does not split.
	c.exec("UPDATE mysql_servers SET comment='a;b' WHERE hostgroup_id=41")
	wantRows(t, "quoted ;", c.rows("SELECT comment FROM mysql_servers WHERE hostgroup_id=41"), "a;b\n")
}

// Every column comes back as VAR_STRING (reference 1.5).
func TestColumnsAreVarString(t *testing.T) {
	s := proxysqltest.Start(t)
	c := dial(t, s)
	c.exec("INSERT INTO mysql_servers (hostgroup_id, hostname) VALUES (10, '127.0.0.1')")
	c.exec("LOAD MYSQL SERVERS TO RUNTIME")
	rs, err := c.conn.QueryContext(context.Background(), "SELECT hostgroup_id, hostname, 1 FROM runtime_mysql_servers LIMIT 1")
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	types, err := rs.ColumnTypes()
	if err != nil {
		t.Fatal(err)
	}
	for _, ct := range types {
		if ct.DatabaseTypeName() != "VARCHAR" {
			t.Errorf("column %s: type %s, want VARCHAR (VAR_STRING)", ct.Name(), ct.DatabaseTypeName())
		}
	}
}

// Section 3: connection-pool rows follow runtime; OFFLINE_SOFT/HARD free
// connections at LOAD; a deleted server in use stays as OFFLINE_HARD.
func TestPoolAndOfflineSemantics(t *testing.T) {
	s := proxysqltest.Start(t, proxysqltest.WithStatsLinger(50*time.Millisecond))
	c := dial(t, s)
	c.exec("INSERT INTO mysql_servers (hostgroup_id, hostname, port, weight, comment) VALUES (10, '198.18.0.11', 3306, 1000, 'db1'), (10, '198.18.0.12', 3306, 1, 'db2')")
	c.exec("LOAD MYSQL SERVERS TO RUNTIME")
	if err := s.SetConnStats(10, "198.18.0.11", 3306, 1, 1); err != nil {
		t.Fatal(err)
	}
	pool := "SELECT hostgroup, srv_host, srv_port, status, ConnUsed, ConnFree FROM stats_mysql_connection_pool"
	wantRows(t, "pool", c.rows(pool), "10 | 198.18.0.11 | 3306 | ONLINE | 1 | 1\n10 | 198.18.0.12 | 3306 | ONLINE | 0 | 0\n")

	c.exec("UPDATE mysql_servers SET status='OFFLINE_SOFT' WHERE hostname='198.18.0.11'")
	c.exec("LOAD MYSQL SERVERS TO RUNTIME")
	wantRows(t, "pool after OFFLINE_SOFT", c.rows(pool), "10 | 198.18.0.11 | 3306 | OFFLINE_SOFT | 1 | 0\n10 | 198.18.0.12 | 3306 | ONLINE | 0 | 0\n")
	if err := s.SetConnStats(10, "198.18.0.11", 3306, 1, 1); err == nil {
		t.Error("SetConnStats: free connections on an OFFLINE_SOFT server accepted")
	}

	c.exec("UPDATE mysql_servers SET status='OFFLINE_HARD' WHERE hostname='198.18.0.11'")
	c.exec("LOAD MYSQL SERVERS TO RUNTIME")
	wantRows(t, "pool after OFFLINE_HARD", c.rows(pool), "10 | 198.18.0.11 | 3306 | OFFLINE_HARD | 1 | 0\n10 | 198.18.0.12 | 3306 | ONLINE | 0 | 0\n")
	// OFFLINE_HARD → ONLINE: a new pool entry, listed last, counters reset.
	c.exec("UPDATE mysql_servers SET status='ONLINE' WHERE hostname='198.18.0.11'")
	c.exec("LOAD MYSQL SERVERS TO RUNTIME")
	wantRows(t, "pool after back ONLINE", c.rows(pool), "10 | 198.18.0.12 | 3306 | ONLINE | 0 | 0\n10 | 198.18.0.11 | 3306 | ONLINE | 0 | 0\n")

	// DELETE while in use (3c): runtime and pool keep it as OFFLINE_HARD.
	if err := s.SetConnStats(10, "198.18.0.11", 3306, 1, 0); err != nil {
		t.Fatal(err)
	}
	c.exec("DELETE FROM mysql_servers WHERE hostname='198.18.0.11'")
	c.exec("LOAD MYSQL SERVERS TO RUNTIME")
	rt := "SELECT hostgroup_id, hostname, port, status, weight, comment FROM runtime_mysql_servers"
	wantRows(t, "runtime after delete in use", c.rows(rt), "10 | 198.18.0.11 | 3306 | OFFLINE_HARD | 1000 | db1\n10 | 198.18.0.12 | 3306 | ONLINE | 1 | db2\n")
	wantRows(t, "pool after delete in use", c.rows(pool), "10 | 198.18.0.12 | 3306 | ONLINE | 0 | 0\n10 | 198.18.0.11 | 3306 | OFFLINE_HARD | 1 | 0\n")
	// The session dies: gone from runtime at once, from the pool shortly after.
	if err := s.SetConnStats(10, "198.18.0.11", 3306, 0, 0); err != nil {
		t.Fatal(err)
	}
	wantRows(t, "runtime after session died", c.rows(rt), "10 | 198.18.0.12 | 3306 | ONLINE | 1 | db2\n")
	deadline := time.Now().Add(5 * time.Second)
	for len(c.rows(pool)) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("pool row of the deleted server never went away: %q", c.rows(pool))
		}
		time.Sleep(10 * time.Millisecond)
	}
	// SAVE FROM RUNTIME then holds just db2.
	c.exec("SAVE MYSQL SERVERS FROM RUNTIME")
	wantRows(t, "main", c.rows("SELECT hostgroup_id, hostname, port, status FROM mysql_servers"), "10 | 198.18.0.12 | 3306 | ONLINE\n")
}

// Restart keeps disk and rebuilds memory and runtime from it; unsaved
// changes are gone; the pool restarts from zero.
func TestRestartReloadsFromDisk(t *testing.T) {
	s := proxysqltest.Start(t)
	c := dial(t, s)
	c.exec("INSERT INTO mysql_servers (hostgroup_id, hostname, port) VALUES (10, '127.0.0.1', 3306)")
	c.exec("INSERT INTO mysql_galera_hostgroups (writer_hostgroup, backup_writer_hostgroup, reader_hostgroup, offline_hostgroup) VALUES (1, 2, 3, 4)")
	c.exec("LOAD MYSQL SERVERS TO RUNTIME")
	c.exec("SAVE MYSQL SERVERS TO DISK")
	c.exec("INSERT INTO mysql_servers (hostgroup_id, hostname, port) VALUES (20, '127.0.0.2', 3306)")
	c.exec("LOAD MYSQL SERVERS TO RUNTIME")
	if err := s.SetConnStats(10, "127.0.0.1", 3306, 2, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.tryRows("SELECT 1"); err == nil {
		t.Fatal("the session survived a restart")
	}
	c2 := dial(t, s)
	wantRows(t, "main after restart", c2.rows("SELECT hostgroup_id, hostname FROM mysql_servers"), "10 | 127.0.0.1\n")
	wantRows(t, "runtime after restart", c2.rows("SELECT hostgroup_id, hostname FROM runtime_mysql_servers"), "10 | 127.0.0.1\n")
	wantRows(t, "galera after restart", c2.rows("SELECT writer_hostgroup FROM runtime_mysql_galera_hostgroups"), "1\n")
	wantRows(t, "pool after restart", c2.rows("SELECT srv_host, ConnUsed, ConnFree FROM stats_mysql_connection_pool"), "127.0.0.1 | 0 | 0\n")
}

func TestVariablesAndProxySQLServersLoadSave(t *testing.T) {
	s := proxysqltest.Start(t)
	c := dial(t, s)
	c.exec("UPDATE global_variables SET variable_value='0' WHERE variable_name='admin-cluster_mysql_servers_diffs_before_sync'")
	q := "SELECT variable_value FROM runtime_global_variables WHERE variable_name='admin-cluster_mysql_servers_diffs_before_sync'"
	wantRows(t, "runtime before LOAD", c.rows(q), "3\n")
	c.exec("LOAD MYSQL VARIABLES TO RUNTIME")
	wantRows(t, "admin var untouched by LOAD MYSQL VARIABLES", c.rows(q), "3\n")
	c.exec("LOAD ADMIN VARIABLES TO RUNTIME")
	wantRows(t, "runtime after LOAD ADMIN VARIABLES", c.rows(q), "0\n")
	c.exec("INSERT INTO proxysql_servers (hostname) VALUES ('127.0.0.5')")
	wantRows(t, "runtime peers before", c.rows("SELECT * FROM runtime_proxysql_servers"), "")
	c.exec("LOAD PROXYSQL SERVERS TO RUNTIME")
	wantRows(t, "runtime peers", c.rows("SELECT * FROM runtime_proxysql_servers"), "127.0.0.5 | 6032 | 0 | \n")
}

func TestFaultInjection(t *testing.T) {
	s := proxysqltest.Start(t)
	c := dial(t, s)
	if err := s.FailNext(`^LOAD MYSQL SERVERS`, 1, "injected"); err != nil {
		t.Fatal(err)
	}
	c.wantAdminError("LOAD MYSQL SERVERS TO RUNTIME", "injected")
	c.exec("LOAD MYSQL SERVERS TO RUNTIME") // only the next one failed

	if err := s.IgnoreNext(`^INSERT`, 1); err != nil {
		t.Fatal(err)
	}
	if n := c.exec("INSERT INTO mysql_servers (hostgroup_id, hostname) VALUES (10, '127.0.0.1')"); n != 0 {
		t.Errorf("ignored insert: %d rows", n)
	}
	wantRows(t, "ignored insert did nothing", c.rows("SELECT * FROM mysql_servers"), "")

	if err := s.DropNext(`^SELECT 42`, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.tryRows("SELECT 42"); err == nil {
		t.Error("dropped statement answered")
	}
	c = dial(t, s)
	wantRows(t, "after drop", c.rows("SELECT 42"), "42\n")

	s.SetDelay(150 * time.Millisecond)
	start := time.Now()
	c.rows("SELECT 1")
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("delayed answer came after %v", d)
	}
	s.SetDelay(0)

	s.DropConnections()
	if _, err := c.tryRows("SELECT 1"); err == nil {
		t.Error("session survived DropConnections")
	}
	s.Stop()
	if _, err := (&client{t: t}).dialErr(s); err == nil {
		t.Error("connected to a stopped stand-in")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	c = dial(t, s)
	wantRows(t, "after restart", c.rows("SELECT 1"), "1\n")
	if n := s.CountStatements(`^SELECT 1$`); n < 2 {
		t.Errorf("statement log counted %d SELECT 1", n)
	}
	if n := s.CountStatements("^" + proxysqltest.PrepareLogPrefix); n != 0 {
		t.Errorf("prepares logged: %d", n)
	}
}

func (c *client) dialErr(s *proxysqltest.Server) (*sql.Conn, error) {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = s.User(), s.Password(), "tcp", s.Addr()
	cfg.Timeout = time.Second
	cfg.Logger = &mysql.NopLogger{}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	cn, err := db.Conn(context.Background())
	if err == nil {
		_ = cn.Close()
	}
	return cn, err
}

// Prepared statements are refused and logged; the driver must not use them.
func TestPreparedStatementsRefused(t *testing.T) {
	s := proxysqltest.Start(t)
	c := dial(t, s)
	_, err := c.conn.QueryContext(context.Background(), "SELECT ?", 1)
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1045 {
		t.Fatalf("prepared statement: got %v", err)
	}
	if n := s.CountStatements("^" + proxysqltest.PrepareLogPrefix); n != 1 {
		t.Errorf("prepare log: %d", n)
	}
}

func TestWrongPasswordRejected(t *testing.T) {
	s := proxysqltest.Start(t, proxysqltest.WithCredentials("radmin", "secret"))
	other := proxysqltest.Start(t)
	_ = other
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = "radmin", "wrong", "tcp", s.Addr()
	cfg.Logger = &mysql.NopLogger{}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	err = db.PingContext(context.Background())
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != 1045 {
		t.Fatalf("wrong password: got %v", err)
	}
}
