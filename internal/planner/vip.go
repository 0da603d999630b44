package planner

import (
	"fmt"
	"slices"
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

// vipOwnerFit is vipFit for the committed owner, with one grace: a leader
// that took office less than one lease ago and has no report from the
// owner at all yet (reports go to the leader, which just changed) keeps
// it fit, so its renewals do not lapse on every leadership change. After
// one lease without a report it is judged like any proxy, and the usual
// wait from the leader's start still guards a hand-over.
func vipOwnerFit(in Input, p Policy, m cluster.Member) (bool, string) {
	ok, why := vipFit(in, p, m)
	if _, reported := in.Reports[m.Name]; !ok && !reported && !m.Maintenance && !m.Draining &&
		in.Now.Sub(in.LeaderSince) <= p.VIPLease {
		return true, ""
	}
	return ok, why
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

// VIPEligible reports whether node may be given the VIP now, and if not,
// why: it is a proxy member, not in maintenance or draining, its fresh
// report says its proxy is healthy, and it has applied the committed epoch.
// It is the test Plan uses when it picks a new owner; the API uses it to
// validate a planned move (dbctl vip move).
func VIPEligible(in Input, node cluster.NodeName) (bool, string) {
	m, ok := in.State.Members[node]
	if !ok || !m.Has(cluster.RoleProxy) {
		return false, fmt.Sprintf("%s is not a proxy member", node)
	}
	p := in.Policy.clamped()
	if ok, why := vipEligible(in, p, m, in.State.Topology.Epoch); !ok {
		return false, fmt.Sprintf("%s: %s", node, why)
	}
	return true, ""
}

// VIPFit reports whether node is fit to hold the VIP (as VIPEligible, but
// without the applied-epoch test), and if not, why. A planned move is
// abandoned when its target is no longer fit.
func VIPFit(in Input, node cluster.NodeName) (bool, string) {
	m, ok := in.State.Members[node]
	if !ok || !m.Has(cluster.RoleProxy) {
		return false, fmt.Sprintf("%s is not a proxy member", node)
	}
	if ok, why := vipFit(in, in.Policy.clamped(), m); !ok {
		return false, fmt.Sprintf("%s: %s", node, why)
	}
	return true, ""
}

// VIPLeaseLive reports whether node's VIP lease may still be alive at
// in.Now, and until when: its last renewal answered by this leader plus
// Policy.VIPWait, unless node confirmed a release after that renewal.
func VIPLeaseLive(in Input, node cluster.NodeName) (bool, time.Time) {
	return leaseLive(in, in.Policy, node)
}

func leaseLive(in Input, p Policy, node cluster.NodeName) (bool, time.Time) {
	renewed, ok := in.VIPRenewals[node]
	if !ok {
		return false, time.Time{}
	}
	if rel, ok := in.VIPReleased[node]; ok && rel.After(renewed) {
		return false, time.Time{}
	}
	until := renewed.Add(p.VIPWait())
	return in.Now.Before(until), until
}

// handoverBlock returns why the VIP may not be given to to yet, or "": a
// proxy other than to may still hold it under a lease this leader answered,
// or, with no owner and a lease epoch above zero, this leader took office
// less than one full wait ago and cannot know who held the VIP last.
func handoverBlock(in Input, p Policy, to cluster.NodeName) string {
	var names []cluster.NodeName
	for n := range in.VIPRenewals {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if n == to {
			continue
		}
		if live, until := leaseLive(in, p, n); live {
			return fmt.Sprintf("%s's lease may live until %s (%s more) and it has not confirmed a release",
				n, until.UTC().Format(time.RFC3339Nano), until.Sub(in.Now))
		}
	}
	if in.State.VIP.Owner == "" && in.State.VIP.LeaseEpoch > 0 {
		if until := in.LeaderSince.Add(p.VIPWait()); in.Now.Before(until) {
			return fmt.Sprintf("this leader took office %s ago and a previous owner's lease may live %s more",
				in.Now.Sub(in.LeaderSince), until.Sub(in.Now))
		}
	}
	return ""
}

// released reports whether node confirmed a release after its last renewal
// (or without any renewal this leader answered).
func released(in Input, node cluster.NodeName) bool {
	rel, ok := in.VIPReleased[node]
	if !ok {
		return false
	}
	renewed, ok := in.VIPRenewals[node]
	return !ok || rel.After(renewed)
}

// releasedThisLease is released for the committed owner, counting only a
// confirmation made after its assignment: one from an earlier lease of the
// same node says nothing about the current one.
func releasedThisLease(in Input, owner cluster.NodeName) bool {
	return released(in, owner) && in.VIPReleased[owner].After(in.State.VIP.Since)
}

// planVIP decides the VIP owner. committed is the committed topology epoch
// (for eligibility); eventEpoch is the epoch after this decision;
// topoChange says this decision also commits a new topology.
func planVIP(in Input, p Policy, committed, eventEpoch cluster.Epoch, topoChange bool) (*cluster.SetVIPOwner, []string) {
	owner := in.State.VIP.Owner
	var why []string
	var first cluster.NodeName // eligible proxy with the lowest name, other than the owner
	var eligible []string
	ownerFit, ownerWhy := false, "not a proxy member"
	moveTo, moveOK, moveWhy := in.VIPMoveTo, false, ""
	inputs := map[string]string{}
	for _, m := range membersWith(in.State.Members, cluster.RoleProxy) {
		if m.Name == owner {
			ownerFit, ownerWhy = vipOwnerFit(in, p, m)
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
		if m.Name == moveTo {
			moveOK, moveWhy = ok, reason
		}
	}
	why = append(why, fmt.Sprintf("vip: eligible proxies [%s]", strings.Join(eligible, " ")))
	if moveTo != "" {
		inputs["planned_move_to"] = string(moveTo)
		switch {
		case moveTo == owner:
			why = append(why, fmt.Sprintf("vip: planned move to %s: it is the owner already", moveTo))
			moveTo = ""
		case !moveOK:
			if moveWhy == "" {
				moveWhy = "not a proxy member"
			}
			why = append(why, fmt.Sprintf("vip: planned move to %s refused: %s", moveTo, moveWhy))
			moveTo = ""
		}
	}

	// A planned move: the owner releases first, and the target acquires
	// only once the owner's lease is over (see below). The release waits
	// for a round without a topology change, so that the target has
	// applied the epoch it will be judged by.
	if moveTo != "" && owner != "" {
		if topoChange {
			return nil, append(why, fmt.Sprintf("vip: planned move to %s waits for the topology change to be applied", moveTo))
		}
		inputs["planned_move"] = "releasing"
		reason := fmt.Sprintf("planned move to %s: releasing %s", moveTo, owner)
		return vipMove(in, "", eventEpoch, reason, inputs), append(why, "vip: "+reason)
	}

	if owner == "" {
		to, how := first, "the eligible proxy with the lowest name"
		if moveTo != "" {
			to, how = moveTo, "the target of a planned move"
			inputs["planned_move"] = "assigned"
		}
		if to == "" {
			return nil, append(why, "vip: no owner and no eligible proxy")
		}
		if block := handoverBlock(in, p, to); block != "" {
			return nil, append(why, fmt.Sprintf("vip: no owner; waiting before assigning %s: %s", to, block))
		}
		reason := fmt.Sprintf("vip had no owner; assigned to %s, %s", to, how)
		if moveTo != "" {
			reason = fmt.Sprintf("planned move: assigned to %s, %s", to, how)
		}
		return vipMove(in, to, eventEpoch, reason, inputs), append(why, "vip: "+reason)
	}
	// An owner that confirmed a release after its last renewal (it shut
	// down with vip.on_stop: release) no longer holds the address.
	if ownerFit && releasedThisLease(in, owner) {
		ownerFit, ownerWhy = false, "confirmed it released the vip"
	}
	// An owner whose renewals stopped for longer than its lease has let
	// go (leaseLapsed); CanRenewVIP refuses it too.
	if ownerFit {
		if lapsed, why := leaseLapsed(in, p, owner); lapsed {
			ownerFit, ownerWhy = false, why
		}
	}
	// The owner keeps the VIP while it is fit, even if it lags behind the
	// committed epoch: every topology change would otherwise make a new
	// owner ineligible until its next report, and move the VIP again.
	if ownerFit {
		return nil, append(why, fmt.Sprintf("vip: keep owner %s (fit)", owner))
	}

	// The owner may still hold the address until its lease has surely
	// run out. A new leader has not seen the renewals its predecessor
	// answered, so it counts from the moment it took office. A release
	// the owner confirmed after its last renewal ends the lease at once.
	base, from := in.VIPRenewals[owner], "its last renewal"
	if in.LeaderSince.After(base) {
		base, from = in.LeaderSince, "this leader took office"
	}
	deadline := base.Add(p.VIPWait())
	inputs["owner"] = fmt.Sprintf("%s not fit: %s", owner, ownerWhy)
	inputs["lease_until"] = deadline.UTC().Format(time.RFC3339Nano)
	if rel, ok := in.VIPReleased[owner]; ok && releasedThisLease(in, owner) && !rel.Before(in.LeaderSince) {
		deadline, from = rel, "its confirmed release"
		inputs["lease_until"] = deadline.UTC().Format(time.RFC3339Nano)
	}
	if in.Now.Before(deadline) {
		return nil, append(why, fmt.Sprintf("vip: owner %s not fit (%s); waiting %s more, its lease may live %s after %s",
			owner, ownerWhy, deadline.Sub(in.Now), p.VIPWait(), from))
	}
	if first != "" {
		if block := handoverBlock(in, p, first); block != "" {
			return nil, append(why, fmt.Sprintf("vip: owner %s not fit (%s); waiting before moving to %s: %s", owner, ownerWhy, first, block))
		}
	}
	reason := fmt.Sprintf("owner %s not fit (%s) and its lease ran out %s after %s; ", owner, ownerWhy, p.VIPWait(), from)
	if from == "its confirmed release" {
		reason = fmt.Sprintf("owner %s not fit (%s) and it confirmed a release after its last renewal; ", owner, ownerWhy)
	}
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
		VIP: cluster.VIPState{Owner: to, LeaseEpoch: in.State.VIP.LeaseEpoch + 1, Since: in.Now},
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
	if ok, why := vipOwnerFit(in, p, m); !ok {
		return false, fmt.Sprintf("%s: %s", node, why)
	}
	// Its own lease ran out, so it has let go of the address; the planner
	// hands the VIP over (or re-assigns it) under a new lease epoch
	// instead of reviving this one.
	if lapsed, why := leaseLapsed(in, p, node); lapsed {
		return false, fmt.Sprintf("%s: %s", node, why)
	}
	return true, ""
}

// leaseLapsed reports whether owner's renewals stopped reaching this leader
// for longer than its lease: it has dropped the address by its own rule
// (or is dead), even if its last report is still within agent_timeout.
// The lease counts from its last renewal, or from its assignment when that
// is later (renewals of an earlier lease of the same node do not count),
// so an owner that never renewed after it was assigned lapses too. It is
// judged only once this leader has been in office for a full lease, so
// that it had the chance to hear renewals.
func leaseLapsed(in Input, p Policy, owner cluster.NodeName) (bool, string) {
	if in.Now.Sub(in.LeaderSince) <= p.VIPLease {
		return false, ""
	}
	renewed, ok := in.VIPRenewals[owner]
	if since := in.State.VIP.Since; !since.IsZero() && !since.Before(renewed) {
		if in.Now.Sub(since) > p.VIPLease {
			return true, fmt.Sprintf("has not renewed its lease since it was assigned %s ago", in.Now.Sub(since))
		}
		return false, ""
	}
	if ok && in.Now.Sub(renewed) > p.VIPLease {
		return true, fmt.Sprintf("stopped renewing its lease (last renewal %s ago)", in.Now.Sub(renewed))
	}
	return false, ""
}
