// Package agent is dbagent's composition root: it wires the raft node, the
// controller, the API, the wsrep poller and the proxy driver together, owns
// their goroutines, and runs the shutdown policy.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dbha/dbha/internal/api"
	"github.com/dbha/dbha/internal/api/client"
	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/config"
	"github.com/dbha/dbha/internal/controller"
	"github.com/dbha/dbha/internal/planner"
	"github.com/dbha/dbha/internal/proxy"
	"github.com/dbha/dbha/internal/raft"
	"github.com/dbha/dbha/internal/vip"
)

// Config wraps the loaded configuration.
type Config struct{ config.Config }

func (c Config) name() cluster.NodeName { return cluster.NodeName(c.Node.Name) }

// Deps are injected collaborators. Nil fields get defaults.
type Deps struct {
	Logger *slog.Logger
	Now    func() time.Time
	// Driver is the proxy driver for the proxy role (built by the caller
	// from config, so tests can pass their own).
	Driver proxy.Driver
	// Observer produces this DB node's observations (the db role).
	Observer Observer
	// Prober probes every DB node's MySQL port (the proxy role).
	Prober Prober
	// VIP holds the VIP on a proxy node with vip.address set. Nil means
	// internal/vip built from the config.
	VIP VIPActuator
	// VIPGuard is the command (argv) that runs a VIP guard, the child
	// process that removes the VIP when this agent dies or stops renewing
	// (vip.StartGuard; dbagent passes itself and "vip-guard"). Used only
	// with the VIP built from the config. Nil means no guard: then only
	// the kernel lifetime removes the VIP of a killed agent.
	VIPGuard []string
}

// Observer runs a poll loop and calls out with every observation.
type Observer interface {
	Run(ctx context.Context, out func(cluster.Observation)) error
}

// Prober probes DB nodes' MySQL ports from this node.
type Prober interface {
	Probe(ctx context.Context, targets map[cluster.NodeName]string) []cluster.ProbeResult
}

// Agent is one running dbagent.
type Agent struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	raft *raft.Node
	ctrl *controller.Controller
	vip  VIPActuator // nil without a VIP to hold
	// vipCfg is the VIP's config when the agent built the VIP itself
	// (zero otherwise); the guard watches the same address.
	vipCfg *vip.Config
	guard  *vip.Guard // nil until vipLoop starts it, or without a guard

	mu       sync.Mutex
	clients  map[string]*client.Client
	obs      *cluster.Observation // latest local DB observation
	proxyRep *cluster.ProxyReport // latest proxy report
	proxy    proxyState
}

type proxyState struct {
	healthy bool
	err     string
	applied cluster.Epoch
}

// New builds an agent; Run starts it.
func New(cfg config.Config, deps Deps) (*Agent, error) {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	a := &Agent{cfg: Config{cfg}, deps: deps, log: deps.Logger.With("node", cfg.Node.Name), clients: map[string]*client.Client{}}
	if a.cfg.Has(cluster.RoleProxy) && deps.Driver == nil {
		return nil, fmt.Errorf("agent %s: the proxy role needs a proxy driver", cfg.Node.Name)
	}
	if a.cfg.Has(cluster.RoleDB) && deps.Observer == nil {
		return nil, fmt.Errorf("agent %s: the db role needs a wsrep observer", cfg.Node.Name)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("agent %s: data dir: %w", cfg.Node.Name, err)
	}
	v, vc, err := newVIP(cfg, deps)
	if err != nil {
		return nil, err
	}
	a.vip, a.vipCfg = v, vc
	var peers []raft.Peer
	for _, p := range cfg.Peers() {
		peers = append(peers, raft.Peer{Name: p.Name, RaftAddr: p.Addr})
	}
	if len(peers) == 0 && cfg.Raft.BootstrapExpect == 1 {
		// A single agent forms a group of one.
		peers = []raft.Peer{{Name: cluster.NodeName(cfg.Node.Name), RaftAddr: cfg.Raft.Advertise}}
	}
	node, err := raft.New(raft.Config{
		NodeName:        a.cfg.name(),
		BindAddr:        cfg.Raft.Bind,
		AdvertiseAddr:   cfg.Raft.Advertise,
		DataDir:         filepath.Join(cfg.DataDir, "raft"),
		Peers:           peers,
		BootstrapExpect: cfg.Raft.BootstrapExpect,
	}, raft.Deps{Logger: deps.Logger})
	if err != nil {
		if a.vip != nil {
			_ = a.vip.Close()
		}
		return nil, fmt.Errorf("agent %s: %w", cfg.Node.Name, err)
	}
	a.raft = node
	a.ctrl = controller.New(controller.Config{
		Node:                a.cfg.name(),
		Policy:              policyFrom(cfg),
		KeepLeaderOffWriter: true,
	}, controller.Deps{Raft: node, Logger: deps.Logger, Now: deps.Now, Voters: a.voters})
	return a, nil
}

// policyFrom maps the config's policy onto the planner's.
func policyFrom(cfg config.Config) planner.Policy {
	return planner.Policy{
		FailAfter:         cfg.Policy.FailAfter,
		RecoverAfter:      cfg.Policy.RecoverAfter,
		AgentTimeout:      cfg.Policy.AgentTimeout,
		WriterIsReader:    cfg.Policy.WriterIsReader,
		VIPLease:          cfg.VIP.Lease,
		VIPKernelLifetime: cfg.VIP.KernelLifetime,
		VIPSkew:           cfg.VIP.SkewMargin,
	}
}

func (a *Agent) now() time.Time { return a.deps.Now() }

func (a *Agent) voters() []cluster.NodeName {
	servers, err := a.raft.Configuration()
	if err != nil {
		return nil
	}
	var out []cluster.NodeName
	for _, s := range servers {
		if strings.EqualFold(s.Suffrage, "voter") {
			out = append(out, s.Name)
		}
	}
	return out
}

// Run runs the agent until ctx ends, then shuts it down.
func (a *Agent) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	h := api.NewHandler(backend{a}, api.HandlerOptions{Logger: a.deps.Logger, Node: a.cfg.name()})
	ln, err := net.Listen("tcp", a.cfg.API.Bind)
	if err != nil {
		_ = a.raft.Shutdown()
		return fmt.Errorf("agent %s: api listen: %w", a.cfg.Node.Name, err)
	}
	// Requests still running when the agent stops (a forward to a leader
	// that is stopping too) are cut off after a grace period; that is not
	// a failure of the agent.
	serve := func(l net.Listener) error {
		err := api.Serve(ctx, l, h)
		if err != nil && ctx.Err() != nil {
			a.log.Warn("api stopped with requests still running", "err", err)
			return nil
		}
		return err
	}
	g.Go(func() error { return serve(ln) })
	if sock := a.cfg.API.UnixSocket; sock != "" {
		// api.Listen removes a stale socket a killed agent left behind,
		// and refuses one that another agent still answers on.
		uln, err := api.Listen("unix://" + sock)
		if err != nil {
			ln.Close()
			_ = a.raft.Shutdown()
			return fmt.Errorf("agent %s: api unix socket: %w", a.cfg.Node.Name, err)
		}
		_ = os.Chmod(sock, 0o600)
		g.Go(func() error { return serve(uln) })
	}
	g.Go(func() error {
		err := a.raft.Run(ctx, a.ctrl.Run)
		if errors.Is(err, raft.ErrShutdown) {
			return nil
		}
		return err
	})
	g.Go(func() error { a.registerLoop(ctx); return nil })
	if a.cfg.Has(cluster.RoleDB) {
		g.Go(func() error {
			return a.deps.Observer.Run(ctx, func(o cluster.Observation) {
				a.mu.Lock()
				a.obs = &o
				a.mu.Unlock()
				a.send(ctx)
			})
		})
	}
	if a.cfg.Has(cluster.RoleProxy) {
		g.Go(func() error { a.proxyLoop(ctx); return nil })
		g.Go(func() error { a.proxyReportLoop(ctx); return nil })
	}
	if a.vip != nil {
		g.Go(func() error { return a.vipLoop(ctx) })
	}
	<-ctx.Done()
	err = g.Wait()
	if serr := a.raft.Shutdown(); serr != nil && !errors.Is(serr, raft.ErrShutdown) {
		err = errors.Join(err, serr)
	}
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// self is this agent's member record.
func (a *Agent) self() cluster.Member {
	return cluster.Member{
		Name:      a.cfg.name(),
		Roles:     a.cfg.Roles(),
		APIAddr:   a.cfg.API.Advertise,
		RaftAddr:  a.cfg.Raft.Advertise,
		MySQLAddr: a.cfg.MySQL.Addr,
		Priority:  a.cfg.Node.Priority,
		NoWriter:  a.cfg.Node.NoWriter,
	}
}

// registerLoop makes sure this agent is a member: in the FSM and in the
// raft configuration. It re-checks every few seconds (a restored snapshot
// or a removal may undo it).
func (a *Agent) registerLoop(ctx context.Context) {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		me := a.self()
		if cur, ok := a.raft.State().Members[me.Name]; !ok || cur.APIAddr != me.APIAddr || cur.RaftAddr != me.RaftAddr ||
			cur.MySQLAddr != me.MySQLAddr || cur.Priority != me.Priority || len(cur.Roles) != len(me.Roles) ||
			me.NoWriter && !cur.NoWriter {
			if err := a.join(ctx, me); err != nil {
				a.log.Debug("registration pending", "err", err)
			} else {
				a.log.Info("registered as a member")
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// join registers m through the leader, or through raft.join endpoints
// while this agent is not in a group yet.
func (a *Agent) join(ctx context.Context, m cluster.Member) error {
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if a.raft.IsLeader() {
		return backend{a}.Join(cctx, m)
	}
	targets := []string{}
	if l := (backend{a}).LeaderAPI(); l != "" {
		targets = append(targets, l)
	}
	targets = append(targets, a.cfg.Raft.Join...)
	var errs []error
	for _, t := range targets {
		c, err := a.client(t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := c.Join(cctx, m); err != nil {
			errs = append(errs, err)
			continue
		}
		return nil
	}
	if len(errs) == 0 {
		return errors.New("no leader known yet")
	}
	return errors.Join(errs...)
}

func (a *Agent) client(endpoint string) (*client.Client, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, ok := a.clients[endpoint]; ok {
		return c, nil
	}
	c, err := client.New(endpoint, client.WithTimeout(2*time.Second))
	if err != nil {
		return nil, err
	}
	a.clients[endpoint] = c
	return c, nil
}

// send delivers this agent's latest observations to the leader (directly
// when this agent leads). One report carries both the DB observation and the
// proxy report of a node with both roles: the leader keeps one report per
// agent. Reports are best effort: the next one follows within a poll
// interval.
func (a *Agent) send(ctx context.Context) {
	a.mu.Lock()
	r := cluster.Report{From: a.cfg.name(), Sent: a.now(), DB: a.obs, Proxy: a.proxyRep}
	a.mu.Unlock()
	if r.DB == nil && r.Proxy == nil {
		return
	}
	if a.raft.IsLeader() {
		if err := a.ctrl.Report(r); err != nil {
			a.log.Debug("report to self failed", "err", err)
		}
		return
	}
	l := (backend{a}).LeaderAPI()
	if l == "" {
		return
	}
	c, err := a.client(l)
	if err != nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, a.cfg.Policy.AgentTimeout)
	defer cancel()
	if err := c.Report(cctx, r); err != nil && ctx.Err() == nil {
		a.log.Debug("report to leader failed", "leader", l, "err", err)
	}
}
