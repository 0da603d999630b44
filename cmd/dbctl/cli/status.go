package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dbha/dbha/internal/api"
)

func newStatusCmd() *cobra.Command {
	var output string
	var local bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the writer, readers, proxies, VIP and raft state of the cluster",
		Long: `status asks an agent for the cluster's state and prints it: the raft leader and
term, the committed topology (epoch, writer, readers, offline nodes with the
reason), every DB node's wsrep state as its agent last reported it, every
proxy's health and the epoch it applied, the VIP owner, and the raft servers.

Any agent can answer. A follower forwards the question to the leader, which
holds the live observations; with --local the answering agent shows only its
own committed view.

Exit codes: 0 healthy; 3 unhealthy (no raft leader, no writer, the VIP
unassigned, a proxy unhealthy or behind the committed epoch, or no live
observations); 1 the agent could not be reached; 2 bad usage.`,
		Example: `  # Is the cluster healthy? (exit code 0 = yes, 3 = no)
  dbctl status --endpoint http://198.18.0.101:7000

  # Which node is the writer? (for scripts)
  dbctl status -o json | jq -r .topology.writer

  # What does this agent itself have committed, without asking the leader?
  dbctl status --endpoint unix:///run/dbha/api.sock --local`,
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
			var st api.Status
			if local {
				st, err = c.LocalStatus(cmd.Context())
			} else {
				st, err = c.Status(cmd.Context())
			}
			if err != nil {
				return c.explain(err)
			}
			if output == "json" {
				if err := writeJSON(cmd.OutOrStdout(), st); err != nil {
					return err
				}
			} else {
				writeStatus(cmd.OutOrStdout(), st)
			}
			if problems := statusProblems(st, local); len(problems) > 0 {
				return exitError{ExitUnhealthy, fmt.Errorf("cluster is unhealthy: %s", strings.Join(problems, "; "))}
			}
			return nil
		},
	}
	addOutputFlag(cmd, &output)
	cmd.Flags().BoolVar(&local, "local", false, "show the answering agent's own committed view; do not ask the leader")
	return cmd
}

// statusProblems lists what makes the status unhealthy (exit 3).
func statusProblems(st api.Status, local bool) []string {
	var p []string
	if st.Leader == "" {
		p = append(p, "no raft leader")
	}
	if st.Topology.Writer == "" {
		p = append(p, fmt.Sprintf("no writer at epoch %d", st.Topology.Epoch))
	}
	if st.VIP.Address != "" && st.VIP.Owner == "" {
		p = append(p, fmt.Sprintf("VIP %s has no owner", st.VIP.Address))
	}
	if !st.Observed {
		if !local && st.Leader != "" {
			p = append(p, fmt.Sprintf("no live observations: leader %s did not answer %s", st.Leader, st.Node))
		}
		// Proxy health is only known from observations.
		return p
	}
	for _, px := range st.Proxies {
		switch {
		case !px.Healthy:
			msg := fmt.Sprintf("proxy %s is unhealthy", px.Name)
			if px.Error != "" {
				msg += ": " + px.Error
			}
			p = append(p, msg)
		case px.AppliedEpoch < st.Topology.Epoch:
			p = append(p, fmt.Sprintf("proxy %s applied epoch %d, behind %d", px.Name, px.AppliedEpoch, st.Topology.Epoch))
		}
	}
	return p
}

func writeStatus(w io.Writer, st api.Status) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	role := "follower"
	if st.IsLeader {
		role = "leader"
	}
	obs := "live observations"
	if !st.Observed {
		obs = "no live observations"
	}
	fmt.Fprintf(tw, "Answered by\t%s (%s, %s)\n", orDash(string(st.Node)), role, obs)
	if st.Leader == "" {
		fmt.Fprintf(tw, "Leader\tNONE (term %d)\n", st.Term)
	} else {
		if st.IsLeader && st.InOffice > 0 {
			fmt.Fprintf(tw, "Leader\t%s (term %d, in office %s)\n", st.Leader, st.Term, st.InOffice.Round(time.Second))
		} else {
			fmt.Fprintf(tw, "Leader\t%s (term %d)\n", st.Leader, st.Term)
		}
	}
	fmt.Fprintf(tw, "Epoch\t%d\n", st.Topology.Epoch)
	if st.Topology.Writer == "" {
		fmt.Fprintln(tw, "Writer\tNONE")
	} else {
		fmt.Fprintf(tw, "Writer\t%s\n", st.Topology.Writer)
	}
	fmt.Fprintf(tw, "VIP\t%s\n", vipLine(st.VIP))
	for _, g := range grantLines(st) {
		fmt.Fprintf(tw, "Grant\t%s\n", g)
	}
	tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tROLE\tREASON\tWSREP\tCLUSTER\tSIZE\tLAST_COMMITTED\tHEALTH\tFLAGS")
	for _, n := range st.Nodes {
		wsrep, cl, size, lc := "-", "-", "-", "-"
		if n.Wsrep != nil {
			wsrep = orDash(n.Wsrep.LocalStateComment)
			cl = orDash(n.Wsrep.ClusterStatus)
			size = fmt.Sprint(n.Wsrep.ClusterSize)
			lc = fmt.Sprint(n.Wsrep.LastCommitted)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, orDash(n.Role), orDash(string(n.Reason)),
			wsrep, cl, size, lc, orDash(string(n.Health)), joinOrDash(n.Flags))
	}
	tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROXY\tHEALTHY\tAPPLIED_EPOCH")
	for _, p := range st.Proxies {
		healthy := "yes"
		switch {
		case !st.Observed:
			healthy = "?"
		case !p.Healthy && p.Error != "":
			healthy = "NO: " + p.Error
		case !p.Healthy:
			healthy = "NO"
		}
		applied := fmt.Sprint(p.AppliedEpoch)
		if st.Observed && p.AppliedEpoch < st.Topology.Epoch {
			applied += fmt.Sprintf(" (behind %d)", st.Topology.Epoch)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Name, healthy, applied)
	}
	tw.Flush()

	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RAFT SERVER\tADDRESS\tSUFFRAGE\tLEADER")
	for _, r := range st.Raft {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Name, orDash(r.Address), orDash(r.Suffrage), yesOrDash(r.Leader))
	}
	tw.Flush()
}

func vipLine(v api.VIPStatus) string {
	addr := v.Address
	if addr == "" {
		addr = "(address not known to this agent)"
	}
	if v.Owner == "" {
		return fmt.Sprintf("%s UNASSIGNED (lease epoch %d)", addr, v.LeaseEpoch)
	}
	age := "lease age unknown"
	if v.LeaseAge > 0 {
		age = "renewed " + v.LeaseAge.Round(time.Millisecond).String() + " ago"
	}
	return fmt.Sprintf("%s on %s (lease epoch %d, %s)", addr, v.Owner, v.LeaseEpoch, age)
}

func grantLines(st api.Status) []string {
	var out []string
	g := st.Grants
	if j := g.Join; j != nil {
		out = append(out, fmt.Sprintf("join: %s takes state from donor %s (since %s)", j.Joiner, j.Donor, fmtUTC(j.Since)))
	}
	if b := g.Bootstrap; b != nil {
		out = append(out, fmt.Sprintf("bootstrap: %s starts a new cluster at %s:%d (since %s)", b.Node, b.UUID, b.Seqno, fmtUTC(b.Since)))
	}
	if s := g.Switchover; s != nil {
		out = append(out, fmt.Sprintf("switchover: %s -> %s in progress (since %s)", s.From, s.To, fmtUTC(s.Since)))
	}
	return out
}

// fmtUTC prints times in UTC with milliseconds, the same everywhere.
func fmtUTC(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func joinOrDash(ss []string) string { return orDash(strings.Join(ss, ",")) }

func yesOrDash(b bool) string {
	if b {
		return "yes"
	}
	return "-"
}
