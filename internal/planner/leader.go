package planner

import (
	"slices"

	"github.com/dbha/dbha/internal/cluster"
)

// PlaceLeader decides whether the raft leader self should hand leadership
// to another voter, and to whom. A leader on the writer's node or on the
// VIP owner's node puts a raft election on the failover path of exactly the
// node most likely to be lost (DESIGN §3), so such a leader moves to a
// proxy that does not hold the VIP, else to a DB node that is not the
// writer. candidates are the voters that reported recently; self is
// ignored among them. The choice is deterministic: lowest name first.
func PlaceLeader(st cluster.State, self cluster.NodeName, candidates []cluster.NodeName) (cluster.NodeName, bool) {
	busy := func(n cluster.NodeName) bool {
		return n == st.Topology.Writer || (n != "" && n == st.VIP.Owner)
	}
	if !busy(self) {
		return "", false
	}
	var proxies, dbs []cluster.NodeName
	for _, n := range candidates {
		if n == self || busy(n) {
			continue
		}
		m, ok := st.Members[n]
		if !ok {
			continue
		}
		if m.Has(cluster.RoleProxy) {
			proxies = append(proxies, n)
		} else {
			dbs = append(dbs, n)
		}
	}
	slices.Sort(proxies)
	slices.Sort(dbs)
	if len(proxies) > 0 {
		return proxies[0], true
	}
	if len(dbs) > 0 {
		return dbs[0], true
	}
	return "", false
}
