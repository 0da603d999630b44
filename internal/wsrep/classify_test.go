package wsrep

import (
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/dbha/dbha/internal/cluster"
)

func TestClassifyRows(t *testing.T) {
	mod := func(f func(w *cluster.WsrepStatus)) cluster.WsrepStatus {
		w := synced
		f(&w)
		return w
	}
	tests := []struct {
		name string
		w    cluster.WsrepStatus
		rule string
		want cluster.Health
	}{
		{"synced primary ready", synced, "ok", cluster.HealthOK},
		{"synced with a recv queue is still ok", mod(func(w *cluster.WsrepStatus) { w.LocalRecvQueue, w.FlowControlPaused = 50, 0.3 }), "ok", cluster.HealthOK},

		{"non-Primary", mod(func(w *cluster.WsrepStatus) { w.ClusterStatus = cluster.WsrepNonPrim }), "non_primary", cluster.HealthNonPrimary},
		{"disconnected", mod(func(w *cluster.WsrepStatus) { w.ClusterStatus = cluster.WsrepDisconn }), "non_primary", cluster.HealthNonPrimary},
		{"not connected", mod(func(w *cluster.WsrepStatus) { w.Connected = false }), "non_primary", cluster.HealthNonPrimary},
		{"non-Primary beats joining and desync", mod(func(w *cluster.WsrepStatus) {
			w.ClusterStatus, w.LocalState, w.Desync, w.Ready = cluster.WsrepNonPrim, cluster.WsrepJoining, true, false
		}), "non_primary", cluster.HealthNonPrimary},

		{"joining", mod(func(w *cluster.WsrepStatus) { w.LocalState = cluster.WsrepJoining }), "joining", cluster.HealthJoining},
		{"joined", mod(func(w *cluster.WsrepStatus) { w.LocalState = cluster.WsrepJoined }), "joining", cluster.HealthJoining},
		{"joining beats desync", mod(func(w *cluster.WsrepStatus) { w.LocalState, w.Desync = cluster.WsrepJoined, true }), "joining", cluster.HealthJoining},

		{"desync=ON puts a node in Donor/Desynced", mod(func(w *cluster.WsrepStatus) { w.LocalState, w.Desync = cluster.WsrepDonor, true }), "desynced", cluster.HealthDesynced},
		{"desync=ON still Synced", mod(func(w *cluster.WsrepStatus) { w.Desync = true }), "desynced", cluster.HealthDesynced},

		{"donor without desync", mod(func(w *cluster.WsrepStatus) { w.LocalState = cluster.WsrepDonor }), "donor", cluster.HealthDonor},
		{"donor beats not ready", mod(func(w *cluster.WsrepStatus) { w.LocalState, w.Ready = cluster.WsrepDonor, false }), "donor", cluster.HealthDonor},

		{"state 0 undefined", mod(func(w *cluster.WsrepStatus) { w.LocalState = 0 }), "not_synced", cluster.HealthNotSynced},
		{"state 5 error", mod(func(w *cluster.WsrepStatus) { w.LocalState = 5 }), "not_synced", cluster.HealthNotSynced},
		{"state 5 with desync", mod(func(w *cluster.WsrepStatus) { w.LocalState, w.Desync = 5, true }), "not_synced", cluster.HealthNotSynced},

		{"not ready", mod(func(w *cluster.WsrepStatus) { w.Ready = false }), "not_ready", cluster.HealthNotReady},
		{"reject ALL", mod(func(w *cluster.WsrepStatus) { w.RejectQueries = "ALL" }), "reject_queries", cluster.HealthNotReady},
		{"reject ALL_KILL", mod(func(w *cluster.WsrepStatus) { w.RejectQueries = "ALL_KILL" }), "reject_queries", cluster.HealthNotReady},
		{"empty reject mode is not NONE", mod(func(w *cluster.WsrepStatus) { w.RejectQueries = "" }), "reject_queries", cluster.HealthNotReady},
		{"read only", mod(func(w *cluster.WsrepStatus) { w.ReadOnly = true }), "read_only", cluster.HealthNotReady},
		{"zero value is never ok", cluster.WsrepStatus{}, "non_primary", cluster.HealthNonPrimary},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Match(tc.w)
			if r.Name != tc.rule || r.Code != tc.want {
				t.Errorf("Match = %s (%s), want %s (%s)", r.Name, r.Code, tc.rule, tc.want)
			}
			if got := Classify(tc.w); got != tc.want {
				t.Errorf("Classify = %s, want %s", got, tc.want)
			}
		})
	}
}

// TestRulesTable checks the table's shape: unique names and priorities,
// ok last, and every row reachable by some test status.
func TestRulesTable(t *testing.T) {
	rows := Rules()
	names, prios := map[string]bool{}, map[int]bool{}
	for _, r := range rows {
		if names[r.Name] || prios[r.Priority] {
			t.Errorf("row %s priority %d: duplicate name or priority", r.Name, r.Priority)
		}
		names[r.Name], prios[r.Priority] = true, true
		if r.Match == nil {
			t.Errorf("row %s has no Match", r.Name)
		}
	}
	last := slices.MaxFunc(rows, func(a, b Rule) int { return a.Priority - b.Priority })
	if last.Code != cluster.HealthOK {
		t.Errorf("lowest-priority row is %s, want the ok row last", last.Name)
	}
}

// TestClassifyOKProperty: Classify says ok exactly when the node is Synced,
// Primary, connected, ready, not desynced, rejects nothing and is writable;
// and no status falls through the table.
func TestClassifyOKProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		w := cluster.WsrepStatus{
			LocalState:    rapid.IntRange(0, 5).Draw(t, "state"),
			ClusterStatus: rapid.SampledFrom([]string{cluster.WsrepPrimary, cluster.WsrepNonPrim, cluster.WsrepDisconn}).Draw(t, "cluster"),
			Ready:         rapid.Bool().Draw(t, "ready"),
			Connected:     rapid.Bool().Draw(t, "connected"),
			Desync:        rapid.Bool().Draw(t, "desync"),
			ReadOnly:      rapid.Bool().Draw(t, "read_only"),
			RejectQueries: rapid.SampledFrom([]string{"NONE", "ALL", "ALL_KILL"}).Draw(t, "reject"),
			ClusterSize:   rapid.IntRange(0, 9).Draw(t, "size"),
		}
		good := w.LocalState == cluster.WsrepSynced && w.ClusterStatus == cluster.WsrepPrimary && w.Ready &&
			w.Connected && !w.Desync && w.RejectQueries == cluster.RejectNone && !w.ReadOnly
		r := Match(w)
		if (r.Code == cluster.HealthOK) != good {
			t.Fatalf("Match(%+v) = %s, want ok=%v", w, r.Name, good)
		}
		if r.Name == "unclassified" {
			t.Fatalf("Match(%+v) fell through the table", w)
		}
		if r.Code == cluster.HealthUnreachable {
			t.Fatalf("Match(%+v) = unreachable: only the poller may say that", w)
		}
	})
}
