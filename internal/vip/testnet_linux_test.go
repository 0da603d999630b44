//go:build linux

package vip

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// requireRoot skips a namespace test when not root, unless CI is set, in
// which case the missing privilege is a failure.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		if _, err := exec.LookPath("ip"); err != nil {
			t.Fatalf("root namespace test needs iproute2's ip: %v", err)
		}
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("namespace test needs root (CI is set, so not skipping)")
	}
	t.Skip("namespace test needs root")
}

// testNet is a throwaway layer-2 segment built from network namespaces: a
// hub namespace holding bridge br0, and one namespace per node whose eth0
// is a veth plugged into br0. Names are dbhavip<pid>-<tag>-<node>. IPv6
// is disabled everywhere (no DAD, no noise), the bridge has STP, forward
// delay and multicast snooping off. Everything is deleted in t.Cleanup,
// also when the build fails half way.
type testNet struct {
	t      *testing.T
	prefix string
	hub    string
	nodes  map[string]*testNode
	nl     map[string]*netlink.Handle // cached per node, closed at cleanup
}

// testNode is one namespace on the segment.
type testNode struct {
	Name   string           // e.g. px1
	NS     string           // namespace name
	Path   string           // /var/run/netns/<NS>, for Config.NetNS
	Prefix netip.Prefix     // eth0's own address
	MAC    net.HardwareAddr // eth0's MAC
}

// newTestNet builds the segment. nodes maps node name (<= 15 bytes, used
// as the hub-side veth name) to its eth0 address in 198.18.0.0/15.
func newTestNet(t *testing.T, tag string, nodes map[string]string) *testNet {
	t.Helper()
	requireRoot(t)
	n := &testNet{
		t:      t,
		prefix: fmt.Sprintf("dbhavip%d-%s", os.Getpid(), tag),
		nodes:  map[string]*testNode{},
		nl:     map[string]*netlink.Handle{},
	}
	n.hub = n.prefix + "-hub"
	n.addNS(n.hub)
	n.ip("-n", n.hub, "link", "set", "lo", "up")
	n.ip("-n", n.hub, "link", "add", "br0", "type", "bridge",
		"stp_state", "0", "forward_delay", "0", "mcast_snooping", "0")
	n.ip("-n", n.hub, "link", "set", "br0", "up")
	for name, addr := range nodes {
		p := netip.MustParsePrefix(addr)
		if !netip.MustParsePrefix("198.18.0.0/15").Contains(p.Addr()) {
			t.Fatalf("test address %s outside 198.18.0.0/15", p)
		}
		node := &testNode{Name: name, NS: n.prefix + "-" + name, Prefix: p}
		node.Path = "/var/run/netns/" + node.NS
		n.addNS(node.NS)
		n.ip("-n", n.hub, "link", "add", name, "type", "veth", "peer", "name", "eth0", "netns", node.NS)
		n.ip("-n", n.hub, "link", "set", name, "master", "br0", "up")
		n.ip("-n", node.NS, "link", "set", "lo", "up")
		n.ip("-n", node.NS, "addr", "add", p.String(), "dev", "eth0")
		n.ip("-n", node.NS, "link", "set", "eth0", "up")
		link := n.link(name)
		node.MAC = link.Attrs().HardwareAddr
		n.nodes[name] = node
	}
	return n
}

// addNS creates a namespace with IPv6 off and registers its deletion.
func (n *testNet) addNS(name string) {
	n.t.Helper()
	n.ip("netns", "add", name)
	n.t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			n.t.Errorf("delete netns %s: %v: %s", name, err, out)
		}
	})
	for _, key := range []string{"net.ipv6.conf.all.disable_ipv6", "net.ipv6.conf.default.disable_ipv6"} {
		if out, err := exec.Command("ip", "netns", "exec", name, "sysctl", "-qw", key+"=1").CombinedOutput(); err != nil {
			n.t.Fatalf("disable ipv6 in %s: %v: %s", name, err, out)
		}
	}
}

// ip runs iproute2 and fails the test on error.
func (n *testNet) ip(args ...string) string {
	n.t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		n.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// node returns a node by name.
func (n *testNet) node(name string) *testNode {
	n.t.Helper()
	node, ok := n.nodes[name]
	if !ok {
		n.t.Fatalf("no node %q", name)
	}
	return node
}

// handle returns a netlink handle bound to a node's namespace, closed at
// cleanup. The node need not be registered yet (used while building).
func (n *testNet) handle(name string) *netlink.Handle {
	n.t.Helper()
	if h, ok := n.nl[name]; ok {
		return h
	}
	ns, err := netns.GetFromName(n.prefix + "-" + name)
	if err != nil {
		n.t.Fatalf("open netns of %s: %v", name, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		n.t.Fatalf("netlink handle in %s: %v", name, err)
	}
	n.t.Cleanup(h.Close)
	n.nl[name] = h
	return h
}

// link returns eth0 of a node.
func (n *testNet) link(name string) netlink.Link {
	n.t.Helper()
	l, err := n.handle(name).LinkByName("eth0")
	if err != nil {
		n.t.Fatalf("eth0 in %s: %v", name, err)
	}
	return l
}

// addrs lists eth0's IPv4 addresses on a node.
func (n *testNet) addrs(name string) []netlink.Addr {
	n.t.Helper()
	h := n.handle(name)
	l, err := h.LinkByName("eth0")
	if err != nil {
		n.t.Fatalf("eth0 in %s: %v", name, err)
	}
	as, err := h.AddrList(l, netlink.FAMILY_V4)
	if err != nil {
		n.t.Fatalf("list addresses in %s: %v", name, err)
	}
	return as
}

// neighbour returns the MAC a node's neighbour table has for ip, if any
// usable entry (not INCOMPLETE/FAILED) exists.
func (n *testNet) neighbour(name string, ip netip.Addr) (net.HardwareAddr, bool) {
	n.t.Helper()
	h := n.handle(name)
	l, err := h.LinkByName("eth0")
	if err != nil {
		n.t.Fatalf("eth0 in %s: %v", name, err)
	}
	ns, err := h.NeighList(l.Attrs().Index, netlink.FAMILY_V4)
	if err != nil {
		n.t.Fatalf("neighbours in %s: %v", name, err)
	}
	for _, e := range ns {
		if e.IP.Equal(net.IP(ip.AsSlice())) && e.State&(netlink.NUD_INCOMPLETE|netlink.NUD_FAILED) == 0 && len(e.HardwareAddr) == 6 {
			return e.HardwareAddr, true
		}
	}
	return nil, false
}

// inNS runs fn on a locked OS thread inside a node's namespace. Sockets
// created by fn stay in that namespace. If switching back fails, the
// thread is left locked so the runtime discards it.
func (n *testNet) inNS(name string, fn func() error) error {
	path := n.node(name).Path
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		target, err := netns.GetFromPath(path)
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// serveName listens on 0.0.0.0:port inside a node's namespace and writes
// the node's name to every connection. Stopped at cleanup.
func (n *testNet) serveName(name string, port int) {
	n.t.Helper()
	var ln net.Listener
	if err := n.inNS(name, func() error {
		var err error
		ln, err = net.Listen("tcp4", fmt.Sprintf("0.0.0.0:%d", port))
		return err
	}); err != nil {
		n.t.Fatalf("listen in %s: %v", name, err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, name)
			_ = c.Close()
		}
	})
	n.t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
}

// dialName connects from a node's namespace and returns what the server
// wrote (its node name).
func (n *testNet) dialName(from string, addr netip.AddrPort, timeout time.Duration) (string, error) {
	var c net.Conn
	if err := n.inNS(from, func() error {
		var err error
		c, err = net.DialTimeout("tcp4", addr.String(), timeout)
		return err
	}); err != nil {
		return "", err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
		return "", err
	}
	b, err := io.ReadAll(c)
	return string(b), err
}

// arpWatch counts gratuitous ARP announcements seen on a node's eth0.
type arpWatch struct {
	mu     sync.Mutex
	counts map[string]int // sender MAC -> announcements for ip
}

// watchGARP starts a raw ARP listener in a node's namespace that counts
// announcements (request, sender IP == target IP == ip). It is stopped and
// waited for at cleanup.
func (n *testNet) watchGARP(name string, ip netip.Addr) *arpWatch {
	n.t.Helper()
	var conn *packet.Conn
	ifi := &net.Interface{Index: n.link(name).Attrs().Index, Name: "eth0"}
	if err := n.inNS(name, func() error {
		var err error
		conn, err = packet.Listen(ifi, packet.Raw, int(ethernet.EtherTypeARP), nil)
		return err
	}); err != nil {
		n.t.Fatalf("arp listener in %s: %v", name, err)
	}
	w := &arpWatch{counts: map[string]int{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 1500)
		for ctx.Err() == nil {
			_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			nb, _, err := conn.ReadFrom(buf)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue // loop re-checks ctx
			}
			if err != nil {
				return
			}
			var f ethernet.Frame
			if f.UnmarshalBinary(buf[:nb]) != nil || f.EtherType != ethernet.EtherTypeARP {
				continue
			}
			var p arp.Packet
			if p.UnmarshalBinary(f.Payload) != nil {
				continue
			}
			if p.Operation == arp.OperationRequest && p.SenderIP == ip && p.TargetIP == ip {
				w.mu.Lock()
				w.counts[p.SenderHardwareAddr.String()]++
				w.mu.Unlock()
			}
		}
	})
	n.t.Cleanup(func() {
		cancel()
		wg.Wait()
		_ = conn.Close()
	})
	return w
}

// count returns the announcements seen from mac.
func (w *arpWatch) count(mac net.HardwareAddr) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.counts[mac.String()]
}

// total returns all announcements seen.
func (w *arpWatch) total() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := 0
	for _, c := range w.counts {
		s += c
	}
	return s
}

// eventually polls cond every 20ms until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
