package cli

import (
	"strings"
	"testing"
)

// TestSandboxProxySQLBinFromEnv: --proxysql-bin defaults to
// $DBHA_PROXYSQL_BIN, and a bad path is a usage error before anything is
// created.
func TestSandboxProxySQLBinFromEnv(t *testing.T) {
	base := t.TempDir()
	env := []string{"DBHA_SANDBOX_DIR=" + base, "DBHA_PROXYSQL_BIN=/nonexistent/from-env/proxysql"}
	code, _, stderr := runDbctl(t, env, "sandbox", "up")
	if code != ExitUsage || !strings.Contains(stderr, "--proxysql-bin: stat /nonexistent/from-env/proxysql") {
		t.Errorf("code %d stderr %q; want a usage error naming the binary from $DBHA_PROXYSQL_BIN", code, stderr)
	}
	assertEmptyDir(t, base)
}
