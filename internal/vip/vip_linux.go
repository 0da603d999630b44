//go:build linux

package vip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// dumpRetries bounds retries of a netlink dump the kernel flagged as
// interrupted (NLM_F_DUMP_INTR, an address changed mid-dump).
const dumpRetries = 3

// VIP holds one address on one interface in one network namespace.
//
// All netlink work goes through a handle bound to the namespace chosen at
// New, so the calling goroutine's thread never changes namespace. The raw
// ARP socket is opened once inside that namespace and reused.
//
// The gratuitous ARP burst after an add runs in a goroutine owned by the
// VIP: Ensure starts it and returns at once, Ensure(false) and Close cancel
// it and wait for it. Refresh announcements are one non-blocking write
// made by Ensure itself, so no announcement is ever sent for an address
// that the caller has stopped renewing.
type VIP struct {
	cfg   Config
	label string
	desc  string // "198.18.0.100/24 on eth0" for errors
	log   *slog.Logger
	now   func() time.Time

	ns   netns.NsHandle  // namespace of the address and ARP socket
	nl   *netlink.Handle // bound to ns
	bg   context.Context // parent of burst goroutines; cancelled by Close
	stop context.CancelFunc

	mu        sync.Mutex
	closed    bool
	sender    *garpSender // nil until first needed
	burst     *garpBurst  // running or finished-but-unreaped burst
	announced bool        // a burst was started for the current hold
	lastGARP  time.Time   // when the last announcement was (or will be) sent
}

// New validates cfg and opens a netlink handle in its namespace. It does
// not touch the address and does not require the interface to exist yet;
// call Check for a preflight.
func New(cfg Config, logger *slog.Logger) (*VIP, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	v := &VIP{
		cfg:   cfg,
		label: cfg.EffectiveLabel(),
		desc:  cfg.Address.String() + " on " + cfg.Interface,
		now:   time.Now,
	}
	if cfg.NetNS != "" {
		v.desc += " in netns " + cfg.NetNS
	}
	attrs := []any{"vip", cfg.Address.String(), "interface", cfg.Interface, "label", v.label}
	if cfg.NetNS != "" {
		attrs = append(attrs, "netns", cfg.NetNS)
	}
	v.log = logger.With(attrs...)

	var err error
	if cfg.NetNS == "" {
		v.ns, err = netns.Get()
	} else {
		v.ns, err = netns.GetFromPath(cfg.NetNS)
	}
	if err != nil {
		return nil, v.errorf("open network namespace", err)
	}
	if cfg.NetNS == "" {
		v.nl, err = netlink.NewHandle(unix.NETLINK_ROUTE)
	} else {
		v.nl, err = netlink.NewHandleAt(v.ns, unix.NETLINK_ROUTE)
	}
	if err != nil {
		_ = v.ns.Close()
		return nil, v.errorf("open netlink handle", err)
	}
	v.bg, v.stop = context.WithCancel(context.Background())
	if cfg.Lifetime == 0 {
		v.log.Warn("vip lifetime is forever: a killed agent will leave the address behind")
	}
	return v, nil
}

// Check is a preflight: the process must have CAP_NET_ADMIN and CAP_NET_RAW
// in its effective set, and the interface must exist and be ethernet. It
// reports every problem at once.
func (v *VIP) Check() error {
	var errs []error
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		errs = append(errs, fmt.Errorf("read capabilities: %w", err))
	} else if mask, err := parseCapEff(status); err != nil {
		errs = append(errs, fmt.Errorf("read capabilities: %w", err))
	} else if missing := missingCaps(mask); len(missing) > 0 {
		errs = append(errs, fmt.Errorf("%w: %s (CapEff %016x); run as root or grant them, e.g. systemd AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW",
			ErrMissingCapability, strings.Join(missing, ", "), mask))
	}

	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return v.errorf("check", ErrClosed)
	}
	if link, err := v.link(); err != nil {
		errs = append(errs, err)
	} else if err := checkEthernet(link); err != nil {
		errs = append(errs, err)
	} else if err := v.checkSubnet(link); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return v.errorf("check", errors.Join(errs...))
	}
	return nil
}

// Ensure makes the address present or absent. It is idempotent and
// level-triggered: call it on every tick with the desired state.
//
// Ensure(true) adds the address if it is missing (with Label and a kernel
// lifetime of Lifetime) and starts a burst of GARPCount gratuitous ARPs in
// the background; if the address is there, it restarts the kernel lifetime
// and sends one refresh gratuitous ARP once RefreshInterval has passed
// since the last one. An error from a finished burst is returned by the
// next Ensure(true), which then starts a new burst.
//
// Ensure(false) stops any burst and removes the address if it is there.
// A missing interface counts as "absent".
func (v *VIP) Ensure(ctx context.Context, present bool) error {
	op := "release"
	if present {
		op = "acquire"
	}
	if err := ctx.Err(); err != nil {
		return v.errorf(op, err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return v.errorf(op, ErrClosed)
	}
	var err error
	if present {
		err = v.acquireLocked()
	} else {
		err = v.releaseLocked()
	}
	if err != nil {
		return v.errorf(op, err)
	}
	return nil
}

// Held reports whether the address is on the interface now. A missing
// interface is reported as (false, error wrapping ErrInterfaceNotFound).
func (v *VIP) Held() (bool, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return false, v.errorf("held", ErrClosed)
	}
	link, err := v.link()
	if err != nil {
		return false, v.errorf("held", err)
	}
	_, held, err := v.find(link)
	if err != nil {
		return false, v.errorf("held", err)
	}
	return held, nil
}

// Close stops any burst and releases the handles. It does NOT remove the
// address: call Ensure(ctx, false) first to release the VIP (the agent's
// on_stop policy decides). With a finite Lifetime a retained address
// expires on its own. Close is idempotent.
func (v *VIP) Close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return nil
	}
	v.closed = true
	v.stopBurstLocked()
	v.stop()
	var errs []error
	if v.sender != nil {
		if err := v.sender.close(); err != nil {
			errs = append(errs, fmt.Errorf("close arp socket: %w", err))
		}
		v.sender = nil
	}
	v.nl.Close()
	if err := v.ns.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close netns handle: %w", err))
	}
	if len(errs) > 0 {
		return v.errorf("close", errors.Join(errs...))
	}
	return nil
}

func (v *VIP) acquireLocked() error {
	link, err := v.link()
	if err != nil {
		return err
	}
	// Open (or reuse) the ARP socket before touching the address, so a
	// missing CAP_NET_RAW fails before we hold an address we cannot
	// announce.
	sender, err := v.senderFor(link)
	if err != nil {
		return err
	}
	_, held, err := v.find(link)
	if err != nil {
		return err
	}
	// AddrReplace both adds and renews: on an existing IPv4 address the
	// kernel only resets valid_lft/preferred_lft, which restarts the
	// kernel-held lease.
	if err := v.nl.AddrReplace(link, v.addr(v.label)); err != nil {
		if held {
			return fmt.Errorf("renew lifetime: %w", err)
		}
		return fmt.Errorf("add address: %w", err)
	}
	if !held {
		v.log.Info("vip address added", "lifetime", v.cfg.Lifetime)
		// A new hold: whatever was announced before is stale.
		v.stopBurstLocked()
		v.announced = false
	}

	if err := v.reapBurstLocked(); err != nil {
		return err
	}
	now := v.now()
	switch {
	case !v.announced:
		// Added now, or held since before this process started (agent
		// restart with on_stop: retain): announce with a full burst.
		v.startBurstLocked(sender)
		v.announced = true
		v.lastGARP = now.Add(time.Duration(v.cfg.GARPCount-1) * v.cfg.GARPInterval)
	case v.burst == nil && now.Sub(v.lastGARP) >= v.cfg.RefreshInterval:
		if err := sender.send(); err != nil {
			v.dropSenderLocked()
			return fmt.Errorf("refresh gratuitous arp: %w", err)
		}
		v.lastGARP = now
		v.log.Debug("vip refresh gratuitous arp sent")
	}
	return nil
}

func (v *VIP) releaseLocked() error {
	v.stopBurstLocked()
	v.announced = false
	link, err := v.link()
	if errors.Is(err, ErrInterfaceNotFound) {
		return nil // no interface, no address
	}
	if err != nil {
		return err
	}
	found, held, err := v.find(link)
	if err != nil {
		return err
	}
	if !held {
		return nil
	}
	// Delete with the label the kernel reports: the kernel only matches an
	// IPv4 address on delete when the labels agree, so someone else's
	// label must not make us believe the address is gone.
	if err := v.nl.AddrDel(link, v.addr(found.Label)); err != nil {
		if errors.Is(err, unix.EADDRNOTAVAIL) {
			return nil // gone meanwhile (expired or removed by hand)
		}
		return fmt.Errorf("delete address: %w", err)
	}
	v.log.Info("vip address removed")
	return nil
}

// addr builds a fresh netlink.Addr (netlink mutates it, so never reuse).
func (v *VIP) addr(label string) *netlink.Addr {
	p := v.cfg.Address
	lft := v.cfg.lifetimeSeconds()
	return &netlink.Addr{
		IPNet:       &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), 32)},
		Label:       label,
		ValidLft:    lft,
		PreferedLft: lft,
	}
}

func (v *VIP) link() (netlink.Link, error) {
	link, err := v.nl.LinkByName(v.cfg.Interface)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) || errors.Is(err, unix.ENODEV) {
			return nil, fmt.Errorf("%w: %s", ErrInterfaceNotFound, v.cfg.Interface)
		}
		return nil, fmt.Errorf("look up interface %s: %w", v.cfg.Interface, err)
	}
	return link, nil
}

// checkSubnet requires one of the interface's own IPv4 addresses to share
// the VIP's subnet: a VIP outside every subnet of the interface would be
// announced on a segment where clients cannot route to it.
func (v *VIP) checkSubnet(link netlink.Link) error {
	addrs, err := v.nl.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", v.cfg.Interface, err)
	}
	var have []string
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP.To4())
		if !ok || ip == v.cfg.Address.Addr() {
			continue // the VIP itself does not count
		}
		ones, _ := a.Mask.Size()
		p := netip.PrefixFrom(ip, ones).Masked()
		if p.Contains(v.cfg.Address.Addr()) {
			return nil
		}
		have = append(have, netip.PrefixFrom(ip, ones).String())
	}
	return fmt.Errorf("%w: %s is in none of the subnets of %s %v", ErrOutsideSubnet, v.cfg.Address, v.cfg.Interface, have)
}

// find returns the kernel's copy of the VIP on link, matched by address
// and prefix length (the kernel treats 1.2.3.4/24 and 1.2.3.4/32 as two
// addresses).
func (v *VIP) find(link netlink.Link) (netlink.Addr, bool, error) {
	var (
		addrs []netlink.Addr
		err   error
	)
	for range dumpRetries {
		addrs, err = v.nl.AddrList(link, netlink.FAMILY_V4)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return netlink.Addr{}, false, fmt.Errorf("list addresses: %w", err)
	}
	want := net.IP(v.cfg.Address.Addr().AsSlice())
	for _, a := range addrs {
		if a.IPNet == nil {
			continue
		}
		ones, bits := a.Mask.Size()
		if a.IP.Equal(want) && ones == v.cfg.Address.Bits() && bits == 32 {
			return a, true, nil
		}
	}
	return netlink.Addr{}, false, nil
}

// senderFor returns an ARP sender for link, reopening it when the
// interface was recreated (new index) or changed its MAC.
func (v *VIP) senderFor(link netlink.Link) (*garpSender, error) {
	if err := checkEthernet(link); err != nil {
		return nil, err
	}
	attrs := link.Attrs()
	if s := v.sender; s != nil && s.ifindex == attrs.Index && bytes.Equal(s.mac, attrs.HardwareAddr) {
		return s, nil
	}
	v.dropSenderLocked()
	var s *garpSender
	err := v.inNetNS(func() error {
		var err error
		s, err = openGARPSender(attrs.Index, attrs.Name, attrs.HardwareAddr, v.cfg.Address.Addr())
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open arp socket: %w", err)
	}
	v.sender = s
	return s, nil
}

// checkEthernet refuses links that gratuitous ARP cannot serve: anything
// that is not ARPHRD_ETHER with a real 6-byte MAC (lo, tun, wireguard...).
func checkEthernet(link netlink.Link) error {
	attrs := link.Attrs()
	mac := attrs.HardwareAddr
	if attrs.EncapType != "ether" || len(mac) != 6 || bytes.Equal(mac, make(net.HardwareAddr, 6)) {
		return fmt.Errorf("%w: %s is link/%s with hardware address %q",
			ErrNotEthernet, attrs.Name, attrs.EncapType, mac.String())
	}
	return nil
}

// dropSenderLocked stops the burst and closes the socket so that the next
// Ensure reopens it and announces again with a full burst (the MAC or the
// interface may have changed, or the socket failed).
func (v *VIP) dropSenderLocked() {
	if v.sender == nil {
		return
	}
	v.stopBurstLocked()
	v.announced = false
	if err := v.sender.close(); err != nil {
		v.log.Warn("close arp socket", "err", err)
	}
	v.sender = nil
}

// inNetNS runs fn on a locked OS thread inside the VIP's namespace. Sockets
// stay in the namespace they were created in. It uses a fresh goroutine so
// that, if switching back fails, the tainted thread is never unlocked and
// the runtime discards it when the goroutine exits. When the namespace is
// already the thread's own, no setns (and no CAP_SYS_ADMIN) is needed.
func (v *VIP) inNetNS(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("get current netns: %w", err)
			return
		}
		defer orig.Close()
		if orig.Equal(v.ns) {
			runtime.UnlockOSThread()
			errc <- fn()
			return
		}
		if err := netns.Set(v.ns); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns: %w", err)
			return
		}
		ferr := fn()
		if err := netns.Set(orig); err != nil {
			// Stay locked: the runtime kills this thread on exit.
			errc <- errors.Join(ferr, fmt.Errorf("restore netns: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

func (v *VIP) errorf(op string, err error) error {
	return fmt.Errorf("vip %s %s: %w", op, v.desc, err)
}

// garpBurst is one running announcement burst.
type garpBurst struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error // valid after done is closed
}

func (v *VIP) startBurstLocked(s *garpSender) {
	ctx, cancel := context.WithCancel(v.bg)
	b := &garpBurst{cancel: cancel, done: make(chan struct{})}
	v.burst = b
	count, interval, log := v.cfg.GARPCount, v.cfg.GARPInterval, v.log
	go func() {
		defer close(b.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for i := range count {
			if i > 0 {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
			if err := s.send(); err != nil {
				if ctx.Err() == nil {
					b.err = fmt.Errorf("gratuitous arp %d/%d: %w", i+1, count, err)
				}
				return
			}
		}
		log.Info("vip announced", "garps", count)
	}()
}

// stopBurstLocked cancels a running burst and waits for it. The burst
// goroutine never takes v.mu, so waiting under the lock is safe.
func (v *VIP) stopBurstLocked() {
	if v.burst == nil {
		return
	}
	v.burst.cancel()
	<-v.burst.done
	v.burst = nil
}

// reapBurstLocked forgets a finished burst and returns its error, marking
// the hold unannounced so the next Ensure retries.
func (v *VIP) reapBurstLocked() error {
	b := v.burst
	if b == nil {
		return nil
	}
	select {
	case <-b.done:
	default:
		return nil // still running
	}
	b.cancel()
	v.burst = nil
	if b.err != nil {
		v.announced = false
		v.dropSenderLocked()
		return b.err
	}
	return nil
}
