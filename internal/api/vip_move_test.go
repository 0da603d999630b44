package api_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dbha/dbha/internal/api"
	"github.com/dbha/dbha/internal/api/client"
	"github.com/dbha/dbha/internal/cluster"
)

func TestVIPMoveAccepted(t *testing.T) {
	a := newAgent(t, "db1", api.HandlerOptions{})
	since := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	want := api.VIPMove{To: "px2", From: "px1", Since: since}
	a.b.OnMoveVIP(func(to cluster.NodeName) (api.VIPMove, error) { return want, nil })
	r := a.do(t, "POST", api.PathVIPMove, `{"to":"px2"}`)
	if r.status != 202 {
		t.Fatalf("status %d body %s; want 202", r.status, r.body)
	}
	if got := decode[api.VIPMove](t, r); got != want {
		t.Fatalf("move %+v, want %+v", got, want)
	}
	if c := a.b.CallsTo("MoveVIP"); len(c) != 1 || c[0].Arg != cluster.NodeName("px2") {
		t.Fatalf("backend calls %+v", c)
	}
}

func TestVIPMoveErrors(t *testing.T) {
	a := newAgent(t, "db1", api.HandlerOptions{})
	for _, body := range []string{``, `{}`, `{"to":""}`, `{"to":"px2","x":1}`, `{"node":"px2"}`, `{"to":"px2"} {}`, `[`} {
		wantError(t, a.do(t, "POST", api.PathVIPMove, body), 400, api.CodeBadRequest)
	}
	if c := a.b.CallsTo("MoveVIP"); len(c) != 0 {
		t.Fatalf("bad requests reached the backend: %+v", c)
	}
	wantError(t, a.do(t, "GET", api.PathVIPMove, ""), 405, api.CodeMethodNotAllowed)

	a.b.SetErr("MoveVIP", fmt.Errorf("vip move to px9: %w", api.ErrNotFound))
	wantError(t, a.do(t, "POST", api.PathVIPMove, `{"to":"px9"}`), 404, api.CodeNotFound)
	a.b.SetErr("MoveVIP", fmt.Errorf("%w: px1 already owns the vip", api.ErrConflict))
	e := wantError(t, a.do(t, "POST", api.PathVIPMove, `{"to":"px1"}`), 409, api.CodeConflict)
	if e.Message == "" {
		t.Error("conflict without a message")
	}
}

func TestVIPMoveAndReleaseForwardToLeader(t *testing.T) {
	leader := newAgent(t, "db1", api.HandlerOptions{})
	follower := newAgent(t, "px1", api.HandlerOptions{})
	follower.b.SetLeaderAPI(leader.addr())
	follower.b.SetErr("MoveVIP", fmt.Errorf("move on px1: %w", api.ErrNotLeader))
	follower.b.SetErr("ReleaseVIP", fmt.Errorf("release on px1: %w", api.ErrNotLeader))
	want := api.VIPMove{To: "px2", From: "px1", Since: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	leader.b.OnMoveVIP(func(to cluster.NodeName) (api.VIPMove, error) { return want, nil })

	c, err := client.New(follower.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := c.MoveVIP(ctx, "px2")
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("move %+v, want %+v", got, want)
	}
	if err := c.ReleaseVIP(ctx, "px1", 4); err != nil {
		t.Fatal(err)
	}
	if n := leader.forwarded.Load(); n != 2 {
		t.Errorf("leader saw %d forwarded requests, want 2", n)
	}
	if calls := leader.b.CallsTo("ReleaseVIP"); len(calls) != 1 || calls[0].Arg != (api.VIPReleaseRequest{Node: "px1", LeaseEpoch: 4}) {
		t.Fatalf("leader release calls %+v", calls)
	}
	// The leader's refusals come back typed through the follower.
	leader.b.SetErr("MoveVIP", fmt.Errorf("%w: px2: proxy unhealthy", api.ErrConflict))
	if _, err := c.MoveVIP(ctx, "px2"); !errors.Is(err, api.ErrConflict) {
		t.Fatalf("move to an unhealthy proxy: %v; want ErrConflict", err)
	}
	leader.b.SetErr("MoveVIP", fmt.Errorf("%w: px9", api.ErrNotFound))
	if _, err := c.MoveVIP(ctx, "px9"); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("move to a non-member: %v; want ErrNotFound", err)
	}
	// No leader anywhere.
	leader.b.SetErr("ReleaseVIP", api.ErrNotLeader)
	if err := c.ReleaseVIP(ctx, "px1", 4); !errors.Is(err, api.ErrNotLeader) {
		t.Fatalf("release with no leader: %v; want ErrNotLeader", err)
	}
}

func TestVIPReleaseBadRequests(t *testing.T) {
	a := newAgent(t, "db1", api.HandlerOptions{})
	for _, body := range []string{``, `{}`, `{"node":""}`, `{"node":"px1","x":1}`, `{"node":"px1"}`, `{"node":"px1","lease_epoch":0}`, `{"node":"px1","lease_epoch":-1}`} {
		wantError(t, a.do(t, "POST", api.PathVIPRelease, body), 400, api.CodeBadRequest)
	}
	if c := a.b.CallsTo("ReleaseVIP"); len(c) != 0 {
		t.Fatalf("bad requests reached the backend: %+v", c)
	}
	if r := a.do(t, "POST", api.PathVIPRelease, `{"node":"px1","lease_epoch":3}`); r.status != 204 {
		t.Fatalf("release: status %d body %s; want 204", r.status, r.body)
	}
	a.b.SetErr("ReleaseVIP", fmt.Errorf("%w: stale vip release", api.ErrConflict))
	wantError(t, a.do(t, "POST", api.PathVIPRelease, `{"node":"px1","lease_epoch":2}`), 409, api.CodeConflict)
}
