package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "dbagent.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const good = `
node:
  name: db1
  roles: [db]
data_dir: /tmp/x
raft:
  bind: 198.18.0.11:7100
  peers: [db1=198.18.0.11:7100, db2=198.18.0.12:7100, px1=198.18.0.101:7100]
api:
  bind: 198.18.0.11:7000
mysql:
  addr: 198.18.0.11:3306
  credentials_file: /etc/dbha/mysql.cred
`

func TestLoadGoodWithDefaults(t *testing.T) {
	c, err := Load(writeFile(t, good), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Policy.FailAfter != 3 || c.Policy.PollInterval.String() != "250ms" || !c.Policy.WriterIsReader || c.VIP.OnStop != "release" {
		t.Errorf("defaults not applied: %+v", c.Policy)
	}
	if c.Raft.Advertise != "198.18.0.11:7100" || len(c.Peers()) != 3 {
		t.Errorf("advertise %q peers %v", c.Raft.Advertise, c.Peers())
	}
}

func TestEnvAndFlagsOverride(t *testing.T) {
	t.Setenv("DBHA_POLICY_FAIL_AFTER", "5")
	t.Setenv("DBHA_NODE_NAME", "db9")
	t.Setenv("DBHA_RAFT_PEERS", "db9=198.18.0.19:7100,db2=198.18.0.12:7100")
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	RegisterFlags(fs)
	if err := fs.Parse([]string{"--log-level", "debug"}); err != nil {
		t.Fatal(err)
	}
	c, err := Load(writeFile(t, good), fs)
	if err != nil {
		t.Fatal(err)
	}
	if c.Policy.FailAfter != 5 || c.Node.Name != "db9" || c.Log.Level != "debug" || len(c.Raft.Peers) != 2 {
		t.Errorf("overrides not applied: fail_after %d name %s level %s peers %v", c.Policy.FailAfter, c.Node.Name, c.Log.Level, c.Raft.Peers)
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	bad := `
node:
  roles: [db, web]
data_dir: ""
raft:
  bind: nohost
api:
  bind: 198.18.0.11:99999
policy:
  fail_after: 0
  poll_interval: 1ms
proxy:
  driver: nginx
vip:
  on_stop: maybe
`
	_, err := Load(writeFile(t, bad), nil)
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"node.name", `unknown role "web"`, "data_dir", "raft.bind", "api.bind", "policy.fail_after", "policy.poll_interval",
		`proxy.driver "nginx"`, `vip.on_stop "maybe"`, "mysql.addr", "mysql.credentials_file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
}

func TestUnknownKeyRejected(t *testing.T) {
	_, err := Load(writeFile(t, good+"\npolicy:\n  fail_afterr: 3\n"), nil)
	if err == nil || !strings.Contains(err.Error(), `unknown key "policy.fail_afterr"`) {
		t.Fatalf("misspelt key: %v", err)
	}
}

func TestPeersMustListSelf(t *testing.T) {
	_, err := Load(writeFile(t, strings.Replace(good, "db1=198.18.0.11:7100, ", "", 1)), nil)
	if err == nil || !strings.Contains(err.Error(), "does not list this node") {
		t.Fatalf("got %v", err)
	}
}

func TestLoadCredentials(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]bool{"dbha:secret\n": true, "dbha:": true, "nopassword": false, ":pw": false, "a:b\nc:d": false}
	for body, ok := range cases {
		p := filepath.Join(dir, "cred")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := LoadCredentials(p)
		if (err == nil) != ok {
			t.Errorf("%q: err %v, want ok=%v", body, err, ok)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("error leaks the password: %v", err)
		}
		if ok && c.User != "dbha" {
			t.Errorf("%q: user %q", body, c.User)
		}
	}
	if _, err := LoadCredentials(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file accepted")
	}
}

func TestVIPSettingsThatInternalVIPWouldRefuse(t *testing.T) {
	base := good + "\nvip:\n  address: 198.18.0.250/24\n"
	if _, err := Load(writeFile(t, base), nil); err != nil {
		t.Fatalf("default VIP settings refused: %v", err)
	}
	for body, want := range map[string]string{
		base + "  garp_count: 0\n":                         "garp_count must be 1 or more",
		base + "  garp_count: 20\n  kernel_lifetime: 1s\n": "longer than one gratuitous ARP burst",
		base + "  refresh_interval: 0s\n":                  "refresh_interval positive",
	} {
		_, err := Load(writeFile(t, body), nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("config %q: %v; want an error containing %q", body, err, want)
		}
	}
}
