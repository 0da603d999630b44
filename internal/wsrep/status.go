// Package wsrep is how dbha observes MariaDB Galera.
//
// A DB agent runs a Poller against its local mariadbd: every poll reads the
// wsrep status (Read), validates it (Parse), classifies it (Classify) and
// reports a cluster.Observation with a Streak of equal classifications, which
// the planner's fail_after / recover_after hysteresis reads.
//
// A proxy agent runs a Prober: from its own vantage point it checks that
// every DB node's MySQL port answers with a server greeting.
package wsrep

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/dbha/dbha/internal/cluster"
)

// ErrBadStatus means the server answered, but what it said about wsrep is
// missing or malformed: the wsrep provider is not loaded, wsrep is off, or a
// value is out of range. The wrapping error names the variable and value.
var ErrBadStatus = errors.New("bad wsrep status")

// StatusError is one problem with what the server said. It matches
// ErrBadStatus with errors.Is; errors.As gives the variable and value.
type StatusError struct {
	Name    string // status variable, "@@" + system variable, or the statement
	Value   string // as the server sent it; empty when Missing
	Missing bool
	Problem string // what is wrong, in words
}

func (e *StatusError) Error() string {
	if e.Missing {
		return fmt.Sprintf("%v: %s missing%s", ErrBadStatus, e.Name, e.Problem)
	}
	return fmt.Sprintf("%v: %s=%q: %s", ErrBadStatus, e.Name, e.Value, e.Problem)
}

// Unwrap makes errors.Is(err, ErrBadStatus) hold.
func (e *StatusError) Unwrap() error { return ErrBadStatus }

func badValue(name, value, format string, args ...any) error {
	return &StatusError{Name: name, Value: value, Problem: fmt.Sprintf(format, args...)}
}

func missing(name, note string) error { return &StatusError{Name: name, Missing: true, Problem: note} }

// StatusQuery and VarsQuery are the two statements Read sends.
const (
	StatusQuery = "SHOW GLOBAL STATUS LIKE 'wsrep_%'"
	VarsQuery   = "SELECT @@read_only, @@wsrep_on, @@wsrep_desync, @@wsrep_reject_queries"
)

// Status variables Parse requires (SHOW GLOBAL STATUS), all lower case.
const (
	StLocalState        = "wsrep_local_state"
	StLocalStateComment = "wsrep_local_state_comment"
	StClusterStatus     = "wsrep_cluster_status"
	StReady             = "wsrep_ready"
	StConnected         = "wsrep_connected"
	StClusterSize       = "wsrep_cluster_size"
	StClusterStateUUID  = "wsrep_cluster_state_uuid"
	StLastCommitted     = "wsrep_last_committed"
	StLocalRecvQueue    = "wsrep_local_recv_queue"
	StFlowControlPaused = "wsrep_flow_control_paused"
	StLocalCachedDownto = "wsrep_local_cached_downto"
)

// System variables Parse requires, keyed without the "@@".
const (
	VarReadOnly      = "read_only"
	VarWsrepOn       = "wsrep_on"
	VarDesync        = "wsrep_desync"
	VarRejectQueries = "wsrep_reject_queries"
)

// varColumns is the column order of VarsQuery.
var varColumns = [...]string{VarReadOnly, VarWsrepOn, VarDesync, VarRejectQueries}

// Galera's wsrep_local_state runs from 0 (undefined/initialized) to 5
// (error); see the wsrep API's wsrep_member_status_t.
const (
	minLocalState = 0
	maxLocalState = 5
)

// uuidRE matches a canonical UUID, as Galera prints its state UUIDs.
var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Read reads and validates the wsrep status of the server behind db: one
// SHOW GLOBAL STATUS and one SELECT of the system variables, on whatever
// pooled connection database/sql hands out. Errors from the server or the
// network are returned wrapped; a bad answer wraps ErrBadStatus.
func Read(ctx context.Context, db *sql.DB) (cluster.WsrepStatus, error) {
	status, err := readStatus(ctx, db)
	if err != nil {
		return cluster.WsrepStatus{}, fmt.Errorf("read wsrep status: %w", err)
	}
	vars, err := readVars(ctx, db)
	if err != nil {
		return cluster.WsrepStatus{}, fmt.Errorf("read wsrep variables: %w", err)
	}
	w, err := Parse(status, vars)
	if err != nil {
		return cluster.WsrepStatus{}, fmt.Errorf("read wsrep: %w", err)
	}
	return w, nil
}

func readStatus(ctx context.Context, db *sql.DB) (map[string]string, error) {
	rows, err := db.QueryContext(ctx, StatusQuery)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	if len(cols) != 2 {
		return nil, badValue(StatusQuery, fmt.Sprint(len(cols)), "want 2 columns")
	}
	out := map[string]string{}
	for rows.Next() {
		var k, v sql.NullString
		if err := rows.Scan(&k, &v); err != nil {
			return nil, err
		}
		if !k.Valid || !v.Valid {
			// A NULL name or value is as good as absent; Parse reports
			// the variables it needs and does not get.
			continue
		}
		name := strings.ToLower(k.String)
		if _, dup := out[name]; dup {
			return nil, badValue(name, v.String, "listed twice")
		}
		out[name] = v.String
	}
	return out, rows.Err()
}

func readVars(ctx context.Context, db *sql.DB) (map[string]string, error) {
	rows, err := db.QueryContext(ctx, VarsQuery)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	if len(cols) != len(varColumns) {
		return nil, badValue(VarsQuery, fmt.Sprint(len(cols)), "want %d columns", len(varColumns))
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, err
		}
		return nil, missing(VarsQuery, ": no row")
	}
	vals := make([]sql.NullString, len(varColumns))
	ptrs := make([]any, len(vals))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	if rows.Next() {
		return nil, badValue(VarsQuery, "", "more than one row")
	}
	out := map[string]string{}
	for i, v := range vals {
		if v.Valid {
			out[varColumns[i]] = v.String
		}
	}
	return out, rows.Err()
}

// Parse validates raw wsrep status variables (SHOW GLOBAL STATUS, names as
// listed by the St* constants) and system variables (Var* names, without
// "@@") and converts them. Names are matched case-insensitively; other
// entries are ignored.
//
// Every problem is reported at once, each a *StatusError
// that names the variable and the value and matches ErrBadStatus. On error the status is the zero value: a
// half-parsed status must never be classified.
//
// Accepted forms: booleans ON/OFF/1/0 (any case); wsrep_local_state 0..5;
// wsrep_cluster_status Primary, non-Primary or Disconnected;
// wsrep_cluster_state_uuid a canonical UUID, or empty when not Primary;
// seqnos (last_committed, local_cached_downto) -1 or more, where
// 18446744073709551615 (an unsigned -1, printed by some Galera versions for
// an empty gcache) reads as -1; sizes and queues 0 or more;
// wsrep_flow_control_paused a finite fraction 0 or more (no upper bound is
// enforced, so float rounding never marks a healthy node bad);
// wsrep_reject_queries NONE, ALL or ALL_KILL.
func Parse(status, vars map[string]string) (cluster.WsrepStatus, error) {
	p := parser{status: lowerKeys(status), vars: lowerKeys(vars)}
	var w cluster.WsrepStatus

	// wsrep_local_state is the marker that a provider is loaded: without
	// one, MariaDB lists a few wsrep_* variables but not this one.
	if v, ok := p.status[StLocalState]; ok {
		w.LocalState = int(p.integer(StLocalState, v, minLocalState, maxLocalState))
	} else {
		p.fail(missing(StLocalState, " (is the wsrep provider loaded?)"))
	}
	if on, ok := p.boolVar(VarWsrepOn); ok && !on {
		p.fail(badValue("@@"+VarWsrepOn, p.vars[VarWsrepOn], "wsrep is off"))
	}
	if v, ok := p.stat(StLocalStateComment); ok {
		w.LocalStateComment = v
	}
	if v, ok := p.stat(StClusterStatus); ok {
		switch v {
		case cluster.WsrepPrimary, cluster.WsrepNonPrim, cluster.WsrepDisconn:
			w.ClusterStatus = v
		default:
			p.fail(badValue(StClusterStatus, v, "want %s, %s or %s", cluster.WsrepPrimary, cluster.WsrepNonPrim, cluster.WsrepDisconn))
		}
	}
	w.Ready, _ = p.boolStat(StReady)
	w.Connected, _ = p.boolStat(StConnected)
	if v, ok := p.stat(StClusterSize); ok {
		w.ClusterSize = int(p.integer(StClusterSize, v, 0, math.MaxInt32))
	}
	if v, ok := p.stat(StClusterStateUUID); ok {
		switch {
		case uuidRE.MatchString(v):
			w.ClusterStateUUID = strings.ToLower(v)
		case v == "" && w.ClusterStatus != "" && w.ClusterStatus != cluster.WsrepPrimary:
			// A node outside any component may not know the state yet.
		default:
			p.fail(badValue(StClusterStateUUID, v, "not a uuid"))
		}
	}
	if v, ok := p.stat(StLastCommitted); ok {
		w.LastCommitted = p.seqno(StLastCommitted, v)
	}
	if v, ok := p.stat(StLocalRecvQueue); ok {
		w.LocalRecvQueue = p.integer(StLocalRecvQueue, v, 0, math.MaxInt64)
	}
	if v, ok := p.stat(StFlowControlPaused); ok {
		f, err := strconv.ParseFloat(v, 64)
		switch {
		case err != nil:
			p.fail(badValue(StFlowControlPaused, v, "not a number"))
		case math.IsNaN(f) || math.IsInf(f, 0) || f < 0:
			p.fail(badValue(StFlowControlPaused, v, "want a finite fraction of 0 or more"))
		default:
			w.FlowControlPaused = f
		}
	}
	if v, ok := p.stat(StLocalCachedDownto); ok {
		w.LocalCachedDownto = p.seqno(StLocalCachedDownto, v)
	}
	w.ReadOnly, _ = p.boolVar(VarReadOnly)
	w.Desync, _ = p.boolVar(VarDesync)
	if v, ok := p.variable(VarRejectQueries); ok {
		switch u := strings.ToUpper(v); u {
		case cluster.RejectNone, "ALL", "ALL_KILL":
			w.RejectQueries = u
		default:
			p.fail(badValue("@@"+VarRejectQueries, v, "want NONE, ALL or ALL_KILL"))
		}
	}
	if len(p.errs) > 0 {
		return cluster.WsrepStatus{}, statusErrors(p.errs)
	}
	return w, nil
}

// statusErrors joins several problems on one line (observations carry the
// text, so no newlines); errors.Is and errors.As see each of them.
type statusErrors []error

func (e statusErrors) Error() string {
	parts := make([]string, len(e))
	for i, err := range e {
		parts[i] = err.Error()
	}
	return strings.Join(parts, "; ")
}

func (e statusErrors) Unwrap() []error { return e }

// parser accumulates every problem of one Parse call.
type parser struct {
	status, vars map[string]string
	errs         []error
}

func (p *parser) fail(err error) { p.errs = append(p.errs, err) }

func (p *parser) stat(name string) (string, bool) {
	v, ok := p.status[name]
	if !ok {
		p.fail(missing(name, ""))
	}
	return v, ok
}

func (p *parser) variable(name string) (string, bool) {
	v, ok := p.vars[name]
	if !ok {
		p.fail(missing("@@"+name, ""))
	}
	return v, ok
}

func (p *parser) integer(name, v string, lo, hi int64) int64 {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		p.fail(badValue(name, v, "not an integer"))
		return 0
	}
	if n < lo || n > hi {
		p.fail(badValue(name, v, "want %d to %d", lo, hi))
		return 0
	}
	return n
}

// seqno parses a Galera sequence number: -1 (undefined) or more.
func (p *parser) seqno(name, v string) int64 {
	if u, err := strconv.ParseUint(v, 10, 64); err == nil && u == math.MaxUint64 {
		return -1
	}
	return p.integer(name, v, -1, math.MaxInt64)
}

func (p *parser) boolStat(name string) (bool, bool) {
	v, ok := p.stat(name)
	if !ok {
		return false, false
	}
	return p.boolean(name, v)
}

func (p *parser) boolVar(name string) (bool, bool) {
	v, ok := p.variable(name)
	if !ok {
		return false, false
	}
	return p.boolean("@@"+name, v)
}

func (p *parser) boolean(name, v string) (bool, bool) {
	switch strings.ToUpper(v) {
	case "ON", "1":
		return true, true
	case "OFF", "0":
		return false, true
	}
	p.fail(badValue(name, v, "want ON or OFF"))
	return false, false
}

func lowerKeys(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	// Sorted so that, should two keys differ only in case, the result
	// does not depend on map order.
	slices.Sort(keys)
	for _, k := range keys {
		out[strings.ToLower(k)] = m[k]
	}
	return out
}
