package planner

import (
	"fmt"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/dbha/dbha/internal/cluster"
)

// TestPropertyVIPHandover drives the VIP part of the planner through random
// runs on a healthy DB cluster with 2 to 4 proxies: proxies turn unhealthy
// or silent, renew their leases (only the committed owner, only while
// CanRenewVIP says so, as the controller does), confirm releases, and
// planned moves come and go; time advances in random steps. After every
// decision it checks the safety rule of every handover: a new owner is
// never committed while another proxy's last renewal + VIPWait is in the
// future, unless that proxy confirmed a release after it. It also checks
// that a planned move to an eligible target ends with the target owning
// the VIP once everything holds still.
func TestPropertyVIPHandover(t *testing.T) {
	var releases, assigns, heldBack int
	rapid.Check(t, func(t *rapid.T) {
		in := baseInput()
		in.Policy.VIPKernelLifetime = time.Duration(rapid.IntRange(0, 2).Draw(t, "kernel_s")) * time.Second
		in.Policy.VIPSkew = time.Duration(rapid.IntRange(0, 200).Draw(t, "skew_ms")) * time.Millisecond
		var proxies []cluster.NodeName
		for i := range rapid.IntRange(2, 4).Draw(t, "proxies") {
			proxies = append(proxies, cluster.NodeName(fmt.Sprintf("px%d", i+1)))
		}
		delete(in.State.Members, "px2")
		delete(in.Reports, "px2")
		for _, px := range proxies {
			in.State.Members[px] = proxyMember(px)
			in.Reports[px] = proxyReport(px, true, 5, dbNames, nil, in.Now)
		}
		in.LeaderSince = in.Now.Add(-time.Duration(rapid.IntRange(0, 3000).Draw(t, "leader_ms")) * time.Millisecond)
		in.VIPReleased = map[cluster.NodeName]time.Time{}
		clear(in.VIPRenewals)
		if rapid.Bool().Draw(t, "owner_renewed") {
			in.VIPRenewals["px1"] = in.Now.Add(-time.Duration(rapid.IntRange(0, 2000).Draw(t, "renew_ms")) * time.Millisecond)
		}
		healthy := map[cluster.NodeName]bool{}
		for _, px := range proxies {
			healthy[px] = true
		}
		for step := range 40 {
			switch rapid.IntRange(0, 9).Draw(t, fmt.Sprintf("action%d", step)) {
			case 0: // a proxy's health flips
				px := rapid.SampledFrom(proxies).Draw(t, "flip")
				healthy[px] = !healthy[px]
			case 1: // a planned move starts or ends
				if rapid.Bool().Draw(t, "move_on") {
					in.VIPMoveTo = rapid.SampledFrom(proxies).Draw(t, "move_to")
				} else {
					in.VIPMoveTo = ""
				}
			case 2, 3: // a proxy that is not the owner confirms a release
				px := rapid.SampledFrom(proxies).Draw(t, "release")
				if px != in.State.VIP.Owner {
					in.VIPReleased[px] = in.Now
				}
			}
			// Reports: healthy proxies report now; unhealthy ones report
			// their proxy down, or go silent.
			for _, px := range proxies {
				if healthy[px] {
					in.Reports[px] = proxyReport(px, true, 5, dbNames, nil, in.Now)
				} else if rapid.Bool().Draw(t, "silent") {
					delete(in.Reports, px)
				} else {
					in.Reports[px] = proxyReport(px, false, 5, dbNames, nil, in.Now)
				}
			}
			// The owner renews when the leader answers it.
			if o := in.State.VIP.Owner; o != "" && healthy[o] && rapid.IntRange(0, 3).Draw(t, "renew") > 0 {
				if ok, _ := CanRenewVIP(in, o); ok {
					in.VIPRenewals[o] = in.Now
				}
			}
			d := Plan(in)
			if v, ok := vipOf(d); ok {
				if v.VIP.Owner != "" {
					assigns++
					if !handoverAllowed(in, v.VIP.Owner) {
						t.Fatalf("step %d: vip given to %s while another lease may live: owner %q renewals %v releases %v leader since %v now %v",
							step, v.VIP.Owner, in.State.VIP.Owner, in.VIPRenewals, in.VIPReleased, in.LeaderSince, in.Now)
					}
				} else if v.Event.Inputs["planned_move"] == "releasing" {
					releases++
				}
			} else if in.State.VIP.Owner == "" {
				heldBack++
			}
			applyDecision(t, &in.State, d)
			in.Now = in.Now.Add(time.Duration(rapid.IntRange(10, 600).Draw(t, "dt_ms")) * time.Millisecond)
		}
		// Hold still with every proxy healthy: a planned move settles on
		// its target within a few lease waits.
		if in.VIPMoveTo == "" {
			return
		}
		for _, px := range proxies {
			healthy[px] = true
		}
		for range 50 {
			for _, px := range proxies {
				in.Reports[px] = proxyReport(px, true, 5, dbNames, nil, in.Now)
			}
			if o := in.State.VIP.Owner; o != "" {
				in.VIPRenewals[o] = in.Now
			}
			d := Plan(in)
			if v, ok := vipOf(d); ok && v.VIP.Owner != "" && !handoverAllowed(in, v.VIP.Owner) {
				t.Fatalf("settling: vip given to %s while another lease may live", v.VIP.Owner)
			}
			applyDecision(t, &in.State, d)
			in.Now = in.Now.Add(100 * time.Millisecond)
		}
		if in.State.VIP.Owner != in.VIPMoveTo {
			t.Fatalf("planned move to %s did not settle: owner %q", in.VIPMoveTo, in.State.VIP.Owner)
		}
	})
	t.Logf("planned releases=%d assignments=%d rounds held back with no owner=%d", releases, assigns, heldBack)
	if releases == 0 || assigns == 0 || heldBack == 0 {
		t.Fatalf("the run misses cases: releases=%d assignments=%d held back=%d", releases, assigns, heldBack)
	}
}
