package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/config"
)

func testProxySQLData() ProxySQLConfigData {
	return ProxySQLConfigData{
		Node: "px1", DataDir: "/run/x/px1/proxysql", AdminAddr: "198.18.0.101:6032",
		AdminUser: ProxySQLAdminUser, AdminPassword: ProxySQLAdminPassword,
		WriterPort: WriterPort, ReaderPort: ReaderPort,
		WriterHostgroup: ProxySQLWriterHostgroup, ReaderHostgroup: ProxySQLReaderHostgroup,
		MonitorUser: MonitorUser, MonitorPassword: MonitorPassword,
		AppUser: AppUser, AppPassword: AppPassword,
	}
}

func TestRenderProxySQLConfig(t *testing.T) {
	t.Run("with agents: no static servers", func(t *testing.T) {
		b, err := RenderProxySQLConfig(testProxySQLData())
		if err != nil {
			t.Fatal(err)
		}
		cnf := string(b)
		for _, want := range []string{
			`datadir="/run/x/px1/proxysql"`,
			`admin_credentials="admin:admin;dbha_admin:dbha-admin-pass"`,
			`mysql_ifaces="127.0.0.1:6032;198.18.0.101:6032"`,
			`cluster_mysql_servers_diffs_before_sync=0`,
			`interfaces="0.0.0.0:3306;0.0.0.0:3307"`,
			`monitor_username="dbha"`,
			`monitor_password="dbha-pass"`,
			`{ username="app", password="app-pass", default_hostgroup=10, transaction_persistent=1, active=1 }`,
			`{ rule_id=100, active=1, proxy_port=3307, destination_hostgroup=20, apply=1,`,
			"mysql_servers=\n(\n)",
		} {
			if !strings.Contains(cnf, want) {
				t.Errorf("proxysql.cnf lacks %q:\n%s", want, cnf)
			}
		}
		// dbha owns the hostgroups: ProxySQL's own Galera checker and
		// ProxySQL Cluster must not be configured.
		for _, bad := range []string{"galera_hostgroups", "proxysql_servers"} {
			if strings.Contains(cnf, bad) {
				t.Errorf("proxysql.cnf configures %s:\n%s", bad, cnf)
			}
		}
		if o, c := strings.Count(cnf, "("), strings.Count(cnf, ")"); o != c {
			t.Errorf("unbalanced lists: %d '(' and %d ')'", o, c)
		}
		if o, c := strings.Count(cnf, "{"), strings.Count(cnf, "}"); o != c {
			t.Errorf("unbalanced groups: %d '{' and %d '}'", o, c)
		}
	})
	t.Run("static: writes to db1, reads to all", func(t *testing.T) {
		d := testProxySQLData()
		d.Servers = []ProxySQLServer{
			{Name: "db1", Host: "198.18.0.11", Port: 3306, Hostgroup: 10},
			{Name: "db1", Host: "198.18.0.11", Port: 3306, Hostgroup: 20},
			{Name: "db2", Host: "198.18.0.12", Port: 3306, Hostgroup: 20},
		}
		b, err := RenderProxySQLConfig(d)
		if err != nil {
			t.Fatal(err)
		}
		want := "mysql_servers=\n(\n" +
			`    { address="198.18.0.11", port=3306, hostgroup=10, comment="dbha node=db1" },` + "\n" +
			`    { address="198.18.0.11", port=3306, hostgroup=20, comment="dbha node=db1" },` + "\n" +
			`    { address="198.18.0.12", port=3306, hostgroup=20, comment="dbha node=db2" }` + "\n)"
		if !strings.Contains(string(b), want) {
			t.Errorf("static servers: want\n%s\nin\n%s", want, b)
		}
	})
	t.Run("refuses bad values", func(t *testing.T) {
		d := testProxySQLData()
		d.AdminPassword = `pa"ss`
		if _, err := RenderProxySQLConfig(d); err == nil {
			t.Error("a quote in the admin password rendered")
		}
		d = testProxySQLData()
		d.AdminUser = ""
		if _, err := RenderProxySQLConfig(d); err == nil {
			t.Error("an empty admin user rendered")
		}
		d = testProxySQLData()
		d.ReaderHostgroup = d.WriterHostgroup
		if _, err := RenderProxySQLConfig(d); err == nil {
			t.Error("equal writer and reader hostgroups rendered")
		}
	})
}

func TestStaticProxySQLConfig(t *testing.T) {
	s := testSandbox(t, Options{ProxySQLBin: "/bin/true"})
	b, err := s.proxySQLConfig(s.Nodes(KindProxy)[0])
	if err != nil {
		t.Fatal(err)
	}
	cnf := string(b)
	if n := strings.Count(cnf, ", hostgroup=10,"); n != 1 {
		t.Errorf("static config: %d servers in the writer hostgroup, want 1 (db1):\n%s", n, cnf)
	}
	if n := strings.Count(cnf, ", hostgroup=20,"); n != 3 {
		t.Errorf("static config: %d servers in the reader hostgroup, want 3:\n%s", n, cnf)
	}
	if !strings.Contains(cnf, `address="198.18.0.11", port=3306, hostgroup=10`) {
		t.Errorf("static config: db1 is not the writer:\n%s", cnf)
	}
}

// testSandbox is a sandbox that exists only as state: nodes and a run dir.
func testSandbox(t *testing.T, o Options) *Sandbox {
	t.Helper()
	s := &Sandbox{State: State{Prefix: "t", Dir: t.TempDir(), AgentBinary: o.AgentBinary,
		ProxySQLBin: o.ProxySQLBin, ProxySQLStandIn: o.ProxySQLStandIn}}
	for i := 1; i <= 3; i++ {
		s.addNode(cluster.NodeName(fmt.Sprintf("db%d", i)), KindDB, DBAddr(i))
	}
	for i := 1; i <= 2; i++ {
		s.addNode(cluster.NodeName(fmt.Sprintf("px%d", i)), KindProxy, ProxyAddr(i))
	}
	s.addNode("client", KindClient, ClientAddr)
	return s
}

// TestAgentYAMLProxyDriver loads the generated agent configs with the
// agent's own loader: the proxy section names the proxysql driver in both
// ProxySQL modes and the haproxy driver otherwise.
func TestAgentYAMLProxyDriver(t *testing.T) {
	for _, tc := range []struct {
		name   string
		o      Options
		driver string
	}{
		{"haproxy", Options{AgentBinary: "/bin/true"}, "haproxy"},
		{"proxysql binary", Options{AgentBinary: "/bin/true", ProxySQLBin: "/bin/true"}, "proxysql"},
		{"proxysql stand-in", Options{AgentBinary: "/bin/true", ProxySQLStandIn: true}, "proxysql"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testSandbox(t, tc.o)
			if err := s.writeAgentConfigs(); err != nil {
				t.Fatal(err)
			}
			px := s.Nodes(KindProxy)[1]
			cfg, err := config.Load(filepath.Join(s.State.Dir, string(px.Name), "dbagent.yaml"), nil)
			if err != nil {
				t.Fatalf("generated config does not load: %v", err)
			}
			if cfg.Proxy.Driver != tc.driver {
				t.Fatalf("proxy.driver = %q, want %q", cfg.Proxy.Driver, tc.driver)
			}
			if tc.driver != "proxysql" {
				return
			}
			p := cfg.Proxy.ProxySQL
			if p.Admin != "198.18.0.102:6032" || p.WriterHostgroup != 10 || p.ReaderHostgroup != 20 {
				t.Errorf("proxysql section = %+v, want admin 198.18.0.102:6032, hostgroups 10/20", p)
			}
			if p.CredentialsFile != ProxySQLCredentialsFile(s.State.Dir, px) {
				t.Errorf("credentials_file = %q, want %q", p.CredentialsFile, ProxySQLCredentialsFile(s.State.Dir, px))
			}
			if cfg.VIP.Address == "" {
				t.Errorf("the proxy section replaced the vip section: %+v", cfg.VIP)
			}
		})
	}
}

func TestValidateProxySQLOptions(t *testing.T) {
	base := Options{DBNodes: 3, Proxies: 2}
	exe := filepath.Join(t.TempDir(), "proxysql")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(*Options)
		ok   bool
	}{
		{"haproxy", func(*Options) {}, true},
		{"binary", func(o *Options) { o.ProxySQLBin = exe }, true},
		{"stand-in with agents", func(o *Options) { o.ProxySQLStandIn, o.AgentBinary = true, "/bin/true" }, true},
		{"both modes", func(o *Options) { o.ProxySQLBin, o.ProxySQLStandIn, o.AgentBinary = exe, true, "/bin/true" }, false},
		{"stand-in without agents", func(o *Options) { o.ProxySQLStandIn = true }, false},
		{"missing binary", func(o *Options) { o.ProxySQLBin = exe + "-missing" }, false},
		{"binary is a dir", func(o *Options) { o.ProxySQLBin = filepath.Dir(exe) }, false},
	} {
		o := base
		tc.edit(&o)
		_, err := o.Validate()
		if tc.ok && err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if !tc.ok && !errors.Is(err, ErrProxySQLOptions) {
			t.Errorf("%s: err = %v, want ErrProxySQLOptions", tc.name, err)
		}
	}
}
