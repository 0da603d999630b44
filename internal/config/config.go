// Package config loads and validates dbagent's configuration: a YAML file,
// then DBHA_* environment variables, then flags (viper). Defaults live in
// one place, Defaults(), and are documented in docs/configuration.md.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/dbha/dbha/internal/cluster"
)

// Config is dbagent's whole configuration.
type Config struct {
	Node    NodeConfig   `mapstructure:"node"`
	DataDir string       `mapstructure:"data_dir"`
	Raft    RaftConfig   `mapstructure:"raft"`
	API     APIConfig    `mapstructure:"api"`
	MySQL   MySQLConfig  `mapstructure:"mysql"`
	Proxy   ProxyConfig  `mapstructure:"proxy"`
	VIP     VIPConfig    `mapstructure:"vip"`
	Policy  PolicyConfig `mapstructure:"policy"`
	Log     LogConfig    `mapstructure:"log"`
}

// NodeConfig names this node and its roles.
type NodeConfig struct {
	Name     string   `mapstructure:"name"`
	Roles    []string `mapstructure:"roles"`
	Priority int      `mapstructure:"priority"` // writer priority; higher wins
	NoWriter bool     `mapstructure:"no_writer"`
}

// RaftConfig configures the raft group.
type RaftConfig struct {
	Bind            string   `mapstructure:"bind"`      // host:port to listen on
	Advertise       string   `mapstructure:"advertise"` // host:port peers dial; default bind
	BootstrapExpect int      `mapstructure:"bootstrap_expect"`
	Peers           []string `mapstructure:"peers"` // name=host:port, the initial voters
	Join            []string `mapstructure:"join"`  // API endpoints of agents to join through
}

// APIConfig configures the HTTP API.
type APIConfig struct {
	Bind       string `mapstructure:"bind"`
	Advertise  string `mapstructure:"advertise"`
	UnixSocket string `mapstructure:"unix_socket"`
}

// MySQLConfig says how a DB agent reaches its local mariadbd.
type MySQLConfig struct {
	Addr            string `mapstructure:"addr"`             // host:port that proxies route to and that others probe
	Socket          string `mapstructure:"socket"`           // optional local socket for the agent's own polls
	CredentialsFile string `mapstructure:"credentials_file"` // user:password
}

// ProxyConfig says which proxy a proxy agent drives.
type ProxyConfig struct {
	Driver   string         `mapstructure:"driver"` // haproxy, proxysql, none
	HAProxy  HAProxyConfig  `mapstructure:"haproxy"`
	ProxySQL ProxySQLConfig `mapstructure:"proxysql"`
}

// HAProxyConfig configures the HAProxy driver.
type HAProxyConfig struct {
	Socket        string `mapstructure:"socket"`
	WriterBackend string `mapstructure:"writer_backend"`
	ReaderBackend string `mapstructure:"reader_backend"`
}

// ProxySQLConfig configures the ProxySQL driver.
type ProxySQLConfig struct {
	Admin           string `mapstructure:"admin"`
	CredentialsFile string `mapstructure:"credentials_file"`
	WriterHostgroup int    `mapstructure:"writer_hostgroup"`
	ReaderHostgroup int    `mapstructure:"reader_hostgroup"`
}

// VIPConfig configures the floating VIP on proxy nodes.
type VIPConfig struct {
	Address         string        `mapstructure:"address"` // 198.18.0.250/24; empty = no VIP
	Interface       string        `mapstructure:"interface"`
	Label           string        `mapstructure:"label"`
	GARPCount       int           `mapstructure:"garp_count"`
	GARPInterval    time.Duration `mapstructure:"garp_interval"`
	RefreshInterval time.Duration `mapstructure:"refresh_interval"`
	Lease           time.Duration `mapstructure:"lease"`
	RenewInterval   time.Duration `mapstructure:"renew_interval"`
	SkewMargin      time.Duration `mapstructure:"skew_margin"`
	KernelLifetime  time.Duration `mapstructure:"kernel_lifetime"`
	OnStop          string        `mapstructure:"on_stop"` // release, retain
}

// PolicyConfig is the cluster policy. Every agent should carry the same
// policy; the leader's is the one in force.
type PolicyConfig struct {
	PollInterval   time.Duration `mapstructure:"poll_interval"`
	FailAfter      int           `mapstructure:"fail_after"`
	RecoverAfter   int           `mapstructure:"recover_after"`
	AgentTimeout   time.Duration `mapstructure:"agent_timeout"`
	WriterIsReader bool          `mapstructure:"writer_is_reader"`
}

// LogConfig configures logging.
type LogConfig struct {
	Level  string `mapstructure:"level"`  // debug, info, warn, error
	Format string `mapstructure:"format"` // text, json
}

// Defaults returns the default configuration. This is the one place
// defaults are written; docs/configuration.md lists them.
func Defaults() map[string]any {
	return map[string]any{
		"node.roles":                      []string{},
		"node.priority":                   100,
		"data_dir":                        "/var/lib/dbha",
		"raft.bind":                       "",
		"api.bind":                        "",
		"mysql.addr":                      "",
		"proxy.driver":                    "none",
		"proxy.haproxy.socket":            "/run/haproxy/admin.sock",
		"proxy.haproxy.writer_backend":    "dbha_writer",
		"proxy.haproxy.reader_backend":    "dbha_reader",
		"proxy.proxysql.admin":            "127.0.0.1:6032",
		"proxy.proxysql.writer_hostgroup": 10,
		"proxy.proxysql.reader_hostgroup": 20,
		"vip.interface":                   "eth0",
		"vip.garp_count":                  5,
		"vip.garp_interval":               "100ms",
		"vip.refresh_interval":            "10s",
		"vip.lease":                       "1s",
		"vip.renew_interval":              "200ms",
		"vip.skew_margin":                 "150ms",
		"vip.kernel_lifetime":             "1s",
		"vip.on_stop":                     "release",
		"policy.poll_interval":            "250ms",
		"policy.fail_after":               3,
		"policy.recover_after":            3,
		"policy.agent_timeout":            "2s",
		"policy.writer_is_reader":         true,
		"log.level":                       "info",
		"log.format":                      "text",
	}
}

// Load reads the config file (if path is non-empty), DBHA_* environment
// variables (DBHA_NODE_NAME, DBHA_RAFT_BIND, ...) and flags, and validates
// the result.
func Load(path string, flags *pflag.FlagSet) (Config, error) {
	v := viper.New()
	for k, val := range Defaults() {
		v.SetDefault(k, val)
	}
	v.SetEnvPrefix("DBHA")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	for _, k := range allKeys() {
		if err := v.BindEnv(k); err != nil {
			return Config{}, err
		}
	}
	if path != "" {
		v.SetConfigFile(path)
		v.SetConfigType("yaml")
		if err := v.ReadInConfig(); err != nil {
			return Config{}, fmt.Errorf("read config %s: %w", path, err)
		}
		if err := checkKnownKeys(v.AllKeys()); err != nil {
			return Config{}, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if flags != nil {
		for name, key := range flagKeys {
			if f := flags.Lookup(name); f != nil {
				if err := v.BindPFlag(key, f); err != nil {
					return Config{}, err
				}
			}
		}
	}
	var c Config
	if err := v.Unmarshal(&c); err != nil {
		return Config{}, fmt.Errorf("decode config: %w", err)
	}
	// Lists from env or flags arrive as one comma-separated string.
	c.Node.Roles = splitList(c.Node.Roles)
	c.Raft.Peers = splitList(c.Raft.Peers)
	c.Raft.Join = splitList(c.Raft.Join)
	if c.Raft.Advertise == "" {
		c.Raft.Advertise = c.Raft.Bind
	}
	if c.API.Advertise == "" {
		c.API.Advertise = c.API.Bind
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

func splitList(in []string) []string {
	var out []string
	for _, s := range in {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// noDefaultKeys are the keys without a default value.
var noDefaultKeys = []string{"node.name", "node.no_writer", "raft.advertise", "raft.bootstrap_expect", "raft.peers", "raft.join",
	"api.advertise", "api.unix_socket", "mysql.socket", "mysql.credentials_file", "proxy.proxysql.credentials_file",
	"vip.address", "vip.label"}

// allKeys lists every config key, sorted.
func allKeys() []string {
	keys := slices.Clone(noDefaultKeys)
	for k := range Defaults() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// flagKeys maps dbagent's flags to config keys.
var flagKeys = map[string]string{
	"name":         "node.name",
	"roles":        "node.roles",
	"data-dir":     "data_dir",
	"raft-bind":    "raft.bind",
	"api-bind":     "api.bind",
	"peers":        "raft.peers",
	"join":         "raft.join",
	"log-level":    "log.level",
	"mysql-addr":   "mysql.addr",
	"proxy-driver": "proxy.driver",
}

// RegisterFlags adds dbagent's flags to fs. Flags override the file and the
// environment.
func RegisterFlags(fs *pflag.FlagSet) {
	fs.String("name", "", "node name, the stable raft ID (node.name)")
	fs.StringSlice("roles", nil, "roles: db, proxy or both (node.roles)")
	fs.String("data-dir", "", "data directory for raft state (data_dir)")
	fs.String("raft-bind", "", "raft listen host:port (raft.bind)")
	fs.String("api-bind", "", "HTTP API listen host:port (api.bind)")
	fs.StringSlice("peers", nil, "static raft voters, name=host:port,... (raft.peers)")
	fs.StringSlice("join", nil, "API endpoints of agents to join through (raft.join)")
	fs.String("log-level", "", "debug, info, warn or error (log.level)")
	fs.String("mysql-addr", "", "local mariadbd host:port (mysql.addr)")
	fs.String("proxy-driver", "", "haproxy, proxysql or none (proxy.driver)")
}

// checkKnownKeys rejects misspelt keys in the config file.
func checkKnownKeys(keys []string) error {
	known := map[string]bool{}
	for _, k := range allKeys() {
		known[k] = true
	}
	var errs []error
	for _, k := range keys {
		if !known[k] {
			errs = append(errs, fmt.Errorf("unknown key %q", k))
		}
	}
	return errors.Join(errs...)
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Node.Name == "" {
		bad("node.name: required (a stable name such as db1; it is the raft ID)")
	} else if !validNodeName(c.Node.Name) {
		bad("node.name %q: use letters, digits, '-' and '_' (1 to 63 characters)", c.Node.Name)
	}
	if len(c.Node.Roles) == 0 {
		bad("node.roles: required, one or both of db, proxy")
	}
	for _, r := range c.Node.Roles {
		if !cluster.Role(r).Valid() {
			bad("node.roles: unknown role %q (want db or proxy)", r)
		}
	}
	if c.DataDir == "" {
		bad("data_dir: required")
	}
	if err := checkHostPort(c.Raft.Bind); err != nil {
		bad("raft.bind: %v", err)
	}
	if err := checkHostPort(c.Raft.Advertise); err != nil && c.Raft.Bind != "" {
		bad("raft.advertise: %v", err)
	} else if c.Raft.Advertise != "" && isUnspecified(c.Raft.Advertise) {
		bad("raft.advertise %q: peers cannot dial an unspecified address; set raft.advertise", c.Raft.Advertise)
	}
	if err := checkHostPort(c.API.Bind); err != nil {
		bad("api.bind: %v", err)
	} else if isUnspecified(c.API.Advertise) {
		bad("api.advertise %q: other agents cannot reach an unspecified address; set api.advertise", c.API.Advertise)
	}
	if c.Raft.BootstrapExpect < 0 {
		bad("raft.bootstrap_expect %d: must be 0 or more", c.Raft.BootstrapExpect)
	}
	seen := map[string]bool{}
	for _, p := range c.Raft.Peers {
		name, addr, ok := strings.Cut(p, "=")
		if !ok || !validNodeName(name) {
			bad("raft.peers %q: want name=host:port", p)
			continue
		}
		if err := checkHostPort(addr); err != nil {
			bad("raft.peers %q: %v", p, err)
		}
		if seen[name] {
			bad("raft.peers: %s listed twice", name)
		}
		seen[name] = true
	}
	if len(c.Raft.Peers) > 0 && !seen[c.Node.Name] && len(c.Raft.Join) == 0 {
		bad("raft.peers: does not list this node (%s); list it, or use raft.join to join an existing group", c.Node.Name)
	}
	if c.Raft.BootstrapExpect > 0 && len(c.Raft.Peers) > 0 && c.Raft.BootstrapExpect != len(c.Raft.Peers) {
		bad("raft.bootstrap_expect %d differs from the %d raft.peers", c.Raft.BootstrapExpect, len(c.Raft.Peers))
	}
	if len(c.Raft.Peers) == 0 && len(c.Raft.Join) == 0 && c.Raft.BootstrapExpect != 1 {
		bad("raft: set raft.peers (static group), raft.join (join through an agent), or raft.bootstrap_expect: 1 (single agent)")
	}
	if slices.Contains(c.Node.Roles, string(cluster.RoleDB)) {
		if err := checkHostPort(c.MySQL.Addr); err != nil {
			bad("mysql.addr: %v (required for the db role)", err)
		}
		if c.MySQL.CredentialsFile == "" {
			bad("mysql.credentials_file: required for the db role")
		}
	}
	switch c.Proxy.Driver {
	case "none", "":
		if slices.Contains(c.Node.Roles, string(cluster.RoleProxy)) {
			bad("proxy.driver: the proxy role needs a driver (haproxy or proxysql)")
		}
	case "haproxy":
		if c.Proxy.HAProxy.Socket == "" {
			bad("proxy.haproxy.socket: required")
		}
		if c.Proxy.HAProxy.WriterBackend == "" || c.Proxy.HAProxy.ReaderBackend == "" || c.Proxy.HAProxy.WriterBackend == c.Proxy.HAProxy.ReaderBackend {
			bad("proxy.haproxy: writer_backend and reader_backend must be set and differ")
		}
	case "proxysql":
		if err := checkHostPort(c.Proxy.ProxySQL.Admin); err != nil {
			bad("proxy.proxysql.admin: %v", err)
		}
		if c.Proxy.ProxySQL.CredentialsFile == "" {
			bad("proxy.proxysql.credentials_file: required")
		}
		if c.Proxy.ProxySQL.WriterHostgroup < 0 || c.Proxy.ProxySQL.ReaderHostgroup < 0 || c.Proxy.ProxySQL.WriterHostgroup == c.Proxy.ProxySQL.ReaderHostgroup {
			bad("proxy.proxysql: writer_hostgroup and reader_hostgroup must be non-negative and differ")
		}
	default:
		bad("proxy.driver %q: want haproxy, proxysql or none", c.Proxy.Driver)
	}
	if c.VIP.Address != "" {
		if _, err := netip.ParsePrefix(c.VIP.Address); err != nil {
			bad("vip.address %q: want address/prefix such as 198.18.0.250/24", c.VIP.Address)
		}
		if c.VIP.Interface == "" {
			bad("vip.interface: required with vip.address")
		}
		if c.VIP.Lease <= 0 || c.VIP.RenewInterval <= 0 || c.VIP.RenewInterval >= c.VIP.Lease {
			bad("vip: renew_interval (%s) must be positive and shorter than lease (%s)", c.VIP.RenewInterval, c.VIP.Lease)
		}
		if c.VIP.KernelLifetime != 0 && (c.VIP.KernelLifetime < time.Second || c.VIP.KernelLifetime%time.Second != 0) {
			bad("vip.kernel_lifetime %s: whole seconds, 1s or more (or 0 for none)", c.VIP.KernelLifetime)
		}
		if c.VIP.SkewMargin < 0 {
			bad("vip.skew_margin %s: must not be negative", c.VIP.SkewMargin)
		}
		if c.VIP.GARPCount < 1 || c.VIP.GARPInterval <= 0 || c.VIP.RefreshInterval <= 0 {
			bad("vip: garp_count must be 1 or more, garp_interval and refresh_interval positive")
		} else if burst := time.Duration(c.VIP.GARPCount-1) * c.VIP.GARPInterval; c.VIP.KernelLifetime != 0 && c.VIP.KernelLifetime <= burst {
			bad("vip.kernel_lifetime %s: must be longer than one gratuitous ARP burst (%d × %s), or the burst would announce an expired address",
				c.VIP.KernelLifetime, c.VIP.GARPCount, c.VIP.GARPInterval)
		}
	}
	if c.VIP.OnStop != "release" && c.VIP.OnStop != "retain" {
		bad("vip.on_stop %q: want release or retain", c.VIP.OnStop)
	}
	if c.Policy.PollInterval < 10*time.Millisecond {
		bad("policy.poll_interval %s: must be 10ms or more", c.Policy.PollInterval)
	}
	if c.Policy.FailAfter < 1 {
		bad("policy.fail_after %d: must be 1 or more", c.Policy.FailAfter)
	}
	if c.Policy.RecoverAfter < 1 {
		bad("policy.recover_after %d: must be 1 or more", c.Policy.RecoverAfter)
	}
	if c.Policy.AgentTimeout <= c.Policy.PollInterval {
		bad("policy.agent_timeout %s: must be longer than poll_interval %s", c.Policy.AgentTimeout, c.Policy.PollInterval)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level %q: want debug, info, warn or error", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format %q: want text or json", c.Log.Format)
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid configuration:\n  %w", joinIndented(errs))
	}
	return nil
}

func joinIndented(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "\n  "))
}

func validNodeName(s string) bool { return cluster.ValidName(s) }

func checkHostPort(s string) error {
	if s == "" {
		return errors.New("required (host:port)")
	}
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q: %v", s, err)
	}
	if h == "" {
		return fmt.Errorf("%q: empty host", s)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port must be 1 to 65535", s)
	}
	return nil
}

func isUnspecified(hostport string) bool {
	h, _, _ := net.SplitHostPort(hostport)
	ip, err := netip.ParseAddr(h)
	return err == nil && ip.IsUnspecified()
}

// Roles returns the node's roles as typed values.
func (c Config) Roles() []cluster.Role {
	out := make([]cluster.Role, len(c.Node.Roles))
	for i, r := range c.Node.Roles {
		out[i] = cluster.Role(r)
	}
	return out
}

// Has reports whether the node carries role r.
func (c Config) Has(r cluster.Role) bool { return slices.Contains(c.Node.Roles, string(r)) }

// Peers parses raft.peers.
func (c Config) Peers() []Peer {
	var out []Peer
	for _, p := range c.Raft.Peers {
		name, addr, _ := strings.Cut(p, "=")
		out = append(out, Peer{Name: cluster.NodeName(name), Addr: addr})
	}
	return out
}

// Peer is one static raft peer.
type Peer struct {
	Name cluster.NodeName
	Addr string
}

// Credentials are a user and password read from a file.
type Credentials struct {
	User     string
	Password string
}

// LoadCredentials reads "user:password" (one line; surrounding whitespace
// ignored) from path. The file should be mode 0600; the password is never
// logged.
func LoadCredentials(path string) (Credentials, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Credentials{}, fmt.Errorf("read credentials: %w", err)
	}
	line := strings.TrimSpace(string(b))
	if i := strings.IndexByte(line, '\n'); i >= 0 {
		return Credentials{}, fmt.Errorf("credentials file %s: want one line user:password, found several lines", path)
	}
	user, pass, ok := strings.Cut(line, ":")
	if !ok || user == "" {
		return Credentials{}, fmt.Errorf("credentials file %s: want user:password", path)
	}
	return Credentials{User: user, Password: pass}, nil
}
