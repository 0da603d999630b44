//go:build linux

package vip

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// startTestGuard starts this test binary as the guard of v's address, the
// way dbagent starts itself.
func startTestGuard(t *testing.T, cfg Config) *Guard {
	t.Helper()
	t.Setenv(guardChildEnv, "1")
	g, err := StartGuard([]string{os.Args[0], GuardCommand}, cfg, "text", tWriter{t})
	if err != nil {
		t.Fatalf("start guard: %v", err)
	}
	t.Cleanup(func() { _ = g.Close() })
	return g
}

// TestGuard: the guard removes the address when the agent's end of its
// pipe closes (what the kernel does when the agent dies) and when a hold
// deadline passes without a newer one; it keeps it while holds arrive, and
// leaves it on exit after retain. The kernel lifetime is off here, so only
// the guard can remove the address.
func TestGuard(t *testing.T) {
	n := newTestNet(t, "grd", map[string]string{"px1": "198.18.0.1/24"})
	px1 := n.node("px1")
	ctx := context.Background()
	noLifetime := func(c *Config) { c.Lifetime = 0 }
	v := newVIP(t, px1, noLifetime)

	acquire := func(t *testing.T) Config {
		t.Helper()
		if err := v.Ensure(ctx, true); err != nil {
			t.Fatalf("ensure: %v", err)
		}
		mustHeld(t, v, true)
		return v.cfg
	}

	t.Run("agent exit removes the address", func(t *testing.T) {
		g := startTestGuard(t, acquire(t))
		if err := g.Hold(time.Hour); err != nil {
			t.Fatal(err)
		}
		mustHeld(t, v, true)
		if err := g.Close(); err != nil {
			t.Fatalf("guard exit: %v", err)
		}
		// Close returns after the guard exited, and it removes the
		// address before exiting.
		mustHeld(t, v, false)
	})

	t.Run("a passed deadline removes the address", func(t *testing.T) {
		g := startTestGuard(t, acquire(t))
		if err := g.Hold(300 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
		mustHeld(t, v, true)
		eventually(t, 5*time.Second, "guard removes the address after its deadline", func() bool {
			held, err := v.Held()
			return err == nil && !held
		})
		if !g.Alive() {
			t.Fatal("the guard exited; it should keep watching for the next hold")
		}
	})

	t.Run("renewed holds keep the address", func(t *testing.T) {
		g := startTestGuard(t, acquire(t))
		end := time.Now().Add(1500 * time.Millisecond)
		for time.Now().Before(end) {
			if err := g.Hold(300 * time.Millisecond); err != nil {
				t.Fatal(err)
			}
			mustHeld(t, v, true)
			time.Sleep(50 * time.Millisecond) // the renewal cadence under test
		}
		// "none" cancels the deadline: the address stays (the agent
		// removes it itself) until the agent exits.
		if err := g.None(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(600 * time.Millisecond)
		for time.Now().Before(deadline) {
			mustHeld(t, v, true)
			time.Sleep(50 * time.Millisecond) // sampling a window
		}
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
		mustHeld(t, v, false)
	})

	t.Run("a guard that cannot act does not start", func(t *testing.T) {
		cfg := v.cfg
		cfg.Interface, cfg.Label = "nosuch0", ""
		t.Setenv(guardChildEnv, "1")
		g, err := StartGuard([]string{os.Args[0], GuardCommand}, cfg, "text", tWriter{t})
		if err == nil {
			_ = g.Close()
			t.Fatal("a guard for a missing interface said it was ready")
		}
		if !strings.Contains(err.Error(), "start vip guard") {
			t.Errorf("error does not say what failed: %v", err)
		}
	})

	t.Run("retain leaves the address on exit", func(t *testing.T) {
		g := startTestGuard(t, acquire(t))
		if err := g.Hold(time.Hour); err != nil {
			t.Fatal(err)
		}
		if err := g.Retain(); err != nil {
			t.Fatal(err)
		}
		if err := g.Close(); err != nil {
			t.Fatal(err)
		}
		mustHeld(t, v, true)
		if err := v.Ensure(ctx, false); err != nil {
			t.Fatal(err)
		}
	})
}

// TestGuardArgs: the arguments round-trip, and bad ones are refused with
// every problem named.
func TestGuardArgs(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Address = testVIP
	cfg.Interface = "eth0"
	cfg.NetNS = "/var/run/netns/x"
	got, format, err := ParseGuardArgs(GuardArgs(cfg, "json"), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Address != cfg.Address || got.Interface != "eth0" || got.Label != "eth0:dbha" || got.NetNS != cfg.NetNS || format != "json" {
		t.Fatalf("round trip: %+v %q", got, format)
	}
	for _, bad := range [][]string{
		{},
		{"--address", "198.18.0.250", "--interface", "eth0"},
		{"--address", testVIP.String()},
		{"--address", testVIP.String(), "--interface", "eth0", "--log-format", "xml"},
		{"--address", testVIP.String(), "--interface", "eth0", "extra"},
	} {
		if _, _, err := ParseGuardArgs(bad, &bytes.Buffer{}); err == nil {
			t.Errorf("ParseGuardArgs(%q) accepted", bad)
		}
	}
}
