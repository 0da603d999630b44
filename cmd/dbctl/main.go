// Command dbctl is the DBA's tool for a dbha cluster. See `dbctl help`.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/dbha/dbha/cmd/dbctl/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
