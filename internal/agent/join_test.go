package agent_test

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dbha/dbha/internal/agent"
	"github.com/dbha/dbha/internal/api"
	"github.com/dbha/dbha/internal/api/client"
	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/config"
	"github.com/dbha/dbha/internal/proxy"
	"github.com/dbha/dbha/internal/testport"
)

// recordingDriver is a proxy driver that only remembers what it was asked.
type recordingDriver struct {
	mu   sync.Mutex
	last proxy.Routing
}

func (d *recordingDriver) Apply(_ context.Context, r proxy.Routing) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.last = r
	return nil
}

func (d *recordingDriver) Observe(context.Context) (proxy.Observation, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return proxy.Observation{AppliedEpoch: d.last.Topology.Epoch}, nil
}

func freePort(t *testing.T) string {
	t.Helper()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(testport.Free(t)))
}

// proxyAgentConfig is a proxy-only agent on loopback.
func proxyAgentConfig(t *testing.T, name string, peers, join []string, raftAddr, apiAddr string) config.Config {
	t.Helper()
	c := config.Config{
		Node:    config.NodeConfig{Name: name, Roles: []string{"proxy"}, Priority: 100},
		DataDir: t.TempDir(),
		Raft:    config.RaftConfig{Bind: raftAddr, Advertise: raftAddr, Peers: peers, Join: join},
		API:     config.APIConfig{Bind: apiAddr, Advertise: apiAddr},
		Proxy:   config.ProxyConfig{Driver: "haproxy", HAProxy: config.HAProxyConfig{Socket: "/nonexistent", WriterBackend: "w", ReaderBackend: "r"}},
		VIP:     config.VIPConfig{OnStop: "release", Lease: time.Second, RenewInterval: 200 * time.Millisecond},
		Policy:  config.PolicyConfig{PollInterval: 100 * time.Millisecond, FailAfter: 3, RecoverAfter: 3, AgentTimeout: time.Second},
		Log:     config.LogConfig{Level: "info", Format: "text"},
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestJoinThroughAPI forms a static 3-agent group on loopback and joins a
// fourth agent that knows only one agent's API address.
func TestJoinThroughAPI(t *testing.T) {
	var (
		names = []string{"px1", "px2", "px3", "px4"}
		raft  = map[string]string{}
		apis  = map[string]string{}
		peers []string
	)
	for _, n := range names {
		raft[n], apis[n] = freePort(t), freePort(t)
	}
	for _, n := range names[:3] {
		peers = append(peers, n+"="+raft[n])
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	start := func(cfg config.Config) {
		a, err := agent.New(cfg, agent.Deps{Driver: &recordingDriver{}})
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.Run(ctx); err != nil {
				t.Errorf("agent %s: %v", cfg.Node.Name, err)
			}
		}()
	}
	for _, n := range names[:3] {
		start(proxyAgentConfig(t, n, peers, nil, raft[n], apis[n]))
	}
	// px4 is not in the static list: it joins through px2's API, which
	// forwards to the leader if px2 does not lead.
	start(proxyAgentConfig(t, "px4", nil, []string{apis["px2"]}, raft["px4"], apis["px4"]))

	c, err := client.New(apis["px1"])
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := c.Status(ctx)
		if err == nil && len(st.Members) == 4 && len(st.Raft) == 4 {
			voters := 0
			for _, s := range st.Raft {
				if s.Suffrage == "voter" || s.Suffrage == "Voter" {
					voters++
				}
			}
			if voters != 4 {
				t.Fatalf("px4 joined with %d voters; want 4: %+v", voters, st.Raft)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("px4 did not join: %+v %v", st, err)
		}
		time.Sleep(50 * time.Millisecond) // polling
	}
	// A registration with a bad member is refused and changes nothing.
	err = c.Join(ctx, cluster.Member{Name: "bad name", Roles: []cluster.Role{cluster.RoleProxy}, RaftAddr: "127.0.0.1:1"})
	if !client.IsCode(err, api.CodeBadRequest) {
		t.Fatalf("bad member: %v; want %s", err, api.CodeBadRequest)
	}
	// Re-registering a member at another raft address is a conflict.
	err = c.Join(ctx, cluster.Member{Name: "px4", Roles: []cluster.Role{cluster.RoleProxy}, RaftAddr: "127.0.0.1:1", APIAddr: apis["px4"]})
	if !client.IsCode(err, api.CodeConflict) {
		t.Fatalf("member at a new raft address: %v; want %s", err, api.CodeConflict)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Members) != 4 {
		t.Fatalf("refused joins changed the members: %d", len(st.Members))
	}
}
