//go:build linux

package vip

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"
)

var (
	testVIP  = netip.MustParsePrefix("198.18.0.100/24")
	testPort = 7000
)

// testLogger logs to the test output at debug level.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// newVIP builds a VIP for eth0 in a node's namespace, closed at cleanup.
func newVIP(t *testing.T, node *testNode, mod func(*Config)) *VIP {
	t.Helper()
	c := DefaultConfig()
	c.Address = testVIP
	c.Interface = "eth0"
	c.NetNS = node.Path
	if mod != nil {
		mod(&c)
	}
	v, err := New(c, testLogger(t).With("node", node.Name))
	if err != nil {
		t.Fatalf("new vip on %s: %v", node.Name, err)
	}
	t.Cleanup(func() {
		if err := v.Close(); err != nil {
			t.Errorf("close vip on %s: %v", node.Name, err)
		}
	})
	return v
}

func mustHeld(t *testing.T, v *VIP, want bool) {
	t.Helper()
	got, err := v.Held()
	if err != nil {
		t.Fatalf("held: %v", err)
	}
	if got != want {
		t.Fatalf("held = %v, want %v", got, want)
	}
}

// vipAddr is what the kernel reports for a copy of the VIP.
type vipAddr struct {
	label string
	valid int // valid_lft seconds
}

// vipAddrs returns the copies of the VIP on a node's eth0.
func vipAddrs(n *testNet, node string) []vipAddr {
	var out []vipAddr
	for _, a := range n.addrs(node) {
		ones, _ := a.Mask.Size()
		if a.IP.Equal(net.IP(testVIP.Addr().AsSlice())) && ones == testVIP.Bits() {
			out = append(out, vipAddr{a.Label, a.ValidLft})
		}
	}
	return out
}

// TestAcquireAnnounces: the VIP appears with its label and a finite
// lifetime, a client on the segment sees a burst of GARPCount
// announcements from the owner's MAC, repeated Ensure is idempotent, and a
// refresh announcement follows once RefreshInterval has passed.
func TestAcquireAnnounces(t *testing.T) {
	n := newTestNet(t, "ann", map[string]string{"px1": "198.18.0.1/24", "client": "198.18.0.10/24"})
	px1 := n.node("px1")
	watch := n.watchGARP("client", testVIP.Addr())
	v := newVIP(t, px1, func(c *Config) { c.RefreshInterval = 300 * time.Millisecond })
	ctx := context.Background()

	if err := v.Check(); err != nil {
		t.Fatalf("check: %v", err)
	}
	mustHeld(t, v, false)
	start := time.Now()
	if err := v.Ensure(ctx, true); err != nil {
		t.Fatalf("ensure: %v", err)
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("Ensure(true) took %s; the burst must not block it", d)
	}
	mustHeld(t, v, true)
	got := vipAddrs(n, "px1")
	if len(got) != 1 {
		t.Fatalf("want one VIP address on px1, got %v", got)
	}
	if got[0].label != "eth0:dbha" {
		t.Errorf("label = %q, want eth0:dbha", got[0].label)
	}
	if got[0].valid < 1 || got[0].valid > 2 {
		t.Errorf("valid_lft = %d, want finite 1..2 s", got[0].valid)
	}

	eventually(t, 3*time.Second, "5 gratuitous ARPs from px1", func() bool { return watch.count(px1.MAC) >= 5 })
	if other := watch.total() - watch.count(px1.MAC); other != 0 {
		t.Errorf("%d announcements from other MACs", other)
	}

	// Idempotent: a second Ensure adds nothing.
	if err := v.Ensure(ctx, true); err != nil {
		t.Fatalf("second ensure: %v", err)
	}
	if got := vipAddrs(n, "px1"); len(got) != 1 {
		t.Fatalf("after second Ensure: %v", got)
	}

	// Refresh: keep ensuring; once 300ms passed since the burst's last
	// packet one more announcement goes out.
	burst := watch.count(px1.MAC)
	eventually(t, 3*time.Second, "refresh gratuitous ARP", func() bool {
		if err := v.Ensure(ctx, true); err != nil {
			t.Fatalf("ensure: %v", err)
		}
		return watch.count(px1.MAC) > burst
	})

	// Cancelled context: nothing happens, the error says why.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := v.Ensure(cctx, false); !errors.Is(err, context.Canceled) {
		t.Fatalf("ensure with cancelled ctx: %v, want context.Canceled", err)
	}
	mustHeld(t, v, true)

	if err := v.Ensure(ctx, false); err != nil {
		t.Fatalf("release: %v", err)
	}
	mustHeld(t, v, false)
	if err := v.Ensure(ctx, false); err != nil {
		t.Fatalf("second release: %v", err)
	}
}

// TestMove: release on px1, acquire on px2. The client's neighbour entry
// flips to px2's MAC from the announcements alone (checked before any
// client traffic), and a TCP connect to the VIP reaches px2.
func TestMove(t *testing.T) {
	n := newTestNet(t, "mv", map[string]string{
		"px1": "198.18.0.1/24", "px2": "198.18.0.2/24", "client": "198.18.0.10/24",
	})
	px1, px2 := n.node("px1"), n.node("px2")
	n.serveName("px1", testPort)
	n.serveName("px2", testPort)
	v1, v2 := newVIP(t, px1, nil), newVIP(t, px2, nil)
	ctx := context.Background()
	target := netip.AddrPortFrom(testVIP.Addr(), uint16(testPort))

	if err := v1.Ensure(ctx, true); err != nil {
		t.Fatalf("acquire on px1: %v", err)
	}
	got, err := n.dialName("client", target, 2*time.Second)
	if err != nil || got != "px1" {
		t.Fatalf("client -> VIP before move: %q, %v; want px1", got, err)
	}
	if mac, ok := n.neighbour("client", testVIP.Addr()); !ok || mac.String() != px1.MAC.String() {
		t.Fatalf("client neighbour before move = %v (%v), want px1 %v", mac, ok, px1.MAC)
	}

	if err := v1.Ensure(ctx, false); err != nil {
		t.Fatalf("release on px1: %v", err)
	}
	mustHeld(t, v1, false)
	if err := v2.Ensure(ctx, true); err != nil {
		t.Fatalf("acquire on px2: %v", err)
	}
	mustHeld(t, v2, true)
	eventually(t, 2*time.Second, "client neighbour entry -> px2 MAC", func() bool {
		mac, ok := n.neighbour("client", testVIP.Addr())
		return ok && mac.String() == px2.MAC.String()
	})
	got, err = n.dialName("client", target, 2*time.Second)
	if err != nil || got != "px2" {
		t.Fatalf("client -> VIP after move: %q, %v; want px2", got, err)
	}
	mustHeld(t, v1, false)
}

// TestRestoreAfterManualDelete: an address removed behind our back is put
// back (and re-announced) by the next Ensure(true).
func TestRestoreAfterManualDelete(t *testing.T) {
	n := newTestNet(t, "rst", map[string]string{"px1": "198.18.0.1/24", "client": "198.18.0.10/24"})
	px1 := n.node("px1")
	watch := n.watchGARP("client", testVIP.Addr())
	v := newVIP(t, px1, nil)
	ctx := context.Background()

	if err := v.Ensure(ctx, true); err != nil {
		t.Fatalf("ensure: %v", err)
	}
	eventually(t, 3*time.Second, "first burst", func() bool { return watch.count(px1.MAC) >= 5 })
	n.ip("-n", px1.NS, "addr", "del", testVIP.String(), "dev", "eth0")
	mustHeld(t, v, false)
	if err := v.Ensure(ctx, true); err != nil {
		t.Fatalf("ensure after delete: %v", err)
	}
	mustHeld(t, v, true)
	if got := vipAddrs(n, "px1"); len(got) != 1 || got[0].label != "eth0:dbha" {
		t.Fatalf("restored address: %v", got)
	}
	eventually(t, 3*time.Second, "second burst", func() bool { return watch.count(px1.MAC) >= 10 })

	// A different label must not fool release: the kernel matches labels
	// on delete, so we delete with the label it reports.
	n.ip("-n", px1.NS, "addr", "del", testVIP.String(), "dev", "eth0")
	n.ip("-n", px1.NS, "addr", "add", testVIP.String(), "dev", "eth0", "label", "eth0:other")
	mustHeld(t, v, true)
	if err := v.Ensure(ctx, false); err != nil {
		t.Fatalf("release foreign-labelled address: %v", err)
	}
	mustHeld(t, v, false)
}

// TestKernelLease: the kernel drops an unrenewed address after Lifetime
// (the agent-SIGKILL case) and keeps a renewed one.
func TestKernelLease(t *testing.T) {
	n := newTestNet(t, "lease", map[string]string{"px1": "198.18.0.1/24", "px2": "198.18.0.2/24"})
	expiring := newVIP(t, n.node("px1"), nil) // Lifetime 2s default
	renewed := newVIP(t, n.node("px2"), nil)
	ctx := context.Background()

	// px2: renew every 500ms for 3.5s in the background, checking the
	// address is there before each renewal.
	renewErr := make(chan error, 1)
	go func() {
		renewErr <- func() error {
			if err := renewed.Ensure(ctx, true); err != nil {
				return err
			}
			t := time.NewTicker(500 * time.Millisecond)
			defer t.Stop()
			for end := time.Now().Add(3500 * time.Millisecond); time.Now().Before(end); {
				<-t.C
				held, err := renewed.Held()
				if err != nil {
					return err
				}
				if !held {
					return errors.New("renewed address vanished")
				}
				if err := renewed.Ensure(ctx, true); err != nil {
					return err
				}
			}
			return nil
		}()
	}()

	// px1: add once, never renew.
	start := time.Now()
	if err := expiring.Ensure(ctx, true); err != nil {
		t.Fatalf("ensure: %v", err)
	}
	var gone time.Duration
	eventually(t, 4*time.Second, "unrenewed address to expire", func() bool {
		held, err := expiring.Held()
		if err != nil {
			t.Fatalf("held: %v", err)
		}
		gone = time.Since(start)
		return !held
	})
	if gone < 1500*time.Millisecond {
		t.Errorf("address expired after %s, before its 2s lifetime", gone)
	}
	t.Logf("unrenewed 2s address expired after %s", gone.Round(10*time.Millisecond))

	if err := <-renewErr; err != nil {
		t.Fatalf("renewed address: %v", err)
	}
	mustHeld(t, renewed, true)
	// Releasing an address the kernel already expired is fine.
	if err := expiring.Ensure(ctx, false); err != nil {
		t.Fatalf("release expired: %v", err)
	}
}

// TestCheckAndErrors: preflight and operation errors are sentinels.
func TestCheckAndErrors(t *testing.T) {
	n := newTestNet(t, "chk", map[string]string{"px1": "198.18.0.1/24"})
	px1 := n.node("px1")
	ctx := context.Background()

	missing := newVIP(t, px1, func(c *Config) { c.Interface = "nope0"; c.Label = "" })
	err := missing.Check()
	if !errors.Is(err, ErrInterfaceNotFound) {
		t.Fatalf("check with missing interface: %v, want ErrInterfaceNotFound", err)
	}
	t.Logf("check error: %v", err)
	if err := missing.Ensure(ctx, true); !errors.Is(err, ErrInterfaceNotFound) {
		t.Fatalf("acquire on missing interface: %v, want ErrInterfaceNotFound", err)
	}
	if _, err := missing.Held(); !errors.Is(err, ErrInterfaceNotFound) {
		t.Fatalf("held on missing interface: %v, want ErrInterfaceNotFound", err)
	}
	if err := missing.Ensure(ctx, false); err != nil {
		t.Fatalf("release on missing interface must succeed: %v", err)
	}

	good := newVIP(t, px1, func(*Config) {})
	if err := good.Check(); err != nil {
		t.Fatalf("check of a VIP inside eth0's subnet: %v", err)
	}
	outside := newVIP(t, px1, func(c *Config) { c.Address = netip.MustParsePrefix("198.19.5.5/24") })
	if err := outside.Check(); !errors.Is(err, ErrOutsideSubnet) {
		t.Fatalf("check of a VIP outside eth0's subnet: %v, want ErrOutsideSubnet", err)
	} else {
		t.Logf("check error: %v", err)
	}
	if held, err := outside.Held(); err != nil || held {
		t.Fatalf("a refused VIP is held=%v (%v)", held, err)
	}

	lo := newVIP(t, px1, func(c *Config) { c.Interface = "lo"; c.Label = "" })
	err = lo.Check()
	if !errors.Is(err, ErrNotEthernet) {
		t.Fatalf("check on lo: %v, want ErrNotEthernet", err)
	}
	t.Logf("check error: %v", err)
	if err := lo.Ensure(ctx, true); !errors.Is(err, ErrNotEthernet) {
		t.Fatalf("acquire on lo: %v, want ErrNotEthernet", err)
	}

	if _, err := New(Config{}, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("New with zero config: %v, want ErrInvalidConfig", err)
	}
	c := DefaultConfig()
	c.Address, c.Interface, c.NetNS = testVIP, "eth0", "/var/run/netns/"+n.prefix+"-absent"
	if _, err := New(c, nil); err == nil {
		t.Fatal("New with a missing netns: want error")
	}
}

// TestCurrentNamespace: with NetNS empty, the VIP works in the namespace
// of the thread that called New, even when Ensure runs on other threads.
func TestCurrentNamespace(t *testing.T) {
	n := newTestNet(t, "cur", map[string]string{"px1": "198.18.0.1/24"})
	var v *VIP
	if err := n.inNS("px1", func() error {
		c := DefaultConfig()
		c.Address, c.Interface = testVIP, "eth0"
		var err error
		v, err = New(c, testLogger(t))
		return err
	}); err != nil {
		t.Fatalf("new in px1: %v", err)
	}
	t.Cleanup(func() { _ = v.Close() })
	if err := v.Check(); err != nil {
		t.Fatalf("check: %v", err)
	}
	if err := v.Ensure(context.Background(), true); err != nil {
		t.Fatalf("ensure: %v", err)
	}
	if got := vipAddrs(n, "px1"); len(got) != 1 {
		t.Fatalf("VIP not in px1: %v", got)
	}
}

// TestCloseStopsBurst: Ensure(false) and Close cancel a running burst at
// once (goleak in TestMain proves the goroutine is gone), Close leaves the
// address in place, and a closed VIP refuses work.
func TestCloseStopsBurst(t *testing.T) {
	n := newTestNet(t, "cls", map[string]string{"px1": "198.18.0.1/24", "client": "198.18.0.10/24"})
	px1 := n.node("px1")
	watch := n.watchGARP("client", testVIP.Addr())
	slow := func(c *Config) { c.GARPInterval = time.Second; c.Lifetime = 10 * time.Second }
	v := newVIP(t, px1, slow)
	ctx := context.Background()

	// Ensure(false) mid-burst: the first announcement went out, the rest
	// of the burst never does.
	if err := v.Ensure(ctx, true); err != nil {
		t.Fatalf("ensure: %v", err)
	}
	eventually(t, 2*time.Second, "first announcement", func() bool { return watch.count(px1.MAC) >= 1 })
	start := time.Now()
	if err := v.Ensure(ctx, false); err != nil {
		t.Fatalf("release: %v", err)
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("release mid-burst took %s", d)
	}
	released := watch.count(px1.MAC)

	// Close mid-burst: returns at once and keeps the address.
	v2 := newVIP(t, px1, slow)
	if err := v2.Ensure(ctx, true); err != nil {
		t.Fatalf("ensure: %v", err)
	}
	eventually(t, 2*time.Second, "second burst's first announcement", func() bool { return watch.count(px1.MAC) > released })
	start = time.Now()
	if err := v2.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("close mid-burst took %s", d)
	}
	if got := vipAddrs(n, "px1"); len(got) != 1 {
		t.Fatalf("Close must not remove the address: %v", got)
	}
	if err := v2.Ensure(ctx, true); !errors.Is(err, ErrClosed) {
		t.Fatalf("ensure after close: %v, want ErrClosed", err)
	}
	if err := v2.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}

	// Both bursts were cut short: with 1s between packets, at most two
	// announcements each could have gone out, and after a full interval
	// past Close no more arrive (the watcher gets 200ms to drain).
	time.Sleep(200 * time.Millisecond)
	closed := watch.count(px1.MAC)
	if closed > 4 {
		t.Fatalf("%d announcements from two cancelled 5-packet bursts", closed)
	}
	deadline := start.Add(1200 * time.Millisecond)
	for time.Now().Before(deadline) {
		if c := watch.count(px1.MAC); c != closed {
			t.Fatalf("announcements after cancel: %d, want %d", c, closed)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
