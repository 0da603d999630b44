// Package cli implements dbctl's subcommands, one file each. It talks to
// agents only through the typed API client; a test keeps daemon packages
// out of it.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// Exit codes. Scripts rely on them.
const (
	ExitOK        = 0
	ExitError     = 1 // the operation failed
	ExitUsage     = 2 // bad arguments or flags
	ExitUnhealthy = 3 // the command ran, and what it reports is unhealthy
)

// usageError marks errors caused by bad arguments.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// exitError carries a specific exit code.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

// Run executes dbctl with args and returns the process exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(stderr, "dbctl: %v\n", err)
	var ue usageError
	var ee exitError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "Run 'dbctl --help' for usage.")
		return ExitUsage
	default:
		return ExitError
	}
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "dbctl",
		Short: "Operate a dbha Galera high-availability cluster",
		Long: `dbctl operates a dbha cluster: a MariaDB Galera cluster behind proxies and
one floating VIP, kept consistent by dbagent processes that form a raft group.

It talks to any agent's HTTP API (--endpoint, or DBHA_ENDPOINT). Without
either, it uses the endpoint a running sandbox recorded.

Exit codes: 0 ok, 1 the operation failed, 2 bad usage, 3 the cluster is
unhealthy (status commands).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	addGlobalFlags(root) // persistent --endpoint and --timeout
	root.AddCommand(newSandboxCmd(), newStatusCmd(), newEventsCmd(), newWhyCmd(), newMembersCmd(), newVIPCmd())
	return root
}

// noArgs rejects positional arguments with a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}
