package apitest

import (
	"fmt"

	"github.com/dbha/dbha/internal/api"
	"github.com/dbha/dbha/internal/cluster"
)

// Settled reports (as an error, for polling) whether a status from the
// leader shows a settled, healthy cluster of dbs DB nodes and proxies proxy
// nodes: live observations, every node a member, a committed writer, every
// DB node Synced and routed (writer or reader, none offline), and every
// proxy healthy on the committed epoch.
//
// Counting members matters: right after start the first epoch is planned
// before every agent has joined, so a topology with no offline nodes can
// still leave out a DB node that joined a moment later.
func Settled(st api.Status, dbs, proxies int) error {
	if st.Leader == "" || !st.Observed {
		return fmt.Errorf("no leader observations (leader %q)", st.Leader)
	}
	if len(st.Nodes) != dbs || len(st.Proxies) != proxies {
		return fmt.Errorf("%d DB and %d proxy members, want %d and %d", len(st.Nodes), len(st.Proxies), dbs, proxies)
	}
	if st.Topology.Writer == "" {
		return fmt.Errorf("no writer at epoch %d", st.Topology.Epoch)
	}
	for _, n := range st.Nodes {
		if n.Wsrep == nil || n.Wsrep.LocalState != cluster.WsrepSynced || n.Health != cluster.HealthOK {
			return fmt.Errorf("DB node %s not Synced and reporting (health %q)", n.Name, n.Health)
		}
		if n.Name != st.Topology.Writer && !st.Topology.IsReader(n.Name) {
			return fmt.Errorf("epoch %d does not route DB node %s (role %s, reason %s)", st.Topology.Epoch, n.Name, n.Role, n.Reason)
		}
	}
	// The planner brings nodes in over a few epochs, and a recovering node
	// needs recover_after good polls.
	if len(st.Topology.Offline) > 0 {
		return fmt.Errorf("epoch %d still has offline nodes %v", st.Topology.Epoch, st.Topology.Offline)
	}
	for _, p := range st.Proxies {
		if !p.Healthy || p.AppliedEpoch != st.Topology.Epoch {
			return fmt.Errorf("proxy %s healthy=%v applied %d of %d", p.Name, p.Healthy, p.AppliedEpoch, st.Topology.Epoch)
		}
	}
	return nil
}
