package sandbox

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// fatalTB records Fatalf and stops the caller, as testing.T does, by a
// panic that the test recovers.
type fatalTB struct {
	testing.TB
	msg string
}

type fatalStop struct{}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(fatalStop{})
}

func runEventually(tb *fatalTB, within time.Duration, cond func() error) (stopped bool) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(fatalStop); !ok {
				panic(r)
			}
			stopped = true
		}
	}()
	Eventually(tb, within, "the condition", cond)
	return false
}

func TestEventuallyReturnsOnceCondHolds(t *testing.T) {
	calls := 0
	tb := &fatalTB{TB: t}
	stopped := runEventually(tb, 5*time.Second, func() error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if stopped || calls != 3 {
		t.Fatalf("stopped %v (%q) after %d calls; want a return after 3", stopped, tb.msg, calls)
	}
}

func TestEventuallyFailsWithTheLastError(t *testing.T) {
	calls := 0
	tb := &fatalTB{TB: t}
	start := time.Now()
	stopped := runEventually(tb, 200*time.Millisecond, func() error {
		calls++
		return fmt.Errorf("attempt %d", calls)
	})
	if !stopped {
		t.Fatal("Eventually returned for a condition that never holds")
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("gave up after %s; want at least 200ms", d)
	}
	if want := fmt.Sprintf("attempt %d", calls); !strings.HasPrefix(tb.msg, "the condition: ") || !strings.HasSuffix(tb.msg, want) {
		t.Errorf("failure %q does not name the condition and the last error %q", tb.msg, want)
	}
}
