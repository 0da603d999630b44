package vip

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
)

// The VIP guard is a small child process of the agent that removes the VIP
// address when the agent can no longer do it itself:
//
//   - the agent dies (SIGKILL, crash, OOM kill): the kernel closes the
//     agent's end of the guard's pipe and the guard removes the address at
//     once;
//   - the agent stops renewing (hung, stopped with SIGSTOP): the agent tells
//     the guard the lease deadline before every kernel renewal, and the
//     guard removes the address when the deadline passes without a newer
//     one.
//
// The kernel lifetime stays as the last line, for the rare case where the
// agent and its guard die together. See docs/vip.md "Three layers".
//
// The protocol on the guard's stdin is one line per message:
//
//	hold <CLOCK_MONOTONIC nanoseconds>   the address may stay until then
//	none                                 the agent does not hold it
//	retain                               on EOF, leave the address
//
// The guard answers "ready" on stdout once its netlink handle is open.

// SelfExe runs the calling binary itself, even after it was replaced or
// deleted on disk (an upgrade): the guard is always the agent's own
// version.
const SelfExe = "/proc/self/exe"

// GuardCommand is the argument that makes dbagent run as a VIP guard.
const GuardCommand = "vip-guard"

// Guard protocol words.
const (
	guardHold   = "hold"
	guardNone   = "none"
	guardRetain = "retain"
	guardReady  = "ready"
)

// GuardArgs returns the command-line arguments (after GuardCommand) that
// make a guard watch cfg's address and log in logFormat ("text" or
// "json"). ParseGuardArgs reads them back.
func GuardArgs(cfg Config, logFormat string) []string {
	args := []string{"--address", cfg.Address.String(), "--interface", cfg.Interface, "--label", cfg.EffectiveLabel(), "--log-format", logFormat}
	if cfg.NetNS != "" {
		args = append(args, "--netns", cfg.NetNS)
	}
	return args
}

// ParseGuardArgs parses the arguments GuardArgs wrote and returns the VIP
// config (validated like Config.Validate) and the log format.
func ParseGuardArgs(args []string, stderr io.Writer) (cfg Config, logFormat string, err error) {
	fs := flag.NewFlagSet(GuardCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: dbagent %s --address A/N --interface IF [--label L] [--netns PATH]\n\n"+
			"Started by dbagent itself: removes the VIP address when dbagent dies or stops\n"+
			"renewing its lease. Reads its orders on stdin. Not for interactive use.\n\n", GuardCommand)
		fs.PrintDefaults()
	}
	addr := fs.String("address", "", "VIP address with prefix length")
	fs.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	cfg = DefaultConfig()
	fs.StringVar(&cfg.Interface, "interface", "", "interface that carries the VIP")
	fs.StringVar(&cfg.Label, "label", "", "address label")
	fs.StringVar(&cfg.NetNS, "netns", "", "network namespace path")
	if err := fs.Parse(args); err != nil {
		return cfg, logFormat, err
	}
	if fs.NArg() > 0 {
		return cfg, logFormat, fmt.Errorf("%s: unexpected arguments %q", GuardCommand, fs.Args())
	}
	var errs []error
	if logFormat != "text" && logFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format %q: want text or json", logFormat))
	}
	if *addr == "" {
		errs = append(errs, errors.New("--address is required"))
	} else if p, err := netip.ParsePrefix(*addr); err != nil {
		errs = append(errs, fmt.Errorf("--address: %w", err))
	} else {
		cfg.Address = p
	}
	if len(errs) > 0 {
		return cfg, logFormat, fmt.Errorf("%s: %w", GuardCommand, errors.Join(errs...))
	}
	return cfg, logFormat, cfg.Validate()
}
