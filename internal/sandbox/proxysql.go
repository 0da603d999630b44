package sandbox

// ProxySQL in the sandbox, in one of two modes (docs/proxysql.md, "The
// sandbox"):
//
//   - Options.ProxySQLBin: every proxy namespace runs that ProxySQL binary
//     in the foreground, in place of HAProxy, with a generated proxysql.cnf
//     (RenderProxySQLConfig). Without agents the config routes writes to
//     db1 and reads to all DB nodes; with agents dbha owns the hostgroups.
//   - Options.ProxySQLStandIn (tests only): the test process serves a
//     proxysqltest stand-in of the admin interface inside every proxy
//     namespace on addr:6032. It routes no client traffic; it lets the
//     proxy agents run `driver: proxysql` where no ProxySQL is installed.
//
// In both modes the proxy agents run the proxysql driver against their
// node's admin interface (addr:6032) with the remote admin credential
// below, read from a per-proxy credentials file.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"

	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/proxysql/proxysqltest"
)

// ProxySQL settings of the sandbox. They exist only inside its namespaces.
const (
	// ProxySQLAdminPort is the admin interface's port on every proxy node.
	ProxySQLAdminPort = 6032
	// ProxySQLAdminUser and ProxySQLAdminPassword are the admin credential
	// dbha uses. Real ProxySQL accepts its `admin` user only from
	// localhost, so the config adds this second credential for remote use.
	ProxySQLAdminUser     = "dbha_admin"
	ProxySQLAdminPassword = "dbha-admin-pass"
	// ProxySQLWriterHostgroup and ProxySQLReaderHostgroup are the
	// hostgroups dbha owns (the driver's defaults).
	ProxySQLWriterHostgroup = 10
	ProxySQLReaderHostgroup = 20
)

// ErrProxySQLOptions is returned for a contradictory ProxySQL setup.
var ErrProxySQLOptions = errors.New("invalid ProxySQL options")

// validateProxySQL checks the ProxySQL options of o.
func (o Options) validateProxySQL() error {
	switch {
	case o.ProxySQLBin != "" && o.ProxySQLStandIn:
		return fmt.Errorf("%w: --proxysql-bin and the ProxySQL stand-in exclude each other", ErrProxySQLOptions)
	case o.ProxySQLStandIn && o.AgentBinary == "":
		return fmt.Errorf("%w: the ProxySQL stand-in needs agents (it routes no traffic by itself)", ErrProxySQLOptions)
	case o.ProxySQLBin != "":
		if fi, err := os.Stat(o.ProxySQLBin); err != nil {
			return fmt.Errorf("%w: --proxysql-bin: %w", ErrProxySQLOptions, err)
		} else if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return fmt.Errorf("%w: --proxysql-bin %s: not an executable file", ErrProxySQLOptions, o.ProxySQLBin)
		}
	}
	return nil
}

// proxySQLMode reports whether the proxies run ProxySQL (real or stand-in)
// instead of HAProxy.
func (s *Sandbox) proxySQLMode() bool {
	return s.State.ProxySQLBin != "" || s.State.ProxySQLStandIn
}

// ProxySQLAdminAddr is the admin interface of a proxy node.
func ProxySQLAdminAddr(n *Node) string {
	return net.JoinHostPort(n.Addr, strconv.Itoa(ProxySQLAdminPort))
}

// ProxySQLCredentialsFile is the admin credentials file a proxy node's
// agent reads (one line user:password). Tests may rewrite it and restart
// the agent to inject wrong credentials.
func ProxySQLCredentialsFile(dir string, n *Node) string {
	return filepath.Join(dir, string(n.Name), "proxysql-admin.cred")
}

// proxyYAML renders the `proxy:` section of a proxy node's agent config:
// the HAProxy driver by default, the ProxySQL driver in either ProxySQL
// mode. It has no trailing newline.
func (s *Sandbox) proxyYAML(n *Node) string {
	if !s.proxySQLMode() {
		return fmt.Sprintf("proxy:\n  driver: haproxy\n  haproxy:\n    socket: %s", HAProxySocket(s.State.Dir, n))
	}
	return fmt.Sprintf("proxy:\n  driver: proxysql\n  proxysql:\n    admin: %s\n    credentials_file: %s\n    writer_hostgroup: %d\n    reader_hostgroup: %d",
		ProxySQLAdminAddr(n), ProxySQLCredentialsFile(s.State.Dir, n), ProxySQLWriterHostgroup, ProxySQLReaderHostgroup)
}

// ProxySQLServer is one static mysql_servers row of a generated config.
type ProxySQLServer struct {
	Name      cluster.NodeName
	Host      string
	Port      int
	Hostgroup int
}

// ProxySQLConfigData fills the proxysql.cnf template.
type ProxySQLConfigData struct {
	Node    cluster.NodeName
	DataDir string
	// AdminAddr is where the admin interface listens besides
	// 127.0.0.1:6032 (the node's address, port 6032).
	AdminAddr string
	// AdminUser/AdminPassword are the remote admin credential, added to
	// ProxySQL's localhost-only admin:admin.
	AdminUser, AdminPassword     string
	WriterPort, ReaderPort       int
	WriterHostgroup              int
	ReaderHostgroup              int
	MonitorUser, MonitorPassword string
	AppUser, AppPassword         string
	// Servers are static mysql_servers rows, for a sandbox without agents.
	// With agents it is empty: dbha writes its hostgroups itself.
	Servers []ProxySQLServer
}

// proxySQLCnf is the ProxySQL 2.x config (libconfig syntax). ProxySQL
// reads it only when the datadir has no proxysql.db yet; the sandbox always
// starts from an empty datadir. Read/write split by port: 3306 goes to the
// app user's default hostgroup (the writer), 3307 to the reader hostgroup
// by a proxy_port query rule. No mysql_galera_hostgroups and no
// proxysql_servers: dbha owns the two hostgroups.
var proxySQLCnf = template.Must(template.New("proxysql.cnf").Parse(`# generated by dbha sandbox for {{.Node}}
datadir="{{.DataDir}}"
errorlog="{{.DataDir}}/proxysql.log"

admin_variables=
{
    # admin:admin only works from localhost; dbha connects remotely.
    admin_credentials="admin:admin;{{.AdminUser}}:{{.AdminPassword}}"
    mysql_ifaces="127.0.0.1:6032;{{.AdminAddr}}"
    # No ProxySQL Cluster: nothing may sync mysql_servers over dbha's rows.
    cluster_mysql_servers_diffs_before_sync=0
}

mysql_variables=
{
    threads=2
    max_connections=2048
    interfaces="0.0.0.0:{{.WriterPort}};0.0.0.0:{{.ReaderPort}}"
    server_version="10.11.0-MariaDB"
    connect_timeout_server=3000
    monitor_username="{{.MonitorUser}}"
    monitor_password="{{.MonitorPassword}}"
    monitor_connect_interval=2000
    monitor_ping_interval=2000
}

mysql_servers=
(
{{- range $i, $s := .Servers}}{{if $i}},{{end}}
    { address="{{$s.Host}}", port={{$s.Port}}, hostgroup={{$s.Hostgroup}}, comment="dbha node={{$s.Name}}" }
{{- end}}
)

mysql_users=
(
    { username="{{.AppUser}}", password="{{.AppPassword}}", default_hostgroup={{.WriterHostgroup}}, transaction_persistent=1, active=1 }
)

mysql_query_rules=
(
    { rule_id=100, active=1, proxy_port={{.ReaderPort}}, destination_hostgroup={{.ReaderHostgroup}}, apply=1, comment="dbha sandbox: reader port" }
)
`))

// RenderProxySQLConfig renders a proxysql.cnf.
func RenderProxySQLConfig(d ProxySQLConfigData) ([]byte, error) {
	for _, v := range []string{d.AdminUser, d.AdminPassword, d.MonitorUser, d.MonitorPassword, d.AppUser, d.AppPassword, d.DataDir, d.AdminAddr} {
		if v == "" || strings.ContainsAny(v, "\";\n") {
			return nil, fmt.Errorf("render proxysql.cnf for %s: empty value or one with a quote, semicolon or newline: %q", d.Node, v)
		}
	}
	if d.WriterHostgroup == d.ReaderHostgroup {
		return nil, fmt.Errorf("render proxysql.cnf for %s: writer and reader hostgroup are both %d", d.Node, d.WriterHostgroup)
	}
	var b bytes.Buffer
	if err := proxySQLCnf.Execute(&b, d); err != nil {
		return nil, fmt.Errorf("render proxysql.cnf for %s: %w", d.Node, err)
	}
	return b.Bytes(), nil
}

// proxySQLConfig is the generated config of proxy node n.
func (s *Sandbox) proxySQLConfig(n *Node) ([]byte, error) {
	d := ProxySQLConfigData{
		Node: n.Name, DataDir: filepath.Join(s.State.Dir, string(n.Name), "proxysql"),
		AdminAddr: ProxySQLAdminAddr(n), AdminUser: ProxySQLAdminUser, AdminPassword: ProxySQLAdminPassword,
		WriterPort: WriterPort, ReaderPort: ReaderPort,
		WriterHostgroup: ProxySQLWriterHostgroup, ReaderHostgroup: ProxySQLReaderHostgroup,
		MonitorUser: MonitorUser, MonitorPassword: MonitorPassword,
		AppUser: AppUser, AppPassword: AppPassword,
	}
	if s.State.AgentBinary == "" {
		// Static: writes to db1, reads to every DB node.
		for i, db := range s.Nodes(KindDB) {
			if i == 0 {
				d.Servers = append(d.Servers, ProxySQLServer{Name: db.Name, Host: db.Addr, Port: 3306, Hostgroup: ProxySQLWriterHostgroup})
			}
			d.Servers = append(d.Servers, ProxySQLServer{Name: db.Name, Host: db.Addr, Port: 3306, Hostgroup: ProxySQLReaderHostgroup})
		}
	}
	return RenderProxySQLConfig(d)
}

// startProxySQLs starts the proxies of either ProxySQL mode and writes
// every proxy node's admin credentials file.
func (s *Sandbox) startProxySQLs(ctx context.Context) error {
	for _, n := range s.Nodes(KindProxy) {
		dir := filepath.Join(s.State.Dir, string(n.Name))
		if err := os.MkdirAll(filepath.Join(dir, "proxysql"), 0o755); err != nil {
			return err
		}
		cred := fmt.Sprintf("%s:%s\n", ProxySQLAdminUser, ProxySQLAdminPassword)
		if err := os.WriteFile(ProxySQLCredentialsFile(s.State.Dir, n), []byte(cred), 0o600); err != nil {
			return err
		}
		if s.State.ProxySQLStandIn {
			if err := s.startStandIn(n, filepath.Join(dir, "proxysql")); err != nil {
				return err
			}
			continue
		}
		b, err := s.proxySQLConfig(n)
		if err != nil {
			return err
		}
		cfg := filepath.Join(dir, "proxysql.cnf")
		if err := os.WriteFile(cfg, b, 0o600); err != nil {
			return err
		}
		p, err := startProc(n.Namespace, "proxysql", filepath.Join(dir, "proxysql.out"),
			s.State.ProxySQLBin, "-f", "-c", cfg, "-D", filepath.Join(dir, "proxysql"))
		if err != nil {
			return err
		}
		n.Procs["proxysql"] = p
		if err := s.save(); err != nil {
			return err
		}
	}
	if s.State.ProxySQLStandIn {
		fmt.Fprintf(s.log, "sandbox %s: ProxySQL admin stand-ins serving on port %d\n", s.State.Prefix, ProxySQLAdminPort)
		return nil
	}
	for _, n := range s.Nodes(KindProxy) {
		for _, addr := range []string{ProxySQLAdminAddr(n), fmt.Sprintf("%s:%d", n.Addr, WriterPort)} {
			if err := s.waitListening(ctx, n, addr, socketTimeout); err != nil {
				return err
			}
		}
	}
	return nil
}

// startStandIn serves a proxysqltest admin interface inside n's namespace.
// It lives in this process: Down closes it, and state.json does not know
// it (a sandbox with stand-ins cannot be torn down from another process,
// which is fine for tests).
func (s *Sandbox) startStandIn(n *Node, dataDir string) error {
	ns := n.Namespace
	srv, err := proxysqltest.NewServer(
		proxysqltest.WithCredentials(ProxySQLAdminUser, ProxySQLAdminPassword),
		proxysqltest.WithDataDir(dataDir),
		proxysqltest.WithListenFunc(ProxySQLAdminAddr(n), func(addr string) (net.Listener, error) { return ListenIn(ns, addr) }),
	)
	if err != nil {
		return fmt.Errorf("proxysql stand-in on %s: %w", n.Name, err)
	}
	if s.standIns == nil {
		s.standIns = map[cluster.NodeName]*proxysqltest.Server{}
	}
	s.standIns[n.Name] = srv
	return nil
}

// StandIn returns the ProxySQL admin stand-in of a proxy node
// (Options.ProxySQLStandIn), for tests to read runtime tables and inject
// faults.
func (s *Sandbox) StandIn(node cluster.NodeName) (*proxysqltest.Server, error) {
	srv, ok := s.standIns[node]
	if !ok {
		return nil, fmt.Errorf("sandbox %s: %s has no ProxySQL stand-in", s.State.Prefix, node)
	}
	return srv, nil
}

// closeStandIns closes every stand-in; Down calls it.
func (s *Sandbox) closeStandIns() error {
	var errs []error
	for name, srv := range s.standIns {
		if err := srv.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close proxysql stand-in on %s: %w", name, err))
		}
		delete(s.standIns, name)
	}
	return errors.Join(errs...)
}
