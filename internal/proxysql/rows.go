package proxysql

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/proxy"
)

// Sentinel errors. Test them with errors.Is.
var (
	// ErrUnavailable: the admin interface could not be reached or the
	// session broke (refused, timed out, connection lost).
	ErrUnavailable = errors.New("proxysql admin unavailable")
	// ErrConflictingManager: another manager owns one of dbha's hostgroups
	// (mysql_galera_hostgroups, mysql_group_replication_hostgroups,
	// mysql_replication_hostgroups) or ProxySQL Cluster would sync
	// mysql_servers from peers. dbha refuses to apply.
	ErrConflictingManager = errors.New("another manager controls dbha's proxysql hostgroups")
	// ErrRejected: ProxySQL admin answered a statement (or the login) with
	// an error. The *mysql.MySQLError is wrapped too.
	ErrRejected = errors.New("proxysql admin rejected a statement")
	// ErrVerify: after LOAD, runtime_mysql_servers does not hold what dbha
	// wrote.
	ErrVerify = errors.New("proxysql runtime does not match after load")
	// ErrInvalidRouting: the routing cannot be expressed (missing or
	// duplicate backends, names dbha will not send to the admin interface).
	ErrInvalidRouting = errors.New("invalid routing for proxysql")
)

// Server statuses of mysql_servers.
const (
	StatusOnline      = "ONLINE"
	StatusShunned     = "SHUNNED"
	StatusOfflineSoft = "OFFLINE_SOFT"
	StatusOfflineHard = "OFFLINE_HARD"
)

// Pool names in proxy.ServerState.
const (
	PoolWriter = "writer"
	PoolReader = "reader"
)

// commentPrefix starts the comment of every row dbha writes:
// "dbha node=db1". The node name lets an operator read runtime_mysql_servers
// and lets Observe name nodes before the first Apply.
const commentPrefix = "dbha node="

// serverRow is one mysql_servers row, every column.
type serverRow struct {
	Hostgroup         int
	Hostname          string
	Port              int
	GtidPort          int
	Status            string
	Weight            int
	Compression       int
	MaxConnections    int
	MaxReplicationLag int
	UseSSL            int
	MaxLatencyMs      int
	Comment           string
}

type rowKey struct {
	Hostgroup int
	Hostname  string
	Port      int
}

func (r serverRow) key() rowKey { return rowKey{r.Hostgroup, r.Hostname, r.Port} }

func (k rowKey) String() string { return fmt.Sprintf("%d:%s:%d", k.Hostgroup, k.Hostname, k.Port) }

func (r serverRow) String() string {
	return fmt.Sprintf("%s %s weight=%d max_connections=%d comment=%q", r.key(), r.Status, r.Weight, r.MaxConnections, r.Comment)
}

func sortRows(rows []serverRow) {
	slices.SortFunc(rows, func(a, b serverRow) int {
		return cmp.Or(cmp.Compare(a.Hostgroup, b.Hostgroup), strings.Compare(a.Hostname, b.Hostname), cmp.Compare(a.Port, b.Port))
	})
}

// safeHost and safeName are what dbha sends inside SQL literals. Quoting is
// done properly anyway (SQLite ” doubling); the allow-list is defence in
// depth, because ProxySQL admin parses some statements itself before SQLite
// sees them.
var (
	safeHost = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,255}$`)
	safeName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)
)

// desiredRows computes the rows of dbha's hostgroups for routing r.
//
//   - writer hostgroup: the writer ONLINE; a fenced old writer OFFLINE_HARD.
//   - reader hostgroup: every reader ONLINE, plus the writer when
//     WriterIsReader (or when the topology lists it among the readers).
//   - a draining node is OFFLINE_SOFT in each of dbha's hostgroups where it
//     has a row now, so its sessions finish where they are; with no row it
//     has no sessions to drain. A row that is OFFLINE_HARD now (a fenced
//     writer) stays OFFLINE_HARD: a fence is never softened. In the writer
//     hostgroup OFFLINE_SOFT lasts only while the topology has no writer
//     (switchover step 1); once a writer is ONLINE, a draining node's
//     writer row is OFFLINE_HARD, so at most one server holds writer
//     sessions while a writer is ONLINE (as the HAProxy driver does).
//   - every other node (other offline reasons, nodes no longer named): no
//     row. Deleting a server has the same effect on sessions as
//     OFFLINE_HARD (reference 3c/3d), and keeps the table a function of the
//     topology. docs/proxysql.md explains the choice.
//
// current maps the rows of dbha's hostgroups present now to their status
// (see currentStatus); only draining nodes look at it.
func desiredRows(r proxy.Routing, whg, rhg int, opts ServerOptions, current map[rowKey]string) ([]serverRow, error) {
	if err := validateRouting(r); err != nil {
		return nil, err
	}
	t := r.Topology
	row := func(hg int, n cluster.NodeName, status string) serverRow {
		b := r.Backends[n]
		return serverRow{
			Hostgroup: hg, Hostname: b.Host, Port: b.Port, Status: status,
			Weight: opts.Weight, Compression: b2i(opts.Compression), MaxConnections: opts.MaxConnections,
			UseSSL: b2i(opts.UseSSL), MaxLatencyMs: opts.MaxLatencyMs, Comment: commentPrefix + string(n),
		}
	}
	var out []serverRow
	if t.Writer != "" {
		out = append(out, row(whg, t.Writer, StatusOnline))
		if r.WriterIsReader || t.IsReader(t.Writer) {
			out = append(out, row(rhg, t.Writer, StatusOnline))
		}
	}
	for _, n := range t.Readers {
		if n == t.Writer {
			continue // added above
		}
		out = append(out, row(rhg, n, StatusOnline))
	}
	for _, o := range t.Offline {
		b := r.Backends[o.Node]
		switch o.Reason {
		case cluster.ReasonFenced:
			out = append(out, row(whg, o.Node, StatusOfflineHard))
		case cluster.ReasonDraining:
			for _, hg := range []int{whg, rhg} {
				st, ok := current[rowKey{hg, b.Host, b.Port}]
				switch {
				case !ok:
				case st == StatusOfflineHard:
					out = append(out, row(hg, o.Node, StatusOfflineHard))
				case hg == whg && t.Writer != "":
					// A new writer is ONLINE: the old one's writer
					// sessions must end now, or two servers take writes.
					out = append(out, row(hg, o.Node, StatusOfflineHard))
				default:
					out = append(out, row(hg, o.Node, StatusOfflineSoft))
				}
			}
		}
	}
	sortRows(out)
	return out, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// validateRouting checks what desiredRows relies on.
func validateRouting(r proxy.Routing) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidRouting, err)
	}
	t := r.Topology
	names := append([]cluster.NodeName{}, t.Readers...)
	if t.Writer != "" {
		names = append(names, t.Writer)
	}
	for _, o := range t.Offline {
		names = append(names, o.Node)
	}
	byAddr := map[proxy.Backend]cluster.NodeName{}
	for _, n := range names {
		b := r.Backends[n]
		if !safeName.MatchString(string(n)) {
			return fmt.Errorf("%w: node name %q: only letters, digits, '.', '_' and '-' are sent to proxysql", ErrInvalidRouting, n)
		}
		if !safeHost.MatchString(b.Host) {
			return fmt.Errorf("%w: node %s: backend host %q: only letters, digits, '.', ':', '_' and '-' are sent to proxysql", ErrInvalidRouting, n, b.Host)
		}
		if b.Port <= 0 || b.Port > 65535 {
			return fmt.Errorf("%w: node %s: backend port %d out of range", ErrInvalidRouting, n, b.Port)
		}
		if other, ok := byAddr[b]; ok && other != n {
			return fmt.Errorf("%w: nodes %s and %s share backend %s", ErrInvalidRouting, other, n, b)
		}
		byAddr[b] = n
	}
	return nil
}

// equalRows reports whether two row sets are identical (order ignored).
func equalRows(a, b []serverRow) bool {
	if len(a) != len(b) {
		return false
	}
	x, y := slices.Clone(a), slices.Clone(b)
	sortRows(x)
	sortRows(y)
	return slices.Equal(x, y)
}

// runtimeDiff compares runtime_mysql_servers (dbha's hostgroups) with the
// desired rows as sets, allowing for what ProxySQL itself does at runtime:
//
//   - SHUNNED stands for ONLINE: ProxySQL shuns a failing backend on its
//     own, and saves it back as ONLINE (reference 2.2).
//   - a row dbha deleted stays listed as OFFLINE_HARD while a session
//     still holds a connection to it (reference 3c); that is the deletion
//     taking effect, not drift.
//
// It returns human-readable differences, empty when runtime matches.
func runtimeDiff(desired, runtime []serverRow) []string {
	want := map[rowKey]serverRow{}
	for _, d := range desired {
		want[d.key()] = d
	}
	var diffs []string
	seen := map[rowKey]bool{}
	for _, got := range runtime {
		k := got.key()
		seen[k] = true
		d, ok := want[k]
		if !ok {
			if strings.ToUpper(got.Status) != StatusOfflineHard {
				diffs = append(diffs, "unexpected "+got.String())
			}
			continue
		}
		g := got
		g.Status = strings.ToUpper(g.Status)
		if g.Status == StatusShunned && d.Status == StatusOnline {
			g.Status = StatusOnline
		}
		if g != d {
			diffs = append(diffs, fmt.Sprintf("%s: have %s, want %s", k, got, d))
		}
	}
	for _, d := range desired {
		if !seen[d.key()] {
			diffs = append(diffs, "missing "+d.String())
		}
	}
	slices.Sort(diffs)
	return diffs
}

// nodeFromComment returns the node name dbha wrote into a row's comment.
func nodeFromComment(c string) (cluster.NodeName, bool) {
	n, ok := strings.CutPrefix(c, commentPrefix)
	if !ok || n == "" {
		return "", false
	}
	return cluster.NodeName(n), true
}

// currentStatus merges the rows of dbha's hostgroups in main and runtime
// into key → upper-cased status. Main wins; a runtime-only OFFLINE_HARD row
// is a deleted server whose last session has not noticed yet, so it does
// not count as present.
func currentStatus(main, runtime []serverRow) map[rowKey]string {
	cur := map[rowKey]string{}
	for _, r := range runtime {
		if st := strings.ToUpper(r.Status); st != StatusOfflineHard {
			cur[r.key()] = st
		}
	}
	for _, r := range main {
		cur[r.key()] = strings.ToUpper(r.Status)
	}
	return cur
}
