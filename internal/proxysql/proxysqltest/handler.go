package proxysqltest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	gmysql "github.com/go-mysql-org/go-mysql/mysql"
	"modernc.org/sqlite"
)

// Error numbers and texts of ProxySQL's admin module.
const (
	adminErrno    = 1045
	adminSQLState = "28000"
	adminPrefix   = "ProxySQL Admin Error: "
)

// adminError is how ProxySQL admin answers every failed statement: errno
// 1045, SQLSTATE 28000, "ProxySQL Admin Error: <sqlite message>".
func adminError(msg string) *gmysql.MyError {
	return &gmysql.MyError{Code: adminErrno, State: adminSQLState, Message: adminPrefix + msg}
}

// session is one admin connection; it implements server.Handler.
type session struct {
	s    *Server
	id   uint64
	nc   net.Conn
	user string
	host string
}

func (h *session) UseDB(string) error { return nil }

func (h *session) HandleQuery(query string) (*gmysql.Result, error) {
	return h.s.handle(h, query)
}

func (h *session) HandleFieldList(string, string) ([]*gmysql.Field, error) {
	return nil, adminError("COM_FIELD_LIST is not supported")
}

// HandleStmtPrepare refuses prepared statements. The reference did not
// capture what ProxySQL admin answers to COM_STMT_PREPARE, so nothing may
// rely on them; the attempt is logged so tests can assert there was none.
func (h *session) HandleStmtPrepare(query string) (int, int, any, error) {
	h.s.logStatement(h.id, PrepareLogPrefix+query)
	return 0, 0, nil, adminError("COM_STMT_PREPARE is not supported")
}

func (h *session) HandleStmtExecute(any, string, []any) (*gmysql.Result, error) {
	return nil, adminError("COM_STMT_EXECUTE is not supported")
}

func (h *session) HandleStmtClose(any) error { return nil }

func (h *session) HandleOtherCommand(cmd byte, _ []byte) error {
	return adminError(fmt.Sprintf("command %d is not supported", cmd))
}

// errDropped makes go-mysql close the session without an answer.
var errDropped = errors.New("proxysqltest: session dropped by fault injection")

// handle answers one COM_QUERY.
func (s *Server) handle(h *session, raw string) (*gmysql.Result, error) {
	s.logStatement(h.id, raw)
	s.mu.Lock()
	delay := s.delay
	f := s.matchFaultLocked(raw)
	s.mu.Unlock()
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-s.stopChan():
			t.Stop()
			_ = h.nc.Close()
			return nil, errDropped
		}
	}
	if f != nil {
		switch f.action {
		case faultDrop:
			_ = h.nc.Close()
			return nil, errDropped
		case faultFail:
			return nil, adminError(f.message)
		case faultIgnore:
			return &gmysql.Result{}, nil
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runLocked(context.Background(), h, raw)
}

// Exec runs one statement as an admin session would, without logging it
// and without fault injection. Tests use it to prepare state.
func (s *Server) Exec(stmt string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.runLocked(context.Background(), &session{s: s, user: s.opts.user, host: "127.0.0.1"}, stmt)
	return err
}

var (
	reLoadSave   = regexp.MustCompile(`(?i)^(LOAD|SAVE)\s+(MYSQL\s+SERVERS|MYSQL\s+VARIABLES|ADMIN\s+VARIABLES|PROXYSQL\s+SERVERS)\s+(TO|FROM)\s+([A-Z]+)$`)
	reSpaces     = regexp.MustCompile(`\s+`)
	reShowTables = regexp.MustCompile(`(?i)^SHOW\s+TABLES(?:\s+FROM\s+([A-Za-z_]+))?$`)
	reNoop       = regexp.MustCompile(`(?i)^(BEGIN|START\s+TRANSACTION|COMMIT|ROLLBACK|SET\s+.*)$`)
)

// runLocked executes the first statement of raw. ProxySQL admin hands the
// text to SQLite, which compiles the first statement and ignores the rest,
// so in a multi-statement string everything after the first statement is
// dropped silently (reference 2.4).
func (s *Server) runLocked(ctx context.Context, h *session, raw string) (*gmysql.Result, error) {
	if err := s.syncTablesLocked(ctx); err != nil {
		return nil, adminError(sqliteMessage(err))
	}
	stmt := strings.TrimSpace(firstStatement(raw))
	if stmt == "" {
		return &gmysql.Result{}, nil
	}
	if res, ok, err := s.adminCommandLocked(ctx, stmt); ok {
		return res, err
	}
	if res, ok := s.specialLocked(ctx, h, stmt); ok {
		return res, nil
	}
	return s.sqliteLocked(ctx, stmt)
}

// adminCommandLocked handles LOAD/SAVE ... with the forms the reference
// lists. Any other LOAD/SAVE text falls through to SQLite, which answers
// `near "LOAD": syntax error` as ProxySQL does.
func (s *Server) adminCommandLocked(ctx context.Context, stmt string) (*gmysql.Result, bool, error) {
	m := reLoadSave.FindStringSubmatch(stmt)
	if m == nil {
		return nil, false, nil
	}
	verb, dir, target := strings.ToUpper(m[1]), strings.ToUpper(m[3]), strings.ToUpper(m[4])
	name := strings.ToUpper(reSpaces.ReplaceAllString(m[2], " "))
	var mod module
	for _, x := range modules {
		if x.name == name {
			mod = x
		}
	}
	var op func(context.Context, module) error
	switch verb + " " + dir + " " + target {
	case "LOAD TO RUNTIME", "LOAD TO RUN", "LOAD FROM MEMORY", "LOAD FROM MEM":
		op = s.memoryToRuntimeLocked
	case "LOAD FROM DISK", "LOAD TO MEMORY", "LOAD TO MEM":
		op = s.diskToMemoryLocked
	case "LOAD FROM CONFIG":
		// The stand-in has no config file: nothing to load.
		op = func(context.Context, module) error { return nil }
	case "SAVE TO DISK", "SAVE FROM MEMORY", "SAVE FROM MEM":
		op = s.memoryToDiskLocked
	case "SAVE FROM RUNTIME", "SAVE FROM RUN", "SAVE TO MEMORY", "SAVE TO MEM":
		op = s.runtimeToMemoryLocked
	default:
		return nil, false, nil
	}
	if err := op(ctx, mod); err != nil {
		return nil, true, adminError(sqliteMessage(err))
	}
	return &gmysql.Result{}, true, nil
}

// specialLocked answers the statements ProxySQL admin intercepts before
// SQLite (reference 2.3).
func (s *Server) specialLocked(ctx context.Context, h *session, stmt string) (*gmysql.Result, bool) {
	norm := strings.ToUpper(reSpaces.ReplaceAllString(stmt, " "))
	one := func(col, val string) (*gmysql.Result, bool) {
		return textResult([]string{col}, [][]*string{{&val}}), true
	}
	switch norm {
	case "SELECT @@VERSION", "SELECT @@VERSION_COMMENT":
		// The reference shows the column as @@version for both.
		return one("@@version", referenceVersion)
	case "SELECT @@VERSION_COMMENT LIMIT 1":
		return one("'(ProxySQL Admin Module)'", "(ProxySQL Admin Module)")
	case "SELECT VERSION()":
		return one("version()", referenceVersion)
	case "SELECT DATABASE()":
		return one("DATABASE()", "admin")
	case "SELECT CURRENT_USER()":
		return one("current_user()", h.user+"@"+h.host)
	case "SELECT @@AUTOCOMMIT":
		return textResult([]string{"@@autocommit"}, nil), true
	case "SHOW DATABASES":
		res, err := s.sqliteLocked(ctx, "PRAGMA database_list")
		return res, err == nil
	}
	if reNoop.MatchString(stmt) {
		return &gmysql.Result{}, true
	}
	if m := reShowTables.FindStringSubmatch(stmt); m != nil {
		schema := "main"
		if m[1] != "" {
			schema = m[1]
		}
		res, err := s.sqliteLocked(ctx, "SELECT name AS tables FROM "+schema+".sqlite_master WHERE type='table' AND name<>'sqlite_sequence' ORDER BY name")
		if err != nil {
			return nil, false
		}
		return res, true
	}
	return nil, false
}

// sqliteLocked runs stmt in SQLite and converts the answer.
func (s *Server) sqliteLocked(ctx context.Context, stmt string) (*gmysql.Result, error) {
	if returnsRows(stmt) {
		rows, err := s.sq.QueryContext(ctx, stmt)
		if err != nil {
			return nil, adminError(sqliteMessage(err))
		}
		defer rows.Close()
		cols, err := rows.Columns()
		if err != nil {
			return nil, adminError(sqliteMessage(err))
		}
		var data [][]*string
		for rows.Next() {
			v := make([]any, len(cols))
			p := make([]any, len(cols))
			for i := range v {
				p[i] = &v[i]
			}
			if err := rows.Scan(p...); err != nil {
				return nil, adminError(sqliteMessage(err))
			}
			row := make([]*string, len(cols))
			for i, x := range v {
				row[i] = cell(x)
			}
			data = append(data, row)
		}
		if err := rows.Err(); err != nil {
			return nil, adminError(sqliteMessage(err))
		}
		if len(cols) == 0 {
			return &gmysql.Result{}, nil
		}
		return textResult(cols, data), nil
	}
	res, err := s.sq.ExecContext(ctx, stmt)
	if err != nil {
		return nil, adminError(sqliteMessage(err))
	}
	n, _ := res.RowsAffected()
	return &gmysql.Result{AffectedRows: uint64(max(n, 0))}, nil
}

func returnsRows(stmt string) bool {
	word := strings.ToUpper(strings.SplitN(strings.TrimLeft(stmt, "( \t\r\n"), " ", 2)[0])
	word = strings.TrimRight(word, "\t\r\n(")
	switch word {
	case "SELECT", "PRAGMA", "WITH", "VALUES", "EXPLAIN":
		return true
	}
	return false
}

// cell renders an SQLite value as ProxySQL sends it: text, or NULL.
func cell(v any) *string {
	var s string
	switch x := v.(type) {
	case nil:
		return nil
	case int64:
		s = strconv.FormatInt(x, 10)
	case float64:
		s = strconv.FormatFloat(x, 'f', -1, 64)
	case []byte:
		s = string(x)
	case string:
		s = x
	case bool:
		s = "0"
		if x {
			s = "1"
		}
	case time.Time:
		s = x.Format("2006-01-02 15:04:05")
	default:
		s = fmt.Sprint(x)
	}
	return &s
}

// textResult builds a text resultset whose every column is VAR_STRING,
// utf8 (collation 33), as ProxySQL admin sends them (reference 1.5).
func textResult(cols []string, rows [][]*string) *gmysql.Result {
	rs := &gmysql.Resultset{FieldNames: map[string]int{}}
	for i, c := range cols {
		rs.Fields = append(rs.Fields, &gmysql.Field{
			Name: []byte(c), Charset: 33, Type: gmysql.MYSQL_TYPE_VAR_STRING,
			Flag: gmysql.NOT_NULL_FLAG, ColumnLength: 15, Decimal: 31,
		})
		rs.FieldNames[c] = i
	}
	for _, r := range rows {
		var b []byte
		for _, v := range r {
			if v == nil {
				b = append(b, 0xfb)
				continue
			}
			b = append(b, gmysql.PutLengthEncodedString([]byte(*v))...)
		}
		rs.RowDatas = append(rs.RowDatas, b)
	}
	return &gmysql.Result{Resultset: rs}
}

// sqliteMessage extracts SQLite's own message (sqlite3_errmsg) from a
// modernc error, which reads "<errstr>: <errmsg> (<code>)".
func sqliteMessage(err error) string {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return err.Error()
	}
	msg := se.Error()
	msg = strings.TrimSuffix(msg, " (SQLITE_BUSY)")
	msg = strings.TrimSuffix(msg, " ("+strconv.Itoa(se.Code())+")")
	if _, rest, ok := strings.Cut(msg, ": "); ok {
		return rest
	}
	return msg
}

// firstStatement returns raw up to its first ';' outside quotes and
// comments.
func firstStatement(raw string) string {
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; c {
		case ';':
			return raw[:i]
		case '\'', '"', '`':
			j := i + 1
			for j < len(raw) {
				if raw[j] == c {
					if j+1 < len(raw) && raw[j+1] == c {
						j += 2
						continue
					}
					break
				}
				j++
			}
			i = j
		case '[':
			if j := strings.IndexByte(raw[i:], ']'); j >= 0 {
				i += j
			} else {
				i = len(raw)
			}
		case '-':
			if i+1 < len(raw) && raw[i+1] == '-' {
				if j := strings.IndexByte(raw[i:], '\n'); j >= 0 {
					i += j
				} else {
					i = len(raw)
				}
			}
		case '/':
			if i+1 < len(raw) && raw[i+1] == '*' {
				if j := strings.Index(raw[i+2:], "*/"); j >= 0 {
					i += j + 3
				} else {
					i = len(raw)
				}
			}
		}
	}
	return raw
}
