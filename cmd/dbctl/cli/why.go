package cli

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dbha/dbha/internal/api"
	"github.com/dbha/dbha/internal/cluster"
)

func newWhyCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "why [EPOCH]",
		Short: "Explain why the topology at an epoch is what it is",
		Long: `why explains one committed topology: which node is the writer, which are
readers, which are offline and for what reason, and the decisions recorded at
that epoch with the inputs the planner saw (node health, streaks, priorities,
wsrep positions).

Without EPOCH it explains the current topology. For an older epoch only the
recorded events remain: the ring keeps the last ` + fmt.Sprint(cluster.MaxEvents) + ` events. Find epochs
with 'dbctl events'.`,
		Example: `  # Why is db2 the writer now?
  dbctl why

  # Why did epoch 41 have no writer?
  dbctl why 41

  # The inputs of that decision, for a ticket
  dbctl why 41 -o json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			var epoch uint64
			switch len(args) {
			case 0:
			case 1:
				e, err := strconv.ParseUint(args[0], 10, 64)
				if err != nil {
					return usagef("epoch %q: want a non-negative integer (0 = current), as listed by 'dbctl events'", args[0])
				}
				epoch = e
			default:
				return usagef("why takes at most one EPOCH, got %q", args)
			}
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			why, err := c.Why(cmd.Context(), cluster.Epoch(epoch))
			if err != nil {
				return c.explain(err)
			}
			if output == "json" {
				return writeJSON(cmd.OutOrStdout(), why)
			}
			writeWhy(cmd.OutOrStdout(), why)
			return nil
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func writeWhy(w io.Writer, why api.Why) {
	if why.Current {
		fmt.Fprintf(w, "Epoch %d (current)\n", why.Epoch)
	} else {
		fmt.Fprintf(w, "Epoch %d (not current: only its recorded events remain)\n", why.Epoch)
	}
	if t := why.Topology; t != nil {
		writer := string(t.Writer)
		if writer == "" {
			writer = "NONE: no node qualifies as writer"
		}
		fmt.Fprintf(w, "  writer   %s\n", writer)
		readers := make([]string, 0, len(t.Readers))
		for _, r := range t.Readers {
			readers = append(readers, string(r))
		}
		fmt.Fprintf(w, "  readers  %s\n", orDash(strings.Join(readers, ", ")))
		if len(t.Offline) == 0 {
			fmt.Fprintln(w, "  offline  -")
		}
		for i, o := range t.Offline {
			label := "         "
			if i == 0 {
				label = "offline  "
			}
			fmt.Fprintf(w, "  %s%s (%s)\n", label, o.Node, o.Reason)
		}
	}
	fmt.Fprintln(w)
	if len(why.Events) == 0 {
		fmt.Fprintf(w, "No events recorded at epoch %d (it may have rotated out of the last %d events).\n", why.Epoch, cluster.MaxEvents)
		return
	}
	fmt.Fprintf(w, "Events at epoch %d:\n", why.Epoch)
	for _, e := range why.Events {
		node := ""
		if e.Node != "" {
			node = " " + string(e.Node)
		}
		fmt.Fprintf(w, "  #%d %s %s%s\n", e.Seq, fmtUTC(e.Time), e.Kind, node)
		fmt.Fprintf(w, "      reason: %s\n", orDash(e.Reason))
		if len(e.Inputs) == 0 {
			continue
		}
		keys := make([]string, 0, len(e.Inputs))
		width := 0
		for k := range e.Inputs {
			keys = append(keys, k)
			width = max(width, len(k))
		}
		slices.Sort(keys)
		fmt.Fprintln(w, "      inputs:")
		for _, k := range keys {
			fmt.Fprintf(w, "        %s%s  %s\n", k, strings.Repeat(" ", width-len(k)), e.Inputs[k])
		}
	}
}
