package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dbha/dbha/cmd/dbctl/cli"
	"github.com/dbha/dbha/internal/api"
	"github.com/dbha/dbha/internal/api/apitest"
	"github.com/dbha/dbha/internal/api/client"
	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/sandbox"
)

func status(t *testing.T, c *client.Client) (api.Status, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return c.Status(ctx)
}

// TestAgentsOnGalera runs every agent on a real Galera sandbox.
func TestAgentsOnGalera(t *testing.T) {
	if testing.Short() {
		t.Skip("sandbox test")
	}
	s := sandbox.Start(t, sandbox.Options{DBNodes: 3, Proxies: 2, AgentBinary: sandbox.BuildAgent(t)})
	ctx := context.Background()
	c, err := client.New(s.Endpoint("px1"))
	if err != nil {
		t.Fatal(err)
	}
	var st api.Status
	t.Run("StatusShowsSyncedNodesOneWriterAndLeader", func(t *testing.T) {
		sandbox.Eventually(t, 60*time.Second, "3 Synced nodes, one writer, a leader, proxies applied", func() error {
			var err error
			if st, err = status(t, c); err != nil {
				return err
			}
			return healthyCluster(st, 3)
		})
		writers := 0
		for _, n := range st.Nodes {
			if n.Role == "writer" {
				writers++
			}
		}
		if writers != 1 || st.Leader == "" {
			t.Fatalf("writers %d leader %q", writers, st.Leader)
		}
		// The DBA's view: dbctl status through the sandbox's recorded
		// endpoint file, no flags.
		base := t.TempDir()
		t.Setenv("DBHA_SANDBOX_DIR", base)
		if err := os.Symlink(s.State.Dir, filepath.Join(base, "current")); err != nil {
			t.Fatal(err)
		}
		var out, errb bytes.Buffer
		if code := cli.Run(ctx, []string{"status"}, &out, &errb); code != cli.ExitOK {
			t.Fatalf("dbctl status: exit %d\n%s%s", code, out.String(), errb.String())
		}
		for _, want := range []string{"writer", "reader", "Synced", string(st.Leader)} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("dbctl status output lacks %q:\n%s", want, out.String())
			}
		}
		t.Logf("dbctl status:\n%s", out.String())
	})

	t.Run("AgentKillDoesNotMoveWriter", func(t *testing.T) {
		st, err := status(t, c)
		if err != nil {
			t.Fatal(err)
		}
		writer, epoch := st.Topology.Writer, st.Topology.Epoch
		if err := s.Signal(writer, "dbagent", syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if err := s.WaitGone(ctx, writer, "dbagent", 10*time.Second); err != nil {
			t.Fatal(err)
		}
		// Restart it however this subtest ends, so later subtests have
		// every agent.
		writerBack := false
		defer func() {
			if writerBack {
				return
			}
			if err := s.StartAgent(writer); err != nil {
				t.Errorf("restart agent on %s: %v", writer, err)
			}
		}()
		// Sample the committed topology for three agent timeouts (2 s
		// each by default, longer than fail_after polls): the writer must
		// not move at any sample.
		killed := time.Now()
		for time.Since(killed) < 6*time.Second {
			st, err := status(t, c)
			if err != nil {
				continue // during a raft election the status may fail
			}
			if st.Topology.Writer != writer {
				t.Fatalf("an agent crash moved the writer: %s@%d -> %q@%d", writer, epoch, st.Topology.Writer, st.Topology.Epoch)
			}
			if st.Topology.Epoch != epoch {
				// Allowed (readers may change), but worth seeing why.
				t.Logf("epoch %d -> %d while %s's agent was dead (writer kept): %+v", epoch, st.Topology.Epoch, writer, st.Topology)
				epoch = st.Topology.Epoch
			}
			time.Sleep(100 * time.Millisecond) // sampling period
		}
		if err := s.StartAgent(writer); err != nil {
			t.Fatal(err)
		}
		writerBack = true
		sandbox.Eventually(t, 60*time.Second, "agent back", func() error {
			st, err := status(t, c)
			if err != nil {
				return err
			}
			return healthyCluster(st, 3)
		})
	})

	t.Run("BadRequestsChangeNothing", func(t *testing.T) {
		before, err := status(t, c)
		if err != nil {
			t.Fatal(err)
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := c.Leave(cctx, "nosuchnode"); !client.IsCode(err, api.CodeNotFound) {
			t.Errorf("leave of an unknown member: %v; want code %s", err, api.CodeNotFound)
		}
		bad := cluster.Member{Name: "db9", Roles: []cluster.Role{"web"}, RaftAddr: "198.18.0.19:7100"}
		if err := c.Join(cctx, bad); !client.IsCode(err, api.CodeBadRequest) {
			t.Errorf("join with a bad role: %v; want code %s", err, api.CodeBadRequest)
		}
		// A write that was already forwarded once and lands on a
		// follower is refused, not forwarded again.
		follower := cluster.NodeName("px2")
		if before.Leader == follower {
			follower = "px1"
		}
		req, _ := http.NewRequestWithContext(cctx, http.MethodDelete, "http://dbha/v1/members/db3", nil)
		req.Header.Set(api.HeaderForwarded, "1")
		hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", s.AgentSocket(follower))
		}}}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("forwarded write to follower %s: HTTP %d; want 503", follower, resp.StatusCode)
		}
		after, err := status(t, c)
		if err != nil {
			t.Fatal(err)
		}
		if len(after.Members) != len(before.Members) || after.Topology.Epoch != before.Topology.Epoch {
			t.Errorf("bad requests changed the state: members %d -> %d, epoch %d -> %d",
				len(before.Members), len(after.Members), before.Topology.Epoch, after.Topology.Epoch)
		}
	})

	t.Run("WriterKillFailoverAndOldWriterReturnsAsReader", func(t *testing.T) {
		var latencies []time.Duration
		for run := 0; run < 5; run++ {
			// Start from the leader's own view (Observed), not a
			// follower's possibly lagging one.
			var st api.Status
			sandbox.Eventually(t, 30*time.Second, "the leader's status", func() error {
				var err error
				if st, err = status(t, c); err != nil {
					return err
				}
				return healthyCluster(st, 3)
			})
			old, epoch := st.Topology.Writer, st.Topology.Epoch
			killed := time.Now()
			if err := s.KillMariaDB(old); err != nil {
				t.Fatal(err)
			}
			var next api.Status
			sandbox.Eventually(t, 60*time.Second, "a new writer committed", func() error {
				var err error
				if next, err = status(t, c); err != nil {
					return err
				}
				if !next.Observed {
					return fmt.Errorf("status from %s is not the leader's view", next.Node)
				}
				if next.Topology.Writer == "" || next.Topology.Writer == old {
					return fmt.Errorf("writer %q at epoch %d", next.Topology.Writer, next.Topology.Epoch)
				}
				return nil
			})
			latencies = append(latencies, time.Since(killed))
			if next.Topology.Epoch <= epoch {
				t.Fatalf("epoch did not rise: %d -> %d", epoch, next.Topology.Epoch)
			}
			// An event records why. Events are read from the answering
			// agent's own FSM, which may trail the leader by a moment.
			sandbox.Eventually(t, 10*time.Second, "a failover event naming "+string(old), func() error {
				cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				defer cancel()
				evs, err := c.Events(cctx, 0, 1000)
				if err != nil {
					return err
				}
				if !slices.ContainsFunc(evs, func(e cluster.Event) bool {
					return e.Kind == cluster.EventFailover && e.Epoch > epoch && strings.Contains(e.Reason, string(old))
				}) {
					return fmt.Errorf("none after epoch %d among %d events", epoch, len(evs))
				}
				return nil
			})
			newWriter := next.Topology.Writer
			if err := s.RestartMariaDB(ctx, old); err != nil {
				t.Fatal(err)
			}
			sandbox.Eventually(t, 120*time.Second, string(old)+" back as a reader", func() error {
				st, err := status(t, c)
				if err != nil {
					return err
				}
				if st.Topology.Writer == old {
					t.Fatalf("recovered old writer %s became the writer again", old)
				}
				if !st.Topology.IsReader(old) {
					return fmt.Errorf("%s not a reader yet: %+v", old, st.Topology)
				}
				return healthyCluster(st, 3)
			})
			if st, err := status(t, c); err == nil && st.Topology.Writer != newWriter {
				t.Fatalf("writer moved from %s to %s after %s returned", newWriter, st.Topology.Writer, old)
			}
		}
		sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
		t.Logf("figure: detect→commit latency (writer mariadbd SIGKILL to new writer committed, observed through the API): median %s over %d runs (min %s, max %s)",
			latencies[len(latencies)/2].Round(time.Millisecond), len(latencies), latencies[0].Round(time.Millisecond), latencies[len(latencies)-1].Round(time.Millisecond))
	})
}

// healthyCluster is apitest.Settled, shared by every sandbox test.
func healthyCluster(st api.Status, dbs int) error { return apitest.Settled(st, dbs, 2) }
