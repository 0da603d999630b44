package planner

import (
	"fmt"
	"strings"
	"time"

	"github.com/dbha/dbha/internal/cluster"
)

// vipFit reports whether proxy member m may keep the VIP, and if not, why:
// it must not be in maintenance or draining, and its fresh report must say
// its proxy is healthy.
func vipFit(in Input, p Policy, m cluster.Member) (bool, string) {
	switch r, age, ok := fresh(in, p, m.Name); {
	case m.Maintenance:
		return false, "maintenance flag"
	case m.Draining:
		return false, "draining flag"
	case !ok:
		return false, "agent silent (" + ageText(age) + ")"
	case r.Proxy == nil:
		return false, "no proxy report"
	case !r.Proxy.Healthy:
		return false, "proxy unhealthy"
	}
	return true, ""
}

// vipEligible reports whether proxy member m may be given the VIP: it is fit
// and has applied at least the committed epoch, so it routes by the current
// topology. The applied epoch is compared with the committed epoch, not the
// one this decision may commit, because no proxy can have applied that yet.
func vipEligible(in Input, p Policy, m cluster.Member, committed cluster.Epoch) (bool, string) {
	if ok, why := vipFit(in, p, m); !ok {
		return false, why
	}
	if r, _, _ := fresh(in, p, m.Name); r.Proxy.AppliedEpoch < committed {
		return false, fmt.Sprintf("applied epoch %d behind %d", r.Proxy.AppliedEpoch, committed)
	}
	return true, ""
}

// planVIP decides the VIP owner. committed is the committed topology epoch
// (for eligibility); eventEpoch is the epoch after this decision.
func planVIP(in Input, p Policy, committed, eventEpoch cluster.Epoch) (*cluster.SetVIPOwner, []string) {
	owner := in.State.VIP.Owner
	var why []string
	var first cluster.NodeName // eligible proxy with the lowest name, other than the owner
	var eligible []string
	ownerFit, ownerWhy := false, "not a proxy member"
	inputs := map[string]string{}
	for _, m := range membersWith(in.State.Members, cluster.RoleProxy) {
		if m.Name == owner {
			ownerFit, ownerWhy = vipFit(in, p, m)
		}
		ok, reason := vipEligible(in, p, m, committed)
		if ok {
			inputs[string(m.Name)] = "eligible"
			eligible = append(eligible, string(m.Name))
		} else {
			inputs[string(m.Name)] = "not eligible: " + reason
		}
		if ok && first == "" && m.Name != owner {
			first = m.Name
		}
	}
	why = append(why, fmt.Sprintf("vip: eligible proxies [%s]", strings.Join(eligible, " ")))

	if owner == "" {
		if first == "" {
			return nil, append(why, "vip: no owner and no eligible proxy")
		}
		reason := fmt.Sprintf("vip had no owner; assigned to %s, the eligible proxy with the lowest name", first)
		return vipMove(in, first, eventEpoch, reason, inputs), append(why, "vip: "+reason)
	}
	// The owner keeps the VIP while it is fit, even if it lags behind the
	// committed epoch: every topology change would otherwise make a new
	// owner ineligible until its next report, and move the VIP again.
	if ownerFit {
		return nil, append(why, fmt.Sprintf("vip: keep owner %s (fit)", owner))
	}

	// The owner may still hold the address until its lease has surely
	// run out. A new leader has not seen the renewals its predecessor
	// answered, so it counts from the moment it took office.
	base, from := in.VIPRenewals[owner], "its last renewal"
	if in.LeaderSince.After(base) {
		base, from = in.LeaderSince, "this leader took office"
	}
	deadline := base.Add(p.VIPWait())
	inputs["owner"] = fmt.Sprintf("%s not fit: %s", owner, ownerWhy)
	inputs["lease_until"] = deadline.UTC().Format(time.RFC3339Nano)
	if in.Now.Before(deadline) {
		return nil, append(why, fmt.Sprintf("vip: owner %s not fit (%s); waiting %s more, its lease may live %s after %s",
			owner, ownerWhy, deadline.Sub(in.Now), p.VIPWait(), from))
	}
	reason := fmt.Sprintf("owner %s not fit (%s) and its lease ran out %s after %s; ", owner, ownerWhy, p.VIPWait(), from)
	if first == "" {
		reason += "no eligible proxy, vip released"
	} else {
		reason += fmt.Sprintf("moved to %s, the eligible proxy with the lowest name", first)
	}
	return vipMove(in, first, eventEpoch, reason, inputs), append(why, "vip: "+reason)
}

func vipMove(in Input, to cluster.NodeName, epoch cluster.Epoch, reason string, inputs map[string]string) *cluster.SetVIPOwner {
	node := to
	if node == "" {
		node = in.State.VIP.Owner
	}
	return &cluster.SetVIPOwner{
		VIP: cluster.VIPState{Owner: to, LeaseEpoch: in.State.VIP.LeaseEpoch + 1},
		Event: &cluster.Event{
			Time: in.Now, Epoch: epoch, Kind: cluster.EventVIP, Node: node,
			Reason: reason, Inputs: inputs,
		},
	}
}

// CanRenewVIP reports whether the leader should answer a VIP lease renewal
// from node, and if not, why. Only the committed owner may renew, and only
// while it is not in maintenance or draining and its fresh report says its
// proxy is healthy.
//
// The leader must refuse renewals from an owner that is no longer fit:
// Plan moves the VIP away from an owner only after that owner's lease has
// run out, so an owner that is alive but unhealthy and still renewing would
// keep the VIP for ever. Like Plan's test for keeping the VIP, this check
// ignores the applied epoch: an owner that lags one apply behind a new epoch
// should not lose the VIP for it.
//
// Plan moves the VIP from an owner with no recorded renewal as soon as the
// owner is unfit and this leader's own wait has passed. That is safe only if
// the agent adds the address after its first answered renewal, never before.
func CanRenewVIP(in Input, node cluster.NodeName) (bool, string) {
	p := in.Policy.clamped()
	if node == "" || node != in.State.VIP.Owner {
		return false, fmt.Sprintf("%s is not the vip owner", node)
	}
	m, ok := in.State.Members[node]
	if !ok || !m.Has(cluster.RoleProxy) {
		return false, fmt.Sprintf("%s is not a proxy member", node)
	}
	if ok, why := vipFit(in, p, m); !ok {
		return false, fmt.Sprintf("%s: %s", node, why)
	}
	return true, ""
}
