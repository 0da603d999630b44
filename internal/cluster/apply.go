package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
)

// Errors returned by State.Apply. Apply wraps them with the command and the
// node involved; test for them with errors.Is.
var (
	// ErrStaleEpoch: a SetTopology epoch or a SetVIPOwner lease epoch is
	// not exactly one more than the committed one (stale or skipped).
	ErrStaleEpoch = errors.New("stale or skipped epoch")
	// ErrUnknownMember: the command names a node that is not a member.
	ErrUnknownMember = errors.New("unknown member")
	// ErrWrongRole: the member lacks the role the command needs (a VIP
	// owner must be a proxy; joiners, donors and bootstrap nodes must be db).
	ErrWrongRole = errors.New("member lacks required role")
	// ErrUnknownFlag: SetMemberFlag names no known admin flag.
	ErrUnknownFlag = errors.New("unknown member flag")
	// ErrGrantBusy: a grant (join, bootstrap, switchover) is already held
	// by a different node.
	ErrGrantBusy = errors.New("grant held by another node")
	// ErrInvalidGrant: a grant is malformed (empty names, donor == joiner,
	// donor is the writer, from == to).
	ErrInvalidGrant = errors.New("invalid grant")
	// ErrInvalidCommand: the command itself is invalid (bad topology or
	// member, nil or mistyped command).
	ErrInvalidCommand = errors.New("invalid command")
	// ErrUnknownSnapshotVersion: a snapshot carries a version this binary
	// cannot read.
	ErrUnknownSnapshotVersion = errors.New("unknown snapshot version")
	// ErrCorruptSnapshot: a snapshot has a bad header or undecodable body.
	ErrCorruptSnapshot = errors.New("corrupt snapshot")
)

// applyFunc validates a command against s and, only when it is valid,
// mutates s. It returns the command's optional event, to be appended once the
// change is in.
type applyFunc func(s *State, c Command) (*Event, error)

// applyTable is the apply dispatch table, keyed like newCommand. It is never
// written after initialization.
var applyTable = map[CommandType]applyFunc{
	CmdSetTopology:   typed(applySetTopology),
	CmdUpsertMember:  typed(applyUpsertMember),
	CmdRemoveMember:  typed(applyRemoveMember),
	CmdSetMemberFlag: typed(applySetMemberFlag),
	CmdSetVIPOwner:   typed(applySetVIPOwner),
	CmdSetJoinGrant:  typed(applySetJoinGrant),
	CmdSetBootstrap:  typed(applySetBootstrap),
	CmdSetSwitchover: typed(applySetSwitchover),
	CmdAppendEvent:   typed(applyAppendEvent),
}

// typed adapts a handler for one concrete command type. Both the value
// (SetTopology) and the pointer (*SetTopology, as returned by Decode) forms
// are accepted.
func typed[T Command](f func(*State, T) (*Event, error)) applyFunc {
	return func(s *State, c Command) (*Event, error) {
		switch v := any(c).(type) {
		case T:
			return f(s, v)
		case *T:
			if v != nil {
				return f(s, *v)
			}
		}
		var want T
		return nil, fmt.Errorf("apply command type %d: %w: got %T, want %T", c.Type(), ErrInvalidCommand, c, want)
	}
}

// Apply applies one command to s. It is deterministic: no clock, no I/O, no
// logging. On error s is left exactly as it was: every handler validates
// first and mutates only when the command is valid.
//
// When the command carries an Event, the event is appended to the ring with
// Seq = NextEventSeq (and NextEventSeq advances). An event with a zero Epoch
// gets the topology epoch in force after the command.
func (s *State) Apply(c Command) error {
	if c == nil {
		return fmt.Errorf("apply command: nil: %w", ErrInvalidCommand)
	}
	if isNilPointer(c) {
		return fmt.Errorf("apply command %T: nil: %w", c, ErrInvalidCommand)
	}
	f, ok := applyTable[c.Type()]
	if !ok {
		return fmt.Errorf("apply command type %d: %w", c.Type(), ErrUnknownCommand)
	}
	ev, err := f(s, c)
	if err != nil {
		return err
	}
	if ev != nil {
		s.appendEvent(*ev)
	}
	return nil
}

// isNilPointer reports whether v is a typed nil pointer (calling Type on a
// nil *SetTopology would panic).
func isNilPointer(v any) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

func (s *State) appendEvent(ev Event) {
	if s.NextEventSeq == 0 {
		s.NextEventSeq = 1
	}
	ev.Seq = s.NextEventSeq
	s.NextEventSeq++
	if ev.Epoch == 0 {
		ev.Epoch = s.Topology.Epoch
	}
	ev.Inputs = maps.Clone(ev.Inputs)
	if len(s.Events) >= MaxEvents {
		// Drop the oldest in place so the backing array stays bounded.
		n := copy(s.Events, s.Events[len(s.Events)-MaxEvents+1:])
		s.Events = s.Events[:n]
	}
	s.Events = append(s.Events, ev)
}

func applySetTopology(s *State, c SetTopology) (*Event, error) {
	t := c.Topology
	if err := t.Validate(); err != nil {
		return nil, fmt.Errorf("apply set topology: %w: %w", ErrInvalidCommand, err)
	}
	if want := s.Topology.Epoch + 1; t.Epoch != want {
		return nil, fmt.Errorf("apply set topology epoch %d (current %d, want %d): %w", t.Epoch, s.Topology.Epoch, want, ErrStaleEpoch)
	}
	s.Topology = t.Normalize()
	return c.Event, nil
}

func applyUpsertMember(s *State, c UpsertMember) (*Event, error) {
	m := c.Member
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("apply upsert member: %w: %w", ErrInvalidCommand, err)
	}
	m.Roles = slices.Clone(m.Roles)
	if s.Members == nil {
		s.Members = map[NodeName]Member{}
	}
	s.Members[m.Name] = m
	return c.Event, nil
}

func applyRemoveMember(s *State, c RemoveMember) (*Event, error) {
	if _, ok := s.Members[c.Name]; !ok {
		return nil, fmt.Errorf("apply remove member %s: %w", c.Name, ErrUnknownMember)
	}
	delete(s.Members, c.Name)
	return c.Event, nil
}

func applySetMemberFlag(s *State, c SetMemberFlag) (*Event, error) {
	m, ok := s.Members[c.Name]
	if !ok {
		return nil, fmt.Errorf("apply set flag %s on %s: %w", c.Flag, c.Name, ErrUnknownMember)
	}
	switch c.Flag {
	case FlagMaintenance:
		m.Maintenance = c.Value
	case FlagDraining:
		m.Draining = c.Value
	case FlagNoWriter:
		m.NoWriter = c.Value
	default:
		return nil, fmt.Errorf("apply set flag %q on %s: %w", c.Flag, c.Name, ErrUnknownFlag)
	}
	s.Members[c.Name] = m
	return c.Event, nil
}

func applySetVIPOwner(s *State, c SetVIPOwner) (*Event, error) {
	v := c.VIP
	if want := s.VIP.LeaseEpoch + 1; v.LeaseEpoch != want {
		return nil, fmt.Errorf("apply set vip owner %q lease epoch %d (current %d, want %d): %w", v.Owner, v.LeaseEpoch, s.VIP.LeaseEpoch, want, ErrStaleEpoch)
	}
	if v.Owner != "" {
		if err := s.requireRole(v.Owner, RoleProxy); err != nil {
			return nil, fmt.Errorf("apply set vip owner %s: %w", v.Owner, err)
		}
	}
	s.VIP = v
	return c.Event, nil
}

func applySetJoinGrant(s *State, c SetJoinGrant) (*Event, error) {
	if c.Grant == nil {
		s.Grants.Join = nil
		return c.Event, nil
	}
	g := *c.Grant
	op := fmt.Sprintf("apply join grant %s from %s", g.Joiner, g.Donor)
	if g.Joiner == "" || g.Donor == "" {
		return nil, fmt.Errorf("%s: empty joiner or donor: %w", op, ErrInvalidGrant)
	}
	if cur := s.Grants.Join; cur != nil && cur.Joiner != g.Joiner {
		return nil, fmt.Errorf("%s: held by joiner %s: %w", op, cur.Joiner, ErrGrantBusy)
	}
	if g.Donor == g.Joiner {
		return nil, fmt.Errorf("%s: donor is the joiner: %w", op, ErrInvalidGrant)
	}
	if g.Donor == s.Topology.Writer {
		return nil, fmt.Errorf("%s: donor is the writer: %w", op, ErrInvalidGrant)
	}
	if err := s.requireRole(g.Joiner, RoleDB); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := s.requireRole(g.Donor, RoleDB); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	s.Grants.Join = &g
	return c.Event, nil
}

func applySetBootstrap(s *State, c SetBootstrap) (*Event, error) {
	if c.Grant == nil {
		s.Grants.Bootstrap = nil
		return c.Event, nil
	}
	g := *c.Grant
	op := fmt.Sprintf("apply bootstrap grant %s", g.Node)
	if g.Node == "" {
		return nil, fmt.Errorf("%s: empty node: %w", op, ErrInvalidGrant)
	}
	if cur := s.Grants.Bootstrap; cur != nil && cur.Node != g.Node {
		return nil, fmt.Errorf("%s: held by %s: %w", op, cur.Node, ErrGrantBusy)
	}
	if err := s.requireRole(g.Node, RoleDB); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	s.Grants.Bootstrap = &g
	return c.Event, nil
}

func applySetSwitchover(s *State, c SetSwitchover) (*Event, error) {
	if c.Switchover == nil {
		s.Grants.Switchover = nil
		return c.Event, nil
	}
	sw := *c.Switchover
	op := fmt.Sprintf("apply switchover %s to %s", sw.From, sw.To)
	if sw.From == "" || sw.To == "" {
		return nil, fmt.Errorf("%s: empty from or to: %w", op, ErrInvalidGrant)
	}
	if cur := s.Grants.Switchover; cur != nil && (cur.From != sw.From || cur.To != sw.To) {
		return nil, fmt.Errorf("%s: switchover %s to %s in progress: %w", op, cur.From, cur.To, ErrGrantBusy)
	}
	if sw.From == sw.To {
		return nil, fmt.Errorf("%s: from equals to: %w", op, ErrInvalidGrant)
	}
	if err := s.requireRole(sw.From, RoleDB); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := s.requireRole(sw.To, RoleDB); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	s.Grants.Switchover = &sw
	return c.Event, nil
}

func applyAppendEvent(_ *State, c AppendEvent) (*Event, error) {
	ev := c.Event
	return &ev, nil
}

// requireRole checks that n is a member carrying role r.
func (s *State) requireRole(n NodeName, r Role) error {
	m, ok := s.Members[n]
	if !ok {
		return fmt.Errorf("member %s: %w", n, ErrUnknownMember)
	}
	if !m.Has(r) {
		return fmt.Errorf("member %s has roles %v, needs %s: %w", n, m.Roles, r, ErrWrongRole)
	}
	return nil
}

// Clone returns a deep copy of s: nothing in the copy aliases s. Nil maps and
// slices stay nil.
func (s State) Clone() State {
	c := s
	if s.Members != nil {
		c.Members = make(map[NodeName]Member, len(s.Members))
		for k, m := range s.Members {
			m.Roles = slices.Clone(m.Roles)
			c.Members[k] = m
		}
	}
	c.Topology.Readers = slices.Clone(s.Topology.Readers)
	c.Topology.Offline = slices.Clone(s.Topology.Offline)
	if g := s.Grants.Join; g != nil {
		v := *g
		c.Grants.Join = &v
	}
	if g := s.Grants.Bootstrap; g != nil {
		v := *g
		c.Grants.Bootstrap = &v
	}
	if g := s.Grants.Switchover; g != nil {
		v := *g
		c.Grants.Switchover = &v
	}
	if s.Events != nil {
		c.Events = make([]Event, len(s.Events))
		for i, ev := range s.Events {
			ev.Inputs = maps.Clone(ev.Inputs)
			c.Events[i] = ev
		}
	}
	return c
}

// Snapshot encoding: the magic, one version byte, then the JSON of State.
const (
	snapshotMagic   = "DBHASNAP"
	snapshotVersion = 1
)

// EncodeSnapshot serializes s with a magic and version header.
func EncodeSnapshot(s State) ([]byte, error) {
	body, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode snapshot at epoch %d: %w", s.Topology.Epoch, err)
	}
	out := make([]byte, 0, len(snapshotMagic)+1+len(body))
	out = append(out, snapshotMagic...)
	out = append(out, snapshotVersion)
	return append(out, body...), nil
}

// DecodeSnapshot parses the output of EncodeSnapshot. A bad magic or body is
// ErrCorruptSnapshot; a version other than 1 is ErrUnknownSnapshotVersion.
// Nil Members and Events are replaced with empty ones.
func DecodeSnapshot(b []byte) (State, error) {
	if len(b) < len(snapshotMagic)+1 || !bytes.Equal(b[:len(snapshotMagic)], []byte(snapshotMagic)) {
		return State{}, fmt.Errorf("decode snapshot of %d bytes: bad header: %w", len(b), ErrCorruptSnapshot)
	}
	if v := b[len(snapshotMagic)]; v != snapshotVersion {
		return State{}, fmt.Errorf("decode snapshot version %d (want %d): %w", v, snapshotVersion, ErrUnknownSnapshotVersion)
	}
	var s State
	if err := json.Unmarshal(b[len(snapshotMagic)+1:], &s); err != nil {
		return State{}, fmt.Errorf("decode snapshot: %w: %v", ErrCorruptSnapshot, err)
	}
	if s.Members == nil {
		s.Members = map[NodeName]Member{}
	}
	if s.Events == nil {
		s.Events = []Event{}
	}
	return s, nil
}
