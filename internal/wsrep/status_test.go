package wsrep

import (
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/wsrep/wsreptest"
)

// synced is what Parse makes of wsreptest.SyncedStatus/SyncedVars, values
// captured from MariaDB 10.11.19 with galera-4.
var synced = cluster.WsrepStatus{
	LocalState: 4, LocalStateComment: "Synced", ClusterStatus: "Primary",
	Ready: true, Connected: true, ClusterSize: 3,
	ClusterStateUUID: "4ae5ddd8-e8f9-11f1-89fc-23461848b4d4", LastCommitted: 9,
	LocalRecvQueue: 0, FlowControlPaused: 0, LocalCachedDownto: 1,
	ReadOnly: false, Desync: false, RejectQueries: "NONE",
}

// badNames returns the variable names of every *StatusError in err, and
// fails the test if err holds any other kind of error.
func badNames(t *testing.T, err error) []string {
	t.Helper()
	var out []string
	var walk func(error)
	walk = func(e error) {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		var se *StatusError
		if !errors.As(e, &se) {
			t.Errorf("error %v is not a *StatusError", e)
			return
		}
		out = append(out, se.Name)
	}
	walk(err)
	slices.Sort(out)
	return out
}

func TestParse(t *testing.T) {
	type edit struct {
		status, vars map[string]string
		del          []string // status names to delete
		delVars      []string
	}
	tests := []struct {
		name string
		edit edit
		want func(w *cluster.WsrepStatus) // edits synced; nil: synced as is
		// bad lists the variables the error must name; empty: no error.
		bad []string
	}{
		{name: "synced 10.11"},
		{name: "extra variables ignored", edit: edit{status: map[string]string{"wsrep_thread_count": "3"}}},
		{name: "upper-case names", edit: edit{del: []string{"wsrep_local_state"}, status: map[string]string{"WSREP_LOCAL_STATE": "4"}}},
		{name: "booleans as ON/OFF", edit: edit{vars: map[string]string{"read_only": "ON", "wsrep_on": "on", "wsrep_desync": "OFF"}},
			want: func(w *cluster.WsrepStatus) { w.ReadOnly = true }},
		{name: "booleans as 1/0", edit: edit{status: map[string]string{"wsrep_ready": "0", "wsrep_connected": "1"}, vars: map[string]string{"wsrep_desync": "1"}},
			want: func(w *cluster.WsrepStatus) { w.Ready, w.Desync = false, true }},
		{name: "donor desynced", edit: edit{status: map[string]string{"wsrep_local_state": "2", "wsrep_local_state_comment": "Donor/Desynced"}},
			want: func(w *cluster.WsrepStatus) { w.LocalState, w.LocalStateComment = 2, "Donor/Desynced" }},
		{name: "state 5 (error) is in range", edit: edit{status: map[string]string{"wsrep_local_state": "5"}},
			want: func(w *cluster.WsrepStatus) { w.LocalState = 5 }},
		{name: "unsigned -1 cached downto is -1", edit: edit{status: map[string]string{"wsrep_local_cached_downto": "18446744073709551615"}},
			want: func(w *cluster.WsrepStatus) { w.LocalCachedDownto = -1 }},
		{name: "undefined seqnos", edit: edit{status: map[string]string{"wsrep_last_committed": "-1", "wsrep_local_cached_downto": "-1"}},
			want: func(w *cluster.WsrepStatus) { w.LastCommitted, w.LocalCachedDownto = -1, -1 }},
		{name: "big seqno", edit: edit{status: map[string]string{"wsrep_last_committed": "9223372036854775807"}},
			want: func(w *cluster.WsrepStatus) { w.LastCommitted = 1<<63 - 1 }},
		{name: "flow control fraction", edit: edit{status: map[string]string{"wsrep_flow_control_paused": "1.5e-05", "wsrep_local_recv_queue": "17"}},
			want: func(w *cluster.WsrepStatus) { w.FlowControlPaused, w.LocalRecvQueue = 1.5e-05, 17 }},
		{name: "non-Primary without uuid", edit: edit{status: map[string]string{"wsrep_cluster_status": "non-Primary", "wsrep_cluster_state_uuid": "", "wsrep_cluster_size": "1"}},
			want: func(w *cluster.WsrepStatus) {
				w.ClusterStatus, w.ClusterStateUUID, w.ClusterSize = "non-Primary", "", 1
			}},
		{name: "disconnected", edit: edit{status: map[string]string{"wsrep_cluster_status": "Disconnected", "wsrep_connected": "OFF", "wsrep_ready": "OFF",
			"wsrep_cluster_size": "0", "wsrep_cluster_state_uuid": "00000000-0000-0000-0000-000000000000", "wsrep_local_state": "0", "wsrep_local_state_comment": "Initialized"}},
			want: func(w *cluster.WsrepStatus) {
				w.ClusterStatus, w.Connected, w.Ready, w.ClusterSize = "Disconnected", false, false, 0
				w.ClusterStateUUID, w.LocalState, w.LocalStateComment = "00000000-0000-0000-0000-000000000000", 0, "Initialized"
			}},
		{name: "upper-case uuid is lowered", edit: edit{status: map[string]string{"wsrep_cluster_state_uuid": "4AE5DDD8-E8F9-11F1-89FC-23461848B4D4"}}},
		{name: "reject queries normalised", edit: edit{vars: map[string]string{"wsrep_reject_queries": "all_kill"}},
			want: func(w *cluster.WsrepStatus) { w.RejectQueries = "ALL_KILL" }},

		// Errors.
		{name: "provider not loaded", edit: edit{del: []string{"wsrep_local_state", "wsrep_local_state_comment", "wsrep_last_committed",
			"wsrep_local_recv_queue", "wsrep_flow_control_paused", "wsrep_local_cached_downto"}},
			bad: []string{"wsrep_flow_control_paused", "wsrep_last_committed", "wsrep_local_cached_downto", "wsrep_local_recv_queue", "wsrep_local_state", "wsrep_local_state_comment"}},
		{name: "wsrep off", edit: edit{vars: map[string]string{"wsrep_on": "0"}}, bad: []string{"@@wsrep_on"}},
		{name: "state not a number", edit: edit{status: map[string]string{"wsrep_local_state": "Synced"}}, bad: []string{"wsrep_local_state"}},
		{name: "state above 5", edit: edit{status: map[string]string{"wsrep_local_state": "6"}}, bad: []string{"wsrep_local_state"}},
		{name: "state negative", edit: edit{status: map[string]string{"wsrep_local_state": "-1"}}, bad: []string{"wsrep_local_state"}},
		{name: "state with spaces", edit: edit{status: map[string]string{"wsrep_local_state": " 4"}}, bad: []string{"wsrep_local_state"}},
		{name: "unknown cluster status", edit: edit{status: map[string]string{"wsrep_cluster_status": "primary"}}, bad: []string{"wsrep_cluster_status"}},
		{name: "negative cluster size", edit: edit{status: map[string]string{"wsrep_cluster_size": "-3"}}, bad: []string{"wsrep_cluster_size"}},
		{name: "huge cluster size", edit: edit{status: map[string]string{"wsrep_cluster_size": "18446744073709551615"}}, bad: []string{"wsrep_cluster_size"}},
		{name: "malformed uuid", edit: edit{status: map[string]string{"wsrep_cluster_state_uuid": "4ae5ddd8-e8f9-11f1-89fc"}}, bad: []string{"wsrep_cluster_state_uuid"}},
		{name: "Primary without uuid", edit: edit{status: map[string]string{"wsrep_cluster_state_uuid": ""}}, bad: []string{"wsrep_cluster_state_uuid"}},
		{name: "bad boolean", edit: edit{status: map[string]string{"wsrep_ready": "YES"}}, bad: []string{"wsrep_ready"}},
		{name: "bad boolean variable", edit: edit{vars: map[string]string{"wsrep_desync": "2"}}, bad: []string{"@@wsrep_desync"}},
		{name: "seqno below -1", edit: edit{status: map[string]string{"wsrep_last_committed": "-2"}}, bad: []string{"wsrep_last_committed"}},
		{name: "seqno not a number", edit: edit{status: map[string]string{"wsrep_local_cached_downto": "1.5"}}, bad: []string{"wsrep_local_cached_downto"}},
		{name: "negative recv queue", edit: edit{status: map[string]string{"wsrep_local_recv_queue": "-1"}}, bad: []string{"wsrep_local_recv_queue"}},
		{name: "flow control NaN", edit: edit{status: map[string]string{"wsrep_flow_control_paused": "NaN"}}, bad: []string{"wsrep_flow_control_paused"}},
		{name: "flow control negative", edit: edit{status: map[string]string{"wsrep_flow_control_paused": "-0.5"}}, bad: []string{"wsrep_flow_control_paused"}},
		{name: "flow control text", edit: edit{status: map[string]string{"wsrep_flow_control_paused": "half"}}, bad: []string{"wsrep_flow_control_paused"}},
		{name: "unknown reject mode", edit: edit{vars: map[string]string{"wsrep_reject_queries": "SOME"}}, bad: []string{"@@wsrep_reject_queries"}},
		{name: "variables NULL", edit: edit{delVars: []string{"read_only", "wsrep_desync"}}, bad: []string{"@@read_only", "@@wsrep_desync"}},
		{name: "every problem at once", edit: edit{status: map[string]string{"wsrep_local_state": "9", "wsrep_cluster_size": "x"}, vars: map[string]string{"wsrep_on": "OFF"}},
			bad: []string{"@@wsrep_on", "wsrep_cluster_size", "wsrep_local_state"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, vars := wsreptest.SyncedStatus(), wsreptest.SyncedVars()
			for _, n := range tc.edit.del {
				delete(status, n)
			}
			for _, n := range tc.edit.delVars {
				delete(vars, n)
			}
			maps.Copy(status, tc.edit.status)
			maps.Copy(vars, tc.edit.vars)
			got, err := Parse(status, vars)
			if len(tc.bad) > 0 {
				if !errors.Is(err, ErrBadStatus) {
					t.Fatalf("Parse error = %v, want ErrBadStatus", err)
				}
				if names := badNames(t, err); !slices.Equal(names, tc.bad) {
					t.Errorf("error names %v, want %v (error: %v)", names, tc.bad, err)
				}
				if got != (cluster.WsrepStatus{}) {
					t.Errorf("status on error = %+v, want the zero value", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := synced
			if tc.want != nil {
				tc.want(&want)
			}
			if got != want {
				t.Errorf("Parse =\n %+v\nwant\n %+v", got, want)
			}
		})
	}
}

func TestStatusErrorNamesValue(t *testing.T) {
	status := wsreptest.SyncedStatus()
	status["wsrep_local_state"] = "7"
	_, err := Parse(status, wsreptest.SyncedVars())
	var se *StatusError
	if !errors.As(err, &se) {
		t.Fatalf("error %v: want a *StatusError", err)
	}
	if se.Name != StLocalState || se.Value != "7" || se.Missing {
		t.Errorf("StatusError = %+v, want name %s value 7", se, StLocalState)
	}
}

// TestStandInQueries keeps wsreptest answering exactly what Read sends.
func TestStandInQueries(t *testing.T) {
	if got := wsreptest.StatusQuery; got != StatusQuery {
		t.Errorf("wsreptest status query %q, Read sends %q", got, StatusQuery)
	}
	if got := wsreptest.VarsQuery; got != VarsQuery {
		t.Errorf("wsreptest vars query %q, Read sends %q", got, VarsQuery)
	}
}
