// Package wsreptest is a stand-in for a Galera node's mariadbd, as far as
// dbha's wsrep poller sees it: it speaks the MySQL protocol on a 127.0.0.1
// port (github.com/go-mysql-org/go-mysql/server) and answers the poller's
// two statements from status and variable maps that tests change at will.
// It can stop (as a SIGKILLed mariadbd: listener and sessions gone), start
// again on the same port, and stall queries (as a hung mariadbd).
//
// It is not a database: every other statement fails with error 1064.
package wsreptest

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gmysql "github.com/go-mysql-org/go-mysql/mysql"
	"github.com/go-mysql-org/go-mysql/server"
)

// Credentials the stand-in accepts.
const (
	User     = "dbha"
	Password = "dbha-pass"
)

// The two statements the stand-in answers; they must match what
// wsrep.Read sends (wsrep's tests check that they do).
const (
	StatusQuery = "SHOW GLOBAL STATUS LIKE 'wsrep_%'"
	VarsQuery   = "SELECT @@read_only, @@wsrep_on, @@wsrep_desync, @@wsrep_reject_queries"
)

var varColumns = []string{"read_only", "wsrep_on", "wsrep_desync", "wsrep_reject_queries"}

// SyncedStatus returns the status variables of a healthy node of a 3-node
// cluster, in the form MariaDB 10.11 with galera-4 prints them.
func SyncedStatus() map[string]string {
	return map[string]string{
		"wsrep_local_state":         "4",
		"wsrep_local_state_comment": "Synced",
		"wsrep_cluster_status":      "Primary",
		"wsrep_ready":               "ON",
		"wsrep_connected":           "ON",
		"wsrep_cluster_size":        "3",
		"wsrep_cluster_state_uuid":  "4ae5ddd8-e8f9-11f1-89fc-23461848b4d4",
		"wsrep_last_committed":      "9",
		"wsrep_local_recv_queue":    "0",
		"wsrep_flow_control_paused": "0",
		"wsrep_local_cached_downto": "1",
		"wsrep_local_index":         "0",
		"wsrep_provider_name":       "Galera",
	}
}

// SyncedVars returns the system variables of a healthy node, as SELECT
// @@... prints them (integers for booleans).
func SyncedVars() map[string]string {
	return map[string]string{"read_only": "0", "wsrep_on": "1", "wsrep_desync": "0", "wsrep_reject_queries": "NONE"}
}

// Server is a running stand-in. Its methods are safe for concurrent use.
type Server struct {
	srv *server.Server

	mu      sync.Mutex
	status  map[string]string
	vars    map[string]string
	stall   chan struct{} // non-nil: queries wait until it is closed
	queries int

	netMu   sync.Mutex
	addr    string
	ln      net.Listener
	conns   map[net.Conn]struct{}
	running bool
	stopCh  chan struct{} // closed by Stop: releases stalled queries
	wg      sync.WaitGroup
}

// Start starts a stand-in reporting SyncedStatus and SyncedVars, and closes
// it when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := NewServer()
	if err != nil {
		t.Fatalf("wsreptest: %v", err)
	}
	t.Cleanup(s.Stop)
	return s
}

// NewServer starts a stand-in on a free 127.0.0.1 port. Stop it when done.
func NewServer() (*Server, error) {
	s := &Server{
		srv:    server.NewServer("5.5.5-10.11.19-MariaDB-wsreptest", gmysql.DEFAULT_COLLATION_ID, gmysql.AUTH_NATIVE_PASSWORD, nil, nil),
		status: SyncedStatus(),
		vars:   SyncedVars(),
		conns:  map[net.Conn]struct{}{},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s.addr = ln.Addr().String()
	s.serveOn(ln)
	return s, nil
}

// Addr is the stand-in's host:port.
func (s *Server) Addr() string { return s.addr }

// SetStatus sets status variables (SHOW GLOBAL STATUS). An empty value is
// listed as empty; DeleteStatus removes a variable.
func (s *Server) SetStatus(kv map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	maps.Copy(s.status, kv)
}

// DeleteStatus removes status variables, as a server without a wsrep
// provider would.
func (s *Server) DeleteStatus(names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		delete(s.status, n)
	}
}

// SetVars sets system variables (read_only, wsrep_on, wsrep_desync,
// wsrep_reject_queries). A variable absent from the map reads as NULL.
func (s *Server) SetVars(kv map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	maps.Copy(s.vars, kv)
}

// Stall makes every query wait until Unstall or Stop, as a hung mariadbd.
func (s *Server) Stall() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stall == nil {
		s.stall = make(chan struct{})
	}
}

// Unstall releases stalled queries.
func (s *Server) Unstall() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stall != nil {
		close(s.stall)
		s.stall = nil
	}
}

// Queries is how many statements the stand-in has answered or started.
func (s *Server) Queries() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries
}

// Stop closes the listener and every session and waits for them, like a
// SIGKILLed mariadbd. It is safe to call more than once.
func (s *Server) Stop() {
	s.netMu.Lock()
	if !s.running {
		s.netMu.Unlock()
		s.wg.Wait()
		return
	}
	s.running = false
	_ = s.ln.Close()
	for c := range s.conns {
		_ = c.Close()
	}
	close(s.stopCh)
	s.netMu.Unlock()
	s.wg.Wait()
}

// Restart listens again on the same address after Stop, with the status
// and variables as they were.
func (s *Server) Restart() error {
	s.netMu.Lock()
	running := s.running
	s.netMu.Unlock()
	if running {
		return errors.New("wsreptest: restart: still running")
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("wsreptest: restart on %s: %w", s.addr, err)
	}
	s.serveOn(ln)
	return nil
}

func (s *Server) serveOn(ln net.Listener) {
	s.netMu.Lock()
	defer s.netMu.Unlock()
	s.ln, s.running, s.stopCh = ln, true, make(chan struct{})
	s.wg.Add(1)
	go s.acceptLoop(ln, s.stopCh)
}

func (s *Server) acceptLoop(ln net.Listener, stop chan struct{}) {
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
		go s.serveConn(nc, stop)
	}
}

// track registers a session; the WaitGroup is added under netMu so that
// Stop's Wait sees it.
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

func (s *Server) serveConn(nc net.Conn, stop chan struct{}) {
	defer s.wg.Done()
	defer s.untrack(nc)
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	p := server.NewInMemoryProvider()
	p.AddUser(User, Password)
	c, err := s.srv.NewCustomizedConn(nc, p, &handler{s: s, stop: stop})
	if err != nil {
		return
	}
	_ = nc.SetDeadline(time.Time{})
	for {
		if err := c.HandleCommand(); err != nil {
			return
		}
	}
}

// handler answers one session's statements.
type handler struct {
	s    *Server
	stop chan struct{}
}

func (h *handler) HandleQuery(query string) (*gmysql.Result, error) {
	s := h.s
	s.mu.Lock()
	s.queries++
	stall := s.stall
	s.mu.Unlock()
	if stall != nil {
		select {
		case <-stall:
		case <-h.stop:
			return nil, gmysql.NewError(gmysql.ER_SERVER_SHUTDOWN, "Server shutdown in progress")
		}
	}
	s.mu.Lock()
	status, vars := maps.Clone(s.status), maps.Clone(s.vars)
	s.mu.Unlock()

	switch strings.TrimSpace(query) {
	case StatusQuery:
		names := slices.Sorted(maps.Keys(status))
		rows := make([][]any, 0, len(names))
		for _, n := range names {
			rows = append(rows, []any{n, status[n]})
		}
		return textResult([]string{"Variable_name", "Value"}, rows)
	case VarsQuery:
		row := make([]any, len(varColumns))
		names := make([]string, len(varColumns))
		for i, n := range varColumns {
			names[i] = "@@" + n
			if v, ok := vars[n]; ok {
				row[i] = v
			}
		}
		return textResult(names, [][]any{row})
	}
	return nil, gmysql.NewError(gmysql.ER_PARSE_ERROR, "wsreptest: unsupported statement: "+query)
}

func textResult(names []string, rows [][]any) (*gmysql.Result, error) {
	rs, err := gmysql.BuildSimpleTextResultset(names, rows)
	if err != nil {
		return nil, err
	}
	return gmysql.NewResult(rs), nil
}

func (h *handler) UseDB(string) error { return nil }

func (h *handler) HandleFieldList(string, string) ([]*gmysql.Field, error) {
	return nil, gmysql.NewError(gmysql.ER_UNKNOWN_COM_ERROR, "wsreptest: field list unsupported")
}

func (h *handler) HandleStmtPrepare(string) (int, int, any, error) {
	return 0, 0, nil, gmysql.NewError(gmysql.ER_UNKNOWN_COM_ERROR, "wsreptest: prepared statements unsupported")
}

func (h *handler) HandleStmtExecute(any, string, []any) (*gmysql.Result, error) {
	return nil, gmysql.NewError(gmysql.ER_UNKNOWN_COM_ERROR, "wsreptest: prepared statements unsupported")
}

func (h *handler) HandleStmtClose(any) error { return nil }

func (h *handler) HandleOtherCommand(cmd byte, _ []byte) error {
	return gmysql.NewError(gmysql.ER_UNKNOWN_COM_ERROR, fmt.Sprintf("wsreptest: command 0x%02x unsupported", cmd))
}
