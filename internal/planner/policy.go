package planner

import (
	"errors"
	"fmt"
	"time"
)

// Policy holds the cluster's decision knobs.
type Policy struct {
	// FailAfter is how many consecutive bad polls make a node failed.
	FailAfter int
	// RecoverAfter is how many consecutive good polls a failed node needs
	// before it returns as a reader.
	RecoverAfter int
	// AgentTimeout: a report older than this, by the leader's receive time,
	// means the agent is silent.
	AgentTimeout time.Duration
	// WriterIsReader puts the writer in the reader pool too.
	WriterIsReader bool
	// VIPLease is the agent-side VIP lease.
	VIPLease time.Duration
	// VIPKernelLifetime is the valid_lft on the VIP address. The leader
	// reassigns the VIP only after max(VIPLease, VIPKernelLifetime)+VIPSkew
	// past the owner's last renewal.
	VIPKernelLifetime time.Duration
	// VIPSkew is the safety margin added to the lease wait.
	VIPSkew time.Duration
}

// DefaultPolicy is the baseline the planner's tests and golden scenarios
// run with. dbagent does not use it: the agent's policy comes from its
// configuration, whose defaults are written once in internal/config and
// documented in docs/configuration.md.
func DefaultPolicy() Policy {
	return Policy{
		FailAfter:         3,
		RecoverAfter:      3,
		AgentTimeout:      time.Second,
		WriterIsReader:    false,
		VIPLease:          time.Second,
		VIPKernelLifetime: time.Second,
		VIPSkew:           100 * time.Millisecond,
	}
}

// ErrInvalidPolicy is wrapped by every error from Policy.Validate.
var ErrInvalidPolicy = errors.New("invalid planner policy")

// Validate lists every problem with p at once.
func (p Policy) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("planner policy: %s: %w", fmt.Sprintf(format, args...), ErrInvalidPolicy))
	}
	if p.FailAfter < 1 {
		bad("fail_after %d must be at least 1", p.FailAfter)
	}
	if p.RecoverAfter < 1 {
		bad("recover_after %d must be at least 1", p.RecoverAfter)
	}
	if p.AgentTimeout <= 0 {
		bad("agent_timeout %s must be positive", p.AgentTimeout)
	}
	if p.VIPLease <= 0 {
		bad("vip lease %s must be positive", p.VIPLease)
	}
	if p.VIPKernelLifetime < 0 {
		bad("vip kernel lifetime %s must not be negative", p.VIPKernelLifetime)
	}
	if p.VIPSkew < 0 {
		bad("vip skew %s must not be negative", p.VIPSkew)
	}
	return errors.Join(errs...)
}

// VIPWait is how long after an owner's last renewal the leader waits before
// giving the VIP to another proxy: max(VIPLease, VIPKernelLifetime)+VIPSkew.
func (p Policy) VIPWait() time.Duration {
	return max(p.VIPLease, p.VIPKernelLifetime) + p.VIPSkew
}

// clamped returns p with the poll counts raised to 1: a streak counts the
// current poll, so a threshold below 1 means the same as 1.
func (p Policy) clamped() Policy {
	p.FailAfter = max(p.FailAfter, 1)
	p.RecoverAfter = max(p.RecoverAfter, 1)
	return p
}
