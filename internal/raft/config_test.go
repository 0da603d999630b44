package raft

import (
	"errors"
	"strings"
	"testing"

	hraft "github.com/hashicorp/raft"
)

func TestDefaultsPassHashicorpValidation(t *testing.T) {
	c := Config{NodeName: "n1", DataDir: "/tmp/x", BindAddr: "127.0.0.1:7000"}.WithDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	rc := hraft.DefaultConfig()
	rc.LocalID = "n1"
	rc.HeartbeatTimeout, rc.ElectionTimeout = c.HeartbeatTimeout, c.ElectionTimeout
	rc.LeaderLeaseTimeout, rc.CommitTimeout = c.LeaderLeaseTimeout, c.CommitTimeout
	rc.SnapshotInterval = c.SnapshotInterval
	if err := hraft.ValidateConfig(rc); err != nil {
		t.Fatalf("hashicorp rejects our defaults: %v", err)
	}
	if c.HeartbeatTimeout != DefaultHeartbeatTimeout || c.MaxVoters != 7 {
		t.Errorf("defaults not applied: %+v", c)
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	c := Config{
		BindAddr:           "nonsense",
		AdvertiseAddr:      "0.0.0.0:7000",
		Peers:              []Peer{{Name: "a", RaftAddr: "127.0.0.1:1"}, {Name: "a", RaftAddr: "x"}},
		BootstrapExpect:    3,
		HeartbeatTimeout:   100e6,
		LeaderLeaseTimeout: 200e6,
		ElectionTimeout:    50e6,
	}.WithDefaults()
	err := c.Validate()
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("err = %v, want ErrInvalidConfig", err)
	}
	// Identity is checked with errors.Is above; here we check that the one
	// error reports every problem, which only its text can show.
	for _, want := range []string{"node name", "data dir", "bind address", "advertise address", "listed twice",
		"peer a raft address", "do not list this node", "bootstrap_expect 3", "lease timeout", "election timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q: %v", want, err)
		}
	}
}

func TestBootstrapConfigurationDeterministic(t *testing.T) {
	peers := []Peer{{"n3", "h:3"}, {"n1", "h:1"}, {"n4", "h:4"}, {"n2", "h:2"}}
	conf := bootstrapConfiguration(peers, 3)
	want := []struct {
		id string
		s  hraft.ServerSuffrage
	}{{"n1", hraft.Voter}, {"n2", hraft.Voter}, {"n3", hraft.Voter}, {"n4", hraft.Nonvoter}}
	if len(conf.Servers) != len(want) {
		t.Fatalf("servers = %v", conf.Servers)
	}
	for i, w := range want {
		if s := conf.Servers[i]; string(s.ID) != w.id || s.Suffrage != w.s {
			t.Errorf("server %d = %v, want %s %v", i, s, w.id, w.s)
		}
	}
}
