package sandbox

import (
	"context"
	"os"
	"testing"
	"time"
)

// RequireRoot skips a test that needs root, but only outside CI: with CI set
// (as .ci/run does) a missing privilege fails the test instead.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("this test needs root and CI=%s makes it mandatory", os.Getenv("CI"))
	}
	t.Skip("skipping: needs root (network namespaces); CI makes this mandatory")
}

// Start brings up a sandbox for a test and tears it down in t.Cleanup, even
// when the test fails or panics.
func Start(t testing.TB, o Options) *Sandbox {
	t.Helper()
	RequireRoot(t)
	if err := Preflight(); err != nil {
		t.Fatalf("sandbox preflight: %v", err)
	}
	if o.Log == nil {
		o.Log = testWriter{t}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	s, err := Up(ctx, o)
	if err != nil {
		t.Fatalf("sandbox up: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Down(context.Background()); err != nil {
			t.Errorf("sandbox down: %v", err)
		}
	})
	return s
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}
