// Package cluster holds dbha's domain types: node names, roles, wsrep
// observations, the committed Topology and the typed raft Commands. It has no
// I/O and no dependencies beyond the standard library, so the planner, the
// FSM, the API and the drivers can all share it.
package cluster

import (
	"fmt"
	"slices"
	"time"
)

// NodeName is a node's stable name. It is also its raft server ID.
type NodeName string

// Role is what a node does in the cluster.
type Role string

const (
	RoleDB    Role = "db"
	RoleProxy Role = "proxy"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleDB || r == RoleProxy }

// Epoch numbers committed topologies. It rises on every change.
type Epoch uint64

// Member is a node registered in the raft group.
type Member struct {
	Name      NodeName `json:"name"`
	Roles     []Role   `json:"roles"`
	APIAddr   string   `json:"api_addr"`
	RaftAddr  string   `json:"raft_addr"`
	MySQLAddr string   `json:"mysql_addr,omitempty"` // host:port, DB members only
	Priority  int      `json:"priority"`

	// Admin flags, set by dbctl.
	Maintenance bool `json:"maintenance,omitempty"`
	Draining    bool `json:"draining,omitempty"`
	NoWriter    bool `json:"no_writer,omitempty"`
}

// Has reports whether m carries role r.
func (m Member) Has(r Role) bool { return slices.Contains(m.Roles, r) }

// ValidName reports whether s can be a node name: 1 to 63 letters, digits,
// '-' or '_'. Names are raft IDs, HAProxy server names and ProxySQL
// comments, so nothing else is allowed.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// Validate checks a member registration.
func (m Member) Validate() error {
	if m.Name == "" {
		return fmt.Errorf("member: empty name")
	}
	if !ValidName(string(m.Name)) {
		return fmt.Errorf("member %q: names use letters, digits, '-' and '_' (1 to 63 characters)", m.Name)
	}
	if len(m.Roles) == 0 {
		return fmt.Errorf("member %s: no roles", m.Name)
	}
	for _, r := range m.Roles {
		if !r.Valid() {
			return fmt.Errorf("member %s: unknown role %q (want db or proxy)", m.Name, r)
		}
	}
	if m.RaftAddr == "" {
		return fmt.Errorf("member %s: empty raft address", m.Name)
	}
	if m.Has(RoleDB) && m.MySQLAddr == "" {
		return fmt.Errorf("member %s: db role needs a mysql address", m.Name)
	}
	return nil
}

// OfflineReason says why a node takes no new traffic.
type OfflineReason string

const (
	ReasonDraining    OfflineReason = "draining"    // admin drain: finish sessions, no new ones
	ReasonFenced      OfflineReason = "fenced"      // old writer: kill sessions now
	ReasonMaintenance OfflineReason = "maintenance" // admin maintenance flag
	ReasonDonor       OfflineReason = "donor"       // donating SST/IST
	ReasonJoining     OfflineReason = "joining"     // joiner, not Synced yet
	ReasonDesynced    OfflineReason = "desynced"    // wsrep_desync=ON or Donor/Desynced state
	ReasonNotSynced   OfflineReason = "not_synced"  // any other non-Synced state
	ReasonNonPrimary  OfflineReason = "non_primary" // not in a Primary component
	ReasonNotReady    OfflineReason = "not_ready"   // wsrep_ready=OFF or wsrep_reject_queries set
	ReasonUnreachable OfflineReason = "unreachable" // mysql not reachable
	ReasonRecovering  OfflineReason = "recovering"  // healthy again, waiting for recover_after polls
	ReasonUnknown     OfflineReason = "unknown"     // never observed
)

// OfflineNode is a node out of the traffic pools, with the reason.
type OfflineNode struct {
	Node   NodeName      `json:"node"`
	Reason OfflineReason `json:"reason"`
}

// Topology is the committed routing decision at one epoch.
// Writer is empty when no node qualifies. Readers and Offline are sorted by
// node name so that equal decisions compare equal.
type Topology struct {
	Epoch   Epoch         `json:"epoch"`
	Writer  NodeName      `json:"writer,omitempty"`
	Readers []NodeName    `json:"readers"`
	Offline []OfflineNode `json:"offline"`
}

// OfflineReasonOf returns the reason n is offline and whether it is.
func (t Topology) OfflineReasonOf(n NodeName) (OfflineReason, bool) {
	for _, o := range t.Offline {
		if o.Node == n {
			return o.Reason, true
		}
	}
	return "", false
}

// IsReader reports whether n is in the reader pool.
func (t Topology) IsReader(n NodeName) bool { return slices.Contains(t.Readers, n) }

// SameRouting reports whether t and u route the same way, ignoring epochs.
func (t Topology) SameRouting(u Topology) bool {
	return t.Writer == u.Writer && slices.Equal(t.Readers, u.Readers) && slices.Equal(t.Offline, u.Offline)
}

// Normalize sorts Readers and Offline and replaces nil slices with empty
// ones, so equal topologies encode identically.
func (t Topology) Normalize() Topology {
	r := slices.Clone(t.Readers)
	if r == nil {
		r = []NodeName{}
	}
	slices.Sort(r)
	o := slices.Clone(t.Offline)
	if o == nil {
		o = []OfflineNode{}
	}
	slices.SortFunc(o, func(a, b OfflineNode) int {
		if a.Node < b.Node {
			return -1
		}
		if a.Node > b.Node {
			return 1
		}
		return 0
	})
	t.Readers, t.Offline = r, o
	return t
}

// Validate checks that a topology is self-consistent: no node is in two
// places, and the writer is not offline.
func (t Topology) Validate() error {
	seen := map[NodeName]string{}
	add := func(n NodeName, where string) error {
		if n == "" {
			return fmt.Errorf("topology epoch %d: empty node name in %s", t.Epoch, where)
		}
		if prev, ok := seen[n]; ok && !(prev == "writer" && where == "readers") {
			return fmt.Errorf("topology epoch %d: node %s is both %s and %s", t.Epoch, n, prev, where)
		}
		seen[n] = where
		return nil
	}
	if t.Writer != "" {
		if err := add(t.Writer, "writer"); err != nil {
			return err
		}
	}
	for _, r := range t.Readers {
		if err := add(r, "readers"); err != nil {
			return err
		}
	}
	for _, o := range t.Offline {
		if err := add(o.Node, "offline"); err != nil {
			return err
		}
		if o.Reason == "" {
			return fmt.Errorf("topology epoch %d: offline node %s has no reason", t.Epoch, o.Node)
		}
	}
	return nil
}

// WsrepStatus is what a DB agent reads from its local mariadbd.
type WsrepStatus struct {
	LocalState        int     `json:"wsrep_local_state"` // 4 = Synced
	LocalStateComment string  `json:"wsrep_local_state_comment"`
	ClusterStatus     string  `json:"wsrep_cluster_status"` // Primary, non-Primary, Disconnected
	Ready             bool    `json:"wsrep_ready"`
	Connected         bool    `json:"wsrep_connected"`
	ClusterSize       int     `json:"wsrep_cluster_size"`
	ClusterStateUUID  string  `json:"wsrep_cluster_state_uuid"`
	LastCommitted     int64   `json:"wsrep_last_committed"`
	LocalRecvQueue    int64   `json:"wsrep_local_recv_queue"`
	FlowControlPaused float64 `json:"wsrep_flow_control_paused"`
	LocalCachedDownto int64   `json:"wsrep_local_cached_downto"`
	ReadOnly          bool    `json:"read_only"`
	Desync            bool    `json:"wsrep_desync"`
	RejectQueries     string  `json:"wsrep_reject_queries"` // NONE, ALL, ALL_KILL
}

// Galera wsrep_local_state values.
const (
	WsrepJoining  = 1
	WsrepDonor    = 2 // Donor/Desynced
	WsrepJoined   = 3
	WsrepSynced   = 4
	WsrepPrimary  = "Primary"
	RejectNone    = "NONE"
	WsrepNonPrim  = "non-Primary"
	WsrepDisconn  = "Disconnected"
	WsrepStateAny = -1
)

// Health is the classified health of one DB node from one observation.
type Health string

const (
	HealthOK          Health = "ok"
	HealthUnreachable Health = "unreachable"
	HealthNonPrimary  Health = "non_primary"
	HealthNotReady    Health = "not_ready"
	HealthDonor       Health = "donor"
	HealthDesynced    Health = "desynced"
	HealthJoining     Health = "joining"
	HealthNotSynced   Health = "not_synced"
)

// Observation is one DB agent's report about its own mariadbd.
type Observation struct {
	Node      NodeName     `json:"node"`
	Time      time.Time    `json:"time"`
	Reachable bool         `json:"reachable"`
	Error     string       `json:"error,omitempty"`
	Wsrep     *WsrepStatus `json:"wsrep,omitempty"`
	Health    Health       `json:"health"`
	// Streak counts consecutive polls, this one included, that classified
	// to the same Health. The planner's fail_after / recover_after
	// hysteresis reads it, so the planner stays stateless.
	Streak int `json:"streak"`
}

// ProbeResult is one observer's view of whether a DB node's MySQL port
// answers from where the observer stands.
type ProbeResult struct {
	Node      NodeName `json:"node"`
	Reachable bool     `json:"reachable"`
	Error     string   `json:"error,omitempty"`
}

// ProxyReport is what a proxy agent reports: its driver's health, the epoch
// it last applied, and its probes of every DB node.
type ProxyReport struct {
	Node         NodeName      `json:"node"`
	Time         time.Time     `json:"time"`
	Healthy      bool          `json:"healthy"`
	Error        string        `json:"error,omitempty"`
	AppliedEpoch Epoch         `json:"applied_epoch"`
	Probes       []ProbeResult `json:"probes"`
}

// Report is one agent's periodic message to the leader. It is not a raft
// write: the leader keeps the latest Report per agent in memory.
type Report struct {
	From  NodeName     `json:"from"`
	Sent  time.Time    `json:"sent"`
	DB    *Observation `json:"db,omitempty"`
	Proxy *ProxyReport `json:"proxy,omitempty"`
}

// VIPState is the committed VIP assignment.
type VIPState struct {
	Owner      NodeName `json:"owner,omitempty"`
	LeaseEpoch uint64   `json:"lease_epoch"` // rises on every owner change
	// Since is when the leader decided this assignment, by its clock. A
	// new owner's first lease counts from it: renewals from an earlier
	// lease of the same node do not. Zero in states from before it
	// existed.
	Since time.Time `json:"since,omitzero"`
}

// JoinGrant allows one joiner to take state from one donor.
type JoinGrant struct {
	Joiner NodeName  `json:"joiner"`
	Donor  NodeName  `json:"donor"`
	Since  time.Time `json:"since"`
}

// BootstrapGrant allows one node to start a new cluster.
type BootstrapGrant struct {
	Node  NodeName  `json:"node"`
	UUID  string    `json:"uuid"`
	Seqno int64     `json:"seqno"`
	Since time.Time `json:"since"`
}

// Switchover is a planned writer change in progress.
type Switchover struct {
	From  NodeName  `json:"from"`
	To    NodeName  `json:"to"`
	Since time.Time `json:"since"`
}

// Grants holds the at-most-one grants.
type Grants struct {
	Join       *JoinGrant      `json:"join,omitempty"`
	Bootstrap  *BootstrapGrant `json:"bootstrap,omitempty"`
	Switchover *Switchover     `json:"switchover,omitempty"`
}

// EventKind classifies events.
type EventKind string

const (
	EventTopology   EventKind = "topology"
	EventFailover   EventKind = "failover"
	EventNoWriter   EventKind = "no_writer"
	EventSwitchover EventKind = "switchover"
	EventMember     EventKind = "member"
	EventVIP        EventKind = "vip"
	EventJoin       EventKind = "join"
	EventLeave      EventKind = "leave"
	EventBootstrap  EventKind = "bootstrap"
)

// Event is one audited decision.
type Event struct {
	Seq    uint64            `json:"seq"` // assigned by the FSM
	Time   time.Time         `json:"time"`
	Epoch  Epoch             `json:"epoch"`
	Kind   EventKind         `json:"kind"`
	Node   NodeName          `json:"node,omitempty"`
	Reason string            `json:"reason"`
	Inputs map[string]string `json:"inputs,omitempty"`
}
