// Package api is dbagent's HTTP API: JSON, versioned under /v1. Reads are
// served by the local agent; writes go to the raft leader (forwarded). The
// typed client for it is in package api/client.
package api

import (
	"context"
	"errors"
	"time"

	"github.com/dbha/dbha/internal/cluster"
)

// RaftServer is one server of the raft configuration.
type RaftServer struct {
	Name     cluster.NodeName `json:"name"`
	Address  string           `json:"address"`
	Suffrage string           `json:"suffrage"` // Voter, Nonvoter
	Leader   bool             `json:"leader"`
}

// NodeStatus is the leader's (or local) view of one DB node.
type NodeStatus struct {
	Name       cluster.NodeName      `json:"name"`
	Role       string                `json:"role"` // writer, reader, offline
	Reason     cluster.OfflineReason `json:"reason,omitempty"`
	Health     cluster.Health        `json:"health,omitempty"`
	Streak     int                   `json:"streak,omitempty"`
	Wsrep      *cluster.WsrepStatus  `json:"wsrep,omitempty"`
	LastReport time.Time             `json:"last_report,omitzero"`
	Priority   int                   `json:"priority"`
	Flags      []string              `json:"flags,omitempty"` // maintenance, draining, no_writer
}

// ProxyStatus is the leader's view of one proxy node.
type ProxyStatus struct {
	Name         cluster.NodeName `json:"name"`
	Healthy      bool             `json:"healthy"`
	Error        string           `json:"error,omitempty"`
	AppliedEpoch cluster.Epoch    `json:"applied_epoch"`
	LastReport   time.Time        `json:"last_report,omitzero"`
}

// VIPStatus describes the VIP assignment.
type VIPStatus struct {
	Address    string           `json:"address,omitempty"`
	Owner      cluster.NodeName `json:"owner,omitempty"`
	LeaseEpoch uint64           `json:"lease_epoch"`
	// LeaseAge is the time since the owner's last renewal the leader
	// answered; zero when unknown (not the leader, or no owner).
	LeaseAge time.Duration `json:"lease_age_ns"`
}

// Status is GET /v1/status.
type Status struct {
	Node      cluster.NodeName `json:"node"`   // the agent that answered
	Leader    cluster.NodeName `json:"leader"` // raft leader, empty if none known
	LeaderAPI string           `json:"leader_api,omitempty"`
	IsLeader  bool             `json:"is_leader"`
	Term      uint64           `json:"term"`
	// InOffice is how long the answering agent has led, by its own clock;
	// set only when it leads (a forwarded status comes from the leader).
	InOffice time.Duration    `json:"in_office_ns,omitempty"`
	Raft     []RaftServer     `json:"raft"`
	Topology cluster.Topology `json:"topology"`
	Members  []cluster.Member `json:"members"`
	Nodes    []NodeStatus     `json:"nodes"`   // DB nodes; observations only on the leader
	Proxies  []ProxyStatus    `json:"proxies"` // proxy nodes
	VIP      VIPStatus        `json:"vip"`
	Grants   cluster.Grants   `json:"grants"`
	// Observed is true when Nodes/Proxies carry live observations (the
	// answering agent is the leader, or the request was forwarded to it).
	Observed bool `json:"observed"`
}

// Why is GET /v1/why?epoch=N: why the topology at that epoch is what it is.
type Why struct {
	Epoch    cluster.Epoch     `json:"epoch"`
	Current  bool              `json:"current"`
	Topology *cluster.Topology `json:"topology,omitempty"` // only for the current epoch
	Events   []cluster.Event   `json:"events"`             // events committed at that epoch
}

// Health is GET /v1/health/writer|reader.
type Health struct {
	Node   cluster.NodeName `json:"node"`
	Role   string           `json:"role"` // the role asked about
	OK     bool             `json:"ok"`
	Epoch  cluster.Epoch    `json:"epoch"`
	Reason string           `json:"reason"`
}

// JoinRequest is POST /v1/members.
type JoinRequest struct {
	Member cluster.Member `json:"member"`
}

// Error is the JSON body of every error response.
type Error struct {
	Code    string `json:"code"`    // stable, see the Code* constants
	Message string `json:"message"` // human text
	Leader  string `json:"leader,omitempty"`
}

// Stable error codes.
const (
	CodeBadRequest   = "bad_request"
	CodeNotFound     = "not_found"
	CodeNotLeader    = "not_leader"
	CodeNoLeader     = "no_leader"
	CodeConflict     = "conflict"
	CodeUnavailable  = "unavailable"
	CodeInternal     = "internal"
	CodeUnauthorized = "unauthorized"
)

// Sentinel errors a Backend returns; the handlers map them to codes.
var (
	ErrNotLeader  = errors.New("not the raft leader")
	ErrNoLeader   = errors.New("no raft leader")
	ErrBadRequest = errors.New("bad request")
	ErrNotFound   = errors.New("not found")
	ErrConflict   = errors.New("conflict")
)

// Backend is what the handlers need from the agent. Methods that change
// state return ErrNotLeader on followers; the handler then forwards the
// request to LeaderAPI().
type Backend interface {
	Status(ctx context.Context) (Status, error)
	Events(ctx context.Context, sinceSeq uint64, limit int) ([]cluster.Event, error)
	Why(ctx context.Context, epoch cluster.Epoch) (Why, error) // epoch 0 = current
	Report(ctx context.Context, r cluster.Report) error        // leader only
	Join(ctx context.Context, m cluster.Member) error          // leader only
	Leave(ctx context.Context, name cluster.NodeName) error    // leader only
	Health(ctx context.Context, role string) Health            // local committed view
	// RenewVIP answers a VIP lease renewal from node (leader only). A
	// refused renewal is a VIPLease with Granted false, not an error.
	RenewVIP(ctx context.Context, node cluster.NodeName) (VIPLease, error)
	// MoveVIP starts a planned VIP move to node to (leader only; see
	// PathVIPMove): ErrNotFound for a non-member, ErrConflict for a target
	// that is not an eligible proxy or owns the VIP already.
	MoveVIP(ctx context.Context, to cluster.NodeName) (VIPMove, error)
	// ReleaseVIP records node's confirmation that it removed the VIP
	// address at lease epoch leaseEpoch (leader only; see PathVIPRelease):
	// ErrConflict when leaseEpoch is not the committed one.
	ReleaseVIP(ctx context.Context, node cluster.NodeName, leaseEpoch uint64) error
	// LeaderAPI returns the leader's API address ("" when unknown).
	LeaderAPI() string
}
