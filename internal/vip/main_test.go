package vip

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"

	"go.uber.org/goleak"
)

// guardChildEnv makes the test binary run as a VIP guard (see
// TestGuard): the guard tests start this binary as the agent would start
// dbagent.
const guardChildEnv = "DBHA_VIP_TEST_GUARD_CHILD"

// TestMain fails the run if any goroutine (a GARP burst, a test listener)
// outlives the tests.
func TestMain(m *testing.M) {
	if os.Getenv(guardChildEnv) == "1" {
		os.Exit(guardChild(os.Args[1:]))
	}
	goleak.VerifyTestMain(m)
}

func guardChild(args []string) int {
	if len(args) == 0 || args[0] != GuardCommand {
		fmt.Fprintf(os.Stderr, "guard child: args %q\n", args)
		return 2
	}
	cfg, _, err := ParseGuardArgs(args[1:], os.Stderr)
	if err == nil {
		err = RunGuard(context.Background(), cfg, os.Stdin, os.Stdout, slog.New(slog.NewTextHandler(os.Stderr, nil)))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "guard child:", err)
		return 1
	}
	return 0
}
