package cli

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dbha/dbha/internal/api"
	"github.com/dbha/dbha/internal/cluster"
)

func sampleEvents() []cluster.Event {
	t0 := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	return []cluster.Event{
		{Seq: 40, Time: t0, Epoch: 11, Kind: cluster.EventMember, Node: "db4", Reason: "db4 registered"},
		{Seq: 41, Time: t0.Add(1500 * time.Millisecond), Epoch: 12, Kind: cluster.EventFailover, Node: "db1", Reason: "writer db2 unreachable for 3 polls",
			Inputs: map[string]string{"db2.health": "unreachable", "db2.streak": "3", "candidates": "db1,db3"}},
		{Seq: 42, Time: t0.Add(2 * time.Second), Epoch: 12, Kind: cluster.EventVIP, Reason: "vip stays on px1"},
	}
}

func TestEvents(t *testing.T) {
	isolate(t)
	b, ep := fakeAgent(t, "px1")
	b.SetEvents(sampleEvents())

	code, out, errOut := ctl(t, "--endpoint", ep, "events")
	if code != ExitOK {
		t.Fatalf("code %d stderr %q", code, errOut)
	}
	wantLine(t, out, `^SEQ\s+TIME\s+EPOCH\s+KIND\s+NODE\s+REASON$`)
	wantLine(t, out, `^41\s+2025-01-02T03:04:06\.500Z\s+12\s+failover\s+db1\s+writer db2 unreachable for 3 polls$`)
	wantLine(t, out, `^42\s+2025-01-02T03:04:07\.000Z\s+12\s+vip\s+-\s+vip stays on px1$`)
	if c := b.CallsTo("Events"); len(c) != 1 || c[0].Arg != [2]any{uint64(0), api.DefaultEventsLimit} {
		t.Errorf("backend saw %+v, want since 0 limit %d", c, api.DefaultEventsLimit)
	}

	code, out, _ = ctl(t, "--endpoint", ep, "events", "--since", "40", "--limit", "1", "-o", "json")
	var got []cluster.Event
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != ExitOK {
		t.Fatalf("json: code %d err %v\n%s", code, err, out)
	}
	if len(got) != 1 || got[0].Seq != 41 || got[0].Inputs["candidates"] != "db1,db3" {
		t.Errorf("--since 40 --limit 1 = %+v, want event 41 with its inputs", got)
	}

	code, out, _ = ctl(t, "--endpoint", ep, "events", "--since", "42")
	if code != ExitOK || strings.TrimSpace(out) != "no events after seq 42" {
		t.Errorf("nothing new: code %d out %q", code, out)
	}
	code, out, _ = ctl(t, "--endpoint", ep, "events", "--since", "42", "-o", "json")
	if code != ExitOK || strings.TrimSpace(out) != "[]" {
		t.Errorf("nothing new as json: code %d out %q, want []", code, out)
	}
}

func TestEventsUsage(t *testing.T) {
	isolate(t)
	b, ep := fakeAgent(t, "px1")
	for _, args := range [][]string{
		{"events", "--limit", "0"},
		{"events", "--limit", "1001"},
		{"events", "--since", "-1"},
		{"events", "--since", "x"},
		{"events", "extra"},
	} {
		if code, _, errOut := ctl(t, append([]string{"--endpoint", ep}, args...)...); code != ExitUsage {
			t.Errorf("dbctl %v: code %d stderr %q, want %d", args, code, errOut, ExitUsage)
		}
	}
	if n := len(b.Calls()); n != 0 {
		t.Errorf("bad usage reached the agent %d times", n)
	}
}
