// Package sandbox builds dbha's test-bed: a real MariaDB Galera cluster and
// real proxies, each node in its own Linux network namespace behind one
// bridge. `dbctl sandbox` and the tests use it.
//
// Topology (prefix P is unique per run):
//
//	P-hub     bridge br0; one veth port per node
//	P-db1..N  mariadbd + galera-4, 198.18.0.11..
//	P-px1..M  HAProxy, 198.18.0.101..
//	P-client  workload, 198.18.0.200
//
// Every namespace has its own bridge hub, so parallel runs with the same
// addresses never see each other. State (PIDs, addresses, paths) is kept in
// Dir/state.json so another process can tear the run down.
package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/proxysql/proxysqltest"
)

// Kind is what a sandbox node runs.
type Kind string

const (
	KindDB     Kind = "db"
	KindProxy  Kind = "proxy"
	KindClient Kind = "client"
)

// Addresses inside every run's private bridge, all in 198.18.0.0/15.
const (
	Subnet    = "198.18.0.0/24"
	PrefixLen = 24
	VIP       = "198.18.0.250"
)

// DBAddr, ProxyAddr and ClientAddr give the fixed address plan.
func DBAddr(i int) string    { return fmt.Sprintf("198.18.0.%d", 10+i) }
func ProxyAddr(i int) string { return fmt.Sprintf("198.18.0.%d", 100+i) }

const ClientAddr = "198.18.0.200"

// Limits on the shape of a sandbox.
const (
	MaxDBNodes = 9
	MaxProxies = 5
)

// ErrNotRoot is returned when the sandbox is used without root.
var ErrNotRoot = errors.New("the sandbox needs root (network namespaces, veths and mariadbd as user mysql); run it with sudo")

// ErrMissingPackages is returned when required binaries are absent.
var ErrMissingPackages = errors.New("missing packages; run scripts/install-deps (or `make deps`)")

// Options shape a sandbox.
type Options struct {
	DBNodes int    // default 3
	Proxies int    // default 2
	Dir     string // run dir; default: a new temp dir
	Prefix  string // namespace prefix; default: "dbha" + 4 random hex
	// AgentBinary, when set, runs that dbagent on every DB and proxy node,
	// and the proxies run HAProxy driven by their agents. Without it the
	// proxies run a static HAProxy config that sends writes to db1.
	AgentBinary string
	// HAProxyMySQLCheck, for the static config (no AgentBinary), makes
	// the writer backend the common HAProxy-only Galera setup: every DB
	// node with `check inter 2000 fall 3 rise 2`, db1 active and the
	// others backup, checked by `option mysql-check user haproxy_check`
	// (which ignores Galera state). It is the baseline benchmarks compare
	// dbha against.
	HAProxyMySQLCheck bool
	// ProxySQLBin, when set, runs that ProxySQL binary in every proxy
	// namespace instead of HAProxy (proxysql.go; docs/proxysql.md), and
	// the proxy agents use the proxysql driver.
	ProxySQLBin string
	// ProxySQLStandIn, for tests only, serves a proxysqltest admin
	// stand-in from the calling process inside every proxy namespace
	// instead of HAProxy; it routes no client traffic. Needs AgentBinary.
	ProxySQLStandIn bool
	// Log receives progress lines; nil discards them.
	Log io.Writer
}

// Validate checks the options. It returns warnings separately: a 2-node
// cluster is allowed but cannot survive the loss of a node.
func (o Options) Validate() (warnings []string, err error) {
	var errs []error
	if o.DBNodes < 1 || o.DBNodes > MaxDBNodes {
		errs = append(errs, fmt.Errorf("--db %d: want 1 to %d DB nodes (3 or more for quorum tolerance)", o.DBNodes, MaxDBNodes))
	} else if o.DBNodes < 3 {
		warnings = append(warnings, fmt.Sprintf("--db %d: a Galera cluster needs 3 or more nodes to keep quorum when one fails; this sandbox tolerates no node loss", o.DBNodes))
	}
	if o.Proxies < 1 || o.Proxies > MaxProxies {
		errs = append(errs, fmt.Errorf("--proxies %d: want 1 to %d proxy nodes", o.Proxies, MaxProxies))
	} else if o.Proxies < 2 {
		warnings = append(warnings, fmt.Sprintf("--proxies %d: the VIP needs 2 or more proxies to fail over", o.Proxies))
	}
	if o.Prefix != "" && (len(o.Prefix) > 10 || !validName(o.Prefix)) {
		errs = append(errs, fmt.Errorf("prefix %q: want 1 to 10 characters from [a-z0-9]", o.Prefix))
	}
	if err := o.validateProxySQL(); err != nil {
		errs = append(errs, err)
	}
	return warnings, errors.Join(errs...)
}

func validName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

// Node is one namespace of the sandbox.
type Node struct {
	Name      cluster.NodeName `json:"name"`
	Kind      Kind             `json:"kind"`
	Namespace string           `json:"namespace"`
	Addr      string           `json:"addr"`
	HubPort   string           `json:"hub_port"`
	Procs     map[string]Proc  `json:"procs"`
}

// State is what state.json holds.
type State struct {
	Prefix      string    `json:"prefix"`
	Dir         string    `json:"dir"`
	Hub         string    `json:"hub"`
	Created     time.Time `json:"created"`
	Nodes       []*Node   `json:"nodes"`
	AgentBinary string    `json:"agent_binary,omitempty"`
	// HAProxyMySQLCheck is Options.HAProxyMySQLCheck.
	HAProxyMySQLCheck bool `json:"haproxy_mysql_check,omitempty"`
	// ProxySQLBin and ProxySQLStandIn are the Options of the same names.
	ProxySQLBin     string `json:"proxysql_bin,omitempty"`
	ProxySQLStandIn bool   `json:"proxysql_stand_in,omitempty"`
	// OwnDir is true when the sandbox created Dir and removes it on Down.
	OwnDir bool `json:"own_dir"`
}

// Sandbox is a running (or partly built) test-bed.
type Sandbox struct {
	State State
	log   io.Writer
	// standIns are the ProxySQL admin stand-ins (ProxySQLStandIn); they
	// live in this process, not in state.json.
	standIns map[cluster.NodeName]*proxysqltest.Server
}

// StateFile is the name of the state file inside the run dir.
const StateFile = "state.json"

// Preflight checks root and the installed packages without changing
// anything.
func Preflight() error {
	if os.Geteuid() != 0 {
		return ErrNotRoot
	}
	var missing []string
	for _, b := range []string{"ip", "mariadbd", "mariadb-install-db", "mariabackup", "socat", "rsync", "haproxy", "sysctl"} {
		if !haveBinary(b) {
			missing = append(missing, b)
		}
	}
	if _, err := os.Stat("/usr/lib/galera/libgalera_smm.so"); err != nil {
		missing = append(missing, "galera-4 (/usr/lib/galera/libgalera_smm.so)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %v", ErrMissingPackages, missing)
	}
	if _, _, err := mysqlIDs(); err != nil {
		return err
	}
	return nil
}

// Up builds and starts a sandbox. On any failure, or when ctx is cancelled,
// it tears down everything it created before returning the error.
func Up(ctx context.Context, o Options) (_ *Sandbox, err error) {
	if o.DBNodes == 0 && o.Proxies == 0 {
		o.DBNodes, o.Proxies = 3, 2
	}
	if _, err := o.Validate(); err != nil {
		return nil, err
	}
	if err := Preflight(); err != nil {
		return nil, err
	}
	if o.Prefix == "" {
		b := make([]byte, 2)
		_, _ = rand.Read(b)
		o.Prefix = "dbha" + hex.EncodeToString(b)
	}
	s := &Sandbox{log: o.Log}
	if s.log == nil {
		s.log = io.Discard
	}
	s.State = State{Prefix: o.Prefix, Hub: o.Prefix + "-hub", Created: time.Now().UTC(), AgentBinary: o.AgentBinary, HAProxyMySQLCheck: o.HAProxyMySQLCheck,
		ProxySQLBin: o.ProxySQLBin, ProxySQLStandIn: o.ProxySQLStandIn}
	if o.AgentBinary != "" {
		if _, err := os.Stat(o.AgentBinary); err != nil {
			return nil, fmt.Errorf("sandbox up: dbagent binary: %w (run make build)", err)
		}
	}
	if o.Dir == "" {
		d, err := os.MkdirTemp("", "dbha-sandbox-"+o.Prefix+"-")
		if err != nil {
			return nil, fmt.Errorf("sandbox up: %w", err)
		}
		o.Dir, s.State.OwnDir = d, true
	} else {
		if err := os.MkdirAll(o.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("sandbox up: %w", err)
		}
	}
	// mysql must traverse the run dir to reach its datadir.
	if err := os.Chmod(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("sandbox up: %w", err)
	}
	if err := checkTraversable(o.Dir); err != nil {
		return nil, fmt.Errorf("sandbox up: %w", err)
	}
	s.State.Dir = o.Dir
	defer func() {
		if err != nil {
			fmt.Fprintf(s.log, "sandbox %s: start failed, tearing down: %v\n", s.State.Prefix, err)
			if derr := s.Down(context.WithoutCancel(ctx)); derr != nil {
				err = errors.Join(err, derr)
			}
		}
	}()
	for i := 1; i <= o.DBNodes; i++ {
		s.addNode(cluster.NodeName(fmt.Sprintf("db%d", i)), KindDB, DBAddr(i))
	}
	for i := 1; i <= o.Proxies; i++ {
		s.addNode(cluster.NodeName(fmt.Sprintf("px%d", i)), KindProxy, ProxyAddr(i))
	}
	s.addNode("client", KindClient, ClientAddr)
	if err := s.save(); err != nil {
		return nil, err
	}
	start := time.Now()
	if err := s.buildNetwork(ctx); err != nil {
		return nil, err
	}
	fmt.Fprintf(s.log, "sandbox %s: network ready (%d namespaces) in %s\n", s.State.Prefix, len(s.State.Nodes)+1, time.Since(start).Round(time.Millisecond))
	if err := s.startGalera(ctx); err != nil {
		return nil, err
	}
	fmt.Fprintf(s.log, "sandbox %s: %d DB nodes Synced after %s\n", s.State.Prefix, o.DBNodes, time.Since(start).Round(time.Millisecond))
	if err := s.startProxies(ctx); err != nil {
		return nil, err
	}
	if s.State.AgentBinary != "" {
		if err := s.startAgents(ctx); err != nil {
			return nil, err
		}
		fmt.Fprintf(s.log, "sandbox %s: agents listening after %s\n", s.State.Prefix, time.Since(start).Round(time.Millisecond))
	}
	fmt.Fprintf(s.log, "sandbox %s: up in %s\n", s.State.Prefix, time.Since(start).Round(time.Millisecond))
	return s, nil
}

func (s *Sandbox) addNode(name cluster.NodeName, kind Kind, addr string) {
	s.State.Nodes = append(s.State.Nodes, &Node{
		Name: name, Kind: kind, Addr: addr,
		Namespace: s.State.Prefix + "-" + string(name),
		HubPort:   string(name),
		Procs:     map[string]Proc{},
	})
}

func (s *Sandbox) buildNetwork(ctx context.Context) error {
	if err := createNamespace(ctx, s.State.Hub); err != nil {
		return err
	}
	if err := createBridge(ctx, s.State.Hub); err != nil {
		return err
	}
	for _, n := range s.State.Nodes {
		if err := createNamespace(ctx, n.Namespace); err != nil {
			return err
		}
		if err := attach(ctx, s.State.Hub, n.HubPort, n.Namespace, n.Addr, PrefixLen); err != nil {
			return err
		}
	}
	return nil
}

// Load reads a sandbox from its run dir (for `dbctl sandbox down|status`).
func Load(dir string) (*Sandbox, error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return nil, fmt.Errorf("load sandbox from %s: %w", dir, err)
	}
	s := &Sandbox{log: io.Discard}
	if err := json.Unmarshal(b, &s.State); err != nil {
		return nil, fmt.Errorf("load sandbox from %s: corrupt %s: %w", dir, StateFile, err)
	}
	if s.State.Prefix == "" || s.State.Hub == "" {
		return nil, fmt.Errorf("load sandbox from %s: %s has no prefix", dir, StateFile)
	}
	return s, nil
}

// SetLog directs progress lines to w.
func (s *Sandbox) SetLog(w io.Writer) { s.log = w }

func (s *Sandbox) save() error {
	b, err := json.MarshalIndent(s.State, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(s.State.Dir, StateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("save sandbox state: %w", err)
	}
	return os.Rename(tmp, filepath.Join(s.State.Dir, StateFile))
}

// Node returns the named node.
func (s *Sandbox) Node(name cluster.NodeName) (*Node, error) {
	for _, n := range s.State.Nodes {
		if n.Name == name {
			return n, nil
		}
	}
	return nil, fmt.Errorf("sandbox %s: no node %q", s.State.Prefix, name)
}

// Nodes returns the nodes of one kind, in order.
func (s *Sandbox) Nodes(kind Kind) []*Node {
	var out []*Node
	for _, n := range s.State.Nodes {
		if n.Kind == kind {
			out = append(out, n)
		}
	}
	return out
}

// Namespaces lists every namespace this run owns, the hub last.
func (s *Sandbox) Namespaces() []string {
	var out []string
	for _, n := range s.State.Nodes {
		out = append(out, n.Namespace)
	}
	return append(out, s.State.Hub)
}

// Down stops every process the sandbox started (by PID, after checking the
// PID still runs the same binary), then any process left inside its
// namespaces (SST helpers), removes the namespaces (and with them every
// veth and the bridge) and, when the sandbox created it, the run dir. It is
// safe to call on a partly built sandbox and more than once.
func (s *Sandbox) Down(ctx context.Context) error {
	var errs []error
	// Agents and proxies first, then DB nodes.
	order := slices.Clone(s.State.Nodes)
	slices.SortStableFunc(order, func(a, b *Node) int { return kindOrder(a.Kind) - kindOrder(b.Kind) })
	for _, n := range order {
		for _, name := range []string{"dbagent", "haproxy", "proxysql", "mariadbd"} {
			p, ok := n.Procs[name]
			if !ok {
				continue
			}
			if err := p.Stop(ctx, 10*time.Second); err != nil {
				errs = append(errs, err)
			}
		}
	}
	// ProxySQL stand-ins after the agents that use them.
	if err := s.closeStandIns(); err != nil {
		errs = append(errs, err)
	}
	for _, ns := range s.Namespaces() {
		for _, pid := range pidsInNamespace(ns) {
			// Only processes inside our own namespaces: we created them all.
			p := Proc{Name: "leftover", PID: pid}
			if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil {
				p.Binary = exe
			}
			_ = killPID(pid)
			if !waitGone(ctx, p, 5*time.Second) {
				errs = append(errs, fmt.Errorf("sandbox %s: pid %d in %s survived SIGKILL", s.State.Prefix, pid, ns))
			}
		}
	}
	for _, ns := range s.Namespaces() {
		if err := deleteNamespace(ctx, ns); err != nil {
			errs = append(errs, err)
		}
	}
	if s.State.OwnDir && s.State.Dir != "" {
		if err := os.RemoveAll(s.State.Dir); err != nil {
			errs = append(errs, err)
		}
	} else if s.State.Dir != "" {
		_ = os.Remove(filepath.Join(s.State.Dir, StateFile))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sandbox %s down: %w", s.State.Prefix, err)
	}
	return nil
}

// checkTraversable makes sure user mysql can reach dir: every parent needs
// the execute bit for others.
func checkTraversable(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	for d := filepath.Dir(abs); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("run dir %s: parent %s is not searchable by others (mode %v); user mysql must reach the datadirs: choose another dir or chmod o+x %s", abs, d, fi.Mode().Perm(), d)
		}
		if d == "/" {
			return nil
		}
	}
}

func kindOrder(k Kind) int {
	switch k {
	case KindClient:
		return 0
	case KindProxy:
		return 1
	default:
		return 2
	}
}
