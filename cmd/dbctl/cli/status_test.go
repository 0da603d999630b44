package cli

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dbha/dbha/internal/api"
	"github.com/dbha/dbha/internal/api/apitest"
	"github.com/dbha/dbha/internal/cluster"
)

// wantLine asserts that some output line matches the regexp.
func wantLine(t *testing.T, out, re string) {
	t.Helper()
	if !regexp.MustCompile(`(?m)` + re).MatchString(out) {
		t.Errorf("no line matches %q in:\n%s", re, out)
	}
}

func TestStatusHealthy(t *testing.T) {
	isolate(t)
	b, ep := fakeAgent(t, "px1")
	st := apitest.HealthyStatus(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	st.Grants.Join = &cluster.JoinGrant{Joiner: "db4", Donor: "db3", Since: time.Date(2025, 1, 2, 3, 0, 0, 0, time.UTC)}
	b.SetStatus(st)

	code, out, errOut := ctl(t, "--endpoint", ep, "status")
	if code != ExitOK {
		t.Fatalf("code %d, stderr %q; want 0", code, errOut)
	}
	for _, re := range []string{
		`^Answered by\s+px1 \(leader, live observations\)$`,
		`^Leader\s+px1 \(term 7\)$`,
		`^Epoch\s+12$`,
		`^Writer\s+db1$`,
		`^VIP\s+198\.18\.0\.100 on px1 \(lease epoch 3, renewed 150ms ago\)$`,
		`^Grant\s+join: db4 takes state from donor db3`,
		`^NODE\s+ROLE\s+REASON\s+WSREP\s+CLUSTER\s+SIZE\s+LAST_COMMITTED\s+HEALTH\s+FLAGS$`,
		`^db1\s+writer\s+-\s+Synced\s+Primary\s+3\s+1042\s+ok\s+-$`,
		`^db3\s+reader\s+-\s+Synced\s+Primary\s+3\s+1041\s+ok\s+no_writer$`,
		`^PROXY\s+HEALTHY\s+APPLIED_EPOCH$`,
		`^px2\s+yes\s+12$`,
		`^RAFT SERVER\s+ADDRESS\s+SUFFRAGE\s+LEADER$`,
		`^px1\s+198\.18\.0\.21:7071\s+voter\s+yes$`,
		`^db1\s+198\.18\.0\.11:7071\s+voter\s+-$`,
	} {
		wantLine(t, out, re)
	}

	code, out, _ = ctl(t, "--endpoint", ep, "status", "-o", "json")
	var got api.Status
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != ExitOK {
		t.Fatalf("json: code %d err %v\n%s", code, err, out)
	}
	if !reflect.DeepEqual(got, st) {
		t.Errorf("status -o json differs from the agent's status:\n got %+v\nwant %+v", got, st)
	}
}

func TestStatusUnhealthy(t *testing.T) {
	isolate(t)
	cases := []struct {
		name     string
		mut      func(*api.Status)
		wantErr  string
		wantLine string // in stdout, table mode
	}{
		{"no writer", func(s *api.Status) {
			s.Topology.Writer = ""
			s.Topology.Offline = []cluster.OfflineNode{{Node: "db1", Reason: cluster.ReasonNonPrimary}}
			s.Nodes[0].Role, s.Nodes[0].Reason, s.Nodes[0].Health = "offline", cluster.ReasonNonPrimary, cluster.HealthNonPrimary
			s.Nodes[0].Wsrep.ClusterStatus = cluster.WsrepNonPrim
		}, "no writer at epoch 12", `^db1\s+offline\s+non_primary\s+Synced\s+non-Primary\s+3\s+1042\s+non_primary\s+-$`},
		{"no leader", func(s *api.Status) { s.Leader, s.LeaderAPI, s.IsLeader = "", "", false }, "no raft leader", `^Leader\s+NONE \(term 7\)$`},
		{"proxy unhealthy", func(s *api.Status) { s.Proxies[1].Healthy, s.Proxies[1].Error = false, "admin port refused" },
			"proxy px2 is unhealthy: admin port refused", `^px2\s+NO: admin port refused\s+12$`},
		{"proxy behind", func(s *api.Status) { s.Proxies[0].AppliedEpoch = 11 },
			"proxy px1 applied epoch 11, behind 12", `^px1\s+yes\s+11 \(behind 12\)$`},
		{"vip unassigned", func(s *api.Status) { s.VIP.Owner = "" },
			"VIP 198.18.0.100 has no owner", `^VIP\s+198\.18\.0\.100 UNASSIGNED`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, ep := fakeAgent(t, "px1")
			st := apitest.HealthyStatus(time.Now())
			c.mut(&st)
			b.SetStatus(st)
			code, out, errOut := ctl(t, "--endpoint", ep, "status")
			if code != ExitUnhealthy || !strings.Contains(errOut, c.wantErr) {
				t.Errorf("code %d stderr %q; want %d with %q", code, errOut, ExitUnhealthy, c.wantErr)
			}
			wantLine(t, out, c.wantLine)
			// JSON mode prints the status and keeps the exit code.
			code, out, _ = ctl(t, "--endpoint", ep, "status", "-o", "json")
			var got api.Status
			if err := json.Unmarshal([]byte(out), &got); err != nil || code != ExitUnhealthy {
				t.Errorf("json: code %d err %v; want parseable JSON and exit %d", code, err, ExitUnhealthy)
			}
		})
	}
}

// TestStatusThroughFollower: a follower forwards status to the leader, so
// dbctl sees live observations; --local shows the follower's own view.
func TestStatusThroughFollower(t *testing.T) {
	isolate(t)
	leader, leaderEP := fakeAgent(t, "px1")
	leader.SetStatus(apitest.HealthyStatus(time.Now()))

	follower, followerEP := fakeAgent(t, "db2")
	local := apitest.HealthyStatus(time.Now())
	local.Node, local.IsLeader, local.Observed = "db2", false, false
	for i := range local.Proxies {
		local.Proxies[i].Healthy, local.Proxies[i].AppliedEpoch = false, 0 // unknown off the leader
	}
	follower.SetStatus(local)
	follower.SetLeaderAPI(leaderEP)

	code, out, errOut := ctl(t, "--endpoint", followerEP, "status")
	if code != ExitOK {
		t.Fatalf("through follower: code %d stderr %q, want 0", code, errOut)
	}
	wantLine(t, out, `^Answered by\s+px1 \(leader, live observations\)$`)
	if n := len(leader.CallsTo("Status")); n != 1 {
		t.Errorf("leader answered %d status calls, want 1", n)
	}

	code, out, errOut = ctl(t, "--endpoint", followerEP, "status", "--local")
	if code != ExitOK {
		t.Errorf("--local: code %d stderr %q; want 0 (proxy health is unknown there, not bad)", code, errOut)
	}
	wantLine(t, out, `^Answered by\s+db2 \(follower, no live observations\)$`)
	wantLine(t, out, `^px1\s+\?\s+0$`)
	if n := len(leader.CallsTo("Status")); n != 1 {
		t.Errorf("--local reached the leader (%d calls)", n)
	}

	// The leader goes away: the follower's view is shown, and it is not
	// healthy because nobody observes the cluster.
	follower.SetLeaderAPI(closedEndpoint(t))
	code, _, errOut = ctl(t, "--endpoint", followerEP, "status")
	if code != ExitUnhealthy || !strings.Contains(errOut, "no live observations") {
		t.Errorf("leader down: code %d stderr %q; want 3 with no live observations", code, errOut)
	}
}

func TestStatusUsage(t *testing.T) {
	isolate(t)
	_, ep := fakeAgent(t, "px1")
	for _, args := range [][]string{
		{"--endpoint", ep, "status", "extra"},
		{"--endpoint", ep, "status", "-o", "yaml"},
		{"--endpoint", ep, "status", "--bogus"},
	} {
		if code, _, errOut := ctl(t, args...); code != ExitUsage {
			t.Errorf("dbctl %v: code %d stderr %q, want %d", args, code, errOut, ExitUsage)
		}
	}
}

func TestStatusAPIError(t *testing.T) {
	isolate(t)
	b, ep := fakeAgent(t, "px1")
	b.SetErr("Status", api.ErrUnavailable)
	code, _, errOut := ctl(t, "--endpoint", ep, "status")
	if code != ExitError || !strings.Contains(errOut, api.CodeUnavailable) {
		t.Errorf("code %d stderr %q; want 1 with the API's code", code, errOut)
	}
}
