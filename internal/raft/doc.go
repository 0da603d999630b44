// Package raft wires hashicorp/raft (imported as hraft) to dbha's replicated
// state, cluster.State.
//
//   - FSM applies committed cluster.Commands deterministically, snapshots the
//     state with a version header and restores it by swapping in a fresh
//     copy. Readers get deep copies, and Changed/Watch wake reconcilers on
//     every committed change.
//   - Node owns the hraft.Raft: raft-boltdb for the log and stable store, a
//     file snapshot store and a TCP transport (TLS when Deps.TLS is set),
//     all under Config.DataDir. Node.Apply is the one write helper: it
//     checks both future.Error() and the FSM's response. Nothing else in
//     dbha touches hraft.Raft.
//   - Node.Run watches leadership and runs the leader function under its
//     own context, after a Barrier, stopping and waiting for it on loss.
//   - Raft IDs are node names. Membership: the first MaxVoters servers are
//     voters, later ones non-voters (AddMember, RemoveMember).
//
// Timing defaults are tuned for a LAN; see DefaultHeartbeatTimeout.
package raft
