package raft

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/dbha/dbha/internal/cluster"
)

// LAN timing defaults. hashicorp/raft's own defaults (1 s heartbeat and
// election, 500 ms lease) are tuned for WANs; dbha runs on one LAN and an
// election may sit on the failover path (DESIGN §3), so we halve them.
//
//   - A follower notices a dead leader after a random 1–2 × HeartbeatTimeout
//     (500 ms–1 s) and, with pre-vote, wins an election about one RTT later.
//     The leader sends heartbeats every HeartbeatTimeout/10 (50 ms), so a
//     follower only times out after ~10 lost heartbeats: a GC pause or a
//     busy 2-core box does not trigger spurious elections.
//   - ElectionTimeout only matters after a split vote (random 1–2 × 500 ms).
//   - LeaderLeaseTimeout 250 ms: a leader cut off from a quorum steps down
//     within about 2 × 250 ms, before any follower can time out (≥ 500 ms),
//     so an isolated old leader stops running its leader loop before a new
//     one starts. hashicorp requires lease ≤ heartbeat ≤ election.
//   - CommitTimeout 20 ms bounds how long a follower waits to learn a new
//     commit index when no other traffic flows (the leader sends an empty
//     AppendEntries at a random 20–40 ms), so followers' reconcilers see a new
//     topology within tens of milliseconds. The cost is ~50 small RPCs per
//     second per follower, nothing on a LAN.
//
// Going lower (say 200 ms) cuts failover time further but makes elections
// under CPU starvation likely; going higher costs directly on failover time.
const (
	DefaultHeartbeatTimeout   = 500 * time.Millisecond
	DefaultElectionTimeout    = 500 * time.Millisecond
	DefaultLeaderLeaseTimeout = 250 * time.Millisecond
	DefaultCommitTimeout      = 20 * time.Millisecond

	// DefaultMaxVoters: agents beyond the 7th join as non-voters (DESIGN §1).
	DefaultMaxVoters = 7

	// The state is small (members, one topology, ≤ 500 events), so frequent
	// snapshots are cheap and keep restarts fast.
	DefaultSnapshotThreshold = 1024
	DefaultSnapshotInterval  = 30 * time.Second
	DefaultTrailingLogs      = 1024
	DefaultSnapshotRetain    = 2
)

// ErrInvalidConfig wraps every Config.Validate failure.
var ErrInvalidConfig = errors.New("invalid raft config")

// Peer is one raft server of a static peer list.
type Peer struct {
	Name     cluster.NodeName `json:"name"`
	RaftAddr string           `json:"raft_addr"` // host:port, as other nodes dial it
}

// Config configures one raft node. Zero durations and counts take the
// Default* values (see WithDefaults).
//
// Bootstrap. With Peers set, every listed node bootstraps the same
// configuration (the peers sorted by name, the first MaxVoters as voters,
// the rest non-voters) when its data dir holds no raft state yet; that is
// safe because the configurations are identical. A node started with no
// Peers bootstraps nothing: it waits until a leader adds it with AddMember
// (the join path). BootstrapExpect does no discovery: when set it must equal
// len(Peers), as a cross-check that every node got the same list.
type Config struct {
	NodeName      cluster.NodeName // raft server ID
	BindAddr      string           // host:port to listen on
	AdvertiseAddr string           // host:port peers dial; defaults to the bound address
	DataDir       string           // raft.db and snapshots/ live here

	Peers           []Peer
	BootstrapExpect int
	MaxVoters       int

	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration

	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	SnapshotRetain    int
}

// Deps carries the node's collaborators.
type Deps struct {
	// Logger receives the node's logs and raft's own (Info and above).
	// Nil discards them.
	Logger *slog.Logger
	// Listener, when set, is used instead of listening on BindAddr; the node
	// takes ownership and closes it. Tests pass a listener bound to port 0.
	Listener net.Listener
	// TLS, when set, wraps raft's TCP transport in TLS: the listener serves
	// with it and dials use it (an empty ServerName defaults to the dialled
	// host). For mutual TLS set Certificates, RootCAs, ClientCAs and
	// ClientAuth: tls.RequireAndVerifyClientCert.
	TLS *tls.Config
}

// WithDefaults returns c with zero values replaced by the defaults.
func (c Config) WithDefaults() Config {
	setDur := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	setDur(&c.HeartbeatTimeout, DefaultHeartbeatTimeout)
	setDur(&c.ElectionTimeout, DefaultElectionTimeout)
	setDur(&c.LeaderLeaseTimeout, DefaultLeaderLeaseTimeout)
	setDur(&c.CommitTimeout, DefaultCommitTimeout)
	setDur(&c.SnapshotInterval, DefaultSnapshotInterval)
	if c.MaxVoters == 0 {
		c.MaxVoters = DefaultMaxVoters
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = DefaultSnapshotThreshold
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = DefaultTrailingLogs
	}
	if c.SnapshotRetain == 0 {
		c.SnapshotRetain = DefaultSnapshotRetain
	}
	return c
}

// Validate reports every problem at once, wrapped in ErrInvalidConfig. Call
// it on a config after WithDefaults.
func (c Config) Validate() error {
	var p []string
	if c.NodeName == "" {
		p = append(p, "node name is empty")
	}
	if c.DataDir == "" {
		p = append(p, "data dir is empty")
	}
	if c.BindAddr != "" {
		if _, _, err := net.SplitHostPort(c.BindAddr); err != nil {
			p = append(p, fmt.Sprintf("bind address %q: %v", c.BindAddr, err))
		}
	}
	if c.AdvertiseAddr != "" {
		if err := advertisable(c.AdvertiseAddr); err != nil {
			p = append(p, fmt.Sprintf("advertise address %q: %v", c.AdvertiseAddr, err))
		}
	}
	seen := map[cluster.NodeName]bool{}
	self := false
	for i, peer := range c.Peers {
		switch {
		case peer.Name == "":
			p = append(p, fmt.Sprintf("peer %d has no name", i))
		case seen[peer.Name]:
			p = append(p, fmt.Sprintf("peer %s listed twice", peer.Name))
		}
		seen[peer.Name] = true
		if err := advertisable(peer.RaftAddr); err != nil {
			p = append(p, fmt.Sprintf("peer %s raft address %q: %v", peer.Name, peer.RaftAddr, err))
		}
		if peer.Name == c.NodeName {
			self = true
			if c.AdvertiseAddr != "" && peer.RaftAddr != c.AdvertiseAddr {
				p = append(p, fmt.Sprintf("peer %s raft address %s differs from advertise address %s", peer.Name, peer.RaftAddr, c.AdvertiseAddr))
			}
		}
	}
	if len(c.Peers) > 0 && !self {
		p = append(p, fmt.Sprintf("peers do not list this node %s", c.NodeName))
	}
	if c.BootstrapExpect < 0 {
		p = append(p, "bootstrap_expect is negative")
	}
	if c.BootstrapExpect > 0 && c.BootstrapExpect != len(c.Peers) {
		p = append(p, fmt.Sprintf("bootstrap_expect %d but %d peers listed (bootstrap_expect needs the static peer list)", c.BootstrapExpect, len(c.Peers)))
	}
	if c.MaxVoters < 1 {
		p = append(p, fmt.Sprintf("max voters %d < 1", c.MaxVoters))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"heartbeat timeout", c.HeartbeatTimeout}, {"election timeout", c.ElectionTimeout}, {"leader lease timeout", c.LeaderLeaseTimeout}, {"commit timeout", c.CommitTimeout}, {"snapshot interval", c.SnapshotInterval}} {
		if d.v < 5*time.Millisecond {
			p = append(p, fmt.Sprintf("%s %s < 5ms", d.name, d.v))
		}
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		p = append(p, fmt.Sprintf("leader lease timeout %s > heartbeat timeout %s", c.LeaderLeaseTimeout, c.HeartbeatTimeout))
	}
	if c.ElectionTimeout < c.HeartbeatTimeout {
		p = append(p, fmt.Sprintf("election timeout %s < heartbeat timeout %s", c.ElectionTimeout, c.HeartbeatTimeout))
	}
	if c.SnapshotRetain < 1 {
		p = append(p, fmt.Sprintf("snapshot retain %d < 1", c.SnapshotRetain))
	}
	if len(p) > 0 {
		return fmt.Errorf("%w for node %q: %s", ErrInvalidConfig, c.NodeName, strings.Join(p, "; "))
	}
	return nil
}

// advertisable checks that addr is host:port with a host other nodes can
// dial (not empty, not 0.0.0.0 or ::) and a non-zero port.
func advertisable(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if host == "" {
		return errors.New("empty host")
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return errors.New("unspecified host is not advertisable")
	}
	if port == "" || port == "0" {
		return errors.New("port must be set")
	}
	return nil
}
