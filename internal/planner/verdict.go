package planner

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/dbha/dbha/internal/cluster"
)

// code names a per-node verdict.
type code string

const (
	codeMaintenance       code = "maintenance"
	codeDraining          code = "draining"
	codeGrantDonor        code = "grant_donor"
	codeGrantJoiner       code = "grant_joiner"
	codeDonor             code = "donor"
	codeJoining           code = "joining"
	codeContradiction     code = "contradiction"
	codeFailed            code = "failed"
	codeSuspect           code = "suspect"
	codeSilentUnreachable code = "silent_unreachable"
	codeSilentKept        code = "silent_kept"
	codeSilentUnknown     code = "silent_unknown"
	codeRecovering        code = "recovering"
	codeRecovered         code = "recovered"
	codeHealthy           code = "healthy"
	// codeUnclassified is the fallback when no row matches. The table is
	// exhaustive, so it never happens; the property tests check that.
	codeUnclassified code = "unclassified"
)

// placement is where a node sits in the committed topology.
type placement int

const (
	placeAbsent placement = iota
	placeWriter
	placeReader
	placeOffline
)

func (p placement) String() string {
	switch p {
	case placeWriter:
		return "writer"
	case placeReader:
		return "reader"
	case placeOffline:
		return "offline"
	default:
		return "absent"
	}
}

// facts is everything the verdict table looks at for one DB node.
type facts struct {
	Node   cluster.NodeName
	Member cluster.Member
	Policy Policy

	// Obs is the node's own fresh DB observation, nil when its agent is
	// silent. Age is the age of the latest report by receive time, or -1
	// when there is none.
	Obs *cluster.Observation
	Age time.Duration

	// Place and CurReason describe the node in the committed topology.
	Place     placement
	CurReason cluster.OfflineReason

	// Observers is the number of fresh proxy observers other than the node
	// itself; Unreachable is how many of them report its MySQL port down.
	Observers, Unreachable int

	GrantDonor, GrantJoiner bool
}

func (f facts) silent() bool { return f.Obs == nil }

func (f facts) reports(h cluster.Health) bool { return f.Obs != nil && f.Obs.Health == h }

func (f facts) reportsBad() bool { return f.Obs != nil && f.Obs.Health != cluster.HealthOK }

// servesOK reports a fresh ok report whose wsrep status agrees: reachable,
// Synced, Primary, ready, not desynced and not rejecting queries.
func (f facts) servesOK() bool {
	return f.reports(cluster.HealthOK) && wsrepProblem(f.Obs) == ""
}

func (f facts) placed() bool { return f.Place != placeAbsent }

func (f facts) majorityUnreachable() bool {
	return f.Observers > 0 && 2*f.Unreachable > f.Observers
}

// wsrepProblem returns the offline reason an observation's raw status shows,
// or "" when the node can serve: reachable, Synced, Primary, ready, not
// desynced and not rejecting queries.
func wsrepProblem(o *cluster.Observation) cluster.OfflineReason {
	switch {
	case !o.Reachable:
		return cluster.ReasonUnreachable
	case o.Wsrep == nil:
		return cluster.ReasonNotSynced
	case o.Wsrep.ClusterStatus != cluster.WsrepPrimary:
		return cluster.ReasonNonPrimary
	case o.Wsrep.LocalState == cluster.WsrepJoining:
		return cluster.ReasonJoining
	case o.Wsrep.LocalState == cluster.WsrepDonor, o.Wsrep.Desync:
		return cluster.ReasonDesynced
	case o.Wsrep.LocalState != cluster.WsrepSynced:
		return cluster.ReasonNotSynced
	case !o.Wsrep.Ready, o.Wsrep.RejectQueries != "" && o.Wsrep.RejectQueries != cluster.RejectNone:
		return cluster.ReasonNotReady
	}
	return ""
}

// reasonFor maps a bad Health to the offline reason it implies.
func reasonFor(h cluster.Health) cluster.OfflineReason {
	switch h {
	case cluster.HealthDonor:
		return cluster.ReasonDonor
	case cluster.HealthJoining:
		return cluster.ReasonJoining
	case cluster.HealthDesynced:
		return cluster.ReasonDesynced
	case cluster.HealthNonPrimary:
		return cluster.ReasonNonPrimary
	case cluster.HealthNotReady:
		return cluster.ReasonNotReady
	case cluster.HealthUnreachable:
		return cluster.ReasonUnreachable
	case cluster.HealthNotSynced:
		return cluster.ReasonNotSynced
	default:
		return cluster.ReasonUnknown
	}
}

// outcome is what a verdict means for routing.
type outcome struct {
	Serve  bool                  // in the reader pool (or the writer)
	Reason cluster.OfflineReason // when not serving
	// KeepWriter: the current writer may stay the writer.
	KeepWriter bool
	// Electable: the node may be chosen as a new writer.
	Electable bool
	// Fenceable: the reason is health-derived, so a writer leaving this way
	// is fenced, and a fenced node stays fenced.
	Fenceable bool
}

func offline(r cluster.OfflineReason) outcome { return outcome{Reason: r} }

func failedOffline(r cluster.OfflineReason) outcome { return outcome{Reason: r, Fenceable: true} }

// keepPlacement keeps a node where the committed topology has it, and never
// promotes it. A node with no placement goes offline with fallback.
func keepPlacement(f facts, fallback cluster.OfflineReason) outcome {
	switch f.Place {
	case placeWriter:
		return outcome{Serve: true, KeepWriter: true, Fenceable: true}
	case placeReader:
		return outcome{Serve: true, Fenceable: true}
	case placeOffline:
		return outcome{Reason: f.CurReason, Fenceable: true}
	default:
		return outcome{Reason: fallback, Fenceable: true}
	}
}

// rule is one row of the verdict table.
type rule struct {
	Code     code
	Priority int // lower runs first
	Match    func(f facts) bool
	Outcome  func(f facts) outcome
	// Explain says in words why the row matched.
	Explain func(f facts) string
}

// verdictTable returns the classification rows in priority order. It is a
// function, not a package variable, so that nothing can change it.
func verdictTable() []rule {
	return []rule{
		{
			Code: codeMaintenance, Priority: 10,
			Match:   func(f facts) bool { return f.Member.Maintenance },
			Outcome: func(facts) outcome { return offline(cluster.ReasonMaintenance) },
			Explain: func(facts) string { return "admin maintenance flag" },
		},
		{
			Code: codeDraining, Priority: 20,
			Match:   func(f facts) bool { return f.Member.Draining },
			Outcome: func(facts) outcome { return offline(cluster.ReasonDraining) },
			Explain: func(facts) string { return "admin draining flag" },
		},
		{
			Code: codeGrantDonor, Priority: 30,
			Match:   func(f facts) bool { return f.GrantDonor },
			Outcome: func(facts) outcome { return offline(cluster.ReasonDonor) },
			Explain: func(facts) string { return "donor of the current join grant" },
		},
		{
			Code: codeGrantJoiner, Priority: 40,
			Match:   func(f facts) bool { return f.GrantJoiner && !f.servesOK() },
			Outcome: func(facts) outcome { return offline(cluster.ReasonJoining) },
			Explain: func(facts) string { return "joiner of the current join grant, not Synced yet" },
		},
		{
			Code: codeDonor, Priority: 50,
			Match:   func(f facts) bool { return f.reports(cluster.HealthDonor) },
			Outcome: func(facts) outcome { return failedOffline(cluster.ReasonDonor) },
			Explain: func(f facts) string { return "own report says donor: out of the pools at once" },
		},
		{
			Code: codeJoining, Priority: 60,
			Match:   func(f facts) bool { return f.reports(cluster.HealthJoining) },
			Outcome: func(facts) outcome { return failedOffline(cluster.ReasonJoining) },
			Explain: func(f facts) string { return "own report says joining: out of the pools at once" },
		},
		{
			Code: codeContradiction, Priority: 70,
			Match:   func(f facts) bool { return f.reports(cluster.HealthOK) && wsrepProblem(f.Obs) != "" },
			Outcome: func(f facts) outcome { return failedOffline(wsrepProblem(f.Obs)) },
			Explain: func(f facts) string {
				return fmt.Sprintf("own report says ok but its status shows %s: the raw status wins", wsrepProblem(f.Obs))
			},
		},
		{
			Code: codeFailed, Priority: 80,
			Match:   func(f facts) bool { return f.reportsBad() && f.Obs.Streak >= f.Policy.FailAfter },
			Outcome: func(f facts) outcome { return failedOffline(reasonFor(f.Obs.Health)) },
			Explain: func(f facts) string {
				return fmt.Sprintf("own report %s for %d polls (fail_after %d)", f.Obs.Health, f.Obs.Streak, f.Policy.FailAfter)
			},
		},
		{
			Code: codeSuspect, Priority: 90,
			Match:   func(f facts) bool { return f.reportsBad() },
			Outcome: func(f facts) outcome { return keepPlacement(f, reasonFor(f.Obs.Health)) },
			Explain: func(f facts) string {
				return fmt.Sprintf("own report %s for %d of %d polls: keeps its place (%s), no promotion",
					f.Obs.Health, f.Obs.Streak, f.Policy.FailAfter, f.Place)
			},
		},
		{
			Code: codeSilentUnreachable, Priority: 100,
			Match:   func(f facts) bool { return f.silent() && f.majorityUnreachable() },
			Outcome: func(facts) outcome { return failedOffline(cluster.ReasonUnreachable) },
			Explain: func(f facts) string {
				return fmt.Sprintf("agent silent (%s) and %d of %d observers cannot reach mysql", ageText(f.Age), f.Unreachable, f.Observers)
			},
		},
		{
			Code: codeSilentKept, Priority: 110,
			Match:   func(f facts) bool { return f.silent() && f.placed() },
			Outcome: func(f facts) outcome { return keepPlacement(f, cluster.ReasonUnknown) },
			Explain: func(f facts) string {
				return fmt.Sprintf("agent silent (%s) but only %d of %d observers cannot reach mysql: keeps its place (%s)",
					ageText(f.Age), f.Unreachable, f.Observers, f.Place)
			},
		},
		{
			Code: codeSilentUnknown, Priority: 120,
			Match:   func(f facts) bool { return f.silent() },
			Outcome: func(facts) outcome { return offline(cluster.ReasonUnknown) },
			Explain: func(f facts) string { return fmt.Sprintf("agent silent (%s) and never placed", ageText(f.Age)) },
		},
		{
			Code: codeRecovering, Priority: 130,
			Match: func(f facts) bool {
				return f.servesOK() && (f.Place == placeOffline || f.Place == placeAbsent) && f.Obs.Streak < f.Policy.RecoverAfter
			},
			Outcome: func(facts) outcome { return offline(cluster.ReasonRecovering) },
			Explain: func(f facts) string {
				return fmt.Sprintf("own report ok for %d of %d polls (recover_after)", f.Obs.Streak, f.Policy.RecoverAfter)
			},
		},
		{
			Code: codeRecovered, Priority: 140,
			Match:   func(f facts) bool { return f.servesOK() && f.Place == placeOffline },
			Outcome: func(facts) outcome { return outcome{Serve: true} },
			Explain: func(f facts) string {
				return fmt.Sprintf("own report ok for %d polls (recover_after %d): back as a reader first", f.Obs.Streak, f.Policy.RecoverAfter)
			},
		},
		{
			Code: codeHealthy, Priority: 150,
			Match:   func(f facts) bool { return f.servesOK() },
			Outcome: func(facts) outcome { return outcome{Serve: true, KeepWriter: true, Electable: true} },
			Explain: func(f facts) string {
				return fmt.Sprintf("own report ok for %d polls, Synced, Primary, ready", f.Obs.Streak)
			},
		},
	}
}

func ageText(age time.Duration) string {
	if age < 0 {
		return "no report"
	}
	return "last report " + age.String() + " ago"
}

// verdict is the classification of one DB node.
type verdict struct {
	Node  cluster.NodeName
	Code  code
	Out   outcome
	Why   string
	Facts facts
}

// classify runs the table over f; the first matching row by priority wins.
func classify(f facts) verdict {
	rows := verdictTable()
	slices.SortStableFunc(rows, func(a, b rule) int { return cmp.Compare(a.Priority, b.Priority) })
	for _, r := range rows {
		if r.Match(f) {
			return verdict{Node: f.Node, Code: r.Code, Out: r.Outcome(f), Why: r.Explain(f), Facts: f}
		}
	}
	return verdict{Node: f.Node, Code: codeUnclassified, Out: offline(cluster.ReasonUnknown), Why: "no rule matched", Facts: f}
}

// summary is a one-line account of a node's inputs, for event inputs.
func (f facts) summary() string {
	if f.Obs == nil {
		return fmt.Sprintf("silent (%s), unreachable from %d/%d observers", ageText(f.Age), f.Unreachable, f.Observers)
	}
	s := fmt.Sprintf("health=%s streak=%d", f.Obs.Health, f.Obs.Streak)
	if f.Obs.Wsrep != nil {
		s += fmt.Sprintf(" last_committed=%d", f.Obs.Wsrep.LastCommitted)
	}
	return s
}
