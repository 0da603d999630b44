package planner

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dbha/dbha/internal/cluster"
)

// start is the fixed origin of test time.
func start() time.Time { return time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC) }

func dbMember(n cluster.NodeName, prio int) cluster.Member {
	return cluster.Member{Name: n, Roles: []cluster.Role{cluster.RoleDB}, RaftAddr: string(n) + ":7000",
		MySQLAddr: string(n) + ":3306", Priority: prio}
}

func proxyMember(n cluster.NodeName) cluster.Member {
	return cluster.Member{Name: n, Roles: []cluster.Role{cluster.RoleProxy}, RaftAddr: string(n) + ":7000"}
}

// wsrepFor returns a wsrep status consistent with health h.
func wsrepFor(h cluster.Health, committed int64) *cluster.WsrepStatus {
	w := &cluster.WsrepStatus{LocalState: cluster.WsrepSynced, LocalStateComment: "Synced",
		ClusterStatus: cluster.WsrepPrimary, Ready: true, Connected: true, ClusterSize: 3,
		ClusterStateUUID: "uuid-1", LastCommitted: committed, RejectQueries: cluster.RejectNone}
	switch h {
	case cluster.HealthUnreachable:
		return nil
	case cluster.HealthNonPrimary:
		w.ClusterStatus, w.Ready = cluster.WsrepNonPrim, false
	case cluster.HealthNotReady:
		w.Ready = false
	case cluster.HealthDonor:
		w.LocalState, w.LocalStateComment = cluster.WsrepDonor, "Donor/Desynced"
	case cluster.HealthDesynced:
		w.LocalState, w.LocalStateComment, w.Desync = cluster.WsrepDonor, "Donor/Desynced", true
	case cluster.HealthJoining:
		w.LocalState, w.LocalStateComment = cluster.WsrepJoining, "Joining"
	case cluster.HealthNotSynced:
		w.LocalState, w.LocalStateComment = cluster.WsrepJoined, "Joined"
	}
	return w
}

func dbReport(n cluster.NodeName, h cluster.Health, streak int, committed int64, at time.Time) Received {
	return Received{At: at, Report: cluster.Report{From: n, Sent: at, DB: &cluster.Observation{
		Node: n, Time: at, Reachable: h != cluster.HealthUnreachable, Wsrep: wsrepFor(h, committed),
		Health: h, Streak: streak,
	}}}
}

func proxyReport(n cluster.NodeName, healthy bool, applied cluster.Epoch, dbs []cluster.NodeName, down []cluster.NodeName, at time.Time) Received {
	pr := &cluster.ProxyReport{Node: n, Time: at, Healthy: healthy, AppliedEpoch: applied}
	for _, d := range dbs {
		pr.Probes = append(pr.Probes, cluster.ProbeResult{Node: d, Reachable: !slices.Contains(down, d)})
	}
	return Received{At: at, Report: cluster.Report{From: n, Sent: at, Proxy: pr}}
}

// topoOf returns the SetTopology in d, if any.
func topoOf(d Decision) (cluster.SetTopology, bool) {
	for _, c := range d.Commands {
		if st, ok := c.(cluster.SetTopology); ok {
			return st, true
		}
	}
	return cluster.SetTopology{}, false
}

// vipOf returns the SetVIPOwner in d, if any.
func vipOf(d Decision) (cluster.SetVIPOwner, bool) {
	for _, c := range d.Commands {
		if v, ok := c.(cluster.SetVIPOwner); ok {
			return v, true
		}
	}
	return cluster.SetVIPOwner{}, false
}

// fataler is what applyDecision needs from *testing.T and *rapid.T.
type fataler interface {
	Fatalf(format string, args ...any)
}

// applyDecision is the tests' own tiny applier: it does not depend on
// State.Apply, which lives elsewhere.
func applyDecision(t fataler, s *cluster.State, d Decision) {
	for _, c := range d.Commands {
		switch c := c.(type) {
		case cluster.SetTopology:
			if c.Topology.Epoch != s.Topology.Epoch+1 {
				t.Fatalf("apply: topology epoch %d after %d", c.Topology.Epoch, s.Topology.Epoch)
			}
			s.Topology = c.Topology
		case cluster.SetVIPOwner:
			if c.VIP.LeaseEpoch != s.VIP.LeaseEpoch+1 {
				t.Fatalf("apply: vip lease epoch %d after %d", c.VIP.LeaseEpoch, s.VIP.LeaseEpoch)
			}
			s.VIP = c.VIP
		default:
			t.Fatalf("apply: unexpected command %T", c)
		}
	}
}

// routing renders a topology compactly: "w=db1 r=[db2 db3] off=[db4:fenced]".
func routing(t cluster.Topology) string {
	var off []string
	for _, o := range t.Offline {
		off = append(off, string(o.Node)+":"+string(o.Reason))
	}
	var rs []string
	for _, r := range t.Readers {
		rs = append(rs, string(r))
	}
	w := string(t.Writer)
	if w == "" {
		w = "-"
	}
	return fmt.Sprintf("w=%s r=[%s] off=[%s]", w, strings.Join(rs, " "), strings.Join(off, " "))
}
