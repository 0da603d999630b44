package vip

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any goroutine (a GARP burst, a test listener)
// outlives the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
