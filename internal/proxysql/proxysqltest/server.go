// Package proxysqltest is a stand-in for ProxySQL 2.7's admin interface that
// tests start on a 127.0.0.1 port.
//
// It speaks the MySQL protocol (github.com/go-mysql-org/go-mysql/server) and
// keeps its tables in SQLite (modernc.org/sqlite), as ProxySQL admin does,
// with the table definitions, error texts, LOAD/SAVE semantics, runtime
// normalisation and multi-statement behaviour captured from a real ProxySQL
// 2.7.2 (see proxysql-2.7.2-admin-reference.md). It adds a fault-injection
// API (dropped sessions, slow answers, failing statements, stop/restart) and a
// way to set the connection-pool counters that real backends would produce.
//
// What it does not emulate: real backends, the monitor, galera/replication
// hostgroup checkers, ProxySQL Cluster, mysql_users/query rules, SHOW CREATE
// TABLE. Prepared statements are refused (the driver never uses them).
package proxysqltest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	gmysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/server"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Default admin credentials of the stand-in.
const (
	DefaultUser     = "admin"
	DefaultPassword = "admin"
)

type options struct {
	user, password string
	dataDir        string
	statsLinger    time.Duration
	logger         *slog.Logger
	listenAddr     string
	listen         func(addr string) (net.Listener, error)
}

// Option configures a Server.
type Option func(*options)

// WithCredentials sets the admin user and password (default admin/admin).
func WithCredentials(user, password string) Option {
	return func(o *options) { o.user, o.password = user, password }
}

// WithDataDir sets the directory that holds proxysql.db, the "disk" schema.
// It survives Restart. Start uses t.TempDir().
func WithDataDir(dir string) Option { return func(o *options) { o.dataDir = dir } }

// WithStatsLinger sets how long a server that a LOAD removed (and that had
// no connection in use) stays listed in stats_mysql_connection_pool as
// OFFLINE_HARD after it left runtime_mysql_servers. The reference saw it
// still listed 41 ms after the LOAD and gone 583 ms after; default 300 ms.
func WithStatsLinger(d time.Duration) Option { return func(o *options) { o.statsLinger = d } }

// WithLogger sets the stand-in's logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

// WithListenFunc makes the stand-in listen on addr with listen instead of
// on a free 127.0.0.1 port with net.Listen. Restart calls listen again with
// the same address. The sandbox uses it to serve the admin interface
// inside a proxy node's network namespace (sandbox.ListenIn).
func WithListenFunc(addr string, listen func(addr string) (net.Listener, error)) Option {
	return func(o *options) { o.listenAddr, o.listen = addr, listen }
}

// Server is a running stand-in. Its methods are safe for concurrent use.
type Server struct {
	opts      options
	mysqlSrv  *server.Server
	provider  *server.InMemoryProvider
	db        *sql.DB
	removeDir bool

	// mu guards the SQLite session and all emulated state below it.
	mu        sync.Mutex
	sq        *sql.Conn
	servers   []*rtServer
	serverSeq uint64
	checksums map[string]*checksum
	stmtLog   []LoggedStatement
	faults    []*fault
	delay     time.Duration

	// netMu guards the listener side.
	netMu   sync.Mutex
	addr    string
	ln      net.Listener
	conns   map[net.Conn]struct{}
	running bool
	closed  bool
	stopCh  chan struct{}
	wg      sync.WaitGroup
	// sessions counts admin sessions that completed the handshake.
	sessions uint64
}

// Start starts a stand-in on 127.0.0.1 with a fresh data directory and
// closes it when the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	all := append([]Option{WithDataDir(t.TempDir())}, opts...)
	s, err := NewServer(all...)
	if err != nil {
		t.Fatalf("proxysqltest: start: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("proxysqltest: close: %v", err)
		}
	})
	return s
}

// NewServer starts a stand-in on a free 127.0.0.1 port (or where
// WithListenFunc says). Close it when done.
func NewServer(opts ...Option) (*Server, error) {
	o := options{user: DefaultUser, password: DefaultPassword, statsLinger: 300 * time.Millisecond}
	for _, f := range opts {
		f(&o)
	}
	if o.logger == nil {
		o.logger = slog.New(slog.DiscardHandler)
	}
	if o.listen == nil {
		o.listenAddr = "127.0.0.1:0"
		o.listen = func(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
	}
	s := &Server{opts: o, checksums: map[string]*checksum{}, conns: map[net.Conn]struct{}{}}
	if s.opts.dataDir == "" {
		dir, err := os.MkdirTemp("", "proxysqltest-")
		if err != nil {
			return nil, fmt.Errorf("proxysqltest: data dir: %w", err)
		}
		s.opts.dataDir, s.removeDir = dir, true
	}
	// No TLS: ProxySQL admin offers it, but the driver does not need it and
	// generating certificates costs a second per test.
	s.mysqlSrv = server.NewServer("8.0.11", gmysql.DEFAULT_COLLATION_ID, gmysql.AUTH_NATIVE_PASSWORD, nil, nil)
	s.provider = server.NewInMemoryProvider()
	s.provider.AddUser(o.user, o.password)

	ln, err := o.listen(o.listenAddr)
	if err != nil {
		s.cleanupDir()
		return nil, fmt.Errorf("proxysqltest: listen: %w", err)
	}
	s.addr = ln.Addr().String()
	if err := s.openSQLite(); err != nil {
		_ = ln.Close()
		s.cleanupDir()
		return nil, err
	}
	if err := s.boot(); err != nil {
		_ = ln.Close()
		_ = s.db.Close()
		s.cleanupDir()
		return nil, err
	}
	s.serveOn(ln)
	return s, nil
}

func (s *Server) cleanupDir() {
	if s.removeDir {
		_ = os.RemoveAll(s.opts.dataDir)
	}
}

// Addr is the admin interface's host:port.
func (s *Server) Addr() string { return s.addr }

// User is the admin user.
func (s *Server) User() string { return s.opts.user }

// Password is the admin password.
func (s *Server) Password() string { return s.opts.password }

// DataDir is the directory holding proxysql.db (the disk schema).
func (s *Server) DataDir() string { return s.opts.dataDir }

// openSQLite opens the single SQLite session that holds every schema:
// main in memory, disk in DataDir/proxysql.db, stats and monitor in memory.
func (s *Server) openSQLite() error {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		return fmt.Errorf("proxysqltest: open sqlite: %w", err)
	}
	db.SetMaxOpenConns(1)
	ctx := context.Background()
	sq, err := db.Conn(ctx)
	if err != nil {
		_ = db.Close()
		return fmt.Errorf("proxysqltest: sqlite session: %w", err)
	}
	s.db, s.sq = db, sq
	disk := filepath.Join(s.opts.dataDir, "proxysql.db")
	stmts := []string{
		"ATTACH DATABASE " + quote(disk) + " AS disk",
		"ATTACH DATABASE ':memory:' AS stats",
		"ATTACH DATABASE ':memory:' AS monitor",
	}
	for _, q := range stmts {
		if _, err := sq.ExecContext(ctx, q); err != nil {
			_ = db.Close()
			return fmt.Errorf("proxysqltest: %s: %w", q, err)
		}
	}
	for schema, ddls := range schemaTables() {
		for _, ddl := range ddls {
			q := ddl
			if schema != "main" {
				q = inSchema(ddl, schema)
			}
			if schema == "disk" {
				// The disk file may come from an earlier Server on the same
				// data dir; keep its tables and contents.
				q = strings.Replace(q, "CREATE TABLE ", "CREATE TABLE IF NOT EXISTS ", 1)
			}
			if _, err := sq.ExecContext(ctx, q); err != nil {
				_ = db.Close()
				return fmt.Errorf("proxysqltest: create table: %w", err)
			}
		}
	}
	return nil
}

// boot does what ProxySQL does at start with an existing datadir: the
// variables get their defaults, then everything on disk is loaded into
// memory and from memory to runtime. The connection pool starts empty.
// On the first boot the variables are written to disk, as ProxySQL does.
func (s *Server) boot() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ctx := context.Background()
	s.servers = nil
	var stmts []string
	stmts = append(stmts, "DELETE FROM main.global_variables")
	for _, kv := range defaultVariables(s.opts.user+":"+s.opts.password, s.addr) {
		stmts = append(stmts, "INSERT INTO main.global_variables VALUES ("+quote(kv[0])+", "+quote(kv[1])+")")
	}
	for _, q := range stmts {
		if err := s.execLocked(ctx, q); err != nil {
			return fmt.Errorf("proxysqltest: boot: %w", err)
		}
	}
	var n int
	if err := s.sq.QueryRowContext(ctx, "SELECT COUNT(*) FROM disk.global_variables").Scan(&n); err != nil {
		return fmt.Errorf("proxysqltest: boot: %w", err)
	}
	if n == 0 {
		if err := s.execLocked(ctx, "INSERT INTO disk.global_variables SELECT * FROM main.global_variables"); err != nil {
			return fmt.Errorf("proxysqltest: boot: %w", err)
		}
	}
	for _, m := range modules {
		if err := s.diskToMemoryLocked(ctx, m); err != nil {
			return fmt.Errorf("proxysqltest: boot: %w", err)
		}
		if err := s.memoryToRuntimeLocked(ctx, m); err != nil {
			return fmt.Errorf("proxysqltest: boot: %w", err)
		}
	}
	return nil
}

func (s *Server) execLocked(ctx context.Context, q string, args ...any) error {
	_, err := s.sq.ExecContext(ctx, q, args...)
	return err
}

// serveOn starts the accept loop on ln.
func (s *Server) serveOn(ln net.Listener) {
	s.netMu.Lock()
	defer s.netMu.Unlock()
	s.ln, s.running, s.stopCh = ln, true, make(chan struct{})
	s.wg.Add(1)
	go s.acceptLoop(ln)
}

func (s *Server) acceptLoop(ln net.Listener) {
	defer s.wg.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		if !s.track(nc) {
			_ = nc.Close()
			continue
		}
		go s.serveConn(nc)
	}
}

// track registers a new session; it reports false once the server stops.
// The WaitGroup is added under netMu so that Stop's Wait sees it.
func (s *Server) track(nc net.Conn) bool {
	s.netMu.Lock()
	defer s.netMu.Unlock()
	if !s.running {
		return false
	}
	s.conns[nc] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(nc net.Conn) {
	s.netMu.Lock()
	defer s.netMu.Unlock()
	delete(s.conns, nc)
}

func (s *Server) serveConn(nc net.Conn) {
	defer s.wg.Done()
	defer s.untrack(nc)
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	h := &session{s: s, nc: nc}
	if host, _, err := net.SplitHostPort(nc.RemoteAddr().String()); err == nil {
		h.host = host
	}
	c, err := s.mysqlSrv.NewCustomizedConn(nc, s.provider, h)
	if err != nil {
		s.opts.logger.Debug("proxysqltest: handshake failed", "err", err)
		return
	}
	_ = nc.SetDeadline(time.Time{})
	h.user = c.GetUser()
	s.netMu.Lock()
	s.sessions++
	h.id = s.sessions
	s.netMu.Unlock()
	for {
		if err := c.HandleCommand(); err != nil {
			return
		}
	}
}

// Sessions is how many admin sessions have logged in so far.
func (s *Server) Sessions() uint64 {
	s.netMu.Lock()
	defer s.netMu.Unlock()
	return s.sessions
}

// DropConnections closes every open admin session now, as a crashing or
// restarting ProxySQL would. New sessions are still accepted.
func (s *Server) DropConnections() {
	s.netMu.Lock()
	defer s.netMu.Unlock()
	for nc := range s.conns {
		_ = nc.Close()
	}
}

// Stop takes the admin interface down: the listener closes (connections are
// refused) and every session is dropped. The data directory is kept.
func (s *Server) Stop() {
	s.netMu.Lock()
	if !s.running {
		s.netMu.Unlock()
		return
	}
	s.running = false
	_ = s.ln.Close()
	close(s.stopCh)
	for nc := range s.conns {
		_ = nc.Close()
	}
	s.netMu.Unlock()
	s.wg.Wait()
}

// Restart stops the stand-in if it runs and starts it again on the same
// address, like a ProxySQL restart: memory is reloaded from disk, runtime
// from memory, and the connection pool statistics start from zero. Changes
// that were not saved to disk are lost.
func (s *Server) Restart() error {
	s.Stop()
	s.netMu.Lock()
	closed := s.closed
	s.netMu.Unlock()
	if closed {
		return errors.New("proxysqltest: restart: server closed")
	}
	if err := s.boot(); err != nil {
		return err
	}
	var ln net.Listener
	var err error
	// The port was ours a moment ago; retry briefly in case the kernel has
	// not released it yet.
	deadline := time.Now().Add(2 * time.Second)
	for {
		ln, err = s.opts.listen(s.addr)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("proxysqltest: restart: listen %s: %w", s.addr, err)
	}
	s.serveOn(ln)
	return nil
}

// Running reports whether the admin interface accepts connections.
func (s *Server) Running() bool {
	s.netMu.Lock()
	defer s.netMu.Unlock()
	return s.running
}

// Close stops the stand-in for good and releases its resources.
func (s *Server) Close() error {
	s.Stop()
	s.netMu.Lock()
	if s.closed {
		s.netMu.Unlock()
		return nil
	}
	s.closed = true
	s.netMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.sq.Close()
	if cerr := s.db.Close(); err == nil {
		err = cerr
	}
	s.cleanupDir()
	return err
}

// stopChan returns the channel closed when the current run stops.
func (s *Server) stopChan() chan struct{} {
	s.netMu.Lock()
	defer s.netMu.Unlock()
	return s.stopCh
}

// quote renders s as an SQLite string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// compileCI compiles a case-insensitive pattern.
func compileCI(pattern string) (*regexp.Regexp, error) { return regexp.Compile("(?i)" + pattern) }
