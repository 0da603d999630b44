package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/dbha/dbha/internal/api"
	"github.com/dbha/dbha/internal/cluster"
)

func TestWhyCurrent(t *testing.T) {
	isolate(t)
	b, ep := fakeAgent(t, "px1")
	topo := cluster.Topology{Epoch: 12, Writer: "db1", Readers: []cluster.NodeName{"db3"},
		Offline: []cluster.OfflineNode{{Node: "db2", Reason: cluster.ReasonUnreachable}, {Node: "db4", Reason: cluster.ReasonMaintenance}}}
	evs := sampleEvents()
	b.SetWhy(api.Why{Epoch: 12, Current: true, Topology: &topo, Events: evs[1:]})

	code, out, errOut := ctl(t, "--endpoint", ep, "why")
	if code != ExitOK {
		t.Fatalf("code %d stderr %q", code, errOut)
	}
	for _, re := range []string{
		`^Epoch 12 \(current\)$`,
		`^  writer   db1$`,
		`^  readers  db3$`,
		`^  offline  db2 \(unreachable\)$`,
		`^           db4 \(maintenance\)$`,
		`^Events at epoch 12:$`,
		`^  #41 2025-01-02T03:04:06\.500Z failover db1$`,
		`^      reason: writer db2 unreachable for 3 polls$`,
		`^        candidates  db1,db3$`,
		`^        db2\.streak  3$`,
		`^  #42 2025-01-02T03:04:07\.000Z vip$`,
	} {
		wantLine(t, out, re)
	}
	// Inputs are printed sorted, so the output is stable.
	if i, j := strings.Index(out, "candidates"), strings.Index(out, "db2.health"); i < 0 || j < i {
		t.Errorf("inputs not sorted:\n%s", out)
	}
	if c := b.CallsTo("Why"); len(c) != 1 || c[0].Arg != cluster.Epoch(0) {
		t.Errorf("backend saw %+v, want Why(0)", c)
	}

	code, out, _ = ctl(t, "--endpoint", ep, "why", "12", "-o", "json")
	var got api.Why
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != ExitOK {
		t.Fatalf("json: code %d err %v\n%s", code, err, out)
	}
	if got.Topology == nil || got.Topology.Writer != "db1" || len(got.Events) != 2 {
		t.Errorf("why 12 -o json = %+v", got)
	}
}

func TestWhyOldEpoch(t *testing.T) {
	isolate(t)
	b, ep := fakeAgent(t, "px1")
	b.SetWhy(api.Why{Epoch: 8, Events: []cluster.Event{}})
	code, out, errOut := ctl(t, "--endpoint", ep, "why", "8")
	if code != ExitOK {
		t.Fatalf("code %d stderr %q", code, errOut)
	}
	wantLine(t, out, `^Epoch 8 \(not current`)
	wantLine(t, out, `^No events recorded at epoch 8`)
	if c := b.CallsTo("Why"); len(c) != 1 || c[0].Arg != cluster.Epoch(8) {
		t.Errorf("backend saw %+v, want Why(8)", c)
	}

	code, _, errOut = ctl(t, "--endpoint", ep, "why", "99")
	if code != ExitError || !strings.Contains(errOut, api.CodeNotFound) {
		t.Errorf("unknown epoch: code %d stderr %q, want 1 with not_found", code, errOut)
	}
}

func TestWhyUsage(t *testing.T) {
	isolate(t)
	b, ep := fakeAgent(t, "px1")
	for _, args := range [][]string{{"why", "abc"}, {"why", "-1"}, {"why", "1.5"}, {"why", "1", "2"}, {"why", "-o", "xml"}} {
		code, _, errOut := ctl(t, append([]string{"--endpoint", ep}, args...)...)
		if code != ExitUsage {
			t.Errorf("dbctl %v: code %d stderr %q, want %d", args, code, errOut, ExitUsage)
		}
	}
	code, _, errOut := ctl(t, "--endpoint", ep, "why", "abc")
	if !strings.Contains(errOut, `epoch "abc"`) || code != ExitUsage {
		t.Errorf("why abc: stderr %q does not explain the bad epoch", errOut)
	}
	if n := len(b.Calls()); n != 0 {
		t.Errorf("bad usage reached the agent %d times", n)
	}
}
