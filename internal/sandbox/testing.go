package sandbox

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/dbha/dbha/internal/cluster"
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

// Eventually polls cond every 50 ms until it returns nil, and fails the
// test with cond's last error when within has passed.
func Eventually(t testing.TB, within time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s: %v", what, within, err)
		}
		time.Sleep(50 * time.Millisecond) // poll interval, not a condition
	}
}

// Partition cuts a from b (Sandbox.Partition) and returns heal, which
// undoes the cut the first time it is called and reports a failure with
// t.Errorf. A cut not yet healed when the test ends is healed in t.Cleanup.
func Partition(ctx context.Context, t testing.TB, s *Sandbox, a, b []cluster.NodeName) (heal func(), err error) {
	t.Helper()
	if err := s.Partition(ctx, a, b); err != nil {
		return func() {}, err
	}
	var once sync.Once
	heal = func() {
		once.Do(func() {
			if err := s.Heal(context.WithoutCancel(ctx), a, b); err != nil {
				t.Errorf("heal %v | %v: %v", a, b, err)
			}
		})
	}
	t.Cleanup(heal)
	return heal, nil
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}
