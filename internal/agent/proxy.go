package agent

import (
	"context"
	"time"

	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/proxy"
)

// routingFor builds what the proxy driver must make true from the
// committed state.
func (a *Agent) routingFor(st cluster.State) (proxy.Routing, error) {
	r := proxy.Routing{Topology: st.Topology, Backends: map[cluster.NodeName]proxy.Backend{}, WriterIsReader: a.cfg.Policy.WriterIsReader}
	for n, m := range st.Members {
		if !m.Has(cluster.RoleDB) || m.MySQLAddr == "" {
			continue
		}
		b, err := proxy.ParseBackend(m.MySQLAddr)
		if err != nil {
			return r, err
		}
		r.Backends[n] = b
	}
	return r, r.Validate()
}

// proxyLoop is the proxy reconciler: it applies the committed topology
// whenever it changes and re-checks on a ticker (drivers are idempotent, so
// a restarted proxy is repaired at the next tick).
func (a *Agent) proxyLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.Policy.PollInterval)
	defer t.Stop()
	backoff := time.Duration(0)
	var nextTry time.Time
	synced := false
	for {
		st, changed := a.raft.Watch()
		a.mu.Lock()
		applied := a.proxy.applied
		a.mu.Unlock()
		// Apply only a state this agent knows to be current: after a
		// restart the FSM replays old epochs (from its snapshot and log)
		// before it learns the leader's commit index, and applying one of
		// those would route writes to an old writer next to proxies that
		// route to the new one. So the first apply waits until the local
		// FSM has reached the epoch the leader has committed; after that
		// the FSM only moves forward. Never go back to an older epoch.
		if !synced {
			synced = a.reachedLeaderEpoch(ctx, st.Topology.Epoch)
		}
		if synced && st.Topology.Epoch > 0 && st.Topology.Epoch >= applied && !a.now().Before(nextTry) {
			err := a.applyRouting(ctx, st)
			a.mu.Lock()
			if err != nil {
				if a.proxy.healthy || a.proxy.err != err.Error() {
					a.log.Warn("proxy apply failed", "epoch", st.Topology.Epoch, "err", err)
				}
				a.proxy.healthy, a.proxy.err = false, err.Error()
				backoff = min(max(2*backoff, a.cfg.Policy.PollInterval), 5*time.Second)
				nextTry = a.now().Add(backoff)
			} else {
				if a.proxy.applied != st.Topology.Epoch {
					a.log.Info("proxy applied topology", "epoch", st.Topology.Epoch, "writer", st.Topology.Writer)
				}
				a.proxy.healthy, a.proxy.err, a.proxy.applied = true, "", st.Topology.Epoch
				backoff, nextTry = 0, time.Time{}
			}
			a.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-t.C:
		}
	}
}

// reachedLeaderEpoch reports whether the local FSM's epoch has reached the
// epoch the leader has committed (asked over the API, leader's own view).
func (a *Agent) reachedLeaderEpoch(ctx context.Context, local cluster.Epoch) bool {
	if a.raft.IsLeader() {
		return true
	}
	l := (backend{a}).LeaderAPI()
	if l == "" {
		return false
	}
	c, err := a.client(l)
	if err != nil {
		return false
	}
	cctx, cancel := context.WithTimeout(ctx, a.cfg.Policy.AgentTimeout)
	defer cancel()
	st, err := c.LocalStatus(cctx)
	if err != nil || !st.IsLeader {
		return false
	}
	if local < st.Topology.Epoch {
		a.log.Info("waiting for the local state to catch up before driving the proxy", "epoch", local, "leader_epoch", st.Topology.Epoch)
		return false
	}
	return true
}

func (a *Agent) applyRouting(ctx context.Context, st cluster.State) error {
	r, err := a.routingFor(st)
	if err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return a.deps.Driver.Apply(actx, r)
}

// proxyReportLoop probes every DB node from here and reports the proxy's
// health and applied epoch to the leader every poll interval.
func (a *Agent) proxyReportLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.Policy.PollInterval)
	defer t.Stop()
	for {
		st := a.raft.State()
		targets := map[cluster.NodeName]string{}
		for n, m := range st.Members {
			if m.Has(cluster.RoleDB) && m.MySQLAddr != "" {
				targets[n] = m.MySQLAddr
			}
		}
		var probes []cluster.ProbeResult
		if a.deps.Prober != nil && len(targets) > 0 {
			pctx, cancel := context.WithTimeout(ctx, a.cfg.Policy.PollInterval)
			probes = a.deps.Prober.Probe(pctx, targets)
			cancel()
		}
		a.mu.Lock()
		a.proxyRep = &cluster.ProxyReport{Node: a.cfg.name(), Time: a.now(), Healthy: a.proxy.healthy, Error: a.proxy.err,
			AppliedEpoch: a.proxy.applied, Probes: probes}
		a.mu.Unlock()
		a.send(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
