package haproxy_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dbha/dbha/internal/haproxy"
)

// fakeAgent answers /v1/health/writer with writerStatus and
// /v1/health/reader with 200, as a dbagent would.
type fakeAgent struct {
	srv          *httptest.Server
	writerStatus atomic.Int32
}

func newFakeAgent(t *testing.T) *fakeAgent {
	a := &fakeAgent{}
	a.writerStatus.Store(http.StatusOK)
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/health/writer":
			w.WriteHeader(int(a.writerStatus.Load()))
		case "/v1/health/reader":
			w.WriteHeader(http.StatusOK)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *fakeAgent) port(t *testing.T) int {
	u, err := url.Parse(a.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The HTTP health check is the second line of defence: when the writer's
// own agent stops vouching for it, HAProxy takes it down and cuts its
// sessions even though dbha set it ready, and dbha does not fight that.
func TestHealthCheckIsASecondLineOfDefence(t *testing.T) {
	t.Parallel()
	agents := map[string]*fakeAgent{}
	b := newBedWith(t, func(td *haproxy.TemplateData) {
		td.HealthCheck = true
		td.CheckInterval = 100 * time.Millisecond
		td.TimeoutCheck = 500 * time.Millisecond
		for i := range td.Servers {
			a := newFakeAgent(t)
			agents[td.Servers[i].Name] = a
			td.Servers[i].CheckPort = a.port(t)
		}
	})
	b.apply(b.routing(1, "db1", nodes{"db2", "db3"}, nil))
	wc, err := b.dial(b.writerAddr)
	if err != nil || wc.Landed != "db1" {
		t.Fatalf("dial writer: %v %v", err, wc)
	}
	defer wc.Close()

	agents["db1"].writerStatus.Store(http.StatusServiceUnavailable)
	eventually(t, 3*time.Second, "health check marks db1 down", func() bool {
		return b.snapshot()["writer/db1"] == haproxy.StatusDown
	})
	if !wc.WaitClosed(2 * time.Second) {
		t.Fatal("session to a writer its agent disowned survived")
	}
	if c, err := b.dial(b.writerAddr); err == nil {
		c.Close()
		t.Fatalf("a write landed on %s while the writer is down", c.Landed)
	}
	before := b.drv.Commands()
	b.apply(b.routing(1, "db1", nodes{"db2", "db3"}, nil))
	if after := b.drv.Commands(); after.Set != before.Set {
		t.Fatalf("apply fought the health check: %+v -> %+v", before, after)
	}

	agents["db1"].writerStatus.Store(http.StatusOK)
	eventually(t, 3*time.Second, "db1 back up", func() bool {
		return b.snapshot()["writer/db1"] == haproxy.StatusReady
	})
	if landed := b.landings(b.writerAddr, 2); !allOn(landed, "db1") {
		t.Fatalf("writes landed on %v", landed)
	}
}
