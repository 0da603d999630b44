package cli

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/dbha/dbha/internal/api"
	"github.com/dbha/dbha/internal/api/apitest"
	"github.com/dbha/dbha/internal/cluster"
)

func TestMembers(t *testing.T) {
	isolate(t)
	b, ep := fakeAgent(t, "px1")
	st := apitest.HealthyStatus(time.Now())
	// db4 registered but not in raft yet; px2 a non-voter; db2 draining.
	st.Members = append(st.Members, cluster.Member{Name: "db4", Roles: []cluster.Role{cluster.RoleDB, cluster.RoleProxy}, RaftAddr: "198.18.0.14:7071", MySQLAddr: "198.18.0.14:3306", Maintenance: true})
	st.Members[1].Draining = true
	st.Raft[4].Suffrage = "nonvoter"
	// Status lists members in any order; dbctl sorts them.
	st.Members[0], st.Members[4] = st.Members[4], st.Members[0]
	b.SetStatus(st)

	code, out, errOut := ctl(t, "--endpoint", ep, "members")
	if code != ExitOK {
		t.Fatalf("code %d stderr %q", code, errOut)
	}
	for _, re := range []string{
		`^NAME\s+ROLES\s+API\s+RAFT\s+MYSQL\s+PRIORITY\s+FLAGS\s+VOTER\s+LEADER$`,
		`^db1\s+db\s+198\.18\.0\.11:7070\s+198\.18\.0\.11:7071\s+198\.18\.0\.11:3306\s+10\s+-\s+yes\s+-$`,
		`^db2\s+db\s+\S+\s+\S+\s+\S+\s+5\s+draining\s+yes\s+-$`,
		`^db3\s+db\s+\S+\s+\S+\s+\S+\s+5\s+no_writer\s+yes\s+-$`,
		`^db4\s+db,proxy\s+-\s+198\.18\.0\.14:7071\s+198\.18\.0\.14:3306\s+0\s+maintenance\s+-\s+-$`,
		`^px1\s+proxy\s+\S+\s+\S+\s+-\s+0\s+-\s+yes\s+yes$`,
		`^px2\s+proxy\s+\S+\s+\S+\s+-\s+0\s+-\s+no\s+-$`,
	} {
		wantLine(t, out, re)
	}
	if !linesInOrder(out, "db1", "db2", "db3", "db4", "px1", "px2") {
		t.Errorf("members not sorted by name:\n%s", out)
	}

	code, out, _ = ctl(t, "--endpoint", ep, "members", "-o", "json")
	var rows []struct {
		cluster.Member
		Suffrage string `json:"suffrage"`
		Leader   bool   `json:"leader"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil || code != ExitOK {
		t.Fatalf("json: code %d err %v\n%s", code, err, out)
	}
	if len(rows) != 6 || rows[0].Name != "db1" || rows[0].Suffrage != "voter" || rows[3].Suffrage != "" || !rows[4].Leader || rows[4].APIAddr != "198.18.0.21:7070" {
		t.Errorf("members -o json = %+v", rows)
	}
	if code, _, _ := ctl(t, "--endpoint", ep, "members", "x"); code != ExitUsage {
		t.Errorf("members x: code %d, want %d", code, ExitUsage)
	}
	b.SetErr("Status", api.ErrNoLeader)
	if code, _, errOut := ctl(t, "--endpoint", ep, "members"); code != ExitError {
		t.Errorf("members with the API failing: code %d stderr %q, want 1", code, errOut)
	}
}

// linesInOrder reports whether the names start lines of out in that order.
func linesInOrder(out string, names ...string) bool {
	pos := -1
	for _, n := range names {
		i := indexLineStart(out, n+" ")
		if i <= pos {
			return false
		}
		pos = i
	}
	return true
}

func indexLineStart(out, prefix string) int {
	start := 0
	for i := 0; i <= len(out); i++ {
		if i == len(out) || out[i] == '\n' {
			if len(out[start:i]) >= len(prefix) && out[start:start+len(prefix)] == prefix {
				return start
			}
			start = i + 1
		}
	}
	return -1
}
