package proxysqltest

import (
	"fmt"
	"regexp"
	"slices"
	"time"
)

// PrepareLogPrefix marks COM_STMT_PREPARE attempts in the statement log.
const PrepareLogPrefix = "COM_STMT_PREPARE: "

type faultAction int

const (
	faultFail   faultAction = iota // answer with an admin error
	faultDrop                      // close the session without answering
	faultIgnore                    // answer OK without running the statement
)

type fault struct {
	re      *regexp.Regexp
	left    int
	action  faultAction
	message string
}

func (s *Server) addFault(pattern string, n int, a faultAction, msg string) error {
	re, err := compileCI(pattern)
	if err != nil {
		return fmt.Errorf("proxysqltest: fault pattern %q: %w", pattern, err)
	}
	if n <= 0 {
		return fmt.Errorf("proxysqltest: fault pattern %q: count %d must be positive", pattern, n)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{re: re, left: n, action: a, message: msg})
	return nil
}

// FailNext makes the next n statements whose text matches pattern (a
// regular expression, case-insensitive) fail with errno 1045
// "ProxySQL Admin Error: <message>", without running them.
func (s *Server) FailNext(pattern string, n int, message string) error {
	return s.addFault(pattern, n, faultFail, message)
}

// DropNext makes the next n statements matching pattern close their
// session instead of answering; the statement does not run.
func (s *Server) DropNext(pattern string, n int) error {
	return s.addFault(pattern, n, faultDrop, "")
}

// IgnoreNext makes the next n statements matching pattern answer OK without
// running, e.g. a LOAD that does not take effect.
func (s *Server) IgnoreNext(pattern string, n int) error {
	return s.addFault(pattern, n, faultIgnore, "")
}

// ClearFaults removes every pending fault and the delay.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults, s.delay = nil, 0
}

// SetDelay makes every statement answer d late (0 turns it off).
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// matchFaultLocked consumes and returns the first pending fault matching
// stmt, if any.
func (s *Server) matchFaultLocked(stmt string) *fault {
	for i, f := range s.faults {
		if !f.re.MatchString(stmt) {
			continue
		}
		f.left--
		if f.left == 0 {
			s.faults = slices.Delete(s.faults, i, i+1)
		}
		return f
	}
	return nil
}

// LoggedStatement is one statement the stand-in received.
type LoggedStatement struct {
	Session uint64    // admin session it came in on, numbered from 1
	Text    string    // exactly as sent
	At      time.Time // when the stand-in received it
}

func (s *Server) logStatement(session uint64, q string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stmtLog = append(s.stmtLog, LoggedStatement{Session: session, Text: q, At: time.Now()})
}

// Log returns every statement received since the start or the last
// ResetStatements, in order, with its session.
func (s *Server) Log() []LoggedStatement {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.stmtLog)
}

// Statements returns the texts of Log: exactly as sent (multi-statement
// strings stay whole). Prepare attempts carry PrepareLogPrefix.
func (s *Server) Statements() []string {
	var out []string
	for _, l := range s.Log() {
		out = append(out, l.Text)
	}
	return out
}

// ResetStatements clears the statement log.
func (s *Server) ResetStatements() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stmtLog = nil
}

// CountStatements counts logged statements matching pattern
// (case-insensitive regular expression).
func (s *Server) CountStatements(pattern string) int {
	re, err := compileCI(pattern)
	if err != nil {
		return -1
	}
	n := 0
	for _, q := range s.Statements() {
		if re.MatchString(q) {
			n++
		}
	}
	return n
}
