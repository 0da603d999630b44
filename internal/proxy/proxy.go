// Package proxy defines the small interface that every proxy driver
// (ProxySQL, HAProxy) implements. The planner knows nothing about drivers;
// proxy agents feed them the committed topology.
package proxy

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/dbha/dbha/internal/cluster"
)

// Backend is a DB node's address as the proxy should route to it.
type Backend struct {
	Host string `json:"host"`
	Port int    `json:"port"`
}

// String returns host:port.
func (b Backend) String() string { return net.JoinHostPort(b.Host, strconv.Itoa(b.Port)) }

// ParseBackend parses host:port.
func ParseBackend(hostport string) (Backend, error) {
	h, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return Backend{}, fmt.Errorf("parse backend %q: %w", hostport, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port <= 0 || port > 65535 {
		return Backend{}, fmt.Errorf("parse backend %q: bad port", hostport)
	}
	if h == "" {
		return Backend{}, fmt.Errorf("parse backend %q: empty host", hostport)
	}
	return Backend{Host: h, Port: port}, nil
}

// Routing is what a driver must make true: the committed topology plus the
// address of every DB node it names. WriterIsReader mirrors the policy.
type Routing struct {
	Topology       cluster.Topology             `json:"topology"`
	Backends       map[cluster.NodeName]Backend `json:"backends"`
	WriterIsReader bool                         `json:"writer_is_reader"`
}

// Validate checks that every node the topology names has a backend.
func (r Routing) Validate() error {
	if err := r.Topology.Validate(); err != nil {
		return err
	}
	need := append([]cluster.NodeName{}, r.Topology.Readers...)
	if r.Topology.Writer != "" {
		need = append(need, r.Topology.Writer)
	}
	for _, o := range r.Topology.Offline {
		need = append(need, o.Node)
	}
	for _, n := range need {
		if _, ok := r.Backends[n]; !ok {
			return fmt.Errorf("routing epoch %d: no backend address for node %s", r.Topology.Epoch, n)
		}
	}
	return nil
}

// ServerState is one backend as the proxy currently runs it.
type ServerState struct {
	Node     cluster.NodeName `json:"node"`
	Pool     string           `json:"pool"`   // "writer" or "reader"
	Status   string           `json:"status"` // driver-specific, e.g. ONLINE, OFFLINE_SOFT, ready, maint
	ConnUsed int              `json:"conn_used"`
	ConnFree int              `json:"conn_free"`
}

// Observation is a driver's view of its proxy.
type Observation struct {
	AppliedEpoch cluster.Epoch `json:"applied_epoch"`
	Servers      []ServerState `json:"servers"`
}

// Driver is implemented by every proxy driver.
type Driver interface {
	// Apply makes the proxy route as r says. It is idempotent: when the
	// proxy already matches, it changes nothing.
	Apply(ctx context.Context, r Routing) error
	// Observe reads what the proxy currently runs.
	Observe(ctx context.Context) (Observation, error)
}
