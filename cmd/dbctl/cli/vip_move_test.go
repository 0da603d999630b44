package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dbha/dbha/internal/api"
	"github.com/dbha/dbha/internal/api/apitest"
	"github.com/dbha/dbha/internal/cluster"
)

var moveT0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

// moveAgent is a fake leader with the VIP on px1 and one old VIP event.
func moveAgent(t *testing.T) (*apitest.Backend, string) {
	t.Helper()
	isolate(t)
	b, ep := fakeAgent(t, "px1")
	b.SetStatus(apitest.HealthyStatus(moveT0))
	b.SetEvents([]cluster.Event{{Seq: 7, Time: moveT0, Kind: cluster.EventVIP, Node: "px2",
		Reason: "planned move to px2 timed out after 10s", Inputs: map[string]string{"planned_move_to": "px2", "planned_move": "timed_out"}}})
	return b, ep
}

func TestVIPMoveSucceeds(t *testing.T) {
	b, ep := moveAgent(t)
	b.OnMoveVIP(func(to cluster.NodeName) (api.VIPMove, error) {
		// The leader releases px1, then assigns px2.
		b.SetEvents([]cluster.Event{
			{Seq: 8, Time: moveT0, Kind: cluster.EventVIP, Node: "px1", Reason: "planned move to px2: releasing px1",
				Inputs: map[string]string{"planned_move_to": "px2", "planned_move": "releasing"}},
			{Seq: 9, Time: moveT0, Kind: cluster.EventVIP, Node: "px2", Reason: "planned move: assigned to px2, the target of a planned move",
				Inputs: map[string]string{"planned_move_to": "px2", "planned_move": "assigned"}},
		})
		b.UpdateStatus(func(s *api.Status) { s.VIP.Owner, s.VIP.LeaseEpoch = "px2", 5 })
		return api.VIPMove{To: to, From: "px1", Since: moveT0}, nil
	})
	code, out, errOut := ctl(t, "--endpoint", ep, "vip", "move", "--to", "px2")
	if code != ExitOK {
		t.Fatalf("code %d stderr %q; want 0", code, errOut)
	}
	wantLine(t, out, `^VIP moved from px1 to px2 in \d+ms \(lease epoch 5\)$`)
	wantLine(t, out, `^  #8 .* px1: planned move to px2: releasing px1$`)
	if strings.Contains(out, "#7") {
		t.Errorf("an event from before the move was shown:\n%s", out)
	}
	if c := b.CallsTo("MoveVIP"); len(c) != 1 || c[0].Arg != cluster.NodeName("px2") {
		t.Fatalf("move calls %+v", c)
	}

	code, out, _ = ctl(t, "--endpoint", ep, "vip", "move", "--to", "px2", "-o", "json")
	var r vipMoveResult
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != ExitOK {
		t.Fatalf("json: code %d err %v\n%s", code, err, out)
	}
	if !r.Done || r.Owner != "px2" || r.From != "px1" {
		t.Errorf("json result %+v", r)
	}
}

func TestVIPMoveFailures(t *testing.T) {
	t.Run("timeout", func(t *testing.T) {
		_, ep := moveAgent(t) // the owner never changes
		start := time.Now()
		code, out, errOut := ctl(t, "--endpoint", ep, "vip", "move", "--to", "px2", "--timeout", "400ms")
		if code != ExitError {
			t.Fatalf("code %d; want 1\n%s%s", code, out, errOut)
		}
		if !strings.Contains(errOut, "timed out after") || !strings.Contains(errOut, "owner now px1") {
			t.Errorf("stderr %q lacks the timeout and the owner", errOut)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %s for a 400ms timeout", d)
		}
	})
	t.Run("dropped by the leader", func(t *testing.T) {
		b, ep := moveAgent(t)
		b.OnMoveVIP(func(to cluster.NodeName) (api.VIPMove, error) {
			b.SetEvents([]cluster.Event{{Seq: 8, Time: moveT0, Kind: cluster.EventVIP, Node: "px2",
				Reason: "planned move to px2 abandoned: px2: proxy unhealthy",
				Inputs: map[string]string{"planned_move_to": "px2", "planned_move": "abandoned"}}})
			return api.VIPMove{To: to, From: "px1"}, nil
		})
		code, _, errOut := ctl(t, "--endpoint", ep, "vip", "move", "--to", "px2", "--timeout", "10s")
		if code != ExitError || !strings.Contains(errOut, "abandoned: px2: proxy unhealthy") {
			t.Fatalf("code %d stderr %q; want 1 with the reason", code, errOut)
		}
	})
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"already the owner", fmt.Errorf("%w: px1 already owns the vip", api.ErrConflict), "px1 already owns the vip"},
		{"unknown member", fmt.Errorf("%w: px9 is not a member", api.ErrNotFound), "not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, ep := moveAgent(t)
			b.SetErr("MoveVIP", tc.err)
			code, _, errOut := ctl(t, "--endpoint", ep, "vip", "move", "--to", "px1")
			if code != ExitError || !strings.Contains(errOut, tc.want) {
				t.Fatalf("code %d stderr %q; want 1 with %q", code, errOut, tc.want)
			}
		})
	}
}

func TestVIPMoveUsage(t *testing.T) {
	_, ep := moveAgent(t)
	for _, args := range [][]string{
		{"vip", "move"},
		{"vip", "move", "--to", ""},
		{"vip", "move", "--to", "px2", "--bogus"},
		{"vip", "move", "px2"},
		{"vip", "move", "--to", "px2", "--timeout", "0s"},
		{"vip", "move", "--to", "px2", "-o", "yaml"},
	} {
		code, _, errOut := ctl(t, append([]string{"--endpoint", ep}, args...)...)
		if code != ExitUsage {
			t.Errorf("%q: code %d stderr %q; want 2", args, code, errOut)
		}
	}
	code, out, _ := ctl(t, "vip", "move", "--help")
	if code != ExitOK || !strings.Contains(out, "dbctl vip move --to px2") {
		t.Errorf("help: code %d, no example in:\n%s", code, out)
	}
}
