package api

import (
	"fmt"
	"strings"

	"github.com/dbha/dbha/internal/cluster"
)

// ValidateReport checks an observation report before it reaches the
// Backend. It lists every problem at once; the error wraps ErrBadRequest.
func ValidateReport(r cluster.Report) error {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if r.From == "" {
		add("empty from")
	}
	switch {
	case r.DB == nil && r.Proxy == nil:
		add("neither db nor proxy is set")
	case r.DB != nil && r.Proxy != nil:
		add("both db and proxy are set; send one report per role")
	}
	if o := r.DB; o != nil {
		if o.Node != r.From {
			add("db.node %q differs from from %q", o.Node, r.From)
		}
		if o.Health == "" {
			add("db.health is empty")
		}
		if o.Streak < 0 {
			add("db.streak %d is negative", o.Streak)
		}
		if o.Reachable && o.Wsrep == nil {
			add("db.reachable is true but db.wsrep is missing")
		}
	}
	if p := r.Proxy; p != nil {
		if p.Node != r.From {
			add("proxy.node %q differs from from %q", p.Node, r.From)
		}
		for i, pr := range p.Probes {
			if pr.Node == "" {
				add("proxy.probes[%d]: empty node", i)
			}
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("report from %q: %w: %s", r.From, ErrBadRequest, strings.Join(problems, "; "))
}
