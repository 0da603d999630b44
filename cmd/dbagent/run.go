package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/spf13/pflag"

	"github.com/dbha/dbha/internal/agent"
	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/config"
	"github.com/dbha/dbha/internal/haproxy"
	"github.com/dbha/dbha/internal/proxysql"
	"github.com/dbha/dbha/internal/vip"
	"github.com/dbha/dbha/internal/wsrep"
)

const usage = `dbagent runs on every Galera DB node and every proxy node of a dbha cluster.
The agents form a raft group; the leader decides the writer, readers and VIP
owner, and every agent acts on the committed decision.

Usage: dbagent --config /etc/dbha/dbagent.yaml [flags]

A proxy agent that holds the VIP starts a copy of itself as
"dbagent vip-guard": it removes the VIP if the agent dies or hangs
(docs/vip.md). It is not for interactive use.

Every config key can also be set with a DBHA_* environment variable
(node.name -> DBHA_NODE_NAME, policy.fail_after -> DBHA_POLICY_FAIL_AFTER).
Precedence: flags, then environment, then the file. See docs/configuration.md.

Flags:
`

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == vip.GuardCommand {
		return runGuard(ctx, args[1:], stdin, stdout, stderr)
	}
	fs := pflag.NewFlagSet("dbagent", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.StringP("config", "c", "", "YAML config file")
	check := fs.Bool("check-config", false, "validate the configuration and exit")
	config.RegisterFlags(fs)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q (options are flags; see --help)", fs.Args())
	}
	cfg, err := config.Load(*cfgPath, fs)
	if err != nil {
		return err
	}
	if *check {
		fmt.Fprintln(stdout, "configuration ok")
		return nil
	}
	logger := newLogger(cfg.Log.Level, cfg.Log.Format, stderr)
	deps := agent.Deps{Logger: logger, VIPGuard: guardCommand()}
	if cfg.Has(cluster.RoleDB) {
		cred, err := config.LoadCredentials(cfg.MySQL.CredentialsFile)
		if err != nil {
			return err
		}
		pc := wsrep.PollerConfig{
			Node:     cluster.NodeName(cfg.Node.Name),
			Net:      "tcp",
			Addr:     cfg.MySQL.Addr,
			User:     cred.User,
			Password: cred.Password,
			Interval: cfg.Policy.PollInterval,
		}
		if cfg.MySQL.Socket != "" {
			pc.Net, pc.Addr = "unix", cfg.MySQL.Socket
		}
		p, err := wsrep.NewPoller(pc, wsrep.PollerDeps{Logger: logger})
		if err != nil {
			return err
		}
		deps.Observer = p
	}
	if cfg.Has(cluster.RoleProxy) {
		deps.Prober = prober{}
		switch cfg.Proxy.Driver {
		case "haproxy":
			d, err := haproxy.New(haproxy.Config{
				Name:          cfg.Node.Name,
				Socket:        cfg.Proxy.HAProxy.Socket,
				WriterBackend: cfg.Proxy.HAProxy.WriterBackend,
				ReaderBackend: cfg.Proxy.HAProxy.ReaderBackend,
			}, logger)
			if err != nil {
				return err
			}
			deps.Driver = d
		case "proxysql":
			cred, err := config.LoadCredentials(cfg.Proxy.ProxySQL.CredentialsFile)
			if err != nil {
				return err
			}
			pc := proxysql.DefaultConfig()
			pc.Node = cluster.NodeName(cfg.Node.Name)
			pc.Addr = cfg.Proxy.ProxySQL.Admin
			pc.User, pc.Password = cred.User, cred.Password
			pc.WriterHostgroup = cfg.Proxy.ProxySQL.WriterHostgroup
			pc.ReaderHostgroup = cfg.Proxy.ProxySQL.ReaderHostgroup
			d, err := proxysql.New(pc, logger)
			if err != nil {
				return err
			}
			// Refuse at start when ProxySQL's own Galera checker or
			// cluster sync would fight over dbha's hostgroups. A
			// ProxySQL that is down is not fatal: the reconciler retries.
			if err := d.Check(ctx); errors.Is(err, proxysql.ErrConflictingManager) {
				return err
			} else if err != nil {
				logger.Warn("proxysql not reachable at start; will retry", "err", err)
			}
			deps.Driver = d
		default:
			return fmt.Errorf("proxy.driver %q: want haproxy or proxysql", cfg.Proxy.Driver)
		}
	}
	a, err := agent.New(cfg, deps)
	if err != nil {
		return err
	}
	logger.Info("dbagent starting", "node", cfg.Node.Name, "roles", cfg.Node.Roles, "raft", cfg.Raft.Bind, "api", cfg.API.Bind)
	return a.Run(ctx)
}

// guardCommand is how the agent starts its VIP guard: this very binary,
// run as `dbagent vip-guard`.
func guardCommand() []string { return []string{vip.SelfExe, vip.GuardCommand} }

// runGuard is `dbagent vip-guard`, the child the agent starts to remove
// the VIP when the agent dies or stops renewing (see internal/vip).
func runGuard(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	cfg, format, err := vip.ParseGuardArgs(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	logger := newLogger("info", format, stderr).With("component", vip.GuardCommand)
	return vip.RunGuard(ctx, cfg, stdin, stdout, logger)
}

func newLogger(levelName, format string, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(levelName))
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// prober adapts wsrep.Prober (fixed targets) to the agent's per-call
// targets: the DB members can change at any time.
type prober struct{}

func (prober) Probe(ctx context.Context, targets map[cluster.NodeName]string) []cluster.ProbeResult {
	var ts []wsrep.Target
	for n, addr := range targets {
		ts = append(ts, wsrep.Target{Node: n, Addr: addr})
	}
	p, err := wsrep.NewProber(wsrep.ProberConfig{Targets: ts}, wsrep.ProberDeps{})
	if err != nil {
		return nil
	}
	return p.Probe(ctx)
}
