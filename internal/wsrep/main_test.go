package wsrep

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// requireRoot skips a root-only test, but only when CI is unset: with CI
// set a missing privilege fails the test instead.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("this test needs root (network namespaces) and CI=%s makes it mandatory", os.Getenv("CI"))
	}
	t.Skip("skipping: needs root (network namespaces); CI makes this mandatory")
}
