// Package vip holds a floating IPv4 address on one proxy node: it adds the
// address with netlink, announces it with gratuitous ARP, and gives it a
// finite kernel lifetime so that the kernel drops it when the agent stops
// renewing it (a SIGKILLed agent cannot leak the VIP for long).
//
// VIP is an actuator in the reconciler style: Ensure(ctx, present) is
// idempotent and level-triggered, and the caller re-runs it on a ticker.
// Deciding who should hold the VIP (the raft lease) is not this package's job.
//
// Only Linux is supported. On other systems every operation returns
// ErrUnsupported.
package vip

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"time"
)

// Defaults, written in one place. DefaultConfig returns them.
const (
	DefaultGARPCount       = 5
	DefaultGARPInterval    = 100 * time.Millisecond
	DefaultRefreshInterval = 10 * time.Second
	DefaultLifetime        = 2 * time.Second
	// DefaultLabelSuffix is appended to the interface name when Label is
	// empty: eth0 -> "eth0:dbha".
	DefaultLabelSuffix = ":dbha"
)

// Limits enforced by Validate.
const (
	maxIfNameLen   = 15 // IFNAMSIZ - 1; IPv4 labels share the limit
	maxGARPCount   = 100
	maxLifetimeSec = 1<<32 - 2 // 0xffffffff means "forever" to the kernel
)

// Sentinel errors. Test with errors.Is.
var (
	// ErrUnsupported is returned by every operation on non-Linux systems.
	ErrUnsupported = errors.New("vip: unsupported on this operating system")
	// ErrInvalidConfig wraps every Config.Validate failure.
	ErrInvalidConfig = errors.New("invalid vip config")
	// ErrInterfaceNotFound means the configured interface does not exist
	// in the VIP's network namespace.
	ErrInterfaceNotFound = errors.New("interface not found")
	// ErrNotEthernet means the interface has no 6-byte hardware address,
	// so gratuitous ARP cannot announce the VIP.
	ErrNotEthernet = errors.New("interface has no ethernet hardware address")
	// ErrMissingCapability means CAP_NET_ADMIN or CAP_NET_RAW is not in
	// the process's effective capability set.
	ErrMissingCapability = errors.New("missing capability")
	// ErrClosed is returned by operations on a closed VIP.
	ErrClosed = errors.New("vip closed")
	// ErrOutsideSubnet: the VIP is in none of the interface's subnets.
	ErrOutsideSubnet = errors.New("vip outside the interface's subnets")
)

// Config says which address to hold, where, and how to announce it.
type Config struct {
	// Address is the VIP with its prefix length, e.g. 198.18.0.100/24.
	// IPv4 only.
	Address netip.Prefix
	// Interface is the link that carries the VIP, e.g. eth0.
	Interface string
	// Label is the IPv4 address label, e.g. "eth0:dbha". It must start
	// with Interface and be at most 15 bytes. Empty means
	// Interface+DefaultLabelSuffix.
	Label string
	// GARPCount is the number of gratuitous ARPs sent when the address is
	// added (or first seen by this process). Default 5.
	GARPCount int
	// GARPInterval is the gap between two gratuitous ARPs of one burst.
	// Default 100ms.
	GARPInterval time.Duration
	// RefreshInterval is the minimum time between two refresh gratuitous
	// ARPs while the address is held. Refreshes are sent from Ensure, so
	// the effective period is rounded up to the caller's Ensure ticker.
	// Default 10s.
	RefreshInterval time.Duration
	// Lifetime is the kernel valid_lft and preferred_lft of the address,
	// in whole seconds. Every Ensure(true) restarts it, so it acts as a
	// kernel-held lease. Default 2s. 0 means forever (not recommended: a
	// killed agent then leaks the VIP).
	Lifetime time.Duration
	// NetNS is an optional network namespace path, such as
	// /var/run/netns/NAME. Empty means the namespace of the thread that
	// calls New. A non-empty NetNS that differs from the caller's
	// namespace also needs CAP_SYS_ADMIN (setns) to open the ARP socket.
	NetNS string
}

// DefaultConfig returns a Config with every default filled in. Address and
// Interface are left empty: they have no sensible default.
func DefaultConfig() Config {
	return Config{
		GARPCount:       DefaultGARPCount,
		GARPInterval:    DefaultGARPInterval,
		RefreshInterval: DefaultRefreshInterval,
		Lifetime:        DefaultLifetime,
	}
}

// EffectiveLabel is the label the address will carry: Label, or
// Interface+DefaultLabelSuffix when Label is empty.
func (c Config) EffectiveLabel() string {
	if c.Label != "" {
		return c.Label
	}
	return c.Interface + DefaultLabelSuffix
}

// Validate reports every problem at once. The returned error wraps
// ErrInvalidConfig.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}

	// Address.
	switch {
	case !c.Address.IsValid():
		add("address: missing or invalid prefix (want e.g. 198.18.0.100/24)")
	case !c.Address.Addr().Is4():
		add("address %s: not an IPv4 address", c.Address)
	case c.Address.Bits() == 0:
		add("address %s: prefix length 0", c.Address)
	default:
		a := c.Address.Addr()
		switch {
		case a.IsUnspecified(), a.IsLoopback(), a.IsMulticast(), a.IsLinkLocalUnicast(),
			a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
			add("address %s: not a unicast host address", c.Address)
		case c.Address.Bits() <= 30 && (a == c.Address.Masked().Addr() || a == broadcastOf(c.Address)):
			add("address %s: is the network or broadcast address of its prefix", c.Address)
		}
	}

	// Interface and label.
	ifaceOK := true
	switch {
	case c.Interface == "":
		add("interface: empty")
		ifaceOK = false
	case len(c.Interface) > maxIfNameLen:
		add("interface %q: longer than %d bytes", c.Interface, maxIfNameLen)
		ifaceOK = false
	case strings.ContainsAny(c.Interface, "/: \t\n") || c.Interface == "." || c.Interface == "..":
		add("interface %q: not a valid interface name", c.Interface)
		ifaceOK = false
	}
	if ifaceOK {
		label := c.EffectiveLabel()
		what := "label"
		if c.Label == "" {
			what = "derived default label"
		}
		if !strings.HasPrefix(label, c.Interface) {
			add("%s %q: must start with the interface name %q", what, label, c.Interface)
		}
		if len(label) > maxIfNameLen {
			add("%s %q: longer than %d bytes; set label explicitly", what, label, maxIfNameLen)
		}
		if strings.ContainsAny(label, "/ \t\n\x00") {
			add("%s %q: contains a forbidden character", what, label)
		}
	}

	// Announcing.
	if c.GARPCount < 1 || c.GARPCount > maxGARPCount {
		add("garp_count %d: want 1..%d (default %d)", c.GARPCount, maxGARPCount, DefaultGARPCount)
	}
	if c.GARPInterval <= 0 {
		add("garp_interval %s: must be positive (default %s)", c.GARPInterval, DefaultGARPInterval)
	}
	if c.RefreshInterval <= 0 {
		add("refresh_interval %s: must be positive (default %s)", c.RefreshInterval, DefaultRefreshInterval)
	}

	// Kernel lease.
	switch {
	case c.Lifetime < 0:
		add("lifetime %s: negative (0 means forever, default %s)", c.Lifetime, DefaultLifetime)
	case c.Lifetime%time.Second != 0:
		add("lifetime %s: must be whole seconds (the kernel counts seconds)", c.Lifetime)
	case c.Lifetime/time.Second > maxLifetimeSec:
		add("lifetime %s: too long", c.Lifetime)
	case c.Lifetime > 0 && c.GARPCount >= 1 && c.GARPCount <= maxGARPCount && c.GARPInterval > 0 &&
		time.Duration(c.GARPCount-1)*c.GARPInterval >= c.Lifetime:
		// The burst must end while the address surely still exists, or it
		// would announce an address the kernel already expired.
		add("lifetime %s: shorter than the gratuitous arp burst (%d x %s)", c.Lifetime, c.GARPCount, c.GARPInterval)
	}

	if c.NetNS != "" && !filepath.IsAbs(c.NetNS) {
		add("netns %q: must be an absolute path such as /var/run/netns/NAME", c.NetNS)
	}

	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
}

// lifetimeSeconds is the kernel lifetime, 0 meaning forever.
func (c Config) lifetimeSeconds() int { return int(c.Lifetime / time.Second) }

// broadcastOf returns the all-ones host address of an IPv4 prefix.
func broadcastOf(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	hostBits := 32 - p.Bits()
	for i := 3; i >= 0 && hostBits > 0; i-- {
		n := min(hostBits, 8)
		b[i] |= byte(1<<n - 1)
		hostBits -= n
	}
	return netip.AddrFrom4(b)
}
