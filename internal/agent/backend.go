package agent

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/dbha/dbha/internal/api"
	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/controller"
	"github.com/dbha/dbha/internal/raft"
)

// backend implements api.Backend over the agent's raft node and controller.
type backend struct{ a *Agent }

var _ api.Backend = backend{}

func (b backend) Status(ctx context.Context) (api.Status, error) {
	a := b.a
	rs := a.raft.Status()
	st := a.raft.State()
	snap := a.ctrl.Snapshot()
	out := api.Status{
		Node:     a.cfg.name(),
		Leader:   rs.Leader,
		IsLeader: rs.State == "Leader",
		Term:     rs.Term,
		Topology: st.Topology,
		Grants:   st.Grants,
		VIP:      api.VIPStatus{Address: a.cfg.VIP.Address, Owner: st.VIP.Owner, LeaseEpoch: st.VIP.LeaseEpoch},
		Observed: snap.Leading,
	}
	out.LeaderAPI = b.LeaderAPI()
	if out.IsLeader && !rs.LeaderSince.IsZero() {
		out.InOffice = a.now().Sub(rs.LeaderSince)
	}
	for _, s := range rs.Servers {
		out.Raft = append(out.Raft, api.RaftServer{Name: s.Name, Address: s.RaftAddr, Suffrage: s.Suffrage, Leader: s.Leader})
	}
	names := make([]cluster.NodeName, 0, len(st.Members))
	for n := range st.Members {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		m := st.Members[n]
		out.Members = append(out.Members, m)
		if m.Has(cluster.RoleDB) {
			ns := api.NodeStatus{Name: n, Priority: m.Priority, Role: "offline"}
			switch {
			case st.Topology.Writer == n:
				ns.Role = "writer"
			case st.Topology.IsReader(n):
				ns.Role = "reader"
			}
			if r, ok := st.Topology.OfflineReasonOf(n); ok {
				ns.Reason = r
			} else if ns.Role == "offline" {
				ns.Reason = cluster.ReasonUnknown
			}
			for _, f := range []struct {
				on   bool
				name string
			}{{m.Maintenance, "maintenance"}, {m.Draining, "draining"}, {m.NoWriter, "no_writer"}} {
				if f.on {
					ns.Flags = append(ns.Flags, f.name)
				}
			}
			if rec, ok := snap.Reports[n]; ok && rec.Report.DB != nil {
				ns.Health, ns.Streak, ns.Wsrep, ns.LastReport = rec.Report.DB.Health, rec.Report.DB.Streak, rec.Report.DB.Wsrep, rec.At
			}
			out.Nodes = append(out.Nodes, ns)
		}
		if m.Has(cluster.RoleProxy) {
			ps := api.ProxyStatus{Name: n}
			if rec, ok := snap.Reports[n]; ok && rec.Report.Proxy != nil {
				ps.Healthy, ps.Error, ps.AppliedEpoch, ps.LastReport = rec.Report.Proxy.Healthy, rec.Report.Proxy.Error, rec.Report.Proxy.AppliedEpoch, rec.At
			}
			out.Proxies = append(out.Proxies, ps)
		}
	}
	if snap.Leading && st.VIP.Owner != "" {
		if t, ok := snap.VIPRenewals[st.VIP.Owner]; ok {
			out.VIP.LeaseAge = a.now().Sub(t)
		}
	}
	return out, nil
}

func (b backend) Events(ctx context.Context, since uint64, limit int) ([]cluster.Event, error) {
	st := b.a.raft.State()
	var out []cluster.Event
	for _, e := range st.Events {
		if e.Seq > since {
			out = append(out, e)
		}
	}
	if limit > 0 && len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out, nil
}

func (b backend) Why(ctx context.Context, epoch cluster.Epoch) (api.Why, error) {
	st := b.a.raft.State()
	if epoch == 0 {
		epoch = st.Topology.Epoch
	}
	if epoch > st.Topology.Epoch {
		return api.Why{}, fmt.Errorf("epoch %d is in the future (current %d): %w", epoch, st.Topology.Epoch, api.ErrNotFound)
	}
	w := api.Why{Epoch: epoch, Current: epoch == st.Topology.Epoch, Events: []cluster.Event{}}
	if w.Current {
		t := st.Topology
		w.Topology = &t
	}
	for _, e := range st.Events {
		if e.Epoch == epoch {
			w.Events = append(w.Events, e)
		}
	}
	if !w.Current && len(w.Events) == 0 {
		return api.Why{}, fmt.Errorf("no events recorded for epoch %d (the ring keeps the last %d): %w", epoch, cluster.MaxEvents, api.ErrNotFound)
	}
	return w, nil
}

func (b backend) Report(ctx context.Context, r cluster.Report) error {
	if err := b.a.ctrl.Report(r); err != nil {
		if errors.Is(err, controller.ErrNotLeading) {
			return api.ErrNotLeader
		}
		return fmt.Errorf("%w: %v", api.ErrBadRequest, err)
	}
	return nil
}

func (b backend) Join(ctx context.Context, m cluster.Member) error {
	a := b.a
	if !a.raft.IsLeader() {
		return api.ErrNotLeader
	}
	if err := m.Validate(); err != nil {
		return fmt.Errorf("%w: %v", api.ErrBadRequest, err)
	}
	servers, err := a.raft.Configuration()
	if err != nil {
		return err
	}
	inRaft := false
	for _, s := range servers {
		if s.Name == m.Name {
			inRaft = true
			if s.RaftAddr != m.RaftAddr {
				return fmt.Errorf("%w: %s is in the raft group at %s, not %s; remove it first", api.ErrConflict, m.Name, s.RaftAddr, m.RaftAddr)
			}
		}
	}
	if !inRaft {
		if err := a.raft.AddMember(ctx, m.Name, m.RaftAddr); err != nil {
			return mapRaftErr(err)
		}
	}
	st := a.raft.State()
	if old, ok := st.Members[m.Name]; ok {
		// Keep admin flags set by dbctl across re-registration.
		m.Maintenance, m.Draining = old.Maintenance, old.Draining
		m.NoWriter = m.NoWriter || old.NoWriter
		if membersEqual(old, m) {
			return nil
		}
	}
	ev := &cluster.Event{Time: a.now(), Epoch: st.Topology.Epoch, Kind: cluster.EventMember, Node: m.Name,
		Reason: fmt.Sprintf("member %s registered with roles %v", m.Name, m.Roles)}
	return mapRaftErr(a.raft.Apply(ctx, cluster.UpsertMember{Member: m, Event: ev}))
}

func membersEqual(a, b cluster.Member) bool {
	return a.Name == b.Name && slices.Equal(a.Roles, b.Roles) && a.APIAddr == b.APIAddr && a.RaftAddr == b.RaftAddr &&
		a.MySQLAddr == b.MySQLAddr && a.Priority == b.Priority && a.Maintenance == b.Maintenance &&
		a.Draining == b.Draining && a.NoWriter == b.NoWriter
}

func (b backend) Leave(ctx context.Context, name cluster.NodeName) error {
	a := b.a
	if !a.raft.IsLeader() {
		return api.ErrNotLeader
	}
	st := a.raft.State()
	if _, ok := st.Members[name]; !ok {
		return fmt.Errorf("member %s: %w", name, api.ErrNotFound)
	}
	if st.Topology.Writer == name {
		return fmt.Errorf("%w: %s is the writer; switch over or drain it before it leaves", api.ErrConflict, name)
	}
	if name == a.cfg.name() {
		return fmt.Errorf("%w: %s is the raft leader answering this request; ask another agent, or stop this one first", api.ErrConflict, name)
	}
	ev := &cluster.Event{Time: a.now(), Epoch: st.Topology.Epoch, Kind: cluster.EventLeave, Node: name,
		Reason: fmt.Sprintf("member %s removed on request", name)}
	if err := a.raft.Apply(ctx, cluster.RemoveMember{Name: name, Event: ev}); err != nil {
		return mapRaftErr(err)
	}
	return mapRaftErr(a.raft.RemoveMember(ctx, name))
}

func mapRaftErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader):
		return fmt.Errorf("%w: %v", api.ErrNotLeader, err)
	case errors.Is(err, cluster.ErrStaleEpoch), errors.Is(err, cluster.ErrUnknownMember):
		return fmt.Errorf("%w: %v", api.ErrConflict, err)
	default:
		return err
	}
}

func (b backend) Health(ctx context.Context, role string) api.Health {
	st := b.a.raft.State()
	me := b.a.cfg.name()
	h := api.Health{Node: me, Role: role, Epoch: st.Topology.Epoch}
	switch role {
	case "writer":
		h.OK = st.Topology.Writer == me
		if h.OK {
			h.Reason = "committed writer"
		} else if st.Topology.Writer == "" {
			h.Reason = "no writer is committed"
		} else {
			h.Reason = fmt.Sprintf("the writer is %s", st.Topology.Writer)
		}
	case "reader":
		h.OK = st.Topology.IsReader(me)
		if h.OK {
			h.Reason = "in the reader pool"
		} else if r, ok := st.Topology.OfflineReasonOf(me); ok {
			h.Reason = "offline: " + string(r)
		} else {
			h.Reason = "not in the reader pool"
		}
	default:
		h.Reason = "unknown role " + role
	}
	return h
}

func (b backend) LeaderAPI() string {
	name, _ := b.a.raft.Leader()
	if name == "" {
		return ""
	}
	if m, ok := b.a.raft.State().Members[name]; ok {
		return m.APIAddr
	}
	return ""
}

// RenewVIP answers a VIP lease renewal (leader only).
func (b backend) RenewVIP(ctx context.Context, node cluster.NodeName) (api.VIPLease, error) {
	a := b.a
	if !a.raft.IsLeader() {
		return api.VIPLease{}, api.ErrNotLeader
	}
	ok, why, err := a.ctrl.RenewVIP(node)
	if err != nil {
		if errors.Is(err, controller.ErrNotLeading) {
			return api.VIPLease{}, fmt.Errorf("renew vip for %s: %w", node, api.ErrNotLeader)
		}
		return api.VIPLease{}, fmt.Errorf("renew vip for %s: %w", node, err)
	}
	st := a.raft.State()
	return api.VIPLease{Granted: ok, Owner: st.VIP.Owner, LeaseEpoch: st.VIP.LeaseEpoch, Reason: why}, nil
}

// MoveVIP starts a planned VIP move (leader only).
func (b backend) MoveVIP(ctx context.Context, to cluster.NodeName) (api.VIPMove, error) {
	a := b.a
	if !a.raft.IsLeader() {
		return api.VIPMove{}, api.ErrNotLeader
	}
	mv, err := a.ctrl.MoveVIP(to)
	switch {
	case err == nil:
		return api.VIPMove{To: mv.To, From: mv.From, Since: mv.Since}, nil
	case errors.Is(err, controller.ErrNotLeading):
		return api.VIPMove{}, fmt.Errorf("move vip to %s: %w", to, api.ErrNotLeader)
	case errors.Is(err, controller.ErrVIPMoveUnknownTarget):
		return api.VIPMove{}, fmt.Errorf("%w: %w", api.ErrNotFound, err)
	case errors.Is(err, controller.ErrVIPMoveRefused):
		return api.VIPMove{}, fmt.Errorf("%w: %w", api.ErrConflict, err)
	default:
		return api.VIPMove{}, fmt.Errorf("move vip to %s: %w", to, err)
	}
}

// ReleaseVIP records a proxy's confirmation that it removed the VIP (leader
// only).
func (b backend) ReleaseVIP(ctx context.Context, node cluster.NodeName, leaseEpoch uint64) error {
	a := b.a
	if !a.raft.IsLeader() {
		return api.ErrNotLeader
	}
	if err := a.ctrl.ReleaseVIP(node, leaseEpoch); err != nil {
		switch {
		case errors.Is(err, controller.ErrNotLeading):
			return fmt.Errorf("release vip from %s: %w", node, api.ErrNotLeader)
		case errors.Is(err, controller.ErrVIPReleaseStale):
			return fmt.Errorf("%w: %w", api.ErrConflict, err)
		}
		return fmt.Errorf("release vip from %s: %w", node, err)
	}
	return nil
}
