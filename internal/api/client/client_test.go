package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/dbha/dbha/internal/api"
	"github.com/dbha/dbha/internal/api/apitest"
	"github.com/dbha/dbha/internal/api/client"
	"github.com/dbha/dbha/internal/cluster"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve runs the API handler over b on ln with api.Serve until the test
// ends, and returns a client for endpoint.
func serve(t *testing.T, b api.Backend, ln net.Listener, endpoint string, opts ...client.Option) *client.Client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	fwd := &http.Transport{} // the handler's forwarding client, closed below
	h := api.NewHandler(b, api.HandlerOptions{Node: "px1", Client: &http.Client{Transport: fwd, Timeout: 5 * time.Second}})
	go func() { done <- api.Serve(ctx, ln, h) }()
	c, err := client.New(endpoint, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		fwd.CloseIdleConnections()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("api.Serve: %v", err)
		}
	})
	return c
}

func transports(t *testing.T) map[string]func(t *testing.T, b api.Backend) *client.Client {
	return map[string]func(t *testing.T, b api.Backend) *client.Client{
		"tcp": func(t *testing.T, b api.Backend) *client.Client {
			ln, err := api.Listen("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			return serve(t, b, ln, ln.Addr().String())
		},
		"http-url": func(t *testing.T, b api.Backend) *client.Client {
			ln, err := api.Listen("127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			return serve(t, b, ln, "http://"+ln.Addr().String())
		},
		"unix": func(t *testing.T, b api.Backend) *client.Client {
			ep := "unix://" + filepath.Join(t.TempDir(), "api.sock")
			ln, err := api.Listen(ep)
			if err != nil {
				t.Fatal(err)
			}
			return serve(t, b, ln, ep)
		},
	}
}

func TestClientRoundTrips(t *testing.T) {
	for name, connect := range transports(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			b := apitest.New()
			c := connect(t, b)

			want := apitest.HealthyStatus(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
			b.SetStatus(want)
			st, err := c.Status(ctx)
			if err != nil || !reflect.DeepEqual(st, want) {
				t.Errorf("Status = %+v, %v; want the backend's status", st, err)
			}
			if _, err := c.LocalStatus(ctx); err != nil {
				t.Errorf("LocalStatus: %v", err)
			}

			b.SetEvents([]cluster.Event{{Seq: 1, Kind: cluster.EventMember}, {Seq: 2, Kind: cluster.EventFailover}, {Seq: 3, Kind: cluster.EventVIP}})
			evs, err := c.Events(ctx, 1, 1)
			if err != nil || len(evs) != 1 || evs[0].Seq != 2 {
				t.Errorf("Events(1, 1) = %+v, %v; want seq 2", evs, err)
			}
			if calls := b.CallsTo("Events"); len(calls) != 1 || calls[0].Arg != [2]any{uint64(1), 1} {
				t.Errorf("backend saw %+v", calls)
			}

			topo := cluster.Topology{Epoch: 12, Writer: "db1", Readers: []cluster.NodeName{}, Offline: []cluster.OfflineNode{}}
			b.SetWhy(api.Why{Epoch: 12, Current: true, Topology: &topo, Events: []cluster.Event{}})
			w, err := c.Why(ctx, 0)
			if err != nil || !w.Current || w.Topology == nil || w.Topology.Writer != "db1" {
				t.Errorf("Why(0) = %+v, %v", w, err)
			}
			_, err = c.Why(ctx, 3)
			var ae *client.APIError
			if !errors.As(err, &ae) || ae.Status != 404 || ae.Code != api.CodeNotFound || !client.IsCode(err, api.CodeNotFound) || !errors.Is(err, api.ErrNotFound) {
				t.Errorf("Why(3) error %v, want a 404 not_found APIError matching api.ErrNotFound", err)
			}

			rep := cluster.Report{From: "px2", Proxy: &cluster.ProxyReport{Node: "px2", Healthy: true, AppliedEpoch: 12, Probes: []cluster.ProbeResult{}}}
			if err := c.Report(ctx, rep); err != nil {
				t.Errorf("Report: %v", err)
			}
			if calls := b.CallsTo("Report"); len(calls) != 1 || !reflect.DeepEqual(calls[0].Arg, rep) {
				t.Errorf("backend reports %+v", calls)
			}
			err = c.Report(ctx, cluster.Report{From: "px2"})
			if !client.IsCode(err, api.CodeBadRequest) || !errors.Is(err, api.ErrBadRequest) {
				t.Errorf("invalid Report: %v, want bad_request", err)
			}

			m := cluster.Member{Name: "px3", Roles: []cluster.Role{cluster.RoleProxy}, RaftAddr: "198.18.0.23:7071"}
			if err := c.Join(ctx, m); err != nil {
				t.Errorf("Join: %v", err)
			}
			if err := c.Leave(ctx, "px3"); err != nil {
				t.Errorf("Leave: %v", err)
			}
			if calls := b.CallsTo("Leave"); len(calls) != 1 || calls[0].Arg != cluster.NodeName("px3") {
				t.Errorf("backend leaves %+v", calls)
			}

			b.SetHealth(api.Health{Role: api.RoleWriter, OK: true, Epoch: 12, Reason: "writer"})
			h, err := c.Health(ctx, api.RoleWriter)
			if err != nil || !h.OK || h.Node != "px1" {
				t.Errorf("Health(writer) = %+v, %v; want ok", h, err)
			}
			h, err = c.Health(ctx, api.RoleReader)
			if err != nil || h.OK || h.Role != api.RoleReader || h.Reason == "" {
				t.Errorf("Health(reader) = %+v, %v; want not ok with a reason and no error", h, err)
			}
			if _, err := c.Health(ctx, "primary"); !client.IsCode(err, api.CodeNotFound) {
				t.Errorf("Health(primary): %v, want not_found", err)
			}
		})
	}
}

func TestClientNotLeaderCarriesLeader(t *testing.T) {
	b := apitest.New()
	ln, err := api.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := serve(t, b, ln, ln.Addr().String())
	// A forwarded request that lands on a follower is refused with the
	// follower's idea of the leader. Simulate it by forwarding ourselves:
	// the follower's leader is itself, so the hop guard answers.
	b.SetLeaderAPI(ln.Addr().String())
	b.SetErr("Leave", api.ErrNotLeader)
	err = c.Leave(context.Background(), "db9")
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Code != api.CodeNotLeader || ae.Leader != ln.Addr().String() || !errors.Is(err, api.ErrNotLeader) {
		t.Fatalf("Leave: %v, want not_leader naming %s", err, ln.Addr())
	}
	if !strings.Contains(err.Error(), ln.Addr().String()) {
		t.Errorf("error %q does not name the endpoint", err)
	}
}

func TestClientUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := client.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Status(context.Background())
	var ae *client.APIError
	if !errors.Is(err, client.ErrUnreachable) || errors.As(err, &ae) || !strings.Contains(err.Error(), addr) {
		t.Errorf("Status on a closed port: %v, want ErrUnreachable naming %s", err, addr)
	}

	cu, err := client.New("unix://" + filepath.Join(t.TempDir(), "nobody.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer cu.Close()
	if _, err := cu.Status(context.Background()); !errors.Is(err, client.ErrUnreachable) {
		t.Errorf("Status on a missing socket: %v, want ErrUnreachable", err)
	}
}

func TestClientTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers
	}))
	defer srv.Close()
	c, err := client.New(srv.URL, client.WithTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_, err = c.Status(context.Background())
	if !errors.Is(err, client.ErrUnreachable) {
		t.Errorf("Status on a hung agent: %v, want ErrUnreachable", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("timeout took %v, want about 100ms", d)
	}
}

func TestClientNonJSONError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream exploded", http.StatusBadGateway)
	}))
	defer srv.Close()
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Events(context.Background(), 0, 0)
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 502 || ae.Code != api.CodeInternal || ae.Message != "upstream exploded" {
		t.Errorf("Events through a broken proxy: %#v, want a 502 internal APIError with the body as message", err)
	}
}

func TestNewEndpoints(t *testing.T) {
	good := []string{"127.0.0.1:7070", "http://127.0.0.1:7070", "http://127.0.0.1:7070/", "https://db1.example:7443", "[::1]:7070", "unix:///run/dbha/api.sock"}
	for _, ep := range good {
		c, err := client.New(ep)
		if err != nil {
			t.Errorf("New(%q): %v", ep, err)
			continue
		}
		if c.Endpoint() != ep {
			t.Errorf("Endpoint() = %q, want %q", c.Endpoint(), ep)
		}
		c.Close()
	}
	bad := []string{"", "db1", "http://db1", "ftp://db1:21", "unix://", "unix://relative.sock", "http://db1:7070/v1", "http://db1:7070?x=1", "http://u:p@db1:7070", "::::"}
	for _, ep := range bad {
		if _, err := client.New(ep); !errors.Is(err, client.ErrBadEndpoint) {
			t.Errorf("New(%q): %v, want ErrBadEndpoint", ep, err)
		}
	}
}
