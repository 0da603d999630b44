package apitest

import (
	"fmt"

	"github.com/dbha/dbha/internal/api"
	"github.com/dbha/dbha/internal/cluster"
)

// Settled reports (as an error, for polling) whether a status from the
// leader shows a settled, healthy cluster of dbs DB nodes: live
// observations, a committed writer, every DB node Synced and routed (none
// offline), and every proxy healthy on the committed epoch.
func Settled(st api.Status, dbs int) error {
	if st.Leader == "" || !st.Observed {
		return fmt.Errorf("no leader observations (leader %q)", st.Leader)
	}
	if st.Topology.Writer == "" {
		return fmt.Errorf("no writer at epoch %d", st.Topology.Epoch)
	}
	synced := 0
	for _, n := range st.Nodes {
		if n.Wsrep != nil && n.Wsrep.LocalState == cluster.WsrepSynced && n.Health == cluster.HealthOK {
			synced++
		}
	}
	if synced != dbs {
		return fmt.Errorf("%d of %d DB nodes Synced and reporting", synced, dbs)
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
