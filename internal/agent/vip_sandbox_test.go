//go:build linux

package agent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dbha/dbha/cmd/dbctl/cli"
	"github.com/dbha/dbha/internal/agent"
	"github.com/dbha/dbha/internal/api/client"
	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/config"
	"github.com/dbha/dbha/internal/proxy"
	"github.com/dbha/dbha/internal/sandbox"
	"github.com/dbha/dbha/internal/vip"
)

type vipSample struct {
	at      time.Time
	holders []cluster.NodeName
}

// recordHolders samples the holders every 10 ms until the returned stop is
// called, which returns the samples. A sample with two holders fails the
// test.
func recordHolders(t *testing.T, w *sandbox.HolderWatcher) (stop func() []vipSample) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var (
		wg      sync.WaitGroup
		samples []vipSample
		errs    []error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(10 * time.Millisecond)
		defer tk.Stop()
		for {
			hs, err := w.Holders()
			if err != nil {
				errs = append(errs, err)
			} else {
				samples = append(samples, vipSample{time.Now(), hs})
			}
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
		}
	}()
	return func() []vipSample {
		t.Helper()
		cancel()
		wg.Wait()
		if len(errs) > 0 {
			t.Errorf("%d holder samples failed, first: %v", len(errs), errs[0])
		}
		for _, s := range samples {
			if len(s.holders) > 1 {
				t.Errorf("two VIP holders at %s: %v", s.at.Format("15:04:05.000"), s.holders)
			}
		}
		return samples
	}
}

// guardPID finds the VIP guard that the agent with pid agentPID started.
func guardPID(agentPID int) (int, error) {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte("\x00"+vip.GuardCommand+"\x00")) {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so cut at
		// the last ')'.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) > 1 && fields[1] == strconv.Itoa(agentPID) && !strings.HasPrefix(fields[0], "Z") {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("no vip guard under agent pid %d", agentPID)
}

// agentLogged polls node's agent log until it holds every one of want.
func agentLogged(t *testing.T, s *sandbox.Sandbox, node cluster.NodeName, want ...string) {
	t.Helper()
	n, err := s.Node(node)
	if err != nil {
		t.Fatal(err)
	}
	sandbox.Eventually(t, 5*time.Second, fmt.Sprintf("%q in %s's agent log", want, node), func() error {
		log, err := os.ReadFile(n.Procs["dbagent"].Log)
		if err != nil {
			return err
		}
		for _, w := range want {
			if !bytes.Contains(log, []byte(w)) {
				return fmt.Errorf("no %s", w)
			}
		}
		return nil
	})
}

// handover returns when owner first lacked the VIP and when next first held
// it, at or after from, and fails the test if the samples miss either or
// next took it before owner let go.
func handover(t *testing.T, samples []vipSample, from time.Time, owner, next cluster.NodeName) (gone, took time.Time) {
	t.Helper()
	gone, ok1 := firstWhere(samples, from, lacks(owner))
	took, ok2 := firstWhere(samples, from, holds(next))
	if !ok1 || !ok2 {
		t.Fatalf("samples missed the move (gone %v, taken %v): %d samples", ok1, ok2, len(samples))
	}
	if gone.After(took) {
		t.Fatalf("%s took the VIP at %s before %s lost it at %s", next, took.Format("15:04:05.000"), owner, gone.Format("15:04:05.000"))
	}
	return gone, took
}

// firstWhere returns the time of the first sample, at or after from, for
// which ok holds.
func firstWhere(samples []vipSample, from time.Time, ok func([]cluster.NodeName) bool) (time.Time, bool) {
	for _, s := range samples {
		if !s.at.Before(from) && ok(s.holders) {
			return s.at, true
		}
	}
	return time.Time{}, false
}

func holds(n cluster.NodeName) func([]cluster.NodeName) bool {
	return func(hs []cluster.NodeName) bool { return slices.Contains(hs, n) }
}

func lacks(n cluster.NodeName) func([]cluster.NodeName) bool {
	return func(hs []cluster.NodeName) bool { return !slices.Contains(hs, n) }
}

// settledVIPOwner waits for a healthy cluster whose committed VIP owner is
// the only holder, and returns the owner.
func settledVIPOwner(t *testing.T, c *client.Client, w *sandbox.HolderWatcher) cluster.NodeName {
	t.Helper()
	var owner cluster.NodeName
	sandbox.Eventually(t, 90*time.Second, "healthy cluster, the committed VIP owner the only holder", func() error {
		st, err := status(t, c)
		if err != nil {
			return err
		}
		if err := healthyCluster(st, 3); err != nil {
			return err
		}
		if st.VIP.Owner == "" {
			return fmt.Errorf("no VIP owner committed (lease epoch %d)", st.VIP.LeaseEpoch)
		}
		hs, err := w.Holders()
		if err != nil {
			return err
		}
		if !slices.Equal(hs, []cluster.NodeName{st.VIP.Owner}) {
			return fmt.Errorf("holders %v, committed owner %s", hs, st.VIP.Owner)
		}
		owner = st.VIP.Owner
		return nil
	})
	return owner
}

// servedBy waits until next alone holds the VIP and a TCP connect through
// it succeeds, and returns when that connect began: begun after next took
// the VIP (and the old holder lost it), it can only have reached next.
func servedBy(t *testing.T, w *sandbox.HolderWatcher, clientNS string, next cluster.NodeName) time.Time {
	t.Helper()
	var served time.Time
	sandbox.Eventually(t, 30*time.Second, string(next)+" holds the VIP and serves TCP", func() error {
		hs, err := w.Holders()
		if err != nil {
			return err
		}
		if !slices.Equal(hs, []cluster.NodeName{next}) {
			return fmt.Errorf("holders %v", hs)
		}
		begun := time.Now()
		if err := sandbox.DialVIP(context.Background(), clientNS, 200*time.Millisecond); err != nil {
			return err
		}
		served = begun
		return nil
	})
	return served
}

// startVIPSandbox brings up 3 DB nodes and 2 proxies with agents, and
// returns a client of db1's agent (a DB node's: the proxies' agents are
// the ones killed and moved), a VIP holder watcher and the client
// namespace.
func startVIPSandbox(t *testing.T) (*sandbox.Sandbox, *client.Client, *sandbox.HolderWatcher, string) {
	t.Helper()
	s := sandbox.Start(t, sandbox.Options{DBNodes: 3, Proxies: 2, AgentBinary: sandbox.BuildAgent(t)})
	c, err := client.New(s.Endpoint("db1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return s, c, sandbox.WatchVIP(t, s), s.Nodes(sandbox.KindClient)[0].Namespace
}

// TestVIPLeaseOnGalera runs the VIP lease protocol on a real sandbox: the
// committed owner alone holds the VIP, it moves on agent SIGKILL, SIGTERM
// and partition, and no sample ever shows two holders.
func TestVIPLeaseOnGalera(t *testing.T) {
	if testing.Short() {
		t.Skip("sandbox test")
	}
	s, c, w, clientNS := startVIPSandbox(t)
	ctx := context.Background()
	var proxies, others []cluster.NodeName
	for _, n := range s.State.Nodes {
		switch n.Kind {
		case sandbox.KindProxy:
			proxies = append(proxies, n.Name)
			others = append(others, n.Name)
		case sandbox.KindDB:
			others = append(others, n.Name)
		}
	}
	otherProxy := func(p cluster.NodeName) cluster.NodeName {
		for _, q := range proxies {
			if q != p {
				return q
			}
		}
		t.Fatalf("no proxy other than %s", p)
		return ""
	}

	// restartAgent starts node's agent again unless it runs; subtests
	// defer it so that one failure does not cascade into the next.
	restartAgent := func(t *testing.T, node cluster.NodeName) {
		t.Helper()
		n, err := s.Node(node)
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := n.Procs["dbagent"]; ok && p.Alive() {
			return
		}
		if err := s.StartAgent(node); err != nil {
			t.Errorf("restart agent on %s: %v", node, err)
		}
	}
	// steady keeps sampling for a short window after a move, so that the
	// samples surely include the new holder and show it stays alone.
	steady := func() { time.Sleep(300 * time.Millisecond) } // observation window, not a condition

	// role says whether node is the raft leader, which adds an election
	// and the new leader's full wait to a move.
	role := func(t *testing.T, node cluster.NodeName) string {
		st, err := status(t, c)
		switch {
		case err != nil:
			return "raft role unknown"
		case st.Leader == node:
			return "it was the raft leader"
		default:
			return "leader " + string(st.Leader)
		}
	}

	settled := func(t *testing.T) cluster.NodeName { return settledVIPOwner(t, c, w) }

	t.Run("CommittedOwnerAloneHoldsVIPAndServes", func(t *testing.T) {
		owner := settled(t)
		// Seen through `ip addr` too, with the agent's label.
		for _, p := range proxies {
			out, err := s.Exec(ctx, p, "ip", "-o", "addr")
			if err != nil {
				t.Fatal(err)
			}
			has := slices.ContainsFunc(strings.Split(string(out), "\n"), func(l string) bool {
				return strings.Contains(l, " "+sandbox.VIP+"/24 ") && strings.Contains(l, "eth0:dbha")
			})
			if has != (p == owner) {
				t.Errorf("%s holds the VIP: %v; owner %s\n%s", p, has, owner, out)
			}
		}
		// The DBA's view.
		var out, errb bytes.Buffer
		if code := cli.Run(ctx, []string{"vip", "status", "--endpoint", s.Endpoint("db2")}, &out, &errb); code != cli.ExitOK {
			t.Fatalf("dbctl vip status: exit %d\n%s%s", code, out.String(), errb.String())
		}
		if !strings.Contains(out.String(), " on "+string(owner)+" (lease epoch ") || !strings.Contains(out.String(), "Latest VIP events:") {
			t.Errorf("dbctl vip status does not name owner %s or list VIP events:\n%s", owner, out.String())
		}
		t.Logf("dbctl vip status:\n%s", out.String())
		stop := recordHolders(t, w)
		sandbox.Eventually(t, 10*time.Second, "TCP connect to the VIP from the client", func() error {
			return sandbox.DialVIP(ctx, clientNS, time.Second)
		})
		// A few seconds of steady state: the owner keeps it, nobody else
		// takes it.
		time.Sleep(3 * time.Second) // observation window, not a condition
		for _, sm := range stop() {
			if !slices.Equal(sm.holders, []cluster.NodeName{owner}) {
				t.Fatalf("steady state: holders %v at %s, want [%s]", sm.holders, sm.at.Format("15:04:05.000"), owner)
			}
		}
	})

	t.Run("OwnerAgentSIGKILL", func(t *testing.T) {
		owner := settled(t)
		next := otherProxy(owner)
		stop := recordHolders(t, w)
		defer restartAgent(t, owner)
		was := role(t, owner)
		killed := time.Now()
		if err := s.Signal(owner, "dbagent", syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		// The new owner holds it and serves: a connect begun after it
		// took the VIP (and after the old holder lost it) can only reach
		// the new owner.
		served := servedBy(t, w, clientNS, next)
		steady()
		samples := stop()
		gone, took := handover(t, samples, killed, owner, next)
		// The agent's VIP guard removes a dead agent's address at once;
		// the kernel lifetime (1 s, plus up to about 1 s of kernel timer
		// rounding) would be the backstop. This bound is a hang guard.
		if d := gone.Sub(killed); d > 1500*time.Millisecond {
			t.Errorf("the SIGKILLed owner's address lived %s after the kill", d)
		}
		// The guard, not the kernel, removed it.
		agentLogged(t, s, owner, `msg="vip guard removed the address"`, `why="the agent exited"`)
		t.Logf("figure: VIP failover on owner agent SIGKILL (%s, %s): old address gone after %s (guard), %s holds it after %s (gap %s), first TCP connect through it %s after the kill",
			owner, was, gone.Sub(killed).Round(time.Millisecond), next, took.Sub(killed).Round(time.Millisecond), took.Sub(gone).Round(time.Millisecond), served.Sub(killed).Round(time.Millisecond))
		restartAgent(t, owner)
		if got := settled(t); got != next {
			t.Errorf("VIP moved back to %s after its agent restarted; want it to stay on %s", got, next)
		}
	})

	// A hung agent cannot remove its address and its process is alive, so
	// its pipe to the guard stays open: the guard's own copy of the lease
	// deadline removes the address.
	t.Run("OwnerAgentSIGSTOP", func(t *testing.T) {
		owner := settled(t)
		next := otherProxy(owner)
		stop := recordHolders(t, w)
		was := role(t, owner)
		stopped := time.Now()
		if err := s.Signal(owner, "dbagent", syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		continued := false
		cont := func() {
			if !continued {
				continued = true
				if err := s.Signal(owner, "dbagent", syscall.SIGCONT); err != nil {
					t.Errorf("SIGCONT %s's agent: %v", owner, err)
				}
			}
		}
		defer cont()
		served := servedBy(t, w, clientNS, next)
		steady()
		samples := stop()
		gone, took := handover(t, samples, stopped, owner, next)
		agentLogged(t, s, owner, `msg="vip guard removed the address"`, `why="the lease ran out without a renewal from the agent"`)
		t.Logf("figure: VIP failover on owner agent SIGSTOP (%s, %s): old address gone after %s (guard deadline), %s holds it after %s, first TCP connect through it %s after the stop",
			owner, was, gone.Sub(stopped).Round(time.Millisecond), next, took.Sub(stopped).Round(time.Millisecond), served.Sub(stopped).Round(time.Millisecond))
		// Woken up, the old owner finds its lease gone and stays off.
		stop = recordHolders(t, w)
		cont()
		if got := settled(t); got != next {
			t.Errorf("VIP moved back to %s after its agent resumed; want it to stay on %s", got, next)
		}
		stop()
	})

	// Without a guard nothing would remove the address if the agent died,
	// so the agent lets go of the VIP, starts a new guard and takes the
	// VIP back (or the leader moves it); never two holders.
	t.Run("GuardKilled", func(t *testing.T) {
		owner := settled(t)
		n, err := s.Node(owner)
		if err != nil {
			t.Fatal(err)
		}
		agentPID := n.Procs["dbagent"].PID
		old, err := guardPID(agentPID)
		if err != nil {
			t.Fatal(err)
		}
		stop := recordHolders(t, w)
		if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		sandbox.Eventually(t, 10*time.Second, "a new guard under "+string(owner)+"'s agent", func() error {
			pid, err := guardPID(agentPID)
			if err != nil {
				return err
			}
			if pid == old {
				return fmt.Errorf("guard %d still there", pid)
			}
			return nil
		})
		now := settled(t)
		samples := stop()
		gone, ok := firstWhere(samples, time.Time{}, lacks(owner))
		if !ok {
			t.Errorf("%s kept the VIP while it had no guard", owner)
		}
		agentLogged(t, s, owner, `msg="vip guard died; starting a new one"`)
		t.Logf("guard %d of %s killed: VIP let go at %s, now on %s", old, owner, gone.Format("15:04:05.000"), now)
	})

	t.Run("OwnerAgentSIGTERMReleasesAtOnce", func(t *testing.T) {
		owner := settled(t)
		next := otherProxy(owner)
		stop := recordHolders(t, w)
		defer restartAgent(t, owner)
		was := role(t, owner)
		termed := time.Now()
		if err := s.Signal(owner, "dbagent", syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := s.WaitGone(ctx, owner, "dbagent", 10*time.Second); err != nil {
			t.Fatal(err)
		}
		exited := time.Now()
		held, err := w.Holders()
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(held, owner) {
			t.Errorf("%s still holds the VIP after its agent exited on SIGTERM", owner)
		}
		servedBy(t, w, clientNS, next)
		steady()
		samples := stop()
		gone, took := handover(t, samples, termed, owner, next)
		// Released at once: well inside one lease, not by the kernel.
		if d := gone.Sub(termed); gone.IsZero() || d > 500*time.Millisecond {
			t.Errorf("SIGTERMed owner released the VIP after %s; want at once (under 500 ms)", d)
		}
		t.Logf("figure: VIP on owner agent SIGTERM (%s, %s): released after %s (agent exited after %s), %s holds it after %s (the leader still waits out the lease)",
			owner, was, gone.Sub(termed).Round(time.Millisecond), exited.Sub(termed).Round(time.Millisecond), next, took.Sub(termed).Round(time.Millisecond))
		restartAgent(t, owner)
		settled(t)
	})

	t.Run("PartitionedOwnerDropsVIPWithinLease", func(t *testing.T) {
		owner := settled(t)
		next := otherProxy(owner)
		var rest []cluster.NodeName
		for _, n := range others {
			if n != owner {
				rest = append(rest, n)
			}
		}
		was := role(t, owner)
		stop := recordHolders(t, w)
		cut := time.Now()
		heal, err := sandbox.Partition(ctx, t, s, []cluster.NodeName{owner}, rest)
		if err != nil {
			stop()
			t.Fatal(err)
		}
		// The client still reaches the cut-off owner, which still holds
		// the VIP within its lease.
		if err := sandbox.DialVIP(ctx, clientNS, 300*time.Millisecond); err != nil {
			t.Errorf("client cannot reach the VIP right after the cut: %v", err)
		}
		// Only the lease makes the cut-off owner let go.
		servedBy(t, w, clientNS, next)
		steady()
		samples := stop()
		gone, took := handover(t, samples, cut, owner, next)
		// vip.lease is 1 s from the last renewal sent before the cut; a
		// leader cut off with its proxy steps down within 250 ms and may
		// grant until then.
		if d := gone.Sub(cut); d > 1500*time.Millisecond {
			t.Errorf("the partitioned owner dropped the VIP %s after the cut; want within the 1 s lease (+ slack)", d)
		}
		t.Logf("figure: VIP on owner partition (%s, %s): old owner dropped it after %s, %s holds it after %s (gap %s)",
			owner, was, gone.Sub(cut).Round(time.Millisecond), next, took.Sub(cut).Round(time.Millisecond), took.Sub(gone).Round(time.Millisecond))
		heal()
		if got := settled(t); got != next {
			t.Errorf("after the heal the VIP is on %s; want it to stay on %s", got, next)
		}
	})

	// Loss of the owner's link: its agent lives on but reaches nobody, so
	// its own lease ends the hold.
	t.Run("OwnerLinkLoss", func(t *testing.T) {
		owner := settled(t)
		next := otherProxy(owner)
		was := role(t, owner)
		stop := recordHolders(t, w)
		down := time.Now()
		if err := s.LinkDown(ctx, owner); err != nil {
			stop()
			t.Fatal(err)
		}
		linkUp := func() {
			if err := s.LinkUp(ctx, owner); err != nil {
				t.Errorf("link up %s: %v", owner, err)
			}
		}
		up := false
		defer func() {
			if !up {
				linkUp()
			}
		}()
		served := servedBy(t, w, clientNS, next)
		steady()
		samples := stop()
		gone, took := handover(t, samples, down, owner, next)
		t.Logf("figure: VIP failover on owner link loss (%s, %s): old owner dropped it after %s, %s holds it after %s, first TCP connect through it %s after the link went down",
			owner, was, gone.Sub(down).Round(time.Millisecond), next, took.Sub(down).Round(time.Millisecond), served.Sub(down).Round(time.Millisecond))
		stop = recordHolders(t, w)
		up = true
		linkUp()
		if got := settled(t); got != next {
			t.Errorf("after the link returned the VIP is on %s; want it to stay on %s", got, next)
		}
		stop()
	})

	t.Run("LeaderAgentSIGKILLKeepsOwner", func(t *testing.T) {
		owner := settled(t)
		st, err := status(t, c)
		if err != nil {
			t.Fatal(err)
		}
		leader := st.Leader
		if leader == owner {
			t.Skipf("the raft leader %s owns the VIP: OwnerAgentSIGKILL covers that", leader)
		}
		// Ask an agent that survives.
		var survivor cluster.NodeName
		for _, n := range others {
			if n != leader && n != owner && !slices.Contains(proxies, n) {
				survivor = n
				break
			}
		}
		sc, err := client.New(s.Endpoint(survivor))
		if err != nil {
			t.Fatal(err)
		}
		defer sc.Close()
		defer restartAgent(t, leader)
		stop := recordHolders(t, w)
		killed := time.Now()
		if err := s.Signal(leader, "dbagent", syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		var next cluster.NodeName
		sandbox.Eventually(t, 30*time.Second, "a new raft leader that lets "+string(owner)+" keep the VIP", func() error {
			st, err := status(t, sc)
			if err != nil {
				return err
			}
			if st.Leader == "" || st.Leader == leader || !st.Observed {
				return fmt.Errorf("leader %q (observed %v)", st.Leader, st.Observed)
			}
			if st.VIP.Owner != owner {
				return fmt.Errorf("vip owner %q", st.VIP.Owner)
			}
			// Renewed under the new leader.
			if st.VIP.LeaseAge <= 0 || st.VIP.LeaseAge > time.Second {
				return fmt.Errorf("lease age %s under the new leader", st.VIP.LeaseAge)
			}
			next = st.Leader
			return nil
		})
		steady()
		samples := stop()
		// The VIP never moves; it may lapse while no leader answers
		// renewals for longer than one lease. Measure that.
		var unheld time.Duration
		for i := 1; i < len(samples); i++ {
			if hs := samples[i].holders; len(hs) == 1 && hs[0] != owner {
				t.Fatalf("the VIP moved to %v at %s on a raft leader loss", hs, samples[i].at.Format("15:04:05.000"))
			}
			if len(samples[i].holders) == 0 {
				unheld += samples[i].at.Sub(samples[i-1].at)
			}
		}
		if hs, err := w.Holders(); err != nil || !slices.Equal(hs, []cluster.NodeName{owner}) {
			t.Fatalf("holders %v (%v) after the new leader took over; want [%s]", hs, err, owner)
		}
		t.Logf("figure: raft leader %s SIGKILL: %s leads after at most %s; VIP stayed on %s, unheld for %s in total",
			leader, next, time.Since(killed).Round(time.Millisecond), owner, unheld.Round(time.Millisecond))
		restartAgent(t, leader)
		settled(t)
	})
}

type nopDriver struct{}

func (nopDriver) Apply(context.Context, proxy.Routing) error { return nil }
func (nopDriver) Observe(context.Context) (proxy.Observation, error) {
	return proxy.Observation{}, nil
}

// TestVIPPreflightFailsAgentStart: a proxy agent with a VIP configured on
// an interface it cannot use refuses to start, with an error that says why.
func TestVIPPreflightFailsAgentStart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "dbagent.yaml")
	yaml := fmt.Sprintf(`node: {name: px9, roles: [proxy]}
data_dir: %s
raft: {bind: "127.0.0.1:17100", bootstrap_expect: 1}
api: {bind: "127.0.0.1:17000"} # never bound: New fails first
proxy: {driver: haproxy}
vip: {address: 198.18.0.250/24, interface: nosuch0}
`, filepath.Join(dir, "data"))
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(cfg, agent.Deps{Driver: nopDriver{}})
	if err == nil {
		t.Fatalf("agent started with an unusable VIP interface: %+v", a)
	}
	if !errors.Is(err, agent.ErrVIPPreflight) {
		t.Fatalf("error %v does not wrap ErrVIPPreflight", err)
	}
	want := vip.ErrInterfaceNotFound
	if os.Geteuid() != 0 {
		want = vip.ErrMissingCapability
	}
	if !errors.Is(err, want) {
		t.Fatalf("error %v does not wrap %v", err, want)
	}
	t.Logf("preflight error: %v", err)

}
