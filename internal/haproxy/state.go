package haproxy

import (
	"encoding/csv"
	"fmt"
	"strconv"
	"strings"

	"github.com/dbha/dbha/internal/cluster"
)

// AdminState is the administrative state dbha sets on a server with
// "set server <backend>/<server> state <AdminState>".
type AdminState string

const (
	StateReady AdminState = "ready" // takes new sessions
	StateDrain AdminState = "drain" // keeps its sessions, takes no new ones
	StateMaint AdminState = "maint" // takes no new sessions
)

// Status values reported by Observe: an AdminState, or StatusDown for a
// server that is administratively ready but that HAProxy's own health check
// has marked down.
const (
	StatusReady = string(StateReady)
	StatusDrain = string(StateDrain)
	StatusMaint = string(StateMaint)
	StatusDown  = "down"
)

// srv_admin_state bits from HAProxy's management guide ("show servers
// state"). SRV_ADMF_CMAINT (0x04) only records that the config said
// "disabled": it stays set after "state ready" and is not maintenance by
// itself, so it is left out of adminMaint (HAProxy's own SRV_ADMF_MAINT
// mask is 0x23 as well).
const (
	admFMaint = 0x01 // forced maintenance (CLI "state maint" or config "disabled")
	admIMaint = 0x02 // inherited from a tracked server
	admFDrain = 0x08 // forced drain
	admIDrain = 0x10 // inherited drain
	admRMaint = 0x20 // address resolution failure

	adminMaint = admFMaint | admIMaint | admRMaint
	adminDrain = admFDrain | admIDrain
)

// srv_op_state values.
const (
	opStopped  = 0
	opRunning  = 2
	opStopping = 3
)

// serverRuntime is one server of one backend as HAProxy runs it.
type serverRuntime struct {
	Backend    string
	Name       cluster.NodeName
	Addr       string // srv_addr, "-" when unresolved
	Port       int
	OpState    int
	AdminFlags int
	Sessions   int // scur from "show stat"; filled in separately
}

// Admin classifies the admin flags.
func (s serverRuntime) Admin() AdminState {
	switch {
	case s.AdminFlags&adminMaint != 0:
		return StateMaint
	case s.AdminFlags&adminDrain != 0:
		return StateDrain
	default:
		return StateReady
	}
}

// Status is what Observe reports: maint and drain win; a ready server
// stopped by a health check is down; one soft-stopped by a check (404 with
// disable-on-404) takes no new sessions, like drain.
func (s serverRuntime) Status() string {
	switch a := s.Admin(); {
	case a != StateReady:
		return string(a)
	case s.OpState == opStopped:
		return StatusDown
	case s.OpState == opStopping:
		return StatusDrain
	default:
		return StatusReady
	}
}

// parseServersState parses the answer to "show servers state <backend>".
// It locates columns by the header's names, so added columns in later
// format versions do not break it.
func parseServersState(answer string) ([]serverRuntime, error) {
	lines := strings.Split(strings.TrimRight(answer, "\n"), "\n")
	if len(lines) < 2 || strings.TrimSpace(lines[0]) != "1" {
		return nil, fmt.Errorf("show servers state: want format version 1 and a header, got %q", firstLine(answer))
	}
	header := strings.Fields(strings.TrimPrefix(lines[1], "#"))
	col := map[string]int{}
	for i, h := range header {
		col[h] = i
	}
	for _, need := range []string{"be_name", "srv_name", "srv_addr", "srv_op_state", "srv_admin_state", "srv_port"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("show servers state: header lacks column %s", need)
		}
	}
	var out []serverRuntime
	for i, line := range lines[2:] {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < len(header) {
			return nil, fmt.Errorf("show servers state: line %d has %d fields, header has %d", i+3, len(f), len(header))
		}
		num := func(name string) (int, error) {
			v, err := strconv.Atoi(f[col[name]])
			if err != nil {
				return 0, fmt.Errorf("show servers state: line %d: %s %q is not a number", i+3, name, f[col[name]])
			}
			return v, nil
		}
		op, err := num("srv_op_state")
		if err != nil {
			return nil, err
		}
		adm, err := num("srv_admin_state")
		if err != nil {
			return nil, err
		}
		port, _ := strconv.Atoi(f[col["srv_port"]]) // "-" or 0 for unset ports
		out = append(out, serverRuntime{
			Backend:    f[col["be_name"]],
			Name:       cluster.NodeName(f[col["srv_name"]]),
			Addr:       f[col["srv_addr"]],
			Port:       port,
			OpState:    op,
			AdminFlags: adm,
		})
	}
	return out, nil
}

// statKey names a server in "show stat".
type statKey struct {
	backend string
	server  string
}

// parseStat parses the CSV answer to "show stat" and returns scur for
// every server row (BACKEND and FRONTEND rows are skipped).
func parseStat(answer string) (map[statKey]int, error) {
	if !strings.HasPrefix(answer, "# ") {
		return nil, fmt.Errorf("show stat: want a CSV header, got %q", firstLine(answer))
	}
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(answer, "# ")))
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	records, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("show stat: %w", err)
	}
	if len(records) == 0 {
		return nil, fmt.Errorf("show stat: empty answer")
	}
	col := map[string]int{}
	for i, h := range records[0] {
		col[h] = i
	}
	px, okPx := col["pxname"]
	sv, okSv := col["svname"]
	sc, okSc := col["scur"]
	if !okPx || !okSv || !okSc {
		return nil, fmt.Errorf("show stat: header lacks pxname, svname or scur")
	}
	out := map[statKey]int{}
	for i, rec := range records[1:] {
		if len(rec) <= max(px, sv, sc) {
			continue // blank line at the end
		}
		if rec[sv] == "BACKEND" || rec[sv] == "FRONTEND" {
			continue
		}
		n := 0
		if rec[sc] != "" {
			if n, err = strconv.Atoi(rec[sc]); err != nil {
				return nil, fmt.Errorf("show stat: row %d: scur %q is not a number", i+2, rec[sc])
			}
		}
		out[statKey{rec[px], rec[sv]}] = n
	}
	return out, nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}
