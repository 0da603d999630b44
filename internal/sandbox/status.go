package sandbox

import (
	"context"
	"time"

	"github.com/dbha/dbha/internal/cluster"
)

// NodeStatus is one row of `dbctl sandbox status`.
type NodeStatus struct {
	Name      cluster.NodeName     `json:"name"`
	Kind      Kind                 `json:"kind"`
	Namespace string               `json:"namespace"`
	Addr      string               `json:"addr"`
	Procs     map[string]bool      `json:"procs"` // process name -> running
	Wsrep     *cluster.WsrepStatus `json:"wsrep,omitempty"`
	WsrepErr  string               `json:"wsrep_error,omitempty"`
	NSPresent bool                 `json:"namespace_present"`
}

// Status reads every node's process and wsrep state.
func (s *Sandbox) Status(ctx context.Context) []NodeStatus {
	var out []NodeStatus
	for _, n := range s.State.Nodes {
		st := NodeStatus{Name: n.Name, Kind: n.Kind, Namespace: n.Namespace, Addr: n.Addr,
			Procs: map[string]bool{}, NSPresent: nsExists(n.Namespace)}
		for name, p := range n.Procs {
			st.Procs[name] = p.Alive()
		}
		if n.Kind == KindDB && st.Procs["mariadbd"] {
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			w, err := s.Wsrep(cctx, n.Name)
			cancel()
			if err != nil {
				st.WsrepErr = err.Error()
			} else {
				st.Wsrep = &w
			}
		}
		out = append(out, st)
	}
	return out
}
