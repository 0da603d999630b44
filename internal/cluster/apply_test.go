package cluster

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func dbMember(n NodeName) Member {
	return Member{Name: n, Roles: []Role{RoleDB}, APIAddr: string(n) + ":8080", RaftAddr: string(n) + ":7000", MySQLAddr: string(n) + ":3306", Priority: 1}
}

func proxyMember(n NodeName) Member {
	return Member{Name: n, Roles: []Role{RoleProxy}, APIAddr: string(n) + ":8080", RaftAddr: string(n) + ":7000"}
}

// fixture: db1..db3, px1..px2, topology epoch 3 with writer db1, VIP on px1
// at lease epoch 2, one event.
func fixture(t *testing.T) State {
	t.Helper()
	s := NewState()
	cmds := []Command{
		UpsertMember{Member: dbMember("db1")},
		UpsertMember{Member: dbMember("db2")},
		UpsertMember{Member: dbMember("db3")},
		UpsertMember{Member: proxyMember("px1")},
		UpsertMember{Member: proxyMember("px2")},
		SetTopology{Topology: Topology{Epoch: 1, Writer: "db1"}},
		SetTopology{Topology: Topology{Epoch: 2, Writer: "db1", Readers: []NodeName{"db2"}}},
		SetTopology{Topology: Topology{Epoch: 3, Writer: "db1", Readers: []NodeName{"db3", "db2"}}},
		SetVIPOwner{VIP: VIPState{Owner: "px2", LeaseEpoch: 1}},
		SetVIPOwner{VIP: VIPState{Owner: "px1", LeaseEpoch: 2}},
		AppendEvent{Event: Event{Time: t0, Kind: EventTopology, Reason: "fixture"}},
	}
	for i, c := range cmds {
		if err := s.Apply(c); err != nil {
			t.Fatalf("fixture command %d (%T): %v", i, c, err)
		}
	}
	return s
}

func ev(reason string) *Event {
	return &Event{Time: t0, Kind: EventMember, Reason: reason, Inputs: map[string]string{"k": reason}}
}

func TestApplyDispatchTableCoversDecodeTable(t *testing.T) {
	for typ := range newCommand {
		if _, ok := applyTable[typ]; !ok {
			t.Errorf("command type %d decodes but has no apply handler", typ)
		}
	}
	for typ := range applyTable {
		if _, ok := newCommand[typ]; !ok {
			t.Errorf("command type %d applies but does not decode", typ)
		}
	}
}

func TestApplyEveryCommand(t *testing.T) {
	tests := []struct {
		name  string
		prep  []Command // applied before cmd
		cmd   Command
		check func(t *testing.T, s State)
	}{
		{"set topology", nil,
			SetTopology{Topology: Topology{Epoch: 4, Writer: "db2", Readers: []NodeName{"db3"}, Offline: []OfflineNode{{"db1", ReasonFenced}}}, Event: ev("topo")},
			func(t *testing.T, s State) {
				want := Topology{Epoch: 4, Writer: "db2", Readers: []NodeName{"db3"}, Offline: []OfflineNode{{"db1", ReasonFenced}}}
				if !reflect.DeepEqual(s.Topology, want) {
					t.Errorf("topology = %+v, want %+v", s.Topology, want)
				}
			}},
		{"upsert new member", nil, UpsertMember{Member: dbMember("db4"), Event: ev("add")},
			func(t *testing.T, s State) {
				if !reflect.DeepEqual(s.Members["db4"], dbMember("db4")) {
					t.Errorf("db4 = %+v", s.Members["db4"])
				}
			}},
		{"upsert replaces member", nil, UpsertMember{Member: Member{Name: "db2", Roles: []Role{RoleDB, RoleProxy}, RaftAddr: "x:1", MySQLAddr: "x:2", Priority: 9}, Event: ev("replace")},
			func(t *testing.T, s State) {
				if m := s.Members["db2"]; m.Priority != 9 || !m.Has(RoleProxy) {
					t.Errorf("db2 = %+v", m)
				}
			}},
		{"remove member", nil, RemoveMember{Name: "db3", Event: ev("rm")},
			func(t *testing.T, s State) {
				if _, ok := s.Members["db3"]; ok {
					t.Error("db3 still a member")
				}
			}},
		{"set maintenance", nil, SetMemberFlag{Name: "db2", Flag: FlagMaintenance, Value: true, Event: ev("m")},
			func(t *testing.T, s State) {
				if !s.Members["db2"].Maintenance {
					t.Error("maintenance not set")
				}
			}},
		{"set draining", nil, SetMemberFlag{Name: "db2", Flag: FlagDraining, Value: true, Event: ev("d")},
			func(t *testing.T, s State) {
				if !s.Members["db2"].Draining {
					t.Error("draining not set")
				}
			}},
		{"clear no_writer", []Command{SetMemberFlag{Name: "db3", Flag: FlagNoWriter, Value: true}},
			SetMemberFlag{Name: "db3", Flag: FlagNoWriter, Value: false, Event: ev("nw")},
			func(t *testing.T, s State) {
				if s.Members["db3"].NoWriter {
					t.Error("no_writer still set")
				}
			}},
		{"move vip", nil, SetVIPOwner{VIP: VIPState{Owner: "px2", LeaseEpoch: 3}, Event: ev("vip")},
			func(t *testing.T, s State) {
				if s.VIP != (VIPState{Owner: "px2", LeaseEpoch: 3}) {
					t.Errorf("vip = %+v", s.VIP)
				}
			}},
		{"release vip", nil, SetVIPOwner{VIP: VIPState{LeaseEpoch: 3}, Event: ev("vip")},
			func(t *testing.T, s State) {
				if s.VIP != (VIPState{LeaseEpoch: 3}) {
					t.Errorf("vip = %+v", s.VIP)
				}
			}},
		{"join grant", nil, SetJoinGrant{Grant: &JoinGrant{Joiner: "db3", Donor: "db2", Since: t0}, Event: ev("join")},
			func(t *testing.T, s State) {
				if g := s.Grants.Join; g == nil || *g != (JoinGrant{Joiner: "db3", Donor: "db2", Since: t0}) {
					t.Errorf("join grant = %+v", g)
				}
			}},
		{"join grant same joiner new donor", []Command{UpsertMember{Member: dbMember("db4")}, SetJoinGrant{Grant: &JoinGrant{Joiner: "db3", Donor: "db2"}}},
			SetJoinGrant{Grant: &JoinGrant{Joiner: "db3", Donor: "db4"}, Event: ev("join")},
			func(t *testing.T, s State) {
				if g := s.Grants.Join; g == nil || g.Donor != "db4" {
					t.Errorf("join grant = %+v", g)
				}
			}},
		{"clear join grant", []Command{SetJoinGrant{Grant: &JoinGrant{Joiner: "db3", Donor: "db2"}}},
			SetJoinGrant{Event: ev("join done")},
			func(t *testing.T, s State) {
				if s.Grants.Join != nil {
					t.Errorf("join grant = %+v", s.Grants.Join)
				}
			}},
		{"bootstrap grant", nil, SetBootstrap{Grant: &BootstrapGrant{Node: "db2", UUID: "u", Seqno: 42, Since: t0}, Event: ev("bs")},
			func(t *testing.T, s State) {
				if g := s.Grants.Bootstrap; g == nil || g.Node != "db2" || g.Seqno != 42 {
					t.Errorf("bootstrap grant = %+v", g)
				}
			}},
		{"clear bootstrap grant", []Command{SetBootstrap{Grant: &BootstrapGrant{Node: "db2"}}}, SetBootstrap{Event: ev("bs done")},
			func(t *testing.T, s State) {
				if s.Grants.Bootstrap != nil {
					t.Errorf("bootstrap grant = %+v", s.Grants.Bootstrap)
				}
			}},
		{"switchover", nil, SetSwitchover{Switchover: &Switchover{From: "db1", To: "db2", Since: t0}, Event: ev("sw")},
			func(t *testing.T, s State) {
				if g := s.Grants.Switchover; g == nil || g.From != "db1" || g.To != "db2" {
					t.Errorf("switchover = %+v", g)
				}
			}},
		{"clear switchover", []Command{SetSwitchover{Switchover: &Switchover{From: "db1", To: "db2"}}}, SetSwitchover{Event: ev("sw done")},
			func(t *testing.T, s State) {
				if s.Grants.Switchover != nil {
					t.Errorf("switchover = %+v", s.Grants.Switchover)
				}
			}},
		{"append event", nil, AppendEvent{Event: *ev("plain")}, nil},
	}
	for _, tt := range tests {
		for _, form := range []string{"value", "pointer"} {
			t.Run(tt.name+"/"+form, func(t *testing.T) {
				s := fixture(t)
				for _, c := range tt.prep {
					if err := s.Apply(c); err != nil {
						t.Fatalf("prep %T: %v", c, err)
					}
				}
				before := s.Clone()
				cmd := tt.cmd
				if form == "pointer" {
					cmd = pointerTo(cmd)
				}
				if err := s.Apply(cmd); err != nil {
					t.Fatalf("Apply(%T) = %v", cmd, err)
				}
				if tt.check != nil {
					tt.check(t, s)
				}
				// Every command here carries an event: it must be appended
				// with the next sequence number and the current epoch.
				if got, want := len(s.Events), len(before.Events)+1; got != want {
					t.Fatalf("events = %d, want %d", got, want)
				}
				last := s.Events[len(s.Events)-1]
				if last.Seq != before.NextEventSeq || s.NextEventSeq != before.NextEventSeq+1 {
					t.Errorf("event seq %d next %d, want %d next %d", last.Seq, s.NextEventSeq, before.NextEventSeq, before.NextEventSeq+1)
				}
				if last.Epoch != s.Topology.Epoch {
					t.Errorf("event epoch %d, want %d", last.Epoch, s.Topology.Epoch)
				}
				// The stored state must not alias the command.
				if e := commandEvent(tt.cmd); e != nil && e.Inputs != nil {
					old := last.Inputs["k"]
					e.Inputs["k"] = old + "-mutated"
					if last.Inputs["k"] != old {
						t.Error("stored event aliases the command's Inputs map")
					}
				}
			})
		}
	}
}

// An event without an Event field: no event appended.
func TestApplyWithoutEventAppendsNothing(t *testing.T) {
	s := fixture(t)
	n := len(s.Events)
	if err := s.Apply(SetMemberFlag{Name: "db1", Flag: FlagDraining, Value: true}); err != nil {
		t.Fatal(err)
	}
	if len(s.Events) != n {
		t.Errorf("events = %d, want %d", len(s.Events), n)
	}
}

func TestApplyEventKeepsExplicitEpoch(t *testing.T) {
	s := fixture(t)
	if err := s.Apply(AppendEvent{Event: Event{Epoch: 2, Kind: EventVIP, Reason: "old"}}); err != nil {
		t.Fatal(err)
	}
	if got := s.Events[len(s.Events)-1].Epoch; got != 2 {
		t.Errorf("epoch = %d, want 2", got)
	}
}

func pointerTo(c Command) Command {
	v := reflect.New(reflect.TypeOf(c))
	v.Elem().Set(reflect.ValueOf(c))
	return v.Interface().(Command)
}

func commandEvent(c Command) *Event {
	switch v := c.(type) {
	case SetTopology:
		return v.Event
	case UpsertMember:
		return v.Event
	case RemoveMember:
		return v.Event
	case SetMemberFlag:
		return v.Event
	case SetVIPOwner:
		return v.Event
	case SetJoinGrant:
		return v.Event
	case SetBootstrap:
		return v.Event
	case SetSwitchover:
		return v.Event
	}
	return nil
}

type unknownCommand struct{}

func (unknownCommand) Type() CommandType { return 200 }

func TestApplyErrorsLeaveStateUnchanged(t *testing.T) {
	tests := []struct {
		name string
		prep []Command
		cmd  Command
		want error
	}{
		{"topology stale epoch", nil, SetTopology{Topology: Topology{Epoch: 3, Writer: "db2"}, Event: ev("x")}, ErrStaleEpoch},
		{"topology older epoch", nil, SetTopology{Topology: Topology{Epoch: 1}, Event: ev("x")}, ErrStaleEpoch},
		{"topology skipped epoch", nil, SetTopology{Topology: Topology{Epoch: 5}, Event: ev("x")}, ErrStaleEpoch},
		{"topology invalid", nil, SetTopology{Topology: Topology{Epoch: 4, Writer: "db1", Offline: []OfflineNode{{"db1", ReasonFenced}}}, Event: ev("x")}, ErrInvalidCommand},
		{"member invalid", nil, UpsertMember{Member: Member{Name: "db9", Roles: []Role{RoleDB}, RaftAddr: "a:1"}, Event: ev("x")}, ErrInvalidCommand},
		{"member bad role", nil, UpsertMember{Member: Member{Name: "db9", Roles: []Role{"witness"}, RaftAddr: "a:1"}}, ErrInvalidCommand},
		{"remove unknown", nil, RemoveMember{Name: "nope", Event: ev("x")}, ErrUnknownMember},
		{"flag unknown member", nil, SetMemberFlag{Name: "nope", Flag: FlagDraining, Value: true, Event: ev("x")}, ErrUnknownMember},
		{"flag unknown flag", nil, SetMemberFlag{Name: "db1", Flag: "sleepy", Value: true, Event: ev("x")}, ErrUnknownFlag},
		{"vip stale lease", nil, SetVIPOwner{VIP: VIPState{Owner: "px2", LeaseEpoch: 2}, Event: ev("x")}, ErrStaleEpoch},
		{"vip skipped lease", nil, SetVIPOwner{VIP: VIPState{Owner: "px2", LeaseEpoch: 4}, Event: ev("x")}, ErrStaleEpoch},
		{"vip unknown owner", nil, SetVIPOwner{VIP: VIPState{Owner: "px9", LeaseEpoch: 3}, Event: ev("x")}, ErrUnknownMember},
		{"vip owner not proxy", nil, SetVIPOwner{VIP: VIPState{Owner: "db2", LeaseEpoch: 3}, Event: ev("x")}, ErrWrongRole},
		{"join busy", []Command{SetJoinGrant{Grant: &JoinGrant{Joiner: "db3", Donor: "db2"}}},
			SetJoinGrant{Grant: &JoinGrant{Joiner: "db2", Donor: "db3"}, Event: ev("x")}, ErrGrantBusy},
		{"join donor is joiner", nil, SetJoinGrant{Grant: &JoinGrant{Joiner: "db3", Donor: "db3"}, Event: ev("x")}, ErrInvalidGrant},
		{"join donor is writer", nil, SetJoinGrant{Grant: &JoinGrant{Joiner: "db3", Donor: "db1"}, Event: ev("x")}, ErrInvalidGrant},
		{"join empty donor", nil, SetJoinGrant{Grant: &JoinGrant{Joiner: "db3"}, Event: ev("x")}, ErrInvalidGrant},
		{"join unknown joiner", nil, SetJoinGrant{Grant: &JoinGrant{Joiner: "db9", Donor: "db2"}, Event: ev("x")}, ErrUnknownMember},
		{"join proxy donor", nil, SetJoinGrant{Grant: &JoinGrant{Joiner: "db3", Donor: "px1"}, Event: ev("x")}, ErrWrongRole},
		{"join proxy joiner", nil, SetJoinGrant{Grant: &JoinGrant{Joiner: "px1", Donor: "db2"}, Event: ev("x")}, ErrWrongRole},
		{"bootstrap busy", []Command{SetBootstrap{Grant: &BootstrapGrant{Node: "db2"}}},
			SetBootstrap{Grant: &BootstrapGrant{Node: "db3"}, Event: ev("x")}, ErrGrantBusy},
		{"bootstrap unknown", nil, SetBootstrap{Grant: &BootstrapGrant{Node: "db9"}, Event: ev("x")}, ErrUnknownMember},
		{"bootstrap proxy", nil, SetBootstrap{Grant: &BootstrapGrant{Node: "px1"}, Event: ev("x")}, ErrWrongRole},
		{"bootstrap empty", nil, SetBootstrap{Grant: &BootstrapGrant{}, Event: ev("x")}, ErrInvalidGrant},
		{"switchover busy", []Command{SetSwitchover{Switchover: &Switchover{From: "db1", To: "db2"}}},
			SetSwitchover{Switchover: &Switchover{From: "db1", To: "db3"}, Event: ev("x")}, ErrGrantBusy},
		{"switchover to self", nil, SetSwitchover{Switchover: &Switchover{From: "db1", To: "db1"}, Event: ev("x")}, ErrInvalidGrant},
		{"switchover unknown target", nil, SetSwitchover{Switchover: &Switchover{From: "db1", To: "db9"}, Event: ev("x")}, ErrUnknownMember},
		{"switchover proxy target", nil, SetSwitchover{Switchover: &Switchover{From: "db1", To: "px1"}, Event: ev("x")}, ErrWrongRole},
		{"switchover empty", nil, SetSwitchover{Switchover: &Switchover{To: "db2"}, Event: ev("x")}, ErrInvalidGrant},
		{"unknown command type", nil, unknownCommand{}, ErrUnknownCommand},
		{"nil command", nil, nil, ErrInvalidCommand},
		{"nil pointer command", nil, (*SetTopology)(nil), ErrInvalidCommand},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fixture(t)
			for _, c := range tt.prep {
				if err := s.Apply(c); err != nil {
					t.Fatalf("prep %T: %v", c, err)
				}
			}
			before := s.Clone()
			err := s.Apply(tt.cmd)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Apply(%+v) = %v, want errors.Is %v", tt.cmd, err, tt.want)
			}
			if !reflect.DeepEqual(s, before) {
				t.Errorf("state changed on error:\n got %+v\nwant %+v", s, before)
			}
		})
	}
}

// Decode hands the FSM a pointer; Apply must take it.
func TestApplyDecodedCommand(t *testing.T) {
	s := fixture(t)
	b, err := Encode(SetTopology{Topology: Topology{Epoch: 4, Writer: "db2"}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Apply(c); err != nil {
		t.Fatal(err)
	}
	if s.Topology.Epoch != 4 || s.Topology.Writer != "db2" {
		t.Errorf("topology = %+v", s.Topology)
	}
}

func TestDecodeErrors(t *testing.T) {
	good, err := Encode(RemoveMember{Name: "db1"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"unknown type byte", append([]byte{0xEE}, good[1:]...), ErrUnknownCommand},
		{"type zero", append([]byte{0}, good[1:]...), ErrUnknownCommand},
		{"corrupt json", append([]byte{byte(CmdRemoveMember)}, []byte(`{"name":`)...), ErrCorruptCommand},
		{"wrong json type", append([]byte{byte(CmdSetTopology)}, []byte(`{"topology":"x"}`)...), ErrCorruptCommand},
		{"empty", nil, ErrCorruptCommand},
		{"type byte only", []byte{byte(CmdSetTopology)}, ErrCorruptCommand},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Decode(tt.in)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode = %v, %v; want errors.Is %v", c, err, tt.want)
			}
		})
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	s := fixture(t)
	for _, c := range []Command{
		SetJoinGrant{Grant: &JoinGrant{Joiner: "db3", Donor: "db2", Since: t0}, Event: ev("j")},
		SetBootstrap{Grant: &BootstrapGrant{Node: "db2", UUID: "u-1", Seqno: 7, Since: t0}},
		SetSwitchover{Switchover: &Switchover{From: "db1", To: "db2", Since: t0}},
		SetMemberFlag{Name: "db3", Flag: FlagNoWriter, Value: true},
		SetTopology{Topology: Topology{Epoch: 4, Readers: []NodeName{"db2"}, Offline: []OfflineNode{{"db1", ReasonDraining}, {"db3", ReasonJoining}}}, Event: ev("t")},
	} {
		if err := s.Apply(c); err != nil {
			t.Fatalf("%T: %v", c, err)
		}
	}
	b, err := EncodeSnapshot(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, s)
	}
	empty, err := EncodeSnapshot(NewState())
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecodeSnapshot(empty); err != nil || !reflect.DeepEqual(got, NewState()) {
		t.Errorf("empty round trip = %+v, %v", got, err)
	}
}

func TestDecodeSnapshotErrors(t *testing.T) {
	good, err := EncodeSnapshot(NewState())
	if err != nil {
		t.Fatal(err)
	}
	future := append([]byte{}, good...)
	future[len(snapshotMagic)] = 2
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrCorruptSnapshot},
		{"bad magic", append([]byte("XXXXXXXX"), good[len(snapshotMagic):]...), ErrCorruptSnapshot},
		{"header only", good[:len(snapshotMagic)+1], ErrCorruptSnapshot},
		{"truncated json", good[:len(good)-1], ErrCorruptSnapshot},
		{"future version", future, ErrUnknownSnapshotVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeSnapshot(tt.in); !errors.Is(err, tt.want) {
				t.Errorf("DecodeSnapshot = %v, want errors.Is %v", err, tt.want)
			}
		})
	}
}

func TestCloneIsDeep(t *testing.T) {
	s := fixture(t)
	if err := s.Apply(SetJoinGrant{Grant: &JoinGrant{Joiner: "db3", Donor: "db2"}, Event: ev("j")}); err != nil {
		t.Fatal(err)
	}
	c := s.Clone()
	if !reflect.DeepEqual(c, s) {
		t.Fatal("clone differs")
	}
	m := c.Members["db1"]
	m.Roles[0] = RoleProxy
	c.Members["db9"] = dbMember("db9")
	c.Topology.Readers[0] = "zz"
	c.Grants.Join.Donor = "zz"
	c.Events[len(c.Events)-1].Inputs["k"] = "zz"
	c.Events[0].Reason = "zz"
	if s.Members["db1"].Roles[0] != RoleDB || len(s.Members) != 5 || s.Topology.Readers[0] == "zz" ||
		s.Grants.Join.Donor == "zz" || s.Events[len(s.Events)-1].Inputs["k"] == "zz" || s.Events[0].Reason == "zz" {
		t.Errorf("mutating the clone changed the original: %+v", s)
	}
	if z := (State{}).Clone(); !reflect.DeepEqual(z, State{}) {
		t.Errorf("zero clone = %+v", z)
	}
}

func TestEventRingBounded(t *testing.T) {
	s := NewState()
	total := MaxEvents + 37
	for i := range total {
		if err := s.Apply(AppendEvent{Event: Event{Kind: EventTopology, Reason: fmt.Sprint(i)}}); err != nil {
			t.Fatal(err)
		}
		if len(s.Events) > MaxEvents {
			t.Fatalf("after %d events ring holds %d > %d", i+1, len(s.Events), MaxEvents)
		}
	}
	if len(s.Events) != MaxEvents {
		t.Fatalf("ring holds %d, want %d", len(s.Events), MaxEvents)
	}
	if cap(s.Events) > 2*MaxEvents {
		t.Errorf("ring backing array grew to %d", cap(s.Events))
	}
	first, last := s.Events[0], s.Events[MaxEvents-1]
	if first.Seq != uint64(total-MaxEvents+1) || first.Reason != fmt.Sprint(total-MaxEvents) {
		t.Errorf("oldest kept = seq %d reason %s", first.Seq, first.Reason)
	}
	if last.Seq != uint64(total) || s.NextEventSeq != uint64(total+1) {
		t.Errorf("newest = seq %d, next %d", last.Seq, s.NextEventSeq)
	}
	for i := 1; i < len(s.Events); i++ {
		if s.Events[i].Seq != s.Events[i-1].Seq+1 {
			t.Fatalf("seq gap at %d: %d then %d", i, s.Events[i-1].Seq, s.Events[i].Seq)
		}
	}
}

// Apply on a zero State (nil maps) works and errors leave it zero.
func TestApplyZeroState(t *testing.T) {
	var s State
	if err := s.Apply(RemoveMember{Name: "x"}); !errors.Is(err, ErrUnknownMember) {
		t.Fatalf("err = %v", err)
	}
	if !reflect.DeepEqual(s, State{}) {
		t.Errorf("zero state changed on error: %+v", s)
	}
	if err := s.Apply(UpsertMember{Member: dbMember("db1"), Event: ev("a")}); err != nil {
		t.Fatal(err)
	}
	if len(s.Members) != 1 || s.Events[0].Seq != 1 || s.NextEventSeq != 2 {
		t.Errorf("state = %+v", s)
	}
}
