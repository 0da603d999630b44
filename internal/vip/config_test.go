package vip

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func validConfig() Config {
	c := DefaultConfig()
	c.Address = netip.MustParsePrefix("198.18.0.100/24")
	c.Interface = "eth0"
	return c
}

// problems unpacks Validate's error into its individual problems.
func problems(t *testing.T, err error) []error {
	t.Helper()
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("error %v does not wrap ErrInvalidConfig", err)
	}
	outer, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %T is not a multi-error", err)
	}
	for _, e := range outer.Unwrap() {
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			return j.Unwrap()
		}
	}
	t.Fatalf("no joined problems in %v", err)
	return nil
}

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if c.GARPCount != 5 || c.GARPInterval != 100*time.Millisecond ||
		c.RefreshInterval != 10*time.Second || c.Lifetime != 2*time.Second {
		t.Fatalf("defaults changed: %+v (update docs/vip.md too)", c)
	}
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
	if got := validConfig().EffectiveLabel(); got != "eth0:dbha" {
		t.Fatalf("derived label = %q, want eth0:dbha", got)
	}
}

func TestValidateAccepts(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"explicit label":   func(c *Config) { c.Label = "eth0:vip" },
		"label = iface":    func(c *Config) { c.Label = "eth0" },
		"forever lifetime": func(c *Config) { c.Lifetime = 0 },
		"host prefix /32":  func(c *Config) { c.Address = netip.MustParsePrefix("198.18.0.100/32") },
		"/31 low address":  func(c *Config) { c.Address = netip.MustParsePrefix("198.18.0.0/31") },
		"netns path":       func(c *Config) { c.NetNS = "/var/run/netns/x" },
		"15-byte label":    func(c *Config) { c.Interface = "enp0s31f6"; c.Label = "enp0s31f6:dbha1" },
	} {
		t.Run(name, func(t *testing.T) {
			c := validConfig()
			mod(&c)
			if err := c.Validate(); err != nil {
				t.Fatalf("rejected: %v", err)
			}
		})
	}
}

func TestValidateRejects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mod    func(*Config)
		prefix string // the single problem's message starts with this
	}{
		{"zero prefix", func(c *Config) { c.Address = netip.Prefix{} }, "address:"},
		{"prefix length 0", func(c *Config) { c.Address = netip.MustParsePrefix("198.18.0.100/0") }, "address 198.18.0.100/0: prefix length 0"},
		{"ipv6", func(c *Config) { c.Address = netip.MustParsePrefix("2001:db8::1/64") }, "address 2001:db8::1/64: not an IPv4"},
		{"network address", func(c *Config) { c.Address = netip.MustParsePrefix("198.18.0.0/24") }, "address 198.18.0.0/24: is the network"},
		{"broadcast address", func(c *Config) { c.Address = netip.MustParsePrefix("198.18.0.255/24") }, "address 198.18.0.255/24: is the network"},
		{"multicast", func(c *Config) { c.Address = netip.MustParsePrefix("224.0.0.1/24") }, "address 224.0.0.1/24: not a unicast"},
		{"loopback", func(c *Config) { c.Address = netip.MustParsePrefix("127.0.0.2/8") }, "address 127.0.0.2/8: not a unicast"},
		{"no interface", func(c *Config) { c.Interface = "" }, "interface: empty"},
		{"long interface", func(c *Config) { c.Interface = "abcdefghijklmnop"; c.Label = "abcdefghijklmnop" }, "interface \"abcdefghijklmnop\": longer"},
		{"interface with colon", func(c *Config) { c.Interface = "eth0:1"; c.Label = "eth0:1" }, "interface \"eth0:1\": not a valid"},
		{"label wrong prefix", func(c *Config) { c.Label = "eth1:dbha" }, "label \"eth1:dbha\": must start"},
		{"label too long", func(c *Config) { c.Label = "eth0:dbha-toolong" }, "label \"eth0:dbha-toolong\": longer"},
		{"derived label too long", func(c *Config) { c.Interface = "enp0s31f6abc" }, "derived default label \"enp0s31f6abc:dbha\": longer"},
		{"label with space", func(c *Config) { c.Label = "eth0 x" }, "label \"eth0 x\": contains"},
		{"garp count 0", func(c *Config) { c.GARPCount = 0 }, "garp_count 0"},
		{"garp count huge", func(c *Config) { c.GARPCount = 1000 }, "garp_count 1000"},
		{"garp interval 0", func(c *Config) { c.GARPInterval = 0 }, "garp_interval 0s"},
		{"refresh 0", func(c *Config) { c.RefreshInterval = 0 }, "refresh_interval 0s"},
		{"negative lifetime", func(c *Config) { c.Lifetime = -time.Second }, "lifetime -1s: negative"},
		{"fractional lifetime", func(c *Config) { c.Lifetime = 1500 * time.Millisecond }, "lifetime 1.5s: must be whole seconds"},
		{"lifetime shorter than burst", func(c *Config) { c.GARPInterval = time.Second }, "lifetime 2s: shorter than the gratuitous arp burst"},
		{"relative netns", func(c *Config) { c.NetNS = "netns/x" }, "netns \"netns/x\": must be an absolute"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.mod(&c)
			ps := problems(t, c.Validate())
			if len(ps) != 1 {
				t.Fatalf("want exactly 1 problem, got %d: %v", len(ps), ps)
			}
			if msg := ps[0].Error(); !strings.HasPrefix(msg, tc.prefix) {
				t.Fatalf("problem %q, want prefix %q", msg, tc.prefix)
			}
		})
	}
}

// TestValidateReportsEverything checks that Validate lists every problem
// at once instead of stopping at the first.
func TestValidateReportsEverything(t *testing.T) {
	ps := problems(t, Config{Label: "x y", Lifetime: -1, NetNS: "rel"}.Validate())
	// address, interface, garp_count, garp_interval, refresh_interval,
	// lifetime, netns (label is not checked without an interface).
	if len(ps) != 7 {
		t.Fatalf("want 7 problems, got %d: %v", len(ps), ps)
	}
}
