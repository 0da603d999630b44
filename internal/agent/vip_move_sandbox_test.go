//go:build linux

package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dbha/dbha/cmd/dbctl/cli"
	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/sandbox"
)

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
	s, c, w, clientNS := startVIPSandbox(t)
	ctx := context.Background()
	var proxies []cluster.NodeName
	for _, n := range s.Nodes(sandbox.KindProxy) {
		proxies = append(proxies, n.Name)
	}
	if len(proxies) != 2 {
		t.Fatalf("proxies %v, want 2", proxies)
	}

	owner := settledVIPOwner(t, c, w)

	// A leader that took office less than one lease wait ago cannot know
	// who held the VIP last and waits that long before any assignment
	// (planner: new leader rule); start once the leader has been stable
	// for longer, so that the figures show the planned move alone.
	var leader cluster.NodeName
	var term uint64
	var stableSince time.Time
	sandbox.Eventually(t, 60*time.Second, "the same raft leader for 2 s", func() error {
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
		sandbox.Eventually(t, 30*time.Second, "healthy cluster before move "+fmt.Sprint(i+1), func() error {
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
		stop := recordHolders(t, w)
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
		sandbox.Eventually(t, 5*time.Second, "TCP connect to the VIP after the move", func() error {
			if err := sandbox.DialVIP(ctx, clientNS, 300*time.Millisecond); err != nil {
				return err
			}
			served = time.Now()
			return nil
		})
		time.Sleep(200 * time.Millisecond) // observation window after the move, not a condition
		samples := stop()
		gone, ok1 := firstWhere(samples, start, lacks(owner))
		took, ok2 := firstWhere(samples, start, holds(to))
		if !ok1 || !ok2 {
			t.Fatalf("move %d: samples missed the move (released %v, taken %v)", i+1, ok1, ok2)
		}
		if hs, err := w.Holders(); err != nil || !slices.Equal(hs, []cluster.NodeName{to}) {
			t.Fatalf("move %d: holders %v (%v) after the move, want [%s]", i+1, hs, err, to)
		}
		gap := took.Sub(gone)
		// A confirmed release hands over at once; a lease wait instead
		// leaves a gap of about 1 s. That happens when raft leadership
		// changes during the move (leader placement keeps the leader off
		// the VIP owner, and a new leader has not seen the release). Speed
		// is a figure here, not an assertion.
		if gap > 500*time.Millisecond {
			t.Logf("move %d %s -> %s: the VIP was unheld for %s (a lease wait, not a release hand-over)\n%s's vip log:\n%s",
				i+1, owner, to, gap, owner, vipLogTail(s, owner, 15))
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
