// Package proxysql is the proxy driver a proxy agent runs against its local
// ProxySQL admin interface (MySQL protocol, default 127.0.0.1:6032).
//
// dbha owns two hostgroups (writer and reader, from Config) and makes their
// mysql_servers rows match the committed topology. Every Apply runs in one
// admin session: refuse if another manager owns the hostgroups, read
// mysql_servers / runtime_mysql_servers / disk.mysql_servers, write the
// differences to mysql_servers, LOAD MYSQL SERVERS TO RUNTIME, SAVE MYSQL
// SERVERS TO DISK, and read runtime_mysql_servers back to verify. When
// nothing differs it writes nothing and issues no LOAD.
//
// ProxySQL admin quirks the driver respects (proxysql-2.7.2-admin-reference):
// one statement per COM_QUERY (the rest of a multi-statement string is
// dropped silently); no transactions (BEGIN/ROLLBACK do nothing); no
// prepared statements and no client-side interpolation (SQLite does not
// treat backslash as an escape, go-sql-driver's interpolation would), so
// every statement is plain text built with SQLite quoting; every result
// column arrives as text.
package proxysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/proxy"
)

// Driver drives one ProxySQL admin interface. It is safe for concurrent
// use; Applies are serialised.
type Driver struct {
	cfg   Config
	log   *slog.Logger
	db    *sql.DB
	label string

	applyMu sync.Mutex // one Apply at a time

	mu      sync.Mutex
	last    *proxy.Routing // latest routing given to Apply (names for Observe)
	applied *proxy.Routing // latest routing verified in runtime
}

var _ proxy.Driver = (*Driver)(nil)

// New validates cfg (after WithDefaults) and returns a driver. It does not
// connect; call Check at start.
func New(cfg Config, log *slog.Logger) (*Driver, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	mc := mysql.NewConfig()
	mc.User, mc.Passwd, mc.Net, mc.Addr = cfg.User, cfg.Password, "tcp", cfg.Addr
	mc.Timeout, mc.ReadTimeout, mc.WriteTimeout = cfg.ConnectTimeout, cfg.QueryTimeout, cfg.QueryTimeout
	// Never prepare, never interpolate: see the package comment.
	mc.InterpolateParams = false
	mc.Logger = mysqlLogger{log}
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, fmt.Errorf("proxysql config: %w", err)
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(2) // one Apply plus one Observe
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(30 * time.Second)
	label := string(cfg.Node)
	if label == "" {
		label = cfg.Addr
	}
	return &Driver{cfg: cfg, log: log, db: db, label: label}, nil
}

// Close releases the driver's connections.
func (d *Driver) Close() error { return d.db.Close() }

// Config returns the effective configuration (defaults applied).
func (d *Driver) Config() Config { return d.cfg }

// AppliedEpoch is the epoch of the latest routing Apply verified in
// runtime, 0 before the first success. It lives in memory: after an agent
// restart the first Apply (a no-op when ProxySQL already matches) sets it
// again. Observe reports the epoch only while runtime still matches.
func (d *Driver) AppliedEpoch() cluster.Epoch {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.applied == nil {
		return 0
	}
	return d.applied.Topology.Epoch
}

type mysqlLogger struct{ log *slog.Logger }

func (l mysqlLogger) Print(v ...any) { l.log.Debug("proxysql: mysql driver", "msg", fmt.Sprint(v...)) }

// session is one admin connection. Every statement is sent as plain text
// without arguments, so go-sql-driver uses COM_QUERY and never prepares.
type session struct {
	conn *sql.Conn
}

func (d *Driver) open(ctx context.Context) (*session, error) {
	c, err := d.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	return &session{conn: c}, nil
}

func (s *session) close() { _ = s.conn.Close() }

func (s *session) exec(ctx context.Context, q string) error {
	_, err := s.conn.ExecContext(ctx, q)
	if err != nil {
		return fmt.Errorf("%s: %w", q, err)
	}
	return nil
}

// query returns every cell as text; NULL becomes "".
func (s *session) query(ctx context.Context, q string) ([][]string, error) {
	rows, err := s.conn.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	var out [][]string
	for rows.Next() {
		v := make([]sql.NullString, len(cols))
		p := make([]any, len(cols))
		for i := range v {
			p[i] = &v[i]
		}
		if err := rows.Scan(p...); err != nil {
			return nil, fmt.Errorf("%s: %w", q, err)
		}
		row := make([]string, len(cols))
		for i := range v {
			row[i] = v[i].String
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", q, err)
	}
	return out, nil
}

// classify wraps err with op and the matching sentinel.
func classify(parent context.Context, op string, err error) error {
	var me *mysql.MySQLError
	switch {
	case errors.Is(err, ErrConflictingManager), errors.Is(err, ErrVerify), errors.Is(err, ErrInvalidRouting):
		return fmt.Errorf("%s: %w", op, err)
	case errors.As(err, &me):
		return fmt.Errorf("%s: %w: %w", op, ErrRejected, err)
	case parent.Err() != nil:
		// The caller gave up (shutdown); not ProxySQL's fault.
		return fmt.Errorf("%s: %w", op, err)
	default:
		return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
	}
}

// sqlString renders s as an SQLite string literal (” doubles a quote;
// backslash is not special in SQLite).
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

const serverColumns = "hostgroup_id, hostname, port, gtid_port, status, weight, compression, max_connections, max_replication_lag, use_ssl, max_latency_ms, comment"

// readServers reads dbha's hostgroups from table (mysql_servers,
// runtime_mysql_servers or disk.mysql_servers).
func (d *Driver) readServers(ctx context.Context, s *session, table string) ([]serverRow, error) {
	q := fmt.Sprintf("SELECT %s FROM %s WHERE hostgroup_id IN (%d, %d)", serverColumns, table, d.cfg.WriterHostgroup, d.cfg.ReaderHostgroup)
	rows, err := s.query(ctx, q)
	if err != nil {
		return nil, err
	}
	out := make([]serverRow, 0, len(rows))
	for _, r := range rows {
		if len(r) != 12 {
			return nil, fmt.Errorf("%s: %d columns, want 12", q, len(r))
		}
		n := func(i int) int {
			v, err := strconv.Atoi(strings.TrimSpace(r[i]))
			if err != nil {
				return -1 // not canonical: never equal to a desired row
			}
			return v
		}
		out = append(out, serverRow{
			Hostgroup: n(0), Hostname: r[1], Port: n(2), GtidPort: n(3), Status: r[4], Weight: n(5),
			Compression: n(6), MaxConnections: n(7), MaxReplicationLag: n(8), UseSSL: n(9),
			MaxLatencyMs: n(10), Comment: r[11],
		})
	}
	return out, nil
}

// hostgroupTables lists the tables whose rows make another component
// manage servers in a hostgroup, with the hostgroup columns they use.
// Main and runtime are both checked: a main row not loaded yet would go
// live with dbha's own LOAD MYSQL SERVERS TO RUNTIME, which loads these
// tables too.
var hostgroupTables = []struct {
	table   string
	columns []string
}{
	{"mysql_galera_hostgroups", []string{"writer_hostgroup", "backup_writer_hostgroup", "reader_hostgroup", "offline_hostgroup"}},
	{"runtime_mysql_galera_hostgroups", []string{"writer_hostgroup", "backup_writer_hostgroup", "reader_hostgroup", "offline_hostgroup"}},
	{"mysql_group_replication_hostgroups", []string{"writer_hostgroup", "backup_writer_hostgroup", "reader_hostgroup", "offline_hostgroup"}},
	{"runtime_mysql_group_replication_hostgroups", []string{"writer_hostgroup", "backup_writer_hostgroup", "reader_hostgroup", "offline_hostgroup"}},
	{"mysql_replication_hostgroups", []string{"writer_hostgroup", "reader_hostgroup"}},
	{"runtime_mysql_replication_hostgroups", []string{"writer_hostgroup", "reader_hostgroup"}},
}

const clusterSyncVariable = "admin-cluster_mysql_servers_diffs_before_sync"

// conflicts returns ErrConflictingManager, wrapped with every reason, when
// another manager would fight dbha over its hostgroups.
func (d *Driver) conflicts(ctx context.Context, s *session) error {
	ours := map[int]string{d.cfg.WriterHostgroup: "writer", d.cfg.ReaderHostgroup: "reader"}
	var reasons []string
	for _, ht := range hostgroupTables {
		rows, err := s.query(ctx, fmt.Sprintf("SELECT %s FROM %s", strings.Join(ht.columns, ", "), ht.table))
		if err != nil {
			return err
		}
		for _, r := range rows {
			var hit []string
			var desc []string
			for i, col := range ht.columns {
				desc = append(desc, col+"="+r[i])
				if hg, err := strconv.Atoi(strings.TrimSpace(r[i])); err == nil {
					if role, ok := ours[hg]; ok {
						hit = append(hit, fmt.Sprintf("%s %d (dbha's %s hostgroup)", col, hg, role))
					}
				}
			}
			if len(hit) > 0 {
				reasons = append(reasons, fmt.Sprintf("%s row {%s}: %s", ht.table, strings.Join(desc, " "), strings.Join(hit, ", ")))
			}
		}
	}
	// ProxySQL Cluster pulls mysql_servers from a peer once the peer's
	// checksum differs diffs_before_sync times, overwriting dbha's rows.
	// It is on when that variable is > 0 and proxysql_servers lists peers
	// (reference 4). Main and runtime are both checked.
	diffs := -1
	for _, table := range []string{"global_variables", "runtime_global_variables"} {
		rows, err := s.query(ctx, fmt.Sprintf("SELECT variable_value FROM %s WHERE variable_name=%s", table, sqlString(clusterSyncVariable)))
		if err != nil {
			return err
		}
		for _, r := range rows {
			v, err := strconv.Atoi(strings.TrimSpace(r[0]))
			if err != nil {
				v = 3 // unreadable: assume ProxySQL's default
			}
			diffs = max(diffs, v)
		}
	}
	if diffs < 0 {
		diffs = 3 // variable absent: assume ProxySQL's default
	}
	peers := 0
	for _, table := range []string{"proxysql_servers", "runtime_proxysql_servers"} {
		rows, err := s.query(ctx, "SELECT COUNT(*) FROM "+table)
		if err != nil {
			return err
		}
		if len(rows) == 1 {
			n, _ := strconv.Atoi(rows[0][0])
			peers += n
		}
	}
	if diffs > 0 && peers > 0 {
		reasons = append(reasons, fmt.Sprintf("ProxySQL Cluster syncs mysql_servers from peers (%s=%d, %d row(s) in proxysql_servers/runtime_proxysql_servers); set it to 0 or remove the peers", clusterSyncVariable, diffs, peers))
	}
	if len(reasons) > 0 {
		return fmt.Errorf("%w: %s", ErrConflictingManager, strings.Join(reasons, "; "))
	}
	return nil
}

// Check connects and refuses (ErrConflictingManager) when another manager
// owns dbha's hostgroups. Call it at start.
func (d *Driver) Check(ctx context.Context) error {
	op := "proxysql check on " + d.label
	cctx, cancel := context.WithTimeout(ctx, d.cfg.ApplyTimeout)
	defer cancel()
	s, err := d.open(cctx)
	if err != nil {
		return classify(ctx, op+": connect "+d.cfg.Addr, err)
	}
	defer s.close()
	if err := d.conflicts(cctx, s); err != nil {
		return classify(ctx, op, err)
	}
	return nil
}

// Apply makes dbha's hostgroups route as r says; see the package comment.
// It is idempotent: when mysql_servers and runtime_mysql_servers already
// match, it issues no write and no LOAD (and SAVEs only if the disk copy
// differs).
func (d *Driver) Apply(ctx context.Context, r proxy.Routing) error {
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	epoch := r.Topology.Epoch
	op := fmt.Sprintf("proxysql apply epoch %d on %s", epoch, d.label)
	if err := validateRouting(r); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	d.mu.Lock()
	rc := r
	d.last = &rc
	d.mu.Unlock()

	actx, cancel := context.WithTimeout(ctx, d.cfg.ApplyTimeout)
	defer cancel()
	s, err := d.open(actx)
	if err != nil {
		return classify(ctx, op+": connect "+d.cfg.Addr, err)
	}
	defer s.close()
	res, err := d.apply(actx, s, r)
	if err != nil {
		return classify(ctx, op, err)
	}
	d.mu.Lock()
	d.applied = &rc
	d.mu.Unlock()
	switch {
	case res.loaded:
		d.log.Info("proxysql applied", "node", d.label, "epoch", epoch, "writer", r.Topology.Writer,
			"writer_hostgroup", d.cfg.WriterHostgroup, "reader_hostgroup", d.cfg.ReaderHostgroup, "statements", res.statements)
	case res.saved:
		d.log.Info("proxysql saved to disk", "node", d.label, "epoch", epoch)
	default:
		d.log.Debug("proxysql already matches", "node", d.label, "epoch", epoch)
	}
	return nil
}

// applyResult says what one apply did.
type applyResult struct {
	statements int  // rows written to mysql_servers
	loaded     bool // LOAD MYSQL SERVERS TO RUNTIME issued
	saved      bool // SAVE MYSQL SERVERS TO DISK issued
}

// apply runs the steps of one Apply in session s.
func (d *Driver) apply(ctx context.Context, s *session, r proxy.Routing) (applyResult, error) {
	var res applyResult
	if err := d.conflicts(ctx, s); err != nil {
		return res, err
	}
	main, err := d.readServers(ctx, s, "mysql_servers")
	if err != nil {
		return res, err
	}
	runtime, err := d.readServers(ctx, s, "runtime_mysql_servers")
	if err != nil {
		return res, err
	}
	disk, err := d.readServers(ctx, s, "disk.mysql_servers")
	if err != nil {
		return res, err
	}
	desired, err := desiredRows(r, d.cfg.WriterHostgroup, d.cfg.ReaderHostgroup, d.cfg.Server, currentStatus(main, runtime))
	if err != nil {
		return res, err
	}
	mainOK, runtimeOK, diskOK := equalRows(desired, main), len(runtimeDiff(desired, runtime)) == 0, equalRows(desired, disk)
	if mainOK && runtimeOK {
		if !diskOK {
			if err := s.exec(ctx, "SAVE MYSQL SERVERS TO DISK"); err != nil {
				return res, err
			}
			res.saved = true
		}
		return res, nil
	}

	stmts := writeStatements(main, desired)
	for _, q := range stmts {
		if err := s.exec(ctx, q); err != nil {
			return res, err
		}
		res.statements++
	}
	if err := s.exec(ctx, "LOAD MYSQL SERVERS TO RUNTIME"); err != nil {
		return res, err
	}
	res.loaded = true
	if err := s.exec(ctx, "SAVE MYSQL SERVERS TO DISK"); err != nil {
		return res, err
	}
	res.saved = true
	after, err := d.readServers(ctx, s, "runtime_mysql_servers")
	if err != nil {
		return res, err
	}
	if diff := runtimeDiff(desired, after); len(diff) > 0 {
		return res, fmt.Errorf("%w: %s", ErrVerify, strings.Join(diff, "; "))
	}
	return res, nil
}

// writeStatements turns main into desired: a DELETE per row dbha no longer
// wants, a REPLACE per missing or different row. Every statement names one
// row of dbha's hostgroups by its full primary key.
func writeStatements(main, desired []serverRow) []string {
	want := map[rowKey]serverRow{}
	for _, r := range desired {
		want[r.key()] = r
	}
	have := map[rowKey]serverRow{}
	var stmts []string
	sorted := slices.Clone(main)
	sortRows(sorted)
	for _, r := range sorted {
		have[r.key()] = r
		if _, ok := want[r.key()]; !ok {
			stmts = append(stmts, fmt.Sprintf("DELETE FROM mysql_servers WHERE hostgroup_id=%d AND hostname=%s AND port=%d",
				r.Hostgroup, sqlString(r.Hostname), r.Port))
		}
	}
	for _, r := range desired {
		if h, ok := have[r.key()]; ok && h == r {
			continue
		}
		stmts = append(stmts, fmt.Sprintf("REPLACE INTO mysql_servers (%s) VALUES (%d, %s, %d, %d, %s, %d, %d, %d, %d, %d, %d, %s)",
			serverColumns, r.Hostgroup, sqlString(r.Hostname), r.Port, r.GtidPort, sqlString(r.Status), r.Weight,
			r.Compression, r.MaxConnections, r.MaxReplicationLag, r.UseSSL, r.MaxLatencyMs, sqlString(r.Comment)))
	}
	return stmts
}

// Observe reads runtime_mysql_servers and stats_mysql_connection_pool for
// dbha's hostgroups. Nodes are named from the latest routing's backends,
// else from the row comment dbha wrote, else host:port. AppliedEpoch is the
// latest applied epoch while runtime still matches that routing, else 0
// (e.g. after ProxySQL restarted with older config).
func (d *Driver) Observe(ctx context.Context) (proxy.Observation, error) {
	op := "proxysql observe on " + d.label
	octx, cancel := context.WithTimeout(ctx, d.cfg.ApplyTimeout)
	defer cancel()
	s, err := d.open(octx)
	if err != nil {
		return proxy.Observation{}, classify(ctx, op+": connect "+d.cfg.Addr, err)
	}
	defer s.close()
	runtime, err := d.readServers(octx, s, "runtime_mysql_servers")
	if err != nil {
		return proxy.Observation{}, classify(ctx, op, err)
	}
	pool, err := s.query(octx, fmt.Sprintf("SELECT hostgroup, srv_host, srv_port, ConnUsed, ConnFree FROM stats_mysql_connection_pool WHERE hostgroup IN (%d, %d)",
		d.cfg.WriterHostgroup, d.cfg.ReaderHostgroup))
	if err != nil {
		return proxy.Observation{}, classify(ctx, op, err)
	}
	type counts struct{ used, free int }
	conns := map[rowKey]counts{}
	for _, p := range pool {
		hg, _ := strconv.Atoi(p[0])
		port, _ := strconv.Atoi(p[2])
		used, _ := strconv.Atoi(p[3])
		free, _ := strconv.Atoi(p[4])
		conns[rowKey{hg, p[1], port}] = counts{used, free}
	}

	d.mu.Lock()
	last, applied := d.last, d.applied
	d.mu.Unlock()
	names := map[proxy.Backend]cluster.NodeName{}
	if last != nil {
		for n, b := range last.Backends {
			names[b] = n
		}
	}
	var obs proxy.Observation
	for _, r := range runtime {
		node, ok := names[proxy.Backend{Host: r.Hostname, Port: r.Port}]
		if !ok {
			if node, ok = nodeFromComment(r.Comment); !ok {
				node = cluster.NodeName(proxy.Backend{Host: r.Hostname, Port: r.Port}.String())
			}
		}
		pl := PoolReader
		if r.Hostgroup == d.cfg.WriterHostgroup {
			pl = PoolWriter
		}
		c := conns[r.key()]
		obs.Servers = append(obs.Servers, proxy.ServerState{Node: node, Pool: pl, Status: strings.ToUpper(r.Status), ConnUsed: c.used, ConnFree: c.free})
	}
	slices.SortFunc(obs.Servers, func(a, b proxy.ServerState) int {
		if a.Pool != b.Pool {
			return -strings.Compare(a.Pool, b.Pool) // writer first
		}
		return strings.Compare(string(a.Node), string(b.Node))
	})
	if applied != nil {
		desired, err := desiredRows(*applied, d.cfg.WriterHostgroup, d.cfg.ReaderHostgroup, d.cfg.Server, currentStatus(runtime, nil))
		if err == nil && len(runtimeDiff(desired, runtime)) == 0 {
			obs.AppliedEpoch = applied.Topology.Epoch
		}
	}
	return obs, nil
}
