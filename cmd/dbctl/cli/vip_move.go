package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/dbha/dbha/internal/api"
	"github.com/dbha/dbha/internal/cluster"
)

// Defaults of dbctl vip move.
const (
	vipMoveDefaultTimeout = 15 * time.Second
	vipMovePollInterval   = 100 * time.Millisecond
)

// vipMoveResult is `dbctl vip move -o json`.
type vipMoveResult struct {
	To         cluster.NodeName `json:"to"`
	From       cluster.NodeName `json:"from"`
	Owner      cluster.NodeName `json:"owner"` // the owner at the end
	LeaseEpoch uint64           `json:"lease_epoch"`
	Done       bool             `json:"done"`
	ElapsedMS  int64            `json:"elapsed_ms"`
	Reason     string           `json:"reason,omitempty"` // the latest planned-move event, or why it failed
	Events     []cluster.Event  `json:"events"`           // the VIP events of this move, oldest first
}

func newVIPMoveCmd() *cobra.Command {
	var (
		to      string
		output  string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "move --to PROXY",
		Short: "Move the VIP to another proxy, the old owner releasing first",
		Long: `vip move is a planned VIP move. The raft leader first commits the VIP with no
owner, so the old owner removes the address and confirms the release; only
then does it give the VIP to the target, which adds the address and sends
gratuitous ARPs. Two proxies never hold the VIP at once: if the old owner
does not confirm, the leader waits for its lease to run out
(max(vip.lease, vip.kernel_lifetime) + vip.skew_margin after its last renewal).

The target must be a proxy member that is healthy, reporting, caught up with
the committed epoch, and not in maintenance or draining. The leader drops the
move when the target stops being fit, or after 10 s; the event says why.

dbctl waits until the target owns the VIP, or until --timeout, polling the
status. --timeout here bounds the whole wait (and each request within it).

Exit codes: 0 the target owns the VIP; 1 the move was refused, was dropped,
or timed out (the reason is printed); 2 bad usage.`,
		Example: `  dbctl vip move --to px2
  dbctl vip move --to px1 --timeout 30s -o json | jq .elapsed_ms`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if to == "" {
				return usagef("vip move: --to PROXY is required")
			}
			if timeout <= 0 {
				return usagef("--timeout %s: want a positive duration such as 15s", timeout)
			}
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			r, err := runVIPMove(ctx, c, cluster.NodeName(to))
			if err != nil {
				return err
			}
			if output == "json" {
				if err := writeJSON(cmd.OutOrStdout(), r); err != nil {
					return err
				}
			} else {
				writeVIPMove(cmd.OutOrStdout(), r)
			}
			if !r.Done {
				return exitError{ExitError, fmt.Errorf("vip move to %s failed: %s", r.To, r.Reason)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the proxy that should own the VIP (required)")
	cmd.Flags().DurationVar(&timeout, "timeout", vipMoveDefaultTimeout, "how long to wait for the target to own the VIP")
	addOutputFlag(cmd, &output)
	return cmd
}

// runVIPMove asks for the move and polls until the target owns the VIP,
// the leader drops the move, or ctx ends. An error is returned only when
// the move could not be asked for; a move that fails later is a result
// with Done false and a Reason.
func runVIPMove(ctx context.Context, c *agentConn, to cluster.NodeName) (vipMoveResult, error) {
	r := vipMoveResult{To: to, Events: []cluster.Event{}}
	seq, err := lastEventSeq(ctx, c)
	if err != nil {
		return r, c.explain(err)
	}
	start := time.Now()
	mv, err := c.MoveVIP(ctx, to)
	if err != nil {
		return r, c.explain(err)
	}
	r.From = mv.From
	t := time.NewTicker(vipMovePollInterval)
	defer t.Stop()
	var lastErr error
	for {
		st, err := c.Status(ctx)
		if err == nil {
			r.Owner, r.LeaseEpoch = st.VIP.Owner, st.VIP.LeaseEpoch
			r.ElapsedMS = time.Since(start).Milliseconds()
			if st.VIP.Owner == to {
				r.Done = true
			}
		} else {
			lastErr = err
		}
		if evs, err := c.Events(ctx, seq, api.MaxEventsLimit); err == nil {
			for _, e := range evs {
				seq = max(seq, e.Seq)
				if e.Kind != cluster.EventVIP {
					continue
				}
				r.Events = append(r.Events, e)
				if e.Inputs["planned_move_to"] == string(to) || e.Node == to {
					r.Reason = e.Reason
				}
				if e.Inputs["planned_move_to"] == string(to) && !r.Done &&
					(e.Inputs["planned_move"] == "abandoned" || e.Inputs["planned_move"] == "timed_out") {
					return r, nil
				}
			}
		}
		if r.Done {
			return r, nil
		}
		select {
		case <-ctx.Done():
			r.ElapsedMS = time.Since(start).Milliseconds()
			why := fmt.Sprintf("timed out after %s waiting for %s to own the VIP (owner now %s)",
				time.Since(start).Round(time.Millisecond), to, orDash(string(r.Owner)))
			if r.Reason != "" {
				why += "; last vip event: " + r.Reason
			}
			if lastErr != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				why += fmt.Sprintf("; last error: %v", lastErr)
			}
			r.Reason = why
			return r, nil
		case <-t.C:
		}
	}
}

// lastEventSeq returns the sequence number of the newest event, so that the
// move's events can be told apart from older ones.
func lastEventSeq(ctx context.Context, c *agentConn) (uint64, error) {
	var seq uint64
	for {
		evs, err := c.Events(ctx, seq, api.MaxEventsLimit)
		if err != nil {
			return 0, err
		}
		for _, e := range evs {
			seq = max(seq, e.Seq)
		}
		if len(evs) < api.MaxEventsLimit {
			return seq, nil
		}
	}
}

func writeVIPMove(w io.Writer, r vipMoveResult) {
	for _, e := range r.Events {
		fmt.Fprintf(w, "  #%d %s %s: %s\n", e.Seq, fmtUTC(e.Time), orDash(string(e.Node)), orDash(e.Reason))
	}
	if r.Done {
		fmt.Fprintf(w, "VIP moved from %s to %s in %dms (lease epoch %d)\n", orDash(string(r.From)), r.To, r.ElapsedMS, r.LeaseEpoch)
		return
	}
	fmt.Fprintf(w, "VIP not moved to %s: %s\n", r.To, r.Reason)
}
