package cli

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/dbha/dbha/internal/api"
	"github.com/dbha/dbha/internal/cluster"
)

func newEventsCmd() *cobra.Command {
	var (
		output string
		since  uint64
		limit  int
	)
	cmd := &cobra.Command{
		Use:   "events",
		Short: "List the decisions the cluster recorded: failovers, topology changes, joins, VIP moves",
		Long: `events lists the audit trail kept in the raft state: every decision the leader
committed (topology change, failover, no writer, switchover, member change, VIP
move, join, bootstrap), oldest first, with its sequence number, time, epoch,
kind, node and reason. The ring keeps the last ` + fmt.Sprint(cluster.MaxEvents) + ` events.

Use --since with the last SEQ you saw to get only newer events, and
'dbctl why EPOCH' for the inputs behind the decisions at one epoch.`,
		Example: `  # The latest decisions
  dbctl events

  # Only what happened after event 41
  dbctl events --since 41

  # Every failover as JSON
  dbctl events --limit 1000 -o json | jq '.[] | select(.kind == "failover")'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if limit < 1 || limit > api.MaxEventsLimit {
				return usagef("--limit %d: want 1 to %d", limit, api.MaxEventsLimit)
			}
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			evs, err := c.Events(cmd.Context(), since, limit)
			if err != nil {
				return c.explain(err)
			}
			if evs == nil {
				evs = []cluster.Event{}
			}
			if output == "json" {
				return writeJSON(cmd.OutOrStdout(), evs)
			}
			writeEvents(cmd.OutOrStdout(), evs, since)
			return nil
		},
	}
	addOutputFlag(cmd, &output)
	cmd.Flags().Uint64Var(&since, "since", 0, "show only events with a sequence number greater than this")
	cmd.Flags().IntVar(&limit, "limit", api.DefaultEventsLimit, fmt.Sprintf("show at most this many events (1 to %d)", api.MaxEventsLimit))
	return cmd
}

func writeEvents(w io.Writer, evs []cluster.Event, since uint64) {
	if len(evs) == 0 {
		if since > 0 {
			fmt.Fprintf(w, "no events after seq %d\n", since)
		} else {
			fmt.Fprintln(w, "no events recorded")
		}
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tEPOCH\tKIND\tNODE\tREASON")
	for _, e := range evs {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\n", e.Seq, fmtUTC(e.Time), e.Epoch, e.Kind, orDash(string(e.Node)), orDash(e.Reason))
	}
	tw.Flush()
}
