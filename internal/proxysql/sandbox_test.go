package proxysql_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dbha/dbha/internal/api"
	"github.com/dbha/dbha/internal/api/client"
	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/proxysql/proxysqltest"
	"github.com/dbha/dbha/internal/sandbox"
)

// Issue 4's sandbox acceptance with the ProxySQL admin stand-in: real
// Galera and real agents, the proxy agents running `driver: proxysql`
// against a proxysqltest admin interface served inside each proxy
// namespace. The figure is commit → all proxies applied after a writer
// SIGKILL. Only correctness is asserted, never speed.

const (
	failoverRuns = 5
	// Hang guards, not expectations.
	convergeGuard = 3 * time.Minute
	failoverGuard = 60 * time.Second
	syncedGuard   = 3 * time.Minute
	faultGuard    = 30 * time.Second
	// pollEvery is how often the figure's pollers sample the stand-ins'
	// runtime_mysql_servers and the leader's status.
	pollEvery = 20 * time.Millisecond
)

const (
	writerHG = sandbox.ProxySQLWriterHostgroup
	readerHG = sandbox.ProxySQLReaderHostgroup
)

func TestSandboxProxySQLStandIn(t *testing.T) {
	if testing.Short() {
		t.Skip("sandbox test: brings up a Galera sandbox with agents")
	}
	sandbox.RequireRoot(t)
	agentBin := sandbox.BuildAgent(t)
	s := sandbox.Start(t, sandbox.Options{DBNodes: 3, Proxies: 2, AgentBinary: agentBin, ProxySQLStandIn: true})
	h := newHarness(t, s)

	t.Run("converges", func(t *testing.T) {
		st := h.waitConverged(t)
		t.Logf("epoch %d: writer %s, readers %v; every stand-in's runtime_mysql_servers matches", st.Topology.Epoch, st.Topology.Writer, st.Topology.Readers)
	})

	t.Run("failover", func(t *testing.T) {
		var standIn, applied []time.Duration
		for run := 1; run <= failoverRuns; run++ {
			a, b := h.failover(t, run)
			standIn, applied = append(standIn, a), append(applied, b)
		}
		t.Logf("figure: commit→all proxies applied median %s (runtime_mysql_servers polled every %s; runs %v)", sandbox.Median(standIn), pollEvery, sandbox.RoundAll(standIn))
		t.Logf("figure: commit→all agents report the epoch applied (Status().Proxies[].AppliedEpoch) median %s (runs %v)", sandbox.Median(applied), sandbox.RoundAll(applied))
	})

	t.Run("wrong admin credentials", func(t *testing.T) {
		h.waitConverged(t)
		px := s.Nodes(sandbox.KindProxy)[1]
		credFile := sandbox.ProxySQLCredentialsFile(s.State.Dir, px)
		good, err := os.ReadFile(credFile)
		if err != nil {
			t.Fatal(err)
		}
		h.assertFaultChangesNothing(t, px.Name, func() {
			h.restartAgent(t, px.Name, func() {
				if err := os.WriteFile(credFile, []byte(sandbox.ProxySQLAdminUser+":wrong-password\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			})
		})
		h.restartAgent(t, px.Name, func() {
			if err := os.WriteFile(credFile, good, 0o600); err != nil {
				t.Fatal(err)
			}
		})
		h.waitConverged(t)
	})

	t.Run("unreachable admin port", func(t *testing.T) {
		h.waitConverged(t)
		px := s.Nodes(sandbox.KindProxy)[0]
		srv := h.standIns[px.Name]
		h.assertFaultChangesNothing(t, px.Name, srv.Stop)
		if err := srv.Restart(); err != nil {
			t.Fatal(err)
		}
		h.waitConverged(t)
	})

	// A restarted proxy agent replays the raft log; it must not route
	// through older topologies while it catches up (two proxies with two
	// writers).
	t.Run("agent restart changes nothing", func(t *testing.T) {
		h.waitConverged(t)
		px := s.Nodes(sandbox.KindProxy)[1]
		srv := h.standIns[px.Name]
		rowsBefore, err := runtimeRows(srv)
		if err != nil {
			t.Fatal(err)
		}
		var restarted time.Time
		var logged int
		h.restartAgent(t, px.Name, func() { logged, restarted = len(srv.Log()), time.Now() })
		sandbox.Eventually(t, convergeGuard, string(px.Name)+" healthy again after its restart", func() error {
			st, err := h.converged()
			if err != nil {
				return err
			}
			for _, p := range st.Proxies {
				if p.Name == px.Name && !p.LastReport.After(restarted) {
					return fmt.Errorf("no report from %s since its restart", px.Name)
				}
			}
			return nil
		})
		var writes []string
		for _, l := range srv.Log()[logged:] {
			u := strings.ToUpper(l.Text)
			if strings.HasPrefix(u, "LOAD") || strings.HasPrefix(u, "INSERT") || strings.HasPrefix(u, "UPDATE") || strings.HasPrefix(u, "DELETE") || strings.HasPrefix(u, "REPLACE") {
				writes = append(writes, l.Text)
			}
		}
		rowsAfter, err := runtimeRows(srv)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(rowsBefore, rowsAfter) {
			t.Errorf("%s: runtime rows changed across an agent restart:\nbefore %v\nafter  %v", px.Name, rowsBefore, rowsAfter)
		}
		if len(writes) > 0 {
			t.Errorf("%s: restarting its agent, with the topology unchanged, wrote to ProxySQL %d times: %q\nagent log: %s",
				px.Name, len(writes), writes, appliedLines(filepath.Join(s.State.Dir, string(px.Name), "dbagent.log")))
		}
	})

	t.Run("colliding hostgroups in config", func(t *testing.T) {
		checkConfigRejectsCollidingHostgroups(t, agentBin)
	})
}

// harness reads the cluster through px1's agent and the stand-ins
// directly (in-process, so no MySQL client has to enter the namespaces).
type harness struct {
	s        *sandbox.Sandbox
	c        *client.Client
	standIns map[cluster.NodeName]*proxysqltest.Server
	addrOf   map[cluster.NodeName]string // DB node -> address
}

func newHarness(t *testing.T, s *sandbox.Sandbox) *harness {
	c, err := client.New(s.Endpoint("px1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	h := &harness{s: s, c: c, standIns: map[cluster.NodeName]*proxysqltest.Server{}, addrOf: map[cluster.NodeName]string{}}
	for _, n := range s.Nodes(sandbox.KindProxy) {
		srv, err := s.StandIn(n.Name)
		if err != nil {
			t.Fatal(err)
		}
		h.standIns[n.Name] = srv
	}
	for _, n := range s.Nodes(sandbox.KindDB) {
		h.addrOf[n.Name] = n.Addr
	}
	return h
}

func (h *harness) status() (api.Status, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return h.c.Status(ctx)
}

// runtimeRows returns a stand-in's runtime_mysql_servers of dbha's
// hostgroups as sorted "hostgroup host:port status" lines.
func runtimeRows(srv *proxysqltest.Server) ([]string, error) {
	rows, err := srv.Query(fmt.Sprintf("SELECT hostgroup_id, hostname, port, status FROM runtime_mysql_servers WHERE hostgroup_id IN (%d, %d)", writerHG, readerHG))
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		out = append(out, fmt.Sprintf("%s %s:%s %s", r[0], r[1], r[2], r[3]))
	}
	slices.Sort(out)
	return out, nil
}

// online returns the hosts ONLINE in hostgroup hg, sorted.
func online(rows []string, hg int) []string {
	var out []string
	for _, r := range rows {
		f := strings.Fields(r)
		if len(f) == 3 && f[0] == fmt.Sprint(hg) && f[2] == "ONLINE" {
			host, _, _ := strings.Cut(f[1], ":")
			out = append(out, host)
		}
	}
	slices.Sort(out)
	return out
}

// matches checks one stand-in's runtime against the committed topology:
// the writer hostgroup has exactly the writer ONLINE, the reader hostgroup
// exactly the readers (plus the writer when the policy makes it a reader).
func (h *harness) matches(rows []string, topo cluster.Topology) error {
	want := []string{h.addrOf[topo.Writer]}
	if got := online(rows, writerHG); !slices.Equal(got, want) {
		return fmt.Errorf("writer hostgroup %d ONLINE %v, want %v (writer %s)", writerHG, got, want, topo.Writer)
	}
	var readers []string
	for _, r := range topo.Readers {
		readers = append(readers, h.addrOf[r])
	}
	slices.Sort(readers)
	withWriter := slices.Sorted(slices.Values(append(slices.Clone(readers), h.addrOf[topo.Writer])))
	if got := online(rows, readerHG); !slices.Equal(got, readers) && !slices.Equal(got, withWriter) {
		return fmt.Errorf("reader hostgroup %d ONLINE %v, want readers %v (%v)", readerHG, got, readers, topo.Readers)
	}
	return nil
}

// converged checks the leader's view (3 Synced nodes, a writer, every
// proxy healthy at the current epoch) and every stand-in's runtime.
func (h *harness) converged() (api.Status, error) {
	st, err := h.status()
	if err != nil {
		return st, err
	}
	if st.Leader == "" || !st.Observed {
		return st, fmt.Errorf("no leader observations (leader %q)", st.Leader)
	}
	if st.Topology.Writer == "" {
		return st, fmt.Errorf("no writer at epoch %d", st.Topology.Epoch)
	}
	synced := 0
	for _, n := range st.Nodes {
		if n.Wsrep != nil && n.Wsrep.LocalState == cluster.WsrepSynced && n.Health == cluster.HealthOK {
			synced++
		}
	}
	if synced != len(h.addrOf) {
		return st, fmt.Errorf("%d of %d DB nodes Synced and reporting", synced, len(h.addrOf))
	}
	for n := range h.addrOf {
		if n != st.Topology.Writer && !st.Topology.IsReader(n) {
			return st, fmt.Errorf("%s neither writer nor reader at epoch %d (readers %v)", n, st.Topology.Epoch, st.Topology.Readers)
		}
	}
	if len(st.Proxies) != len(h.standIns) {
		return st, fmt.Errorf("%d proxies in the status, want %d", len(st.Proxies), len(h.standIns))
	}
	for _, p := range st.Proxies {
		if !p.Healthy || p.AppliedEpoch != st.Topology.Epoch {
			return st, fmt.Errorf("proxy %s healthy=%v (%s) applied %d of %d", p.Name, p.Healthy, p.Error, p.AppliedEpoch, st.Topology.Epoch)
		}
	}
	for name, srv := range h.standIns {
		rows, err := runtimeRows(srv)
		if err != nil {
			return st, fmt.Errorf("stand-in %s: %w", name, err)
		}
		if err := h.matches(rows, st.Topology); err != nil {
			return st, fmt.Errorf("stand-in %s at epoch %d: %w (rows %v)", name, st.Topology.Epoch, err, rows)
		}
	}
	return st, nil
}

func (h *harness) waitConverged(t *testing.T) api.Status {
	t.Helper()
	var st api.Status
	sandbox.Eventually(t, convergeGuard, "topology committed and applied on every stand-in", func() error {
		var err error
		st, err = h.converged()
		return err
	})
	return st
}

// failover SIGKILLs the writer's mariadbd and returns commit → all
// stand-ins run the new writer, and commit → every agent reports the
// epoch applied. It restarts the killed node and waits until it is back.
func (h *harness) failover(t *testing.T, run int) (standIn, applied time.Duration) {
	t.Helper()
	ctx := context.Background()
	before := h.waitConverged(t)
	victim := before.Topology.Writer

	pctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var mu sync.Mutex
	firstOnline := map[cluster.NodeName]time.Time{} // proxy -> first sample with one writer, not the victim
	onlineHost := map[cluster.NodeName]string{}
	var seenEpoch cluster.Epoch // first epoch with a writer other than the victim
	var seenWriter cluster.NodeName
	var allApplied time.Time
	for name, srv := range h.standIns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(pollEvery)
			defer tick.Stop()
			for {
				rows, err := runtimeRows(srv)
				if err == nil {
					if w := online(rows, writerHG); len(w) == 1 && w[0] != h.addrOf[victim] {
						mu.Lock()
						firstOnline[name], onlineHost[name] = time.Now(), w[0]
						mu.Unlock()
						return
					}
				}
				select {
				case <-pctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(pollEvery)
		defer tick.Stop()
		for {
			if st, err := h.status(); err == nil && st.Observed {
				mu.Lock()
				if seenEpoch == 0 && st.Topology.Writer != "" && st.Topology.Writer != victim {
					seenEpoch, seenWriter = st.Topology.Epoch, st.Topology.Writer
				}
				done := false
				if seenEpoch != 0 && len(st.Proxies) == len(h.standIns) {
					done = true
					for _, p := range st.Proxies {
						done = done && p.AppliedEpoch >= seenEpoch
					}
				}
				if done {
					allApplied = time.Now()
				}
				mu.Unlock()
				if done {
					return
				}
			}
			select {
			case <-pctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	finished := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(firstOnline) == len(h.standIns) && !allApplied.IsZero()
	}

	killed := time.Now()
	if err := h.s.KillMariaDB(victim); err != nil {
		stop()
		wg.Wait()
		t.Fatal(err)
	}
	deadline := time.Now().Add(failoverGuard)
	for !finished() && time.Now().Before(deadline) {
		time.Sleep(pollEvery) // the pollers do the work; this only waits for them
	}
	stop()
	wg.Wait()
	if !finished() {
		t.Fatalf("run %d: after killing writer %s: stand-ins with a new writer %v, every agent applied: %v (epoch %d)", run, victim, onlineHost, !allApplied.IsZero(), seenEpoch)
	}
	for name, host := range onlineHost {
		if host != h.addrOf[seenWriter] {
			t.Errorf("run %d: stand-in %s routed writes to %s, but the committed writer is %s (%s)", run, name, host, seenWriter, h.addrOf[seenWriter])
		}
	}
	commit := h.commitTime(t, seenEpoch)
	last := slices.MaxFunc(slices.Collect(maps.Values(firstOnline)), func(a, b time.Time) int { return a.Compare(b) })
	standIn, applied = last.Sub(commit), allApplied.Sub(commit)
	t.Logf("run %d: killed writer %s; epoch %d made %s the writer %s after the kill; all stand-ins ran it %s after the commit, all agents reported it applied after %s; %s",
		run, victim, seenEpoch, seenWriter, commit.Sub(killed).Round(time.Millisecond), standIn.Round(time.Millisecond), applied.Round(time.Millisecond), h.applyBreakdown(commit))

	if err := h.s.WaitGone(ctx, victim, "mariadbd", 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := h.s.RestartMariaDB(ctx, victim); err != nil {
		t.Fatal(err)
	}
	if err := h.s.WaitSynced(ctx, victim, syncedGuard); err != nil {
		t.Fatal(err)
	}
	// converged requires every DB node in service, so the victim is back.
	st := h.waitConverged(t)
	if !st.Topology.IsReader(victim) || st.Topology.Writer == victim {
		t.Errorf("run %d: restarted %s is not back as a reader (epoch %d, writer %s, readers %v)", run, victim, st.Topology.Epoch, st.Topology.Writer, st.Topology.Readers)
	}
	return standIn, applied
}

// applyBreakdown splits each stand-in's first apply after commit into the
// time until the first statement after the commit on the session that
// LOADs (the agent learning of the commit and waking up) and the time from
// there to its LOAD MYSQL SERVERS TO RUNTIME, from the stand-in's
// statement log. The driver keeps its admin session open across applies.
func (h *harness) applyBreakdown(commit time.Time) string {
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(h.standIns)) {
		log := h.standIns[name].Log()
		i := slices.IndexFunc(log, func(l proxysqltest.LoggedStatement) bool {
			return l.At.After(commit) && strings.HasPrefix(strings.ToUpper(l.Text), "LOAD MYSQL SERVERS TO RUNTIME")
		})
		if i < 0 {
			parts = append(parts, fmt.Sprintf("%s: no LOAD logged", name))
			continue
		}
		load := log[i]
		first := load
		for _, l := range log[:i] {
			if l.Session == load.Session && l.At.After(commit) {
				first = l
				break
			}
		}
		parts = append(parts, fmt.Sprintf("%s: apply's first statement +%s, LOAD +%s", name,
			first.At.Sub(commit).Round(time.Millisecond), load.At.Sub(commit).Round(time.Millisecond)))
	}
	return strings.Join(parts, "; ")
}

// commitTime is the time of the earliest event committed at epoch: the
// leader stamps the decision that the epoch commits.
func (h *harness) commitTime(t *testing.T, epoch cluster.Epoch) time.Time {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	why, err := h.c.Why(ctx, epoch)
	if err != nil {
		t.Fatalf("why epoch %d: %v", epoch, err)
	}
	var at time.Time
	for _, e := range why.Events {
		if e.Epoch == epoch && (at.IsZero() || e.Time.Before(at)) {
			at = e.Time
		}
	}
	if at.IsZero() {
		t.Fatalf("no event committed at epoch %d: %+v", epoch, why.Events)
	}
	return at
}

// restartAgent stops a proxy's agent with SIGTERM, runs between while it
// is down, and starts it again.
func (h *harness) restartAgent(t *testing.T, node cluster.NodeName, between func()) {
	t.Helper()
	if err := h.s.Signal(node, "dbagent", syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := h.s.WaitGone(context.Background(), node, "dbagent", faultGuard); err != nil {
		t.Fatal(err)
	}
	between()
	if err := h.s.StartAgent(node); err != nil {
		t.Fatal(err)
	}
}

// assertFaultChangesNothing injects a fault on proxy px, waits until px's
// agent reports it unhealthy with an error naming it, keeps the fault
// through more retries, and checks that px's stand-in saw no admin session
// meanwhile and that its runtime rows did not change.
func (h *harness) assertFaultChangesNothing(t *testing.T, px cluster.NodeName, inject func()) {
	t.Helper()
	srv := h.standIns[px]
	rowsBefore, err := runtimeRows(srv)
	if err != nil {
		t.Fatal(err)
	}
	inject()
	injected := time.Now()
	var reported api.ProxyStatus
	sandbox.Eventually(t, faultGuard, string(px)+" reported unhealthy", func() error {
		st, err := h.status()
		if err != nil {
			return err
		}
		for _, p := range st.Proxies {
			if p.Name == px && !p.Healthy && p.Error != "" && p.LastReport.After(injected) {
				reported = p
				return nil
			}
		}
		return fmt.Errorf("no unhealthy report from %s since the fault: %+v", px, st.Proxies)
	})
	t.Logf("%s reported unhealthy: %s", px, reported.Error)
	if !strings.Contains(reported.Error, string(px)) {
		t.Errorf("%s's error does not name the proxy: %q", px, reported.Error)
	}
	sessions, unhealthy := srv.Sessions(), time.Now()
	// Keep the fault through more reconcile rounds (the agent retries with
	// a backoff of up to 5 s): wait for a report 6 s newer, still failing.
	sandbox.Eventually(t, faultGuard, string(px)+" still unhealthy 6 s later", func() error {
		st, err := h.status()
		if err != nil {
			return err
		}
		for _, p := range st.Proxies {
			if p.Name == px && p.LastReport.After(unhealthy.Add(6*time.Second)) {
				if p.Healthy {
					return fmt.Errorf("%s healthy again during the fault", px)
				}
				return nil
			}
		}
		return fmt.Errorf("no report from %s 6 s after it turned unhealthy", px)
	})
	if got := srv.Sessions(); got != sessions {
		t.Errorf("%s: %d admin sessions logged in during the fault", px, got-sessions)
	}
	rowsAfter, err := runtimeRows(srv)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rowsBefore, rowsAfter) {
		t.Errorf("%s: runtime rows changed during the fault:\nbefore %v\nafter  %v", px, rowsBefore, rowsAfter)
	}
}

// appliedLines returns the agent log's "proxy applied topology" and
// "proxy apply failed" lines, for a failure message.
func appliedLines(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "proxy applied topology") || strings.Contains(l, "proxy apply failed") || strings.Contains(l, "dbagent starting") {
			out = append(out, l)
		}
	}
	if len(out) > 12 {
		out = out[len(out)-12:]
	}
	return "\n" + strings.Join(out, "\n")
}

// checkConfigRejectsCollidingHostgroups runs `dbagent --check-config` on
// a ProxySQL proxy config whose writer and reader hostgroup are equal.
func checkConfigRejectsCollidingHostgroups(t *testing.T, agentBin string) {
	dir := t.TempDir()
	cred := filepath.Join(dir, "admin.cred")
	if err := os.WriteFile(cred, []byte("dbha_admin:pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(readerHG int) string {
		p := filepath.Join(dir, fmt.Sprintf("dbagent-%d.yaml", readerHG))
		y := fmt.Sprintf(`node:
  name: px1
  roles: [proxy]
data_dir: %s/data
raft:
  bind: 127.0.0.1:7100
  peers: [px1=127.0.0.1:7100]
api:
  bind: 127.0.0.1:7000
proxy:
  driver: proxysql
  proxysql:
    admin: 127.0.0.1:6032
    credentials_file: %s
    writer_hostgroup: 10
    reader_hostgroup: %d
`, dir, cred, readerHG)
		if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	check := func(path string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, agentBin, "--check-config", "--config", path).CombinedOutput()
		return string(out), err
	}
	if out, err := check(write(20)); err != nil {
		t.Fatalf("the same config with hostgroups 10/20 fails --check-config: %v\n%s", err, out)
	}
	out, err := check(write(10))
	if err == nil {
		t.Fatalf("--check-config accepted writer_hostgroup == reader_hostgroup:\n%s", out)
	}
	if !strings.Contains(out, "proxy.proxysql: writer_hostgroup and reader_hostgroup must be non-negative and differ") {
		t.Errorf("--check-config message does not say what is wrong:\n%s", out)
	}
}
