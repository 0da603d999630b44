package cli

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/dbha/dbha/internal/api"
	"github.com/dbha/dbha/internal/cluster"
)

// vipEventsShown is how many recent VIP events `dbctl vip status` prints.
const vipEventsShown = 5

func newVIPCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vip",
		Short: "Show or move the floating VIP",
		Args:  noArgs,
	}
	cmd.AddCommand(newVIPStatusCmd(), newVIPMoveCmd())
	return cmd
}

// vipReport is `dbctl vip status -o json`.
type vipReport struct {
	VIP     api.VIPStatus     `json:"vip"`
	Leader  cluster.NodeName  `json:"leader"`
	Proxies []api.ProxyStatus `json:"proxies"`
	Moves   []cluster.Event   `json:"moves"` // the latest VIP events, oldest first
}

func newVIPStatusCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the VIP owner, its lease and the latest VIP moves",
		Long: `vip status shows which proxy owns the floating VIP, the lease epoch, how long
ago the leader last answered the owner's lease renewal, every proxy's health,
and the latest VIP events with their reasons.

The owner holds the address only while its renewals succeed; the leader moves
the VIP only after max(vip.lease, vip.kernel_lifetime) + vip.skew_margin
without a renewal.

Exit codes: 0 the VIP has an owner; 3 it is unassigned; 1 the agent could not
be reached; 2 bad usage.`,
		Example: `  dbctl vip status
  dbctl vip status -o json | jq -r .vip.owner`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			st, err := c.Status(cmd.Context())
			if err != nil {
				return c.explain(err)
			}
			evs, err := c.Events(cmd.Context(), 0, api.MaxEventsLimit)
			if err != nil {
				return c.explain(err)
			}
			r := vipReport{VIP: st.VIP, Leader: st.Leader, Proxies: st.Proxies, Moves: []cluster.Event{}}
			for _, e := range evs {
				if e.Kind == cluster.EventVIP {
					r.Moves = append(r.Moves, e)
				}
			}
			if n := len(r.Moves); n > vipEventsShown {
				r.Moves = r.Moves[n-vipEventsShown:]
			}
			if output == "json" {
				if err := writeJSON(cmd.OutOrStdout(), r); err != nil {
					return err
				}
			} else {
				writeVIPReport(cmd.OutOrStdout(), r)
			}
			if st.VIP.Owner == "" {
				return exitError{ExitUnhealthy, fmt.Errorf("the VIP has no owner (lease epoch %d)", st.VIP.LeaseEpoch)}
			}
			return nil
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func writeVIPReport(w io.Writer, r vipReport) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "VIP\t%s\n", vipLine(r.VIP))
	fmt.Fprintf(tw, "Leader\t%s\n", orDash(string(r.Leader)))
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROXY\tOWNER\tHEALTHY\tAPPLIED\tERROR")
	for _, p := range r.Proxies {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", p.Name, yesOrDash(p.Name == r.VIP.Owner), yesOrDash(p.Healthy), p.AppliedEpoch, orDash(p.Error))
	}
	tw.Flush()
	fmt.Fprintln(w)
	if len(r.Moves) == 0 {
		fmt.Fprintln(w, "No VIP events in the event ring.")
		return
	}
	fmt.Fprintln(w, "Latest VIP events:")
	for _, e := range r.Moves {
		fmt.Fprintf(w, "  #%d %s %s: %s\n", e.Seq, fmtUTC(e.Time), orDash(string(e.Node)), orDash(e.Reason))
	}
}
