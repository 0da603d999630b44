// Package planner is dbha's pure decision function. The leader's controller
// calls Plan with the replicated State, the latest agent reports, the VIP
// lease renewals it answered, the policy and the current time, and commits
// the Commands that come back. Plan does no I/O, reads no clock, keeps no
// state between calls and does not depend on map iteration order: the same
// Input always gives the same Decision.
//
// # Per-node verdicts
//
// Every DB member (a member with role db) is classified by a table of
// {Code, Priority, Match} rows (see verdictTable). Rows are tried in priority
// order and the first match wins:
//
//  1. maintenance flag: offline, reason maintenance.
//  2. draining flag: offline, reason draining.
//  3. donor of the current join grant: offline, reason donor.
//  4. joiner of the current join grant, until its own report is ok and
//     Synced: offline, reason joining.
//  5. own report says donor: offline at once (a donor leaves the reader pool
//     immediately), reason donor.
//  6. own report says joining: offline at once, reason joining.
//  7. own report says ok but its wsrep status disagrees (not reachable, not
//     Synced, not Primary, not ready, desynced or rejecting queries): offline
//     at once with the reason the status shows. The raw status wins over the
//     agent's classification, so writes never go to a non-Primary node.
//  8. own report not ok for at least fail_after consecutive polls: failed,
//     offline with the reason mapped from the health (unreachable, non_primary,
//     not_ready, desynced, not_synced).
//  9. own report not ok for fewer polls: suspect. The node keeps its current
//     placement (writer, reader or offline with its old reason) and is never
//     promoted. A node with no placement yet is offline with the mapped reason.
//  10. agent silent (no report, or the last one older than agent_timeout) and
//     a strict majority of the fresh proxy observers (other than the node
//     itself) report its MySQL port unreachable: failed, reason unreachable.
//     An observer whose report has no probe of the node counts as reaching it.
//  11. agent silent otherwise, node placed in the current topology: keep the
//     placement. An agent crash alone never moves the writer.
//  12. agent silent, node not in the topology: offline, reason unknown.
//  13. own report ok, node offline or new, fewer than recover_after ok polls:
//     offline, reason recovering.
//  14. own report ok, node offline, recover_after ok polls: back as a reader.
//     It is not a writer candidate in this decision; it can be elected from
//     the next epoch on.
//  15. own report ok, node serving or new: healthy.
//
// # Writer
//
// The writer is sticky: the current writer stays while its verdict is healthy,
// suspect or silent-kept (rules 9, 11, 15) and it has no no_writer flag. A
// node never becomes the writer through hysteresis, so a recovered old writer
// comes back as a reader. When a new writer is needed, the candidates are the
// healthy nodes (rule 15: own fresh report ok, Synced, Primary, ready) with
// no admin flag; the join donor is never one (rule 3). The planner picks the highest priority,
// then the highest wsrep_last_committed, then the lowest name. If nobody
// qualifies, the topology has no writer and the event (kind no_writer) says
// why. Topology has a single Writer field, so there are never two writers.
//
// # Fencing
//
// When the writer changes because the old writer failed (any health-derived
// offline verdict: rules 5 to 11), the old writer goes offline with reason
// fenced so that proxies kill its sessions at once (OFFLINE_HARD) instead of
// letting pinned sessions keep writing to it. The fence reason is kept for as
// long as the node's verdict stays health-derived, whatever the health says,
// so the proxies keep the node hard-offline. It gives way to a more specific,
// deliberate reason: maintenance, draining or a join grant (rules 1 to 4),
// and to recovering once the node's own report is ok again. A writer that
// leaves for an admin reason is not fenced: draining is meant to let its
// sessions finish.
//
// # Readers and offline
//
// Readers are the serving nodes other than the writer, plus the writer when
// the policy says WriterIsReader. Everyone else is offline with a reason.
// When the routing differs from the committed topology, Plan emits one
// SetTopology at the next epoch with an event (failover when a non-empty
// writer was replaced by another, no_writer when there is no writer, topology
// otherwise). When nothing changes, it emits nothing.
//
// # VIP
//
// A proxy member is fit for the VIP when it is not in maintenance or
// draining and its fresh report says its proxy is healthy. It is eligible
// to be given the VIP when it is fit and has applied at least the committed
// epoch (VIPEligible). With no owner, the VIP goes to the eligible proxy
// with the lowest name (or to the target of a planned move), but only once
// no other proxy may still hold it: for every proxy whose renewal this
// leader answered, that renewal plus the wait below must be past, unless
// the proxy confirmed a release after it (Input.VIPReleased); and a leader
// that took office less than one wait ago does not know who held the VIP
// last, so with a lease epoch above zero it waits that long. A fit owner keeps it, even while it lags one apply behind a
// new epoch: otherwise every failover would make a just-chosen owner
// ineligible until its next report and move the VIP again. An owner that is
// not fit keeps the VIP until its lease has surely run out: the later of its
// last answered renewal and the time this leader took office, plus the
// longer of the agent lease and the kernel address lifetime, plus the skew
// margin, or its confirmed release after its last renewal (an owner that
// shut down with vip.on_stop: release). Only then does the VIP move to the
// eligible proxy with the lowest name, or to nobody. Each move raises the
// lease epoch by one and carries a vip event.
//
// A planned move (Input.VIPMoveTo, from dbctl vip move) never has two
// holders: when the target is eligible and not the owner, Plan first
// commits the release (owner empty, event "planned move to px2: releasing
// px1"), in a round without a topology change so that the target has
// applied the epoch it is judged by; then, with no owner, it assigns the
// target under the rule above: at once when the old owner confirmed its
// release, else after its last renewal plus the wait. A target that is not
// eligible is refused with the reason in Why.
//
// For the wait to end, the leader must stop answering the renewals of an
// owner that is not fit; CanRenewVIP says when to answer. The agent must add
// the address only after its first answered renewal, so an owner with no
// recorded renewal never held it.
package planner
