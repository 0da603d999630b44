// Package haproxy drives HAProxy through its Runtime API (the stats socket)
// so that it routes as the committed topology says. It only changes server
// states at run time ("set server B/S state ready|drain|maint", "shutdown
// sessions server B/S"); it never rewrites config files and never reloads.
// RenderConfig produces the config those backends come from.
package haproxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/proxy"
)

// Pool names reported in proxy.ServerState.Pool.
const (
	PoolWriter = "writer"
	PoolReader = "reader"
)

// Driver implements proxy.Driver for one HAProxy. It is safe for
// concurrent use; Applies are serialized.
type Driver struct {
	cfg Config
	log *slog.Logger
	api *runtimeAPI

	applyMu sync.Mutex // one Apply at a time, so commands never interleave

	mu      sync.Mutex
	applied cluster.Epoch
	counts  counters
}

var _ proxy.Driver = (*Driver)(nil)

// New returns a Driver for cfg (defaults filled in). It does not touch the
// socket; the first Apply or Observe does.
func New(cfg Config, log *slog.Logger) (*Driver, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Driver{cfg: cfg, log: log.With("node", cfg.Name, "proxy", "haproxy")}
	d.api = &runtimeAPI{
		proxy:          cfg.Name,
		socket:         cfg.Socket,
		dialTimeout:    cfg.DialTimeout,
		commandTimeout: cfg.CommandTimeout,
		counts:         &d.counts,
	}
	return d, nil
}

// Config returns the driver's config, defaults filled in.
func (d *Driver) Config() Config { return d.cfg }

// AppliedEpoch is the epoch of the last routing Apply verified on HAProxy.
func (d *Driver) AppliedEpoch() cluster.Epoch {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.applied
}

// Commands returns how many Runtime API commands the driver has sent.
func (d *Driver) Commands() CommandCounts {
	return CommandCounts{Set: d.counts.set.Load(), Shutdown: d.counts.shutdown.Load(), Show: d.counts.show.Load()}
}

// Apply makes HAProxy route as r says (see plan for the states per role).
// It validates r, refuses an epoch older than the last one applied, and
// reads both backends first: when r names a node that either backend lacks,
// when a backend is missing, or when HAProxy routes a node to another
// address than r, it returns an error and changes nothing. When HAProxy
// already matches, it sends no state-changing command. After changing
// anything it reads the state back and fails with ErrVerify on a mismatch.
func (d *Driver) Apply(ctx context.Context, r proxy.Routing) error {
	_, err := d.apply(ctx, r)
	return err
}

// apply is Apply, also returning how many commands it sent.
func (d *Driver) apply(ctx context.Context, r proxy.Routing) (int, error) {
	epoch := r.Topology.Epoch
	wrap := func(err error) error {
		return fmt.Errorf("haproxy apply epoch %d on %s: %w", epoch, d.cfg.Name, err)
	}
	if err := validateRouting(r); err != nil {
		return 0, wrap(err)
	}
	d.applyMu.Lock()
	defer d.applyMu.Unlock()
	if last := d.AppliedEpoch(); epoch < last {
		return 0, wrap(fmt.Errorf("epoch %d is older than applied epoch %d: %w", epoch, last, ErrStaleEpoch))
	}

	actual, err := d.readState(ctx, true)
	if err != nil {
		return 0, wrap(err)
	}
	if err := d.checkServers(r, actual); err != nil {
		return 0, wrap(err)
	}
	want, actions := plan(r, d.cfg.WriterBackend, d.cfg.ReaderBackend, actual)
	if len(actions) == 0 {
		d.setApplied(epoch)
		return 0, nil
	}
	for i, a := range actions {
		if err := d.api.action(ctx, a.command(), a.backend, string(a.server)); err != nil {
			return i, wrap(fmt.Errorf("command %d of %d: %w", i+1, len(actions), err))
		}
		d.log.Info("haproxy command", "epoch", epoch, "backend", a.backend, "server", a.server, "command", a.command())
	}
	after, err := d.readState(ctx, false)
	if err != nil {
		return len(actions), wrap(fmt.Errorf("read back: %w", err))
	}
	if bad := mismatches(want, d.cfg.WriterBackend, d.cfg.ReaderBackend, after); len(bad) > 0 {
		return len(actions), wrap(fmt.Errorf("%w: %s", ErrVerify, strings.Join(bad, "; ")))
	}
	d.setApplied(epoch)
	return len(actions), nil
}

func (d *Driver) setApplied(e cluster.Epoch) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.applied = e
}

// Observe reads both backends: every server's pool, status
// (ready/drain/maint/down) and current sessions (scur) as ConnUsed.
func (d *Driver) Observe(ctx context.Context) (proxy.Observation, error) {
	st, err := d.readState(ctx, true)
	if err != nil {
		return proxy.Observation{}, fmt.Errorf("haproxy observe on %s: %w", d.cfg.Name, err)
	}
	obs := proxy.Observation{AppliedEpoch: d.AppliedEpoch(), Servers: []proxy.ServerState{}}
	add := func(pool string, b backendState) {
		for _, name := range sortedNames(b) {
			s := b[name]
			obs.Servers = append(obs.Servers, proxy.ServerState{Node: name, Pool: pool, Status: s.Status(), ConnUsed: s.Sessions})
		}
	}
	add(PoolWriter, st.writer)
	add(PoolReader, st.reader)
	return obs, nil
}

// Ping checks that the socket answers "show info".
func (d *Driver) Ping(ctx context.Context) error {
	answer, err := d.api.exec(ctx, "show info")
	if err == nil && !strings.Contains(answer, "Pid:") {
		err = d.api.classify("show info", "", "", answer)
	}
	if err != nil {
		return fmt.Errorf("haproxy ping on %s: %w", d.cfg.Name, err)
	}
	return nil
}

// readState reads both backends, and their session counts when withStat.
func (d *Driver) readState(ctx context.Context, withStat bool) (runtimeState, error) {
	var st runtimeState
	var err error
	if st.writer, err = d.readBackend(ctx, d.cfg.WriterBackend); err != nil {
		return st, err
	}
	if st.reader, err = d.readBackend(ctx, d.cfg.ReaderBackend); err != nil {
		return st, err
	}
	if !withStat {
		return st, nil
	}
	const cmd = "show stat -1 4 -1" // all proxies, servers only
	answer, err := d.api.exec(ctx, cmd)
	if err != nil {
		return st, err
	}
	scur, err := parseStat(answer)
	if err != nil {
		return st, d.api.classify(cmd, "", "", answer)
	}
	for _, b := range []struct {
		name string
		m    backendState
	}{{d.cfg.WriterBackend, st.writer}, {d.cfg.ReaderBackend, st.reader}} {
		for name, s := range b.m {
			s.Sessions = scur[statKey{b.name, string(name)}]
			b.m[name] = s
		}
	}
	return st, nil
}

func (d *Driver) readBackend(ctx context.Context, backend string) (backendState, error) {
	cmd := "show servers state " + backend
	answer, err := d.api.exec(ctx, cmd)
	if err != nil {
		return nil, err
	}
	servers, perr := parseServersState(answer)
	if perr != nil {
		cerr := d.api.classify(cmd, backend, "", answer)
		var ce *CommandError
		if errors.As(cerr, &ce) && ce.Err == ErrCommand {
			return nil, fmt.Errorf("%w: %v", cerr, perr)
		}
		return nil, cerr
	}
	out := backendState{}
	for _, s := range servers {
		if s.Backend != backend {
			continue
		}
		out[s.Name] = s
	}
	return out, nil
}

// validateRouting checks r before anything touches HAProxy.
func validateRouting(r proxy.Routing) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidRouting, err)
	}
	for _, n := range routedNodes(r) {
		if !validName(string(n)) {
			return fmt.Errorf("%w: node name %q is not a valid haproxy server name", ErrInvalidRouting, n)
		}
	}
	return nil
}

// routedNodes is every node r names, sorted, without duplicates.
func routedNodes(r proxy.Routing) []cluster.NodeName {
	t := r.Topology
	nodes := slices.Clone(t.Readers)
	if t.Writer != "" {
		nodes = append(nodes, t.Writer)
	}
	for _, o := range t.Offline {
		nodes = append(nodes, o.Node)
	}
	slices.Sort(nodes)
	return slices.Compact(nodes)
}

// checkServers makes sure every node r names is a server in both backends
// and that HAProxy routes it to the address r gives, listing every problem.
func (d *Driver) checkServers(r proxy.Routing, st runtimeState) error {
	var missing, addrs []string
	for _, n := range routedNodes(r) {
		for _, b := range []struct {
			name string
			m    backendState
		}{{d.cfg.WriterBackend, st.writer}, {d.cfg.ReaderBackend, st.reader}} {
			s, ok := b.m[n]
			if !ok {
				missing = append(missing, "server "+string(n)+" in backend "+b.name)
				continue
			}
			if msg := addrMismatch(r.Backends[n], s); msg != "" {
				addrs = append(addrs, fmt.Sprintf("%s/%s %s", b.name, n, msg))
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("not found: %s: %w", strings.Join(missing, ", "), ErrNoSuchServer)
	}
	if len(addrs) > 0 {
		return fmt.Errorf("%w: %s", ErrAddrMismatch, strings.Join(addrs, "; "))
	}
	return nil
}

// addrMismatch compares the routing's address with HAProxy's. Only IP
// literals are compared: a host name in the routing cannot be checked
// against the resolved address HAProxy shows.
func addrMismatch(want proxy.Backend, s serverRuntime) string {
	ip, err := netip.ParseAddr(want.Host)
	if err != nil {
		return ""
	}
	got, err := netip.ParseAddr(s.Addr)
	if err != nil {
		return "" // unresolved ("-"): nothing to compare
	}
	if got.Unmap() != ip.Unmap() || (s.Port != 0 && s.Port != want.Port) {
		return fmt.Sprintf("routes to %s, routing says %s", proxy.Backend{Host: s.Addr, Port: s.Port}, want)
	}
	return ""
}
