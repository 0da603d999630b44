package haproxy

import (
	"testing"

	"github.com/dbha/dbha/internal/cluster"
)

// Captured from HAProxy 2.6.12: db1 set ready after starting "disabled"
// (flags 0x04 stay), db2 still disabled, db3 drained, db4 health-check down.
const serversStateAnswer = `1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 dbha_writer 1 db1 127.0.0.1 2 4 1 1 0 1 0 0 8 0 0 0 - 24001 - 0 0 - - 0
3 dbha_writer 2 db2 127.0.0.1 0 5 1 1 1 1 0 0 8 0 0 0 - 24002 - 0 0 - - 0
3 dbha_writer 3 db3 127.0.0.1 2 12 1 1 0 1 0 0 8 0 0 0 - 24003 - 0 0 - - 0
3 dbha_writer 4 db4 127.0.0.1 0 0 1 1 0 1 0 0 8 0 0 0 - 24004 - 0 0 - - 0

`

func TestParseServersState(t *testing.T) {
	got, err := parseServersState(serversStateAnswer)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name   cluster.NodeName
		admin  AdminState
		status string
		port   int
	}{
		{"db1", StateReady, StatusReady, 24001},
		{"db2", StateMaint, StatusMaint, 24002},
		{"db3", StateDrain, StatusDrain, 24003},
		{"db4", StateReady, StatusDown, 24004},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d servers, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Name != w.name || g.Admin() != w.admin || g.Status() != w.status || g.Port != w.port || g.Backend != "dbha_writer" || g.Addr != "127.0.0.1" {
			t.Errorf("server %d = %+v (admin %s, status %s), want %+v", i, g, g.Admin(), g.Status(), w)
		}
	}
}

func TestParseServersStateRejectsErrors(t *testing.T) {
	for _, answer := range []string{
		"Can't find backend.\n\n",
		"",
		"2\n# be_name srv_name\n",
		"1\n# be_id be_name\n3 x\n",
		"1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_port\n3 b 1 s 1.2.3.4 x 1 3306\n",
	} {
		if got, err := parseServersState(answer); err == nil {
			t.Errorf("parseServersState(%q) = %+v, want an error", answer, got)
		}
	}
}

func TestAdminFlagClassification(t *testing.T) {
	for _, tc := range []struct {
		flags int
		want  AdminState
	}{
		{0x00, StateReady}, {0x04, StateReady}, {0x40, StateReady},
		{0x01, StateMaint}, {0x02, StateMaint}, {0x20, StateMaint}, {0x05, StateMaint}, {0x09, StateMaint},
		{0x08, StateDrain}, {0x10, StateDrain}, {0x0c, StateDrain},
	} {
		if got := (serverRuntime{AdminFlags: tc.flags, OpState: 2}).Admin(); got != tc.want {
			t.Errorf("flags %#x: got %s, want %s", tc.flags, got, tc.want)
		}
	}
}

func TestParseStat(t *testing.T) {
	answer := "# pxname,svname,qcur,qmax,scur,smax,slim,stot,status,check_desc\n" +
		"dbha_writer,db1,0,0,3,3,,7,UP,\"Layer7, check passed\"\n" +
		"dbha_writer,BACKEND,0,0,3,3,,7,UP,\n" +
		"dbha_reader,db1,0,0,0,0,,0,MAINT,\n\n"
	got, err := parseStat(answer)
	if err != nil {
		t.Fatal(err)
	}
	if got[statKey{"dbha_writer", "db1"}] != 3 || got[statKey{"dbha_reader", "db1"}] != 0 || len(got) != 2 {
		t.Fatalf("parseStat = %v", got)
	}
	if _, err := parseStat("Permission denied\n"); err == nil {
		t.Fatal("parseStat accepted an error answer")
	}
}
