package raft

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"

	hraft "github.com/hashicorp/raft"

	"github.com/dbha/dbha/internal/cluster"
)

func logOf(t *testing.T, index uint64, c cluster.Command) *hraft.Log {
	t.Helper()
	b, err := cluster.Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	return &hraft.Log{Index: index, Type: hraft.LogCommand, Data: b}
}

func member(n cluster.NodeName) cluster.Member {
	return cluster.Member{Name: n, Roles: []cluster.Role{cluster.RoleDB}, RaftAddr: "127.0.0.1:1", MySQLAddr: "127.0.0.1:3306"}
}

func TestFSMApplyResponses(t *testing.T) {
	f := NewFSM()
	changed := f.Changed()
	if resp := f.Apply(logOf(t, 1, cluster.UpsertMember{Member: member("db1")})); resp != nil {
		t.Fatalf("apply response = %v, want nil", resp)
	}
	select {
	case <-changed:
	default:
		t.Fatal("Changed not closed after an applied command")
	}
	if _, ok := f.State().Members["db1"]; !ok {
		t.Fatal("db1 not applied")
	}

	st, changed := f.Watch()
	resp := f.Apply(logOf(t, 2, cluster.SetTopology{Topology: cluster.Topology{Epoch: 7}}))
	err, ok := resp.(error)
	if !ok || !errors.Is(err, cluster.ErrStaleEpoch) {
		t.Fatalf("stale epoch response = %#v, want ErrStaleEpoch", resp)
	}
	select {
	case <-changed:
		t.Fatal("Changed closed although the command was rejected")
	default:
	}
	if !reflect.DeepEqual(f.State(), st) {
		t.Error("rejected command changed the state")
	}

	for _, tc := range []struct {
		data []byte
		want error
	}{
		{[]byte{0xEE, '{', '}'}, cluster.ErrUnknownCommand},
		{[]byte{byte(cluster.CmdSetTopology), '{'}, cluster.ErrCorruptCommand},
	} {
		resp := f.Apply(&hraft.Log{Index: 3, Type: hraft.LogCommand, Data: tc.data})
		if err, ok := resp.(error); !ok || !errors.Is(err, tc.want) {
			t.Errorf("apply %q = %#v, want %v", tc.data, resp, tc.want)
		}
	}
	if !reflect.DeepEqual(f.State(), st) {
		t.Error("undecodable entry changed the state")
	}
}

func TestFSMStateIsACopy(t *testing.T) {
	f := NewFSM()
	f.Apply(logOf(t, 1, cluster.UpsertMember{Member: member("db1")}))
	s := f.State()
	s.Members["db9"] = member("db9")
	m := s.Members["db1"]
	m.Roles[0] = cluster.RoleProxy
	if got := f.State(); len(got.Members) != 1 || got.Members["db1"].Roles[0] != cluster.RoleDB {
		t.Errorf("mutating a returned state changed the FSM: %+v", got.Members)
	}
}

type memSink struct {
	bytes.Buffer
	closed, cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Close() error  { s.closed = true; return nil }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }

func TestFSMSnapshotRestore(t *testing.T) {
	f := NewFSM()
	cmds := []cluster.Command{
		cluster.UpsertMember{Member: member("db1")},
		cluster.UpsertMember{Member: member("db2")},
		cluster.SetTopology{Topology: cluster.Topology{Epoch: 1, Writer: "db1", Readers: []cluster.NodeName{"db2"}},
			Event: &cluster.Event{Kind: cluster.EventTopology, Reason: "initial"}},
	}
	for i, c := range cmds {
		if resp := f.Apply(logOf(t, uint64(i+1), c)); resp != nil {
			t.Fatalf("apply %T: %v", c, resp)
		}
	}
	want := f.State()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	// Changes after Snapshot() must not leak into the persisted copy.
	f.Apply(logOf(t, 4, cluster.UpsertMember{Member: member("db3")}))
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	if !sink.closed || sink.cancelled {
		t.Fatalf("sink closed=%v cancelled=%v", sink.closed, sink.cancelled)
	}

	g := NewFSM()
	changed := g.Changed()
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if got := g.State(); !reflect.DeepEqual(got, want) {
		t.Errorf("restored state:\n got %+v\nwant %+v", got, want)
	}
	select {
	case <-changed:
	default:
		t.Error("Changed not closed by Restore")
	}

	// A corrupt snapshot is refused and leaves the state alone.
	bad := append([]byte{}, sink.Bytes()...)
	bad[8] = 99 // version byte
	if err := g.Restore(io.NopCloser(bytes.NewReader(bad))); !errors.Is(err, cluster.ErrUnknownSnapshotVersion) {
		t.Errorf("restore of version 99 = %v, want ErrUnknownSnapshotVersion", err)
	}
	if got := g.State(); !reflect.DeepEqual(got, want) {
		t.Error("failed restore changed the state")
	}
}

type failSink struct{ memSink }

func (s *failSink) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestFSMPersistFailureCancelsSink(t *testing.T) {
	snap, err := NewFSM().Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &failSink{}
	if err := snap.Persist(sink); err == nil {
		t.Fatal("Persist succeeded on a failing sink")
	}
	if !sink.cancelled || sink.closed {
		t.Errorf("sink cancelled=%v closed=%v, want cancelled only", sink.cancelled, sink.closed)
	}
}
