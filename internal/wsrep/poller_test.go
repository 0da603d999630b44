package wsrep

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/wsrep/wsreptest"
)

// recorder collects a poller's observations.
type recorder struct {
	mu  sync.Mutex
	obs []cluster.Observation
}

func (r *recorder) add(o cluster.Observation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.obs = append(r.obs, o)
}

func (r *recorder) all() []cluster.Observation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]cluster.Observation(nil), r.obs...)
}

// waitFor polls until an observation at index from or later satisfies ok,
// and returns its index.
func (r *recorder) waitFor(t *testing.T, from int, timeout time.Duration, what string, ok func(cluster.Observation) bool) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		obs := r.all()
		for i := from; i < len(obs); i++ {
			if ok(obs[i]) {
				return i
			}
		}
		if time.Now().After(deadline) {
			last := "none"
			if len(obs) > 0 {
				o := obs[len(obs)-1]
				last = string(o.Health) + " " + o.Error
			}
			t.Fatalf("no observation %s within %s (%d observations, last: %s)", what, timeout, len(obs), last)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkStreaks verifies the streak rule over a whole sequence: 1 after a
// change of health, one more than before otherwise.
func checkStreaks(t *testing.T, obs []cluster.Observation) {
	t.Helper()
	for i, o := range obs {
		want := 1
		if i > 0 && obs[i-1].Health == o.Health {
			want = obs[i-1].Streak + 1
		}
		if o.Streak != want {
			t.Errorf("observation %d (%s): streak %d, want %d", i, o.Health, o.Streak, want)
		}
	}
}

// fakeClock hands out increasing times one second apart.
type fakeClock struct{ n atomic.Int64 }

var clockBase = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func (c *fakeClock) Now() time.Time { return clockBase.Add(time.Duration(c.n.Add(1)) * time.Second) }

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startPoller runs a poller against addr until the test ends.
func startPoller(t *testing.T, cfg PollerConfig, deps PollerDeps) (*Poller, *recorder) {
	t.Helper()
	if cfg.Node == "" {
		cfg.Node = "db1"
	}
	if cfg.User == "" {
		cfg.User, cfg.Password = wsreptest.User, wsreptest.Password
	}
	if cfg.Interval == 0 {
		cfg.Interval = 20 * time.Millisecond
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 500 * time.Millisecond
	}
	if deps.Logger == nil {
		deps.Logger = testLogger(t)
	}
	p, err := NewPoller(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, rec.add) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Run did not return within 5s of cancel")
		}
	})
	return p, rec
}

func TestPollerHealthyStreakAndClock(t *testing.T) {
	srv := wsreptest.Start(t)
	clock := &fakeClock{}
	var dials atomic.Int64
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}
	p, rec := startPoller(t, PollerConfig{Node: "db7", Addr: srv.Addr()}, PollerDeps{Now: clock.Now, Dial: dial})
	rec.waitFor(t, 0, 5*time.Second, "ok with streak 5", func(o cluster.Observation) bool {
		return o.Health == cluster.HealthOK && o.Streak >= 5
	})
	obs := rec.all()
	checkStreaks(t, obs)
	for i, o := range obs[:5] {
		if o.Node != "db7" || !o.Reachable || o.Error != "" || o.Wsrep == nil || *o.Wsrep != synced {
			t.Fatalf("observation %d = %+v (wsrep %+v), want node db7, reachable, status %+v", i, o, o.Wsrep, synced)
		}
		if o.Streak != i+1 {
			t.Errorf("observation %d streak %d, want %d", i, o.Streak, i+1)
		}
		if i > 0 && !o.Time.After(obs[i-1].Time) {
			t.Errorf("observation %d time %s not after %s", i, o.Time, obs[i-1].Time)
		}
		if o.Time.Before(clockBase) || o.Time.After(clockBase.Add(time.Hour)) {
			t.Errorf("observation %d time %s: not from the injected clock", i, o.Time)
		}
	}
	if dials.Load() == 0 {
		t.Error("the injected dialer was never used")
	}
	// One connection serves every poll.
	if n := dials.Load(); n > 2 {
		t.Errorf("%d dials for %d polls: connections are not reused", n, len(obs))
	}
	latest, ok := p.Latest()
	if !ok || latest.Health != cluster.HealthOK || latest.Streak < 5 {
		t.Errorf("Latest = %+v, %v; want ok with streak >= 5", latest, ok)
	}
}

func TestPollerTransitions(t *testing.T) {
	srv := wsreptest.Start(t)
	_, rec := startPoller(t, PollerConfig{Addr: srv.Addr()}, PollerDeps{})
	i := rec.waitFor(t, 0, 5*time.Second, "ok x3", func(o cluster.Observation) bool { return o.Health == cluster.HealthOK && o.Streak >= 3 })

	srv.SetStatus(map[string]string{"wsrep_local_state": "2", "wsrep_local_state_comment": "Donor/Desynced"})
	srv.SetVars(map[string]string{"wsrep_desync": "1"})
	i = rec.waitFor(t, i, 5*time.Second, "desynced x3", func(o cluster.Observation) bool { return o.Health == cluster.HealthDesynced && o.Streak >= 3 })

	srv.SetVars(map[string]string{"wsrep_desync": "0"})
	i = rec.waitFor(t, i, 5*time.Second, "donor", func(o cluster.Observation) bool { return o.Health == cluster.HealthDonor })

	srv.SetStatus(map[string]string{"wsrep_cluster_status": "non-Primary", "wsrep_local_state": "4", "wsrep_local_state_comment": "Synced"})
	i = rec.waitFor(t, i, 5*time.Second, "non_primary", func(o cluster.Observation) bool { return o.Health == cluster.HealthNonPrimary })

	srv.SetStatus(map[string]string{"wsrep_cluster_status": "Primary"})
	srv.SetVars(map[string]string{"read_only": "1"})
	i = rec.waitFor(t, i, 5*time.Second, "not_ready (read_only)", func(o cluster.Observation) bool { return o.Health == cluster.HealthNotReady })

	srv.SetVars(map[string]string{"read_only": "0"})
	rec.waitFor(t, i, 5*time.Second, "ok x3 again", func(o cluster.Observation) bool { return o.Health == cluster.HealthOK && o.Streak >= 3 })
	checkStreaks(t, rec.all())
}

func TestPollerServerStopAndRestart(t *testing.T) {
	srv := wsreptest.Start(t)
	p, rec := startPoller(t, PollerConfig{Addr: srv.Addr()}, PollerDeps{})
	i := rec.waitFor(t, 0, 5*time.Second, "ok x2", func(o cluster.Observation) bool { return o.Health == cluster.HealthOK && o.Streak >= 2 })

	srv.Stop() // as SIGKILL: the pooled connection dies with the listener
	i = rec.waitFor(t, i, 5*time.Second, "unreachable x3", func(o cluster.Observation) bool {
		return o.Health == cluster.HealthUnreachable && o.Streak >= 3
	})
	if o := rec.all()[i]; o.Reachable || o.Error == "" || o.Wsrep != nil {
		t.Errorf("unreachable observation %+v: want Reachable false, an error and no status", o)
	}

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	j := rec.waitFor(t, i, 5*time.Second, "ok after restart", func(o cluster.Observation) bool { return o.Health == cluster.HealthOK })
	if o := rec.all()[j]; o.Streak != 1 {
		t.Errorf("first ok after restart has streak %d, want 1", o.Streak)
	}
	rec.waitFor(t, j, 5*time.Second, "ok x3 after restart", func(o cluster.Observation) bool { return o.Health == cluster.HealthOK && o.Streak >= 3 })
	checkStreaks(t, rec.all())
	if l, _ := p.Latest(); l.Health != cluster.HealthOK {
		t.Errorf("Latest after restart = %s, want ok", l.Health)
	}
}

// TestPollerHungServer: a server that accepts but never answers makes each
// poll time out, and polls never stack up behind it.
func TestPollerHungServer(t *testing.T) {
	srv := wsreptest.Start(t)
	const timeout = 150 * time.Millisecond
	_, rec := startPoller(t, PollerConfig{Addr: srv.Addr(), Interval: 10 * time.Millisecond, Timeout: timeout}, PollerDeps{})
	i := rec.waitFor(t, 0, 5*time.Second, "ok", func(o cluster.Observation) bool { return o.Health == cluster.HealthOK })

	srv.Stall()
	i = rec.waitFor(t, i, 5*time.Second, "unreachable", func(o cluster.Observation) bool { return o.Health == cluster.HealthUnreachable })
	q0, start := srv.Queries(), time.Now()
	i = rec.waitFor(t, i, 5*time.Second, "unreachable x4", func(o cluster.Observation) bool {
		return o.Health == cluster.HealthUnreachable && o.Streak >= 4
	})
	elapsed := time.Since(start)
	// One poll (one query) per timeout, not one per 10 ms interval.
	if started, limit := srv.Queries()-q0, int(elapsed/timeout)+2; started > limit {
		t.Errorf("%d queries started in %s with a %s timeout: polls stack up (limit %d)", started, elapsed, timeout, limit)
	}
	srv.Unstall()
	rec.waitFor(t, i, 5*time.Second, "ok after unstall", func(o cluster.Observation) bool { return o.Health == cluster.HealthOK })
}

func TestPollerServerAnswersButCannotBeRead(t *testing.T) {
	t.Run("provider not loaded", func(t *testing.T) {
		srv := wsreptest.Start(t)
		srv.DeleteStatus("wsrep_local_state", "wsrep_local_state_comment")
		_, rec := startPoller(t, PollerConfig{Addr: srv.Addr()}, PollerDeps{})
		i := rec.waitFor(t, 0, 5*time.Second, "any", func(cluster.Observation) bool { return true })
		o := rec.all()[i]
		if !o.Reachable || o.Health != cluster.HealthNotSynced || o.Wsrep != nil || o.Error == "" {
			t.Errorf("observation %+v: want reachable, not_synced, no status, an error", o)
		}
	})
	t.Run("access denied", func(t *testing.T) {
		srv := wsreptest.Start(t)
		_, rec := startPoller(t, PollerConfig{Addr: srv.Addr(), User: wsreptest.User, Password: "wrong"}, PollerDeps{})
		i := rec.waitFor(t, 0, 5*time.Second, "any", func(cluster.Observation) bool { return true })
		o := rec.all()[i]
		if !o.Reachable || o.Health != cluster.HealthNotSynced || o.Error == "" {
			t.Errorf("observation %+v: want reachable, not_synced, an error", o)
		}
	})
	t.Run("nothing listening", func(t *testing.T) {
		_, rec := startPoller(t, PollerConfig{Addr: closedPort(t)}, PollerDeps{})
		i := rec.waitFor(t, 0, 5*time.Second, "unreachable x2", func(o cluster.Observation) bool {
			return o.Health == cluster.HealthUnreachable && o.Streak >= 2
		})
		if o := rec.all()[i]; o.Reachable || o.Error == "" {
			t.Errorf("observation %+v: want unreachable with an error", o)
		}
	})
}

func TestPollerRunOnceAtATime(t *testing.T) {
	srv := wsreptest.Start(t)
	p, rec := startPoller(t, PollerConfig{Addr: srv.Addr()}, PollerDeps{})
	rec.waitFor(t, 0, 5*time.Second, "ok", func(o cluster.Observation) bool { return o.Health == cluster.HealthOK })
	if err := p.Run(context.Background(), nil); !errors.Is(err, ErrAlreadyRunning) {
		t.Errorf("second Run = %v, want ErrAlreadyRunning", err)
	}
}

func TestPollerStopsPromptlyAndKeepsLatest(t *testing.T) {
	srv := wsreptest.Start(t)
	p, err := NewPoller(PollerConfig{Node: "db1", Addr: srv.Addr(), User: wsreptest.User, Password: wsreptest.Password,
		Interval: time.Hour}, PollerDeps{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Latest(); ok {
		t.Fatal("Latest before any poll reports an observation")
	}
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan cluster.Observation, 1)
	done := make(chan error, 1)
	go func() {
		done <- p.Run(ctx, func(o cluster.Observation) { got <- o })
	}()
	var first cluster.Observation
	select {
	case first = <-got: // the first poll runs at once, not after Interval
	case <-time.After(5 * time.Second):
		t.Fatal("no observation within 5s with a one-hour interval")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel = %v, want nil", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return within 2s of cancel")
	}
	if l, ok := p.Latest(); !ok || l.Health != cluster.HealthOK || l.Streak != first.Streak {
		t.Errorf("Latest = %+v, %v; want the first observation %+v", l, ok, first)
	}
}

func TestPollerConfigValidate(t *testing.T) {
	good := PollerConfig{Node: "db1", Addr: "127.0.0.1:3306", User: "dbha"}
	tests := []struct {
		name    string
		mod     func(c *PollerConfig)
		wantErr int // number of problems
	}{
		{"good", func(*PollerConfig) {}, 0},
		{"unix socket", func(c *PollerConfig) { c.Net, c.Addr = "unix", "/run/mysqld/mysqld.sock" }, 0},
		{"no node", func(c *PollerConfig) { c.Node = "" }, 1},
		{"no port", func(c *PollerConfig) { c.Addr = "127.0.0.1" }, 1},
		{"bad net", func(c *PollerConfig) { c.Net = "udp" }, 1},
		{"empty socket", func(c *PollerConfig) { c.Net, c.Addr = "unix", "" }, 1},
		{"everything wrong", func(c *PollerConfig) {
			*c = PollerConfig{Addr: "x", Interval: -1, Timeout: -1}
		}, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.mod(&c)
			err := c.Validate()
			n := 0
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				n = len(j.Unwrap())
			}
			if n != tc.wantErr || (tc.wantErr > 0) != errors.Is(err, ErrInvalidConfig) {
				t.Errorf("Validate = %v (%d problems), want %d problems wrapping ErrInvalidConfig", err, n, tc.wantErr)
			}
			if _, err := NewPoller(c, PollerDeps{}); (err != nil) != (tc.wantErr > 0) {
				t.Errorf("NewPoller error %v, want error %v", err, tc.wantErr > 0)
			}
		})
	}
	if c := (PollerConfig{}).WithDefaults(); c.Interval != DefaultInterval || c.Timeout != DefaultTimeout || c.Net != "tcp" {
		t.Errorf("defaults = %+v", c)
	}
}

// closedPort returns a 127.0.0.1 address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

func TestPollerConfigHidesPassword(t *testing.T) {
	c := PollerConfig{Node: "db1", Addr: "127.0.0.1:3306", User: "dbha", Password: "s3cret-pw"}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", "cfg", c)
	for _, out := range []string{buf.String(), fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%v", &c)} {
		if strings.Contains(out, c.Password) {
			t.Errorf("password printed: %s", out)
		}
		if !strings.Contains(out, "127.0.0.1:3306") {
			t.Errorf("address missing: %s", out)
		}
	}
}
