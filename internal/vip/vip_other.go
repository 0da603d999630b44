//go:build !linux

package vip

import (
	"context"
	"fmt"
	"log/slog"
)

// VIP is unavailable on this operating system: every operation returns
// ErrUnsupported.
type VIP struct{}

// New validates cfg and returns ErrUnsupported.
func New(cfg Config, _ *slog.Logger) (*VIP, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("vip new %s on %s: %w", cfg.Address, cfg.Interface, ErrUnsupported)
}

// Check returns ErrUnsupported.
func (v *VIP) Check() error { return ErrUnsupported }

// Ensure returns ErrUnsupported.
func (v *VIP) Ensure(context.Context, bool) error { return ErrUnsupported }

// Held returns ErrUnsupported.
func (v *VIP) Held() (bool, error) { return false, ErrUnsupported }

// Close returns ErrUnsupported.
func (v *VIP) Close() error { return ErrUnsupported }
