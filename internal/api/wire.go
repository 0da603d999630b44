package api

import "github.com/dbha/dbha/internal/cluster"

// API paths, versioned under /v1. The client and the handlers share them.
const (
	PathStatus       = "/v1/status"
	PathEvents       = "/v1/events"
	PathWhy          = "/v1/why"
	PathReports      = "/v1/reports"
	PathMembers      = "/v1/members"
	PathHealthWriter = "/v1/health/writer"
	PathHealthReader = "/v1/health/reader"
)

// CodeMethodNotAllowed is the code of a 405 answer: the path exists, but
// not for that method.
const CodeMethodNotAllowed = "method_not_allowed"

// Health roles, the last element of the health paths.
const (
	RoleWriter = "writer"
	RoleReader = "reader"
)

// HeaderForwarded marks a request that a follower already forwarded to the
// agent it believed was the leader. A forwarded request is never forwarded
// again, so two agents that disagree about the leader cannot loop.
const HeaderForwarded = "X-Dbha-Forwarded"

// Query parameter limits of GET /v1/events.
const (
	DefaultEventsLimit = 100
	MaxEventsLimit     = 1000
)

// DefaultMaxBodyBytes bounds request bodies when HandlerOptions leaves it 0.
const DefaultMaxBodyBytes = 1 << 20

// EventList is GET /v1/events: events with Seq > since, oldest first.
type EventList struct {
	Events []cluster.Event `json:"events"`
}
