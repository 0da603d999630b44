package wsrep

import (
	"cmp"
	"slices"

	"github.com/dbha/dbha/internal/cluster"
)

// Rule is one row of the health table: the first row, by ascending
// Priority, whose Match accepts a status gives its Code.
type Rule struct {
	// Name identifies the row in logs and tests ("read_only" and
	// "reject_queries" share the code not_ready, for example).
	Name     string
	Code     cluster.Health
	Priority int // lower runs first
	Match    func(w cluster.WsrepStatus) bool
}

// Rules returns the health table in priority order. It is a function, not
// a package variable, so that nothing can change it.
//
// Decisions worth knowing:
//   - A node outside a Primary component, or not connected to the group,
//     is non_primary before anything else: its other numbers are stale.
//   - wsrep_desync=ON puts a node in Donor/Desynced (state 2), so desync is
//     checked before donor: state 2 with desync=ON is an operator's desync
//     (desynced), state 2 without it is an SST/IST donor (donor).
//   - Joined (3) counts as joining: it is still catching up.
//   - read_only=ON is not_ready. dbha's writer must take writes, and the
//     planner's pools are built from Health alone, so a read-only node
//     leaves both pools until an operator clears read_only. A node meant to
//     serve reads only belongs in the no_writer admin flag instead.
//   - ok needs every condition, spelled out in its own row; a status no row
//     accepts falls back to not_synced (Classify), never to ok.
func Rules() []Rule {
	return []Rule{
		{Name: "non_primary", Code: cluster.HealthNonPrimary, Priority: 10,
			Match: func(w cluster.WsrepStatus) bool { return w.ClusterStatus != cluster.WsrepPrimary || !w.Connected }},
		{Name: "joining", Code: cluster.HealthJoining, Priority: 20,
			Match: func(w cluster.WsrepStatus) bool {
				return w.LocalState == cluster.WsrepJoining || w.LocalState == cluster.WsrepJoined
			}},
		{Name: "desynced", Code: cluster.HealthDesynced, Priority: 30,
			Match: func(w cluster.WsrepStatus) bool {
				return w.Desync && (w.LocalState == cluster.WsrepDonor || w.LocalState == cluster.WsrepSynced)
			}},
		{Name: "donor", Code: cluster.HealthDonor, Priority: 40,
			Match: func(w cluster.WsrepStatus) bool { return w.LocalState == cluster.WsrepDonor }},
		{Name: "not_synced", Code: cluster.HealthNotSynced, Priority: 50,
			Match: func(w cluster.WsrepStatus) bool { return w.LocalState != cluster.WsrepSynced }},
		{Name: "not_ready", Code: cluster.HealthNotReady, Priority: 60,
			Match: func(w cluster.WsrepStatus) bool { return !w.Ready }},
		{Name: "reject_queries", Code: cluster.HealthNotReady, Priority: 61,
			Match: func(w cluster.WsrepStatus) bool { return w.RejectQueries != cluster.RejectNone }},
		{Name: "read_only", Code: cluster.HealthNotReady, Priority: 70,
			Match: func(w cluster.WsrepStatus) bool { return w.ReadOnly }},
		{Name: "ok", Code: cluster.HealthOK, Priority: 100,
			Match: func(w cluster.WsrepStatus) bool {
				return w.LocalState == cluster.WsrepSynced && w.ClusterStatus == cluster.WsrepPrimary &&
					w.Ready && w.Connected && !w.Desync && w.RejectQueries == cluster.RejectNone && !w.ReadOnly
			}},
	}
}

// Classify returns the health of a node from its wsrep status. Reachability
// is not its business: a poll that cannot read the status is unreachable
// (see Poller).
func Classify(w cluster.WsrepStatus) cluster.Health { return Match(w).Code }

// Match returns the table row that classifies w, or a not_synced row named
// "unclassified" when none does.
func Match(w cluster.WsrepStatus) Rule {
	rows := Rules()
	slices.SortStableFunc(rows, func(a, b Rule) int { return cmp.Compare(a.Priority, b.Priority) })
	for _, r := range rows {
		if r.Match(w) {
			return r
		}
	}
	return Rule{Name: "unclassified", Code: cluster.HealthNotSynced, Priority: 1000,
		Match: func(cluster.WsrepStatus) bool { return true }}
}
