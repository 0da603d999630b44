//go:build linux

package sandbox

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/dbha/dbha/internal/cluster"
)

// ErrNotProxy: a HolderWatcher was asked about a node that is not one of
// the sandbox's proxies.
var ErrNotProxy = errors.New("not a proxy of the sandbox")

// HolderWatcher reads which proxies hold the VIP, through one netlink
// handle per proxy namespace opened once (an `ip` exec per sample would be
// too slow for 10 ms sampling). Its methods are safe for concurrent use.
type HolderWatcher struct {
	mu      sync.Mutex // a netlink handle serves one request at a time
	names   []cluster.NodeName
	handles []*netlink.Handle
	vip     net.IP
}

// WatchVIP opens a HolderWatcher on the sandbox's proxies. The caller
// closes it.
func (s *Sandbox) WatchVIP() (_ *HolderWatcher, err error) {
	w := &HolderWatcher{vip: net.ParseIP(VIP)}
	defer func() {
		if err != nil {
			w.Close()
		}
	}()
	for _, n := range s.Nodes(KindProxy) {
		h, err := handleIn(n.Namespace)
		if err != nil {
			return nil, fmt.Errorf("watch VIP on %s: %w", n.Name, err)
		}
		w.names = append(w.names, n.Name)
		w.handles = append(w.handles, h)
	}
	return w, nil
}

// handleIn opens a netlink route handle inside the named namespace.
func handleIn(name string) (*netlink.Handle, error) {
	ns, err := netns.GetFromName(name)
	if err != nil {
		return nil, fmt.Errorf("open netns %s: %w", name, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink handle in %s: %w", name, err)
	}
	return h, nil
}

// Holders lists the proxies whose interfaces carry the VIP now.
func (w *HolderWatcher) Holders() ([]cluster.NodeName, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []cluster.NodeName
	for i, h := range w.handles {
		addrs, err := h.AddrList(nil, netlink.FAMILY_V4)
		if err != nil {
			return nil, fmt.Errorf("addr list on %s: %w", w.names[i], err)
		}
		if slices.ContainsFunc(addrs, func(a netlink.Addr) bool { return a.IP.Equal(w.vip) }) {
			out = append(out, w.names[i])
		}
	}
	return out, nil
}

// Drop removes the VIP from node's eth0 (a fault, or a baseline's
// leftover) and says whether it was there.
func (w *HolderWatcher) Drop(node cluster.NodeName) (bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	i := slices.Index(w.names, node)
	if i < 0 {
		return false, fmt.Errorf("drop VIP on %s: %w", node, ErrNotProxy)
	}
	h := w.handles[i]
	link, err := h.LinkByName("eth0")
	if err != nil {
		return false, fmt.Errorf("drop VIP on %s: eth0: %w", node, err)
	}
	addrs, err := h.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return false, fmt.Errorf("drop VIP on %s: addr list: %w", node, err)
	}
	for _, a := range addrs {
		if a.IP.Equal(w.vip) {
			if err := h.AddrDel(link, &a); err != nil {
				return true, fmt.Errorf("drop VIP on %s: %w", node, err)
			}
			return true, nil
		}
	}
	return false, nil
}

// Close releases the netlink handles.
func (w *HolderWatcher) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, h := range w.handles {
		h.Close()
	}
	w.handles, w.names = nil, nil
	return nil
}

// WatchVIP opens a HolderWatcher on s's proxies and closes it in
// t.Cleanup.
func WatchVIP(t testing.TB, s *Sandbox) *HolderWatcher {
	t.Helper()
	w, err := s.WatchVIP()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}
