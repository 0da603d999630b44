package haproxy

import (
	"bytes"
	_ "embed"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"
)

//go:embed haproxy.cfg.tmpl
var configTemplate string

// Template defaults.
const (
	DefaultWriterPort      = 3306
	DefaultReaderPort      = 3307
	DefaultBindAddr        = "0.0.0.0"
	DefaultMaxConn         = 4096
	DefaultServerStateFile = "/var/lib/haproxy/dbha-server-state"
	DefaultTimeoutConnect  = 2 * time.Second
	DefaultTimeoutClient   = 30 * time.Minute
	DefaultTimeoutServer   = 30 * time.Minute
	DefaultTimeoutCheck    = time.Second
	DefaultCheckInterval   = time.Second
	DefaultCheckFall       = 2
	DefaultCheckRise       = 2
)

// TemplateServer is one DB node in both backends.
type TemplateServer struct {
	Name      string // the DB node's name: the server name in both backends
	Host      string // MySQL address
	Port      int    // MySQL port
	CheckPort int    // the node's dbagent API port, for the HTTP health check
}

// TemplateData fills the config template. Zero values take the defaults
// above; SocketPath and at least one server are required.
type TemplateData struct {
	SocketPath        string // admin stats socket that the Driver uses
	MonitorSocketPath string // optional read-only ("level user") socket
	ServerStateFile   string
	LoadServerState   bool // load the state file on start (off: see docs/haproxy.md)
	User, Group       string
	MaxConn           int

	BindAddr      string // address both frontends bind, e.g. the VIP or 0.0.0.0
	WriterPort    int
	ReaderPort    int
	WriterBackend string
	ReaderBackend string
	Servers       []TemplateServer

	// HealthCheck adds "option httpchk" against each node's dbagent
	// (/v1/health/writer, /v1/health/reader). Off for tests with no agent.
	HealthCheck   bool
	CheckInterval time.Duration
	CheckFall     int
	CheckRise     int

	TimeoutConnect time.Duration
	TimeoutClient  time.Duration
	TimeoutServer  time.Duration
	TimeoutCheck   time.Duration
}

// WithDefaults returns td with empty fields set to their defaults.
func (td TemplateData) WithDefaults() TemplateData {
	set := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	setD := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	setS := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	set(&td.MaxConn, DefaultMaxConn)
	set(&td.WriterPort, DefaultWriterPort)
	set(&td.ReaderPort, DefaultReaderPort)
	set(&td.CheckFall, DefaultCheckFall)
	set(&td.CheckRise, DefaultCheckRise)
	setS(&td.BindAddr, DefaultBindAddr)
	setS(&td.ServerStateFile, DefaultServerStateFile)
	setS(&td.WriterBackend, DefaultWriterBackend)
	setS(&td.ReaderBackend, DefaultReaderBackend)
	setD(&td.CheckInterval, DefaultCheckInterval)
	setD(&td.TimeoutConnect, DefaultTimeoutConnect)
	setD(&td.TimeoutClient, DefaultTimeoutClient)
	setD(&td.TimeoutServer, DefaultTimeoutServer)
	setD(&td.TimeoutCheck, DefaultTimeoutCheck)
	return td
}

// Validate lists every problem with td at once. Call it on WithDefaults().
func (td TemplateData) Validate() error {
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	for _, p := range []struct{ key, path string }{
		{"socket path", td.SocketPath}, {"server state file", td.ServerStateFile},
	} {
		if !filepath.IsAbs(p.path) || strings.ContainsAny(p.path, " \t\n#") {
			bad("%s %q must be an absolute path without blanks", p.key, p.path)
		}
	}
	if td.MonitorSocketPath != "" && (!filepath.IsAbs(td.MonitorSocketPath) || strings.ContainsAny(td.MonitorSocketPath, " \t\n#")) {
		bad("monitor socket path %q must be an absolute path without blanks", td.MonitorSocketPath)
	}
	if td.MonitorSocketPath != "" && td.MonitorSocketPath == td.SocketPath {
		bad("monitor socket path equals the admin socket path")
	}
	for _, u := range []struct{ key, v string }{{"user", td.User}, {"group", td.Group}} {
		if u.v != "" && !validName(u.v) {
			bad("%s %q is not a valid name", u.key, u.v)
		}
	}
	if _, err := netip.ParseAddr(td.BindAddr); err != nil {
		bad("bind address %q is not an IP address", td.BindAddr)
	}
	for _, p := range []struct {
		key string
		v   int
	}{{"writer port", td.WriterPort}, {"reader port", td.ReaderPort}} {
		if p.v <= 0 || p.v > 65535 {
			bad("%s %d is out of range", p.key, p.v)
		}
	}
	if td.WriterPort == td.ReaderPort {
		bad("writer and reader ports are both %d", td.WriterPort)
	}
	if !validName(td.WriterBackend) || !validName(td.ReaderBackend) || td.WriterBackend == td.ReaderBackend {
		bad("backends %q and %q must be two different valid names", td.WriterBackend, td.ReaderBackend)
	}
	if td.MaxConn <= 0 || td.CheckFall <= 0 || td.CheckRise <= 0 {
		bad("maxconn, check fall and check rise must be positive")
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"connect", td.TimeoutConnect}, {"client", td.TimeoutClient}, {"server", td.TimeoutServer}, {"check", td.TimeoutCheck}, {"check interval", td.CheckInterval}} {
		if d.v < time.Millisecond {
			bad("timeout %s %v is below 1ms", d.key, d.v)
		}
	}
	if len(td.Servers) == 0 {
		bad("no servers")
	}
	seen := map[string]bool{}
	for i, s := range td.Servers {
		if !validName(s.Name) {
			bad("server %d: name %q is not a valid haproxy server name", i, s.Name)
		}
		if seen[s.Name] {
			bad("server %q is listed twice", s.Name)
		}
		seen[s.Name] = true
		if s.Host == "" || strings.ContainsAny(s.Host, " \t\n#/[]") {
			bad("server %q: bad host %q", s.Name, s.Host)
		}
		if s.Port <= 0 || s.Port > 65535 {
			bad("server %q: port %d is out of range", s.Name, s.Port)
		}
		if td.HealthCheck && (s.CheckPort <= 0 || s.CheckPort > 65535) {
			bad("server %q: health check needs a check port (the dbagent API port), got %d", s.Name, s.CheckPort)
		}
	}
	return problemsError("haproxy template", problems)
}

// RenderConfig renders the HAProxy config dbha expects (defaults filled in).
func RenderConfig(td TemplateData) ([]byte, error) {
	td = td.WithDefaults()
	if err := td.Validate(); err != nil {
		return nil, err
	}
	tmpl, err := template.New("haproxy.cfg").Funcs(template.FuncMap{
		"dur":  haproxyDuration,
		"addr": haproxyAddr,
	}).Option("missingkey=error").Parse(configTemplate)
	if err != nil {
		return nil, fmt.Errorf("haproxy template: parse: %w", err)
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, td); err != nil {
		return nil, fmt.Errorf("haproxy template: render: %w", err)
	}
	return buf.Bytes(), nil
}

// haproxyDuration writes d in milliseconds, which HAProxy takes in every
// timeout and interval keyword.
func haproxyDuration(d time.Duration) string {
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

// haproxyAddr writes host:port; IPv6 literals get HAProxy's "ipv6@" prefix
// because HAProxy reads the last colon as the port separator.
func haproxyAddr(host string, port int) string {
	if ip, err := netip.ParseAddr(host); err == nil && ip.Is6() && !ip.Is4In6() {
		return "ipv6@" + ip.String() + ":" + strconv.Itoa(port)
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}
