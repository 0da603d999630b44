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

func TestVIPRenewGrantedAndRefused(t *testing.T) {
	a := newAgent(t, "px1", api.HandlerOptions{})
	want := api.VIPLease{Granted: true, Owner: "px1", LeaseEpoch: 4}
	a.b.SetVIPLease(want)
	r := a.do(t, "POST", api.PathVIPRenew, `{"node":"px1"}`)
	if r.status != 200 {
		t.Fatalf("status %d body %s", r.status, r.body)
	}
	if got := decode[api.VIPLease](t, r); got != want {
		t.Fatalf("lease %+v, want %+v", got, want)
	}
	if c := a.b.CallsTo("RenewVIP"); len(c) != 1 || c[0].Arg != cluster.NodeName("px1") {
		t.Fatalf("backend calls %+v", c)
	}
	// A refusal is an answer, not an error.
	refused := api.VIPLease{Owner: "px2", LeaseEpoch: 5, Reason: "px1 is not the vip owner"}
	a.b.SetVIPLease(refused)
	if got := decode[api.VIPLease](t, a.do(t, "POST", api.PathVIPRenew, `{"node":"px1"}`)); got != refused {
		t.Fatalf("lease %+v, want %+v", got, refused)
	}
}

func TestVIPRenewBadRequests(t *testing.T) {
	a := newAgent(t, "px1", api.HandlerOptions{})
	for _, body := range []string{``, `{}`, `{"node":""}`, `{"node":"px1","x":1}`, `{"node":"px1"} {}`} {
		wantError(t, a.do(t, "POST", api.PathVIPRenew, body), 400, api.CodeBadRequest)
	}
	if c := a.b.CallsTo("RenewVIP"); len(c) != 0 {
		t.Fatalf("bad requests reached the backend: %+v", c)
	}
	wantError(t, a.do(t, "GET", api.PathVIPRenew, ""), 405, api.CodeMethodNotAllowed)
}

func TestVIPRenewForwardsToLeader(t *testing.T) {
	leader := newAgent(t, "db1", api.HandlerOptions{})
	follower := newAgent(t, "px1", api.HandlerOptions{})
	follower.b.SetLeaderAPI(leader.addr())
	follower.b.SetErr("RenewVIP", fmt.Errorf("renew on px1: %w", api.ErrNotLeader))
	want := api.VIPLease{Granted: true, Owner: "px1", LeaseEpoch: 2}
	leader.b.SetVIPLease(want)

	c, err := client.New(follower.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := c.RenewVIP(ctx, "px1")
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("lease %+v, want %+v", got, want)
	}
	if n := leader.forwarded.Load(); n != 1 {
		t.Errorf("leader saw %d forwarded requests, want 1", n)
	}
	// No leader anywhere: a typed error the agent can test.
	leader.b.SetErr("RenewVIP", api.ErrNotLeader)
	if _, err := c.RenewVIP(ctx, "px1"); !errors.Is(err, api.ErrNotLeader) {
		t.Fatalf("renew with no leader: %v; want ErrNotLeader", err)
	}
}
