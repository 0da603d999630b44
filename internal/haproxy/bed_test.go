package haproxy_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/haproxy"
	"github.com/dbha/dbha/internal/haproxy/haproxytest"
	"github.com/dbha/dbha/internal/proxy"
)

const proxyName = "px-test"

// bed is one real HAProxy in front of fake DB nodes db1..db3.
type bed struct {
	t          *testing.T
	dir        string
	proc       *haproxytest.Process
	drv        *haproxy.Driver
	backends   map[cluster.NodeName]*haproxytest.Backend
	writerAddr string
	readerAddr string
	userSocket string // a "level user" socket on the same HAProxy
}

func newBed(t *testing.T) *bed { t.Helper(); return newBedWith(t, nil) }

// newBedWith lets edit change the template data before rendering.
func newBedWith(t *testing.T, edit func(*haproxy.TemplateData)) *bed {
	t.Helper()
	dir := t.TempDir()
	b := &bed{t: t, dir: dir, backends: map[cluster.NodeName]*haproxytest.Backend{}}
	td := haproxy.TemplateData{
		SocketPath:        filepath.Join(dir, "admin.sock"),
		MonitorSocketPath: filepath.Join(dir, "user.sock"),
		ServerStateFile:   filepath.Join(dir, "server-state"),
		BindAddr:          "127.0.0.1",
		WriterPort:        haproxytest.FreePort(t),
		ReaderPort:        haproxytest.FreePort(t),
		TimeoutClient:     time.Minute,
		TimeoutServer:     time.Minute,
	}
	for _, n := range []cluster.NodeName{"db1", "db2", "db3"} {
		be := haproxytest.StartBackend(t, string(n))
		b.backends[n] = be
		td.Servers = append(td.Servers, haproxy.TemplateServer{Name: string(n), Host: be.Host, Port: be.Port})
	}
	if edit != nil {
		edit(&td)
	}
	cfg, err := haproxy.RenderConfig(td)
	if err != nil {
		t.Fatal(err)
	}
	b.proc = haproxytest.Start(t, cfg, td.SocketPath)
	b.writerAddr = "127.0.0.1:" + strconv.Itoa(td.WriterPort)
	b.readerAddr = "127.0.0.1:" + strconv.Itoa(td.ReaderPort)
	b.userSocket = td.MonitorSocketPath
	b.drv = b.driver(haproxy.Config{})
	return b
}

// driver returns a driver on the bed, with fields of over set.
func (b *bed) driver(over haproxy.Config) *haproxy.Driver {
	b.t.Helper()
	cfg := over
	cfg.Name = proxyName
	if cfg.Socket == "" {
		cfg.Socket = filepath.Join(b.dir, "admin.sock")
	}
	d, err := haproxy.New(cfg, testLogger(b.t))
	if err != nil {
		b.t.Fatal(err)
	}
	return d
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

// routing builds a routing for the bed's backends.
func (b *bed) routing(epoch cluster.Epoch, writer cluster.NodeName, readers []cluster.NodeName, offline map[cluster.NodeName]cluster.OfflineReason) proxy.Routing {
	t := cluster.Topology{Epoch: epoch, Writer: writer, Readers: readers}
	for n, r := range offline {
		t.Offline = append(t.Offline, cluster.OfflineNode{Node: n, Reason: r})
	}
	r := proxy.Routing{Topology: t.Normalize(), Backends: map[cluster.NodeName]proxy.Backend{}}
	for n, be := range b.backends {
		r.Backends[n] = proxy.Backend{Host: be.Host, Port: be.Port}
	}
	return r
}

func (b *bed) apply(r proxy.Routing) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.drv.Apply(ctx, r); err != nil {
		b.t.Fatalf("apply: %v", err)
	}
}

// snapshot is pool/node → status, from a fresh driver (so it works while
// the driver under test is misconfigured).
type snapshot map[string]string

func (b *bed) snapshot() snapshot {
	b.t.Helper()
	obs := b.observe()
	s := snapshot{}
	for _, sv := range obs.Servers {
		s[sv.Pool+"/"+string(sv.Node)] = sv.Status
	}
	return s
}

func (b *bed) observe() proxy.Observation {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	obs, err := b.driver(haproxy.Config{}).Observe(ctx)
	if err != nil {
		b.t.Fatalf("observe: %v", err)
	}
	return obs
}

// ready lists the nodes ready in pool.
func (s snapshot) ready(pool string) []string {
	var out []string
	for k, v := range s {
		if v == haproxy.StatusReady && len(k) > len(pool) && k[:len(pool)+1] == pool+"/" {
			out = append(out, k[len(pool)+1:])
		}
	}
	slices.Sort(out)
	return out
}

// dial connects through a frontend and reports where it landed.
func (b *bed) dial(addr string) (*haproxytest.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return haproxytest.Dial(ctx, addr)
}

// landings opens n connections through addr and returns where each landed,
// closing them again.
func (b *bed) landings(addr string, n int) []string {
	b.t.Helper()
	var out []string
	for range n {
		c, err := b.dial(addr)
		if err != nil {
			b.t.Fatalf("dial %s: %v", addr, err)
		}
		out = append(out, c.Landed)
		c.Close()
	}
	return out
}

// eventually polls cond every 10 ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
