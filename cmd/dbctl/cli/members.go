package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/dbha/dbha/internal/api"
	"github.com/dbha/dbha/internal/cluster"
)

// memberRow is one line of 'dbctl members': the registered member plus its
// place in the raft configuration.
type memberRow struct {
	cluster.Member
	// Suffrage is Voter or Nonvoter, empty when the member is not (yet)
	// in the raft configuration.
	Suffrage string `json:"suffrage"`
	Leader   bool   `json:"leader"`
}

func newMembersCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "members",
		Short: "List the registered agents with their roles, addresses, flags and raft suffrage",
		Long: `members lists every agent registered in the raft state: its roles (db, proxy),
its API, raft and MySQL addresses, its writer priority, its admin flags
(maintenance, draining, no_writer), whether it votes in raft, and which one
leads raft.

A member with VOTER '-' is registered but not in the raft configuration yet
(it is still joining, or it was removed from raft but not from the members).`,
		Example: `  dbctl members

  # The raft addresses of all voters
  dbctl members -o json | jq -r '.[] | select(.suffrage == "voter") | .raft_addr'`,
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
			rows := memberRows(st)
			if output == "json" {
				return writeJSON(cmd.OutOrStdout(), rows)
			}
			writeMembers(cmd.OutOrStdout(), rows)
			return nil
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func memberRows(st api.Status) []memberRow {
	raft := map[cluster.NodeName]api.RaftServer{}
	for _, r := range st.Raft {
		raft[r.Name] = r
	}
	rows := make([]memberRow, 0, len(st.Members))
	for _, m := range st.Members {
		r := raft[m.Name]
		rows = append(rows, memberRow{Member: m, Suffrage: r.Suffrage, Leader: r.Leader})
	}
	slices.SortFunc(rows, func(a, b memberRow) int { return strings.Compare(string(a.Name), string(b.Name)) })
	return rows
}

func writeMembers(w io.Writer, rows []memberRow) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLES\tAPI\tRAFT\tMYSQL\tPRIORITY\tFLAGS\tVOTER\tLEADER")
	for _, r := range rows {
		roles := make([]string, 0, len(r.Roles))
		for _, role := range r.Roles {
			roles = append(roles, string(role))
		}
		var flags []string
		if r.Maintenance {
			flags = append(flags, string(cluster.FlagMaintenance))
		}
		if r.Draining {
			flags = append(flags, string(cluster.FlagDraining))
		}
		if r.NoWriter {
			flags = append(flags, string(cluster.FlagNoWriter))
		}
		voter := "-"
		switch strings.ToLower(r.Suffrage) {
		case "voter":
			voter = "yes"
		case "":
		default:
			voter = "no"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", r.Name, joinOrDash(roles), orDash(r.APIAddr),
			orDash(r.RaftAddr), orDash(r.MySQLAddr), r.Priority, joinOrDash(flags), voter, yesOrDash(r.Leader))
	}
	tw.Flush()
}
