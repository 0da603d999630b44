//go:build !linux

package vip

import (
	"context"
	"io"
	"log/slog"
	"time"
)

// Guard is unavailable on this operating system. A nil *Guard does
// nothing.
type Guard struct{}

// StartGuard returns ErrUnsupported.
func StartGuard([]string, Config, string, io.Writer) (*Guard, error) { return nil, ErrUnsupported }

// PID returns 0.
func (g *Guard) PID() int { return 0 }

// Hold does nothing.
func (g *Guard) Hold(time.Duration) error { return nil }

// Done returns nil.
func (g *Guard) Done() <-chan struct{} { return nil }

// None does nothing.
func (g *Guard) None() error { return nil }

// Retain does nothing.
func (g *Guard) Retain() error { return nil }

// Alive returns false.
func (g *Guard) Alive() bool { return false }

// Close does nothing.
func (g *Guard) Close() error { return nil }

// RunGuard returns ErrUnsupported.
func RunGuard(context.Context, Config, io.Reader, io.Writer, *slog.Logger) error {
	return ErrUnsupported
}
