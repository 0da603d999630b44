package planner

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dbha/dbha/internal/cluster"
)

// Received is an agent report with the leader's receive time.
type Received struct {
	Report cluster.Report
	At     time.Time
}

// Input is everything Plan decides from.
type Input struct {
	Now   time.Time
	State cluster.State
	// Reports holds the latest report per agent.
	Reports map[cluster.NodeName]Received
	// VIPRenewals holds, per proxy, the last VIP lease renewal this leader
	// answered.
	VIPRenewals map[cluster.NodeName]time.Time
	// LeaderSince is when this leader took office.
	LeaderSince time.Time
	// VIPMoveTo is the target of a planned VIP move (dbctl vip move), or
	// empty. The leader's controller keeps it in memory until the move is
	// done, abandoned or timed out.
	VIPMoveTo cluster.NodeName
	// VIPReleased holds, per proxy, when this leader last received its
	// confirmation that it removed the VIP address. A confirmation received
	// after the proxy's last answered renewal ends that proxy's lease at
	// once.
	VIPReleased map[cluster.NodeName]time.Time
	Policy      Policy
}

// Decision is what Plan returns.
type Decision struct {
	// Commands holds only state changes; it is empty when nothing changes.
	Commands []cluster.Command
	// Why explains, line by line, how the decision was reached.
	Why []string
}

// Plan decides the topology and the VIP owner. See the package comment for
// the rules.
func Plan(in Input) Decision {
	p := in.Policy.clamped()
	cur := in.State.Topology.Normalize()
	var d Decision

	observers := freshObservers(in, p)
	dbs := membersWith(in.State.Members, cluster.RoleDB)
	verdicts := make([]verdict, 0, len(dbs))
	for _, m := range dbs {
		v := classify(nodeFacts(in, p, cur, m, observers))
		verdicts = append(verdicts, v)
		d.Why = append(d.Why, fmt.Sprintf("%s: %s: %s", v.Node, v.Code, v.Why))
	}

	el := electWriter(cur, verdicts)
	d.Why = append(d.Why, el.why...)
	next := assemble(cur, verdicts, el.writer, p)
	epoch := cur.Epoch
	if !next.SameRouting(cur) {
		epoch = cur.Epoch + 1
		next.Epoch = epoch
		ev := topologyEvent(in.Now, cur, next, verdicts, el)
		d.Commands = append(d.Commands, cluster.SetTopology{Topology: next, Event: &ev})
		d.Why = append(d.Why, fmt.Sprintf("topology: routing changed, epoch %d: %s", epoch, ev.Reason))
	} else {
		d.Why = append(d.Why, fmt.Sprintf("topology: routing unchanged at epoch %d", cur.Epoch))
	}

	vipCmd, vipWhy := planVIP(in, p, cur.Epoch, epoch, epoch != cur.Epoch)
	d.Why = append(d.Why, vipWhy...)
	if vipCmd != nil {
		d.Commands = append(d.Commands, *vipCmd)
	}
	return d
}

// membersWith returns the members carrying role r, sorted by name.
func membersWith(ms map[cluster.NodeName]cluster.Member, r cluster.Role) []cluster.Member {
	var out []cluster.Member
	for _, m := range ms {
		if m.Has(r) {
			out = append(out, m)
		}
	}
	slices.SortFunc(out, func(a, b cluster.Member) int { return strings.Compare(string(a.Name), string(b.Name)) })
	return out
}

// fresh returns the node's latest report if it is not older than the agent
// timeout, and the report's age (-1 when there is none).
func fresh(in Input, p Policy, n cluster.NodeName) (cluster.Report, time.Duration, bool) {
	r, ok := in.Reports[n]
	if !ok {
		return cluster.Report{}, -1, false
	}
	age := in.Now.Sub(r.At)
	return r.Report, age, age <= p.AgentTimeout
}

// freshObservers returns the fresh proxy reports of proxy members, sorted by
// node name.
func freshObservers(in Input, p Policy) []cluster.ProxyReport {
	var out []cluster.ProxyReport
	for _, m := range membersWith(in.State.Members, cluster.RoleProxy) {
		r, _, ok := fresh(in, p, m.Name)
		if ok && r.Proxy != nil {
			pr := *r.Proxy
			pr.Node = m.Name
			out = append(out, pr)
		}
	}
	return out
}

func nodeFacts(in Input, p Policy, cur cluster.Topology, m cluster.Member, observers []cluster.ProxyReport) facts {
	f := facts{Node: m.Name, Member: m, Policy: p, Age: -1}
	r, age, ok := fresh(in, p, m.Name)
	f.Age = age
	if ok && r.DB != nil {
		obs := *r.DB
		f.Obs = &obs
	}
	switch reason, off := cur.OfflineReasonOf(m.Name); {
	case cur.Writer == m.Name:
		f.Place = placeWriter
	case cur.IsReader(m.Name):
		f.Place = placeReader
	case off:
		f.Place, f.CurReason = placeOffline, reason
	}
	for _, o := range observers {
		if o.Node == m.Name {
			continue // a node does not vouch for itself
		}
		f.Observers++
		if i := slices.IndexFunc(o.Probes, func(pr cluster.ProbeResult) bool { return pr.Node == m.Name }); i >= 0 && !o.Probes[i].Reachable {
			f.Unreachable++
		}
	}
	if g := in.State.Grants.Join; g != nil {
		f.GrantDonor = g.Donor == m.Name
		f.GrantJoiner = g.Joiner == m.Name
	}
	return f
}

// election is the outcome of the writer choice.
type election struct {
	writer cluster.NodeName
	kept   bool
	// old is the previous writer's verdict, when it has one.
	old *verdict
	// chosen is the new writer's verdict, when one was elected.
	chosen *verdict
	// because says why the chosen candidate won, or why nobody qualified.
	because string
	why     []string
}

// electWriter keeps the current writer when it may stay, and otherwise picks
// the best candidate: highest priority, then highest last_committed, then
// lowest name.
func electWriter(cur cluster.Topology, vs []verdict) election {
	var el election
	if i := slices.IndexFunc(vs, func(v verdict) bool { return v.Node == cur.Writer }); cur.Writer != "" && i >= 0 {
		old := vs[i]
		el.old = &old
		if old.Out.Serve && old.Out.KeepWriter && !old.Facts.Member.NoWriter {
			el.writer, el.kept = old.Node, true
			el.why = append(el.why, fmt.Sprintf("writer: keep %s (sticky, %s)", old.Node, old.Code))
			return el
		}
		el.why = append(el.why, fmt.Sprintf("writer: %s cannot stay writer (%s)", old.Node, writerBlock(old)))
	} else if cur.Writer != "" {
		el.why = append(el.why, fmt.Sprintf("writer: %s is no longer a db member", cur.Writer))
	}

	var cands []verdict
	var blocked []string
	for _, v := range vs {
		if v.Out.Electable && !v.Facts.Member.NoWriter {
			cands = append(cands, v)
			continue
		}
		blocked = append(blocked, fmt.Sprintf("%s %s", v.Node, writerBlock(v)))
	}
	if len(cands) == 0 {
		el.because = "no candidate qualifies"
		if len(blocked) > 0 {
			el.because += ": " + strings.Join(blocked, ", ")
		}
		el.why = append(el.why, "writer: none, "+el.because)
		return el
	}
	slices.SortFunc(cands, betterWriter)
	best := cands[0]
	el.writer, el.chosen = best.Node, &best
	el.because = fmt.Sprintf("%s (priority %d, last_committed %d)", best.Node, best.Facts.Member.Priority, lastCommitted(best))
	if len(cands) > 1 {
		el.because += " won by " + tiebreak(best, cands[1]) + " over " + string(cands[1].Node)
	} else {
		el.because += " is the only candidate"
	}
	var names []string
	for _, c := range cands {
		names = append(names, fmt.Sprintf("%s(p=%d,lc=%d)", c.Node, c.Facts.Member.Priority, lastCommitted(c)))
	}
	el.why = append(el.why, fmt.Sprintf("writer: candidates %s; elected %s", strings.Join(names, " "), el.because))
	return el
}

// writerBlock says why v may not be a writer.
func writerBlock(v verdict) string {
	if v.Facts.Member.NoWriter && v.Out.Serve {
		return "no_writer flag"
	}
	switch v.Code {
	case codeRecovered:
		return "returning as a reader first"
	case codeSuspect, codeSilentKept:
		if v.Out.Serve {
			return string(v.Code) + ", never promoted"
		}
	}
	if !v.Out.Serve {
		return "offline " + string(v.Out.Reason)
	}
	return string(v.Code)
}

func lastCommitted(v verdict) int64 {
	if v.Facts.Obs == nil || v.Facts.Obs.Wsrep == nil {
		return 0
	}
	return v.Facts.Obs.Wsrep.LastCommitted
}

// betterWriter orders candidates best first.
func betterWriter(a, b verdict) int {
	if pa, pb := a.Facts.Member.Priority, b.Facts.Member.Priority; pa != pb {
		if pa > pb {
			return -1
		}
		return 1
	}
	if la, lb := lastCommitted(a), lastCommitted(b); la != lb {
		if la > lb {
			return -1
		}
		return 1
	}
	return strings.Compare(string(a.Node), string(b.Node))
}

func tiebreak(a, b verdict) string {
	switch {
	case a.Facts.Member.Priority != b.Facts.Member.Priority:
		return "priority"
	case lastCommitted(a) != lastCommitted(b):
		return "last_committed"
	default:
		return "name"
	}
}

// assemble builds the next topology from the verdicts and the writer. A
// writer that leaves with a health-derived reason is fenced, and a fenced
// node stays fenced while its reason stays health-derived; see the package
// comment.
func assemble(cur cluster.Topology, vs []verdict, writer cluster.NodeName, p Policy) cluster.Topology {
	next := cluster.Topology{Epoch: cur.Epoch, Writer: writer}
	for _, v := range vs {
		switch {
		case v.Node == writer:
			if p.WriterIsReader {
				next.Readers = append(next.Readers, v.Node)
			}
		case v.Out.Serve:
			next.Readers = append(next.Readers, v.Node)
		default:
			reason := v.Out.Reason
			wasWriter := cur.Writer == v.Node
			wasFenced := v.Facts.Place == placeOffline && v.Facts.CurReason == cluster.ReasonFenced
			if v.Out.Fenceable && (wasWriter || wasFenced) {
				reason = cluster.ReasonFenced
			}
			next.Offline = append(next.Offline, cluster.OfflineNode{Node: v.Node, Reason: reason})
		}
	}
	return next.Normalize()
}

// topologyEvent describes a routing change.
func topologyEvent(now time.Time, cur, next cluster.Topology, vs []verdict, el election) cluster.Event {
	ev := cluster.Event{Time: now, Epoch: next.Epoch, Inputs: map[string]string{}}
	var head string
	switch {
	case next.Writer == "":
		ev.Kind, ev.Node = cluster.EventNoWriter, cur.Writer
		head = "no writer: " + el.because
		if cur.Writer != "" {
			head = fmt.Sprintf("writer %s lost (%s); %s", cur.Writer, oldWriterText(el), head)
		}
	case cur.Writer != "" && next.Writer != cur.Writer:
		ev.Kind, ev.Node = cluster.EventFailover, next.Writer
		head = fmt.Sprintf("writer %s replaced (%s); elected %s", cur.Writer, oldWriterText(el), el.because)
	case cur.Writer == "" && next.Writer != "":
		ev.Kind, ev.Node = cluster.EventTopology, next.Writer
		head = "elected " + el.because
	default:
		ev.Kind = cluster.EventTopology
		head = "routing changed"
	}
	changes := placementChanges(cur, next)
	if len(changes) == 1 && ev.Node == "" {
		ev.Node = changes[0].node
	}
	var parts []string
	for _, c := range changes {
		parts = append(parts, c.text)
	}
	ev.Reason = head + "; changes: " + strings.Join(parts, ", ")
	for _, v := range vs {
		ev.Inputs[string(v.Node)] = fmt.Sprintf("%s: %s", v.Code, v.Facts.summary())
	}
	return ev
}

func oldWriterText(el election) string {
	if el.old == nil {
		return "no longer a db member"
	}
	return writerBlock(*el.old)
}

type change struct {
	node cluster.NodeName
	text string
}

// placementChanges lists, by node name, every node whose place differs.
func placementChanges(cur, next cluster.Topology) []change {
	names := map[cluster.NodeName]bool{}
	for _, t := range []cluster.Topology{cur, next} {
		if t.Writer != "" {
			names[t.Writer] = true
		}
		for _, r := range t.Readers {
			names[r] = true
		}
		for _, o := range t.Offline {
			names[o.Node] = true
		}
	}
	sorted := make([]cluster.NodeName, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	slices.Sort(sorted)
	var out []change
	for _, n := range sorted {
		a, b := placeText(cur, n), placeText(next, n)
		if a != b {
			out = append(out, change{node: n, text: fmt.Sprintf("%s %s -> %s", n, a, b)})
		}
	}
	return out
}

func placeText(t cluster.Topology, n cluster.NodeName) string {
	if r, ok := t.OfflineReasonOf(n); ok {
		return "offline(" + string(r) + ")"
	}
	switch {
	case t.Writer == n && t.IsReader(n):
		return "writer+reader"
	case t.Writer == n:
		return "writer"
	case t.IsReader(n):
		return "reader"
	}
	return "absent"
}
