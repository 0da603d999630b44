//go:build !linux

package vip

import (
	"context"
	"errors"
	"net/netip"
	"testing"
)

func TestUnsupported(t *testing.T) {
	c := DefaultConfig()
	c.Address = netip.MustParsePrefix("198.18.0.100/24")
	c.Interface = "eth0"
	if _, err := New(c, nil); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("New: %v, want ErrUnsupported", err)
	}
	var v VIP
	if err := v.Ensure(context.Background(), true); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Ensure: %v", err)
	}
	if _, err := v.Held(); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Held: %v", err)
	}
	if err := v.Check(); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Check: %v", err)
	}
	if err := v.Close(); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Close: %v", err)
	}
}
