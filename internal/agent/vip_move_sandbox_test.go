package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/dbha/dbha/cmd/dbctl/cli"
	"github.com/dbha/dbha/internal/api/client"
	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/sandbox"
)

// moveSampler reads which proxies hold the VIP through one netlink handle
// per proxy namespace, every 10 ms (the approach of vip_sandbox_test.go,
// kept separate on purpose).
type moveSampler struct {
	mu      sync.Mutex
	names   []cluster.NodeName
	handles []*netlink.Handle
	vip     net.IP
}

type moveSample struct {
	at      time.Time
	holders []cluster.NodeName
}

func newMoveSampler(t *testing.T, s *sandbox.Sandbox) *moveSampler {
	t.Helper()
	w := &moveSampler{vip: net.ParseIP(sandbox.VIP)}
	for _, n := range s.Nodes(sandbox.KindProxy) {
		ns, err := netns.GetFromName(n.Namespace)
		if err != nil {
			t.Fatalf("open netns of %s: %v", n.Name, err)
		}
		h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
		ns.Close()
		if err != nil {
			t.Fatalf("netlink handle in %s: %v", n.Name, err)
		}
		t.Cleanup(h.Close)
		w.names = append(w.names, n.Name)
		w.handles = append(w.handles, h)
	}
	return w
}

func (w *moveSampler) holders() ([]cluster.NodeName, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []cluster.NodeName
	for i, h := range w.handles {
		addrs, err := h.AddrList(nil, netlink.FAMILY_V4)
		if err != nil {
			return nil, fmt.Errorf("addr list on %s: %w", w.names[i], err)
		}
		if slices.ContainsFunc(addrs, func(a netlink.Addr) bool { return a.IP.Equal(w.vip) }) {
			out = append(out, w.names[i])
		}
	}
	return out, nil
}

// record samples every 10 ms until stop, which fails the test for any
// sample with two holders and returns the samples.
func (w *moveSampler) record(t *testing.T) (stop func() []moveSample) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var (
		wg      sync.WaitGroup
		samples []moveSample
		errs    []error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(10 * time.Millisecond)
		defer tk.Stop()
		for {
			if hs, err := w.holders(); err != nil {
				errs = append(errs, err)
			} else {
				samples = append(samples, moveSample{time.Now(), hs})
			}
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
		}
	}()
	return func() []moveSample {
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

// firstSample returns the time of the first sample at or after from whose
// holders satisfy ok.
func firstSample(samples []moveSample, from time.Time, ok func([]cluster.NodeName) bool) (time.Time, bool) {
	for _, s := range samples {
		if !s.at.Before(from) && ok(s.holders) {
			return s.at, true
		}
	}
	return time.Time{}, false
}

// vipLogTail returns the last n lines of node's agent log that mention the
// VIP, for failure messages.
func vipLogTail(s *sandbox.Sandbox, node cluster.NodeName, n int) string {
	b, err := os.ReadFile(filepath.Join(s.State.Dir, string(node), "dbagent.log"))
	if err != nil {
		return err.Error()
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "vip") || strings.Contains(l, "controller started") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestVIPPlannedMoveOnGalera moves the VIP px1 -> px2 and back three times
// with `dbctl vip move`: no 10 ms sample ever shows two holders, the new
// owner serves TCP through the VIP after each move, and the release lets
// the leader hand over without waiting for the old lease.
func TestVIPPlannedMoveOnGalera(t *testing.T) {
	if testing.Short() {
		t.Skip("sandbox test")
	}
	s := sandbox.Start(t, sandbox.Options{DBNodes: 3, Proxies: 2, AgentBinary: sandbox.BuildAgent(t)})
	ctx := context.Background()
	c, err := client.New(s.Endpoint("db1"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	w := newMoveSampler(t, s)
	clientNS := s.Nodes(sandbox.KindClient)[0].Namespace
	dial := func(timeout time.Duration) error {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		conn, err := sandbox.DialContextIn(clientNS)(cctx, "tcp", net.JoinHostPort(sandbox.VIP, fmt.Sprint(sandbox.WriterPort)))
		if err != nil {
			return err
		}
		return conn.Close()
	}
	var proxies []cluster.NodeName
	for _, n := range s.Nodes(sandbox.KindProxy) {
		proxies = append(proxies, n.Name)
	}
	if len(proxies) != 2 {
		t.Fatalf("proxies %v, want 2", proxies)
	}

	var owner cluster.NodeName
	eventually(t, 90*time.Second, "healthy cluster, the committed VIP owner the only holder", func() error {
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
		hs, err := w.holders()
		if err != nil {
			return err
		}
		if !slices.Equal(hs, []cluster.NodeName{st.VIP.Owner}) {
			return fmt.Errorf("holders %v, committed owner %s", hs, st.VIP.Owner)
		}
		owner = st.VIP.Owner
		return nil
	})

	// A leader that took office less than one lease wait ago cannot know
	// who held the VIP last and waits that long before any assignment
	// (planner: new leader rule); start once the leader has been stable
	// for longer, so that the figures show the planned move alone.
	var leader cluster.NodeName
	var term uint64
	var stableSince time.Time
	eventually(t, 60*time.Second, "the same raft leader for 2 s", func() error {
		st, err := status(t, c)
		if err != nil {
			return err
		}
		if st.Leader == "" || st.Leader != leader || st.Term != term {
			leader, term, stableSince = st.Leader, st.Term, time.Now()
		}
		if d := time.Since(stableSince); d < 2*time.Second {
			return fmt.Errorf("leader %s term %d for %s", leader, term, d)
		}
		return nil
	})

	var total, worstGap time.Duration
	const moves = 6 // px1 -> px2 and back, three times
	for i := range moves {
		to := proxies[0]
		if owner == to {
			to = proxies[1]
		}
		// Every proxy must have applied the committed epoch, or the
		// leader refuses the target as not eligible.
		eventually(t, 30*time.Second, "healthy cluster before move "+fmt.Sprint(i+1), func() error {
			st, err := status(t, c)
			if err != nil {
				return err
			}
			return healthyCluster(st, 3)
		})
		before, err := status(t, c)
		if err != nil {
			t.Fatal(err)
		}
		stop := w.record(t)
		start := time.Now()
		var out, errb bytes.Buffer
		code := cli.Run(ctx, []string{"vip", "move", "--to", string(to), "--timeout", "15s", "--endpoint", s.Endpoint("db2")}, &out, &errb)
		done := time.Now()
		if code != cli.ExitOK {
			stop()
			t.Fatalf("move %d %s -> %s: dbctl exit %d\n%s%s", i+1, owner, to, code, out.String(), errb.String())
		}
		// The client reaches the new owner through the VIP.
		var served time.Time
		eventually(t, 5*time.Second, "TCP connect to the VIP after the move", func() error {
			if err := dial(300 * time.Millisecond); err != nil {
				return err
			}
			served = time.Now()
			return nil
		})
		time.Sleep(200 * time.Millisecond) // observation window after the move, not a condition
		samples := stop()
		gone, ok1 := firstSample(samples, start, func(hs []cluster.NodeName) bool { return !slices.Contains(hs, owner) })
		took, ok2 := firstSample(samples, start, func(hs []cluster.NodeName) bool { return slices.Contains(hs, to) })
		if !ok1 || !ok2 {
			t.Fatalf("move %d: samples missed the move (released %v, taken %v)", i+1, ok1, ok2)
		}
		if hs, err := w.holders(); err != nil || !slices.Equal(hs, []cluster.NodeName{to}) {
			t.Fatalf("move %d: holders %v (%v) after the move, want [%s]", i+1, hs, err, to)
		}
		gap := took.Sub(gone)
		// A confirmed release hands over at once; waiting for the lease
		// instead would leave a gap of 0.8 to 1.1 s (the wait counts from
		// the old owner's last renewal).
		if gap > 500*time.Millisecond {
			t.Errorf("move %d %s -> %s: the VIP was unheld for %s; the release confirmation should avoid the lease wait\ndbctl:\n%s\n%s's vip log:\n%s",
				i+1, owner, to, gap, out.String(), owner, vipLogTail(s, owner, 15))
		}
		if os.Getenv("DBHA_DEBUG_VIP_MOVE") != "" {
			t.Logf("move %d at %s, raft leader %s (term %d)\n%s:\n%s\n%s:\n%s", i+1, start.UTC().Format("15:04:05.000"), before.Leader, before.Term,
				owner, vipLogTail(s, owner, 8), before.Leader, vipLogTail(s, before.Leader, 8))
		}
		t.Logf("figure: planned VIP move %d %s -> %s: dbctl returned after %s, old address gone after %s, new owner holds it after %s (unheld %s), first TCP connect %s after the request",
			i+1, owner, to, done.Sub(start).Round(time.Millisecond), gone.Sub(start).Round(time.Millisecond),
			took.Sub(start).Round(time.Millisecond), gap.Round(time.Millisecond), served.Sub(start).Round(time.Millisecond))
		total += done.Sub(start)
		worstGap = max(worstGap, gap)
		owner = to
	}
	t.Logf("figure: %d planned VIP moves, mean dbctl time %s, worst unheld gap %s, never two holders",
		moves, (total / moves).Round(time.Millisecond), worstGap.Round(time.Millisecond))
}
