package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dbha/dbha/internal/api"
	"github.com/dbha/dbha/internal/api/apitest"
	"github.com/dbha/dbha/internal/cluster"
)

// testClient returns an HTTP client with its own transport, closed when the
// test ends so no keep-alive goroutine outlives it.
func testClient(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

// agent is one handler under test, served on loopback.
type agent struct {
	b   *apitest.Backend
	srv *httptest.Server
	hc  *http.Client
	// forwarded counts requests that arrived with the hop header.
	forwarded atomic.Int32
}

func newAgent(t *testing.T, node cluster.NodeName, opts api.HandlerOptions) *agent {
	t.Helper()
	a := &agent{b: apitest.New(), hc: testClient(t)}
	opts.Node = node
	if opts.Client == nil {
		opts.Client = testClient(t)
	}
	h := api.NewHandler(a.b, opts)
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(api.HeaderForwarded) != "" {
			a.forwarded.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

// addr is the agent's API address as a member would register it.
func (a *agent) addr() string { return strings.TrimPrefix(a.srv.URL, "http://") }

type response struct {
	status int
	header http.Header
	body   []byte
}

func (a *agent) do(t *testing.T, method, path string, body string, hdr ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, a.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// wantError asserts a JSON api.Error answer with status and code.
func wantError(t *testing.T, r response, status int, code string) api.Error {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var e api.Error
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body %q is not an api.Error: %v", r.body, err)
	}
	if e.Code != code {
		t.Fatalf("code %q, want %q (message %q)", e.Code, code, e.Message)
	}
	if e.Message == "" {
		t.Errorf("empty error message for code %s", code)
	}
	return e
}

func decode[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("decode %T from %q: %v", v, r.body, err)
	}
	return v
}

func validReport() cluster.Report {
	return cluster.Report{
		From: "db2",
		Sent: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		DB: &cluster.Observation{
			Node: "db2", Reachable: true, Health: cluster.HealthOK, Streak: 3,
			Wsrep: &cluster.WsrepStatus{LocalState: cluster.WsrepSynced, LocalStateComment: "Synced", ClusterStatus: cluster.WsrepPrimary},
		},
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStatusLocal(t *testing.T) {
	a := newAgent(t, "px1", api.HandlerOptions{})
	want := apitest.HealthyStatus(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	a.b.SetStatus(want)
	r := a.do(t, "GET", api.PathStatus, "")
	if r.status != http.StatusOK {
		t.Fatalf("status %d body %s", r.status, r.body)
	}
	got := decode[api.Status](t, r)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("status round trip differs:\n got %+v\nwant %+v", got, want)
	}
}

func TestStatusForwardsToLeaderWhenNotObserved(t *testing.T) {
	leader := newAgent(t, "px1", api.HandlerOptions{})
	leaderStatus := apitest.HealthyStatus(time.Now().UTC())
	leader.b.SetStatus(leaderStatus)

	follower := newAgent(t, "db2", api.HandlerOptions{})
	follower.b.SetStatus(api.Status{Node: "db2", Leader: "px1", LeaderAPI: leader.addr(), Term: 7})
	follower.b.SetLeaderAPI(leader.addr())

	got := decode[api.Status](t, follower.do(t, "GET", api.PathStatus, ""))
	if !got.Observed || got.Node != "px1" {
		t.Errorf("forwarded status: node %q observed %v, want the leader's observed view", got.Node, got.Observed)
	}
	if n := leader.forwarded.Load(); n != 1 {
		t.Errorf("leader saw %d forwarded requests, want 1", n)
	}

	// ?local=1 answers from the follower itself.
	got = decode[api.Status](t, follower.do(t, "GET", api.PathStatus+"?local=1", ""))
	if got.Observed || got.Node != "db2" {
		t.Errorf("local status: node %q observed %v, want db2's own view", got.Node, got.Observed)
	}
	// A request that was already forwarded is not forwarded again.
	got = decode[api.Status](t, follower.do(t, "GET", api.PathStatus, "", api.HeaderForwarded, "1"))
	if got.Node != "db2" {
		t.Errorf("forwarded-in status was forwarded again: node %q", got.Node)
	}
	if n := leader.forwarded.Load(); n != 1 {
		t.Errorf("leader saw %d forwarded requests, want still 1", n)
	}
	wantError(t, follower.do(t, "GET", api.PathStatus+"?local=maybe", ""), 400, api.CodeBadRequest)
}

func TestStatusLeaderUnreachableServesLocalView(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadAddr := strings.TrimPrefix(dead.URL, "http://")
	dead.Close()

	follower := newAgent(t, "db2", api.HandlerOptions{})
	follower.b.SetStatus(api.Status{Node: "db2", Leader: "px1", LeaderAPI: deadAddr})
	follower.b.SetLeaderAPI(deadAddr)
	r := follower.do(t, "GET", api.PathStatus, "")
	got := decode[api.Status](t, r)
	if r.status != http.StatusOK || got.Node != "db2" || got.Observed {
		t.Errorf("status %d node %q observed %v; want 200 with db2's unobserved view", r.status, got.Node, got.Observed)
	}
}

func TestStatusBackendError(t *testing.T) {
	a := newAgent(t, "db1", api.HandlerOptions{})
	a.b.SetErr("Status", fmt.Errorf("fsm not restored yet: %w", api.ErrUnavailable))
	e := wantError(t, a.do(t, "GET", api.PathStatus, ""), 503, api.CodeUnavailable)
	if !strings.Contains(e.Message, "fsm not restored yet") {
		t.Errorf("message %q lost the backend's explanation", e.Message)
	}
}

func TestEvents(t *testing.T) {
	a := newAgent(t, "db1", api.HandlerOptions{})
	var evs []cluster.Event
	for i := uint64(1); i <= 5; i++ {
		evs = append(evs, cluster.Event{Seq: i, Epoch: cluster.Epoch(i), Kind: cluster.EventTopology, Reason: fmt.Sprint("r", i)})
	}
	a.b.SetEvents(evs)

	got := decode[api.EventList](t, a.do(t, "GET", api.PathEvents, ""))
	if len(got.Events) != 5 {
		t.Errorf("got %d events, want 5", len(got.Events))
	}
	got = decode[api.EventList](t, a.do(t, "GET", api.PathEvents+"?since=2&limit=2", ""))
	if len(got.Events) != 2 || got.Events[0].Seq != 3 || got.Events[1].Seq != 4 {
		t.Errorf("since=2 limit=2: got %+v, want seqs 3,4", got.Events)
	}
	calls := a.b.CallsTo("Events")
	if len(calls) != 2 || calls[0].Arg != [2]any{uint64(0), api.DefaultEventsLimit} || calls[1].Arg != [2]any{uint64(2), 2} {
		t.Errorf("backend calls %+v, want defaults (0, %d) then (2, 2)", calls, api.DefaultEventsLimit)
	}
	r := a.do(t, "GET", api.PathEvents+"?since=99", "")
	if !bytes.Contains(r.body, []byte(`"events":[]`)) {
		t.Errorf("no events encodes as %s, want an empty list, not null", r.body)
	}
	for _, q := range []string{"since=-1", "since=abc", "limit=0", "limit=1001", "limit=x", "since=1.5"} {
		wantError(t, a.do(t, "GET", api.PathEvents+"?"+q, ""), 400, api.CodeBadRequest)
	}
	if n := len(a.b.CallsTo("Events")); n != 3 {
		t.Errorf("backend saw %d Events calls, want 3: bad queries must not reach it", n)
	}
}

func TestWhy(t *testing.T) {
	a := newAgent(t, "db1", api.HandlerOptions{})
	topo := cluster.Topology{Epoch: 9, Writer: "db1", Readers: []cluster.NodeName{"db2"}, Offline: []cluster.OfflineNode{}}
	a.b.SetWhy(api.Why{Epoch: 9, Current: true, Topology: &topo, Events: []cluster.Event{{Seq: 4, Epoch: 9, Kind: cluster.EventFailover, Node: "db1", Reason: "db3 unreachable"}}})
	a.b.SetWhy(api.Why{Epoch: 8})

	cur := decode[api.Why](t, a.do(t, "GET", api.PathWhy, ""))
	if !cur.Current || cur.Epoch != 9 || cur.Topology == nil || cur.Topology.Writer != "db1" || len(cur.Events) != 1 {
		t.Errorf("current why = %+v", cur)
	}
	old := decode[api.Why](t, a.do(t, "GET", api.PathWhy+"?epoch=8", ""))
	if old.Epoch != 8 || old.Current || old.Events == nil {
		t.Errorf("why epoch 8 = %+v, want epoch 8 with an empty (non-null) event list", old)
	}
	wantError(t, a.do(t, "GET", api.PathWhy+"?epoch=77", ""), 404, api.CodeNotFound)
	wantError(t, a.do(t, "GET", api.PathWhy+"?epoch=-3", ""), 400, api.CodeBadRequest)
	wantError(t, a.do(t, "GET", api.PathWhy+"?epoch=x", ""), 400, api.CodeBadRequest)
}

func TestReportAccepted(t *testing.T) {
	a := newAgent(t, "px1", api.HandlerOptions{})
	rep := validReport()
	r := a.do(t, "POST", api.PathReports, mustJSON(t, rep))
	if r.status != http.StatusNoContent {
		t.Fatalf("status %d body %s, want 204", r.status, r.body)
	}
	calls := a.b.CallsTo("Report")
	if len(calls) != 1 || !reflect.DeepEqual(calls[0].Arg, rep) {
		t.Errorf("backend got %+v, want the report unchanged", calls)
	}
}

func TestReportRejected(t *testing.T) {
	a := newAgent(t, "px1", api.HandlerOptions{MaxBodyBytes: 4096})
	good := mustJSON(t, validReport())
	cases := []struct {
		name, body, want string
	}{
		{"empty body", "", "empty body"},
		{"bad json", `{"from":`, "decode body"},
		{"wrong type", `{"from": 7}`, "decode body"},
		{"unknown field", `{"from":"db2","db":{"node":"db2","health":"ok"},"colour":"blue"}`, `unknown field "colour"`},
		{"trailing data", good + `{"from":"db3"}`, "trailing data"},
		{"too large", `{"from":"` + strings.Repeat("x", 5000) + `"}`, "body over 4096 bytes"},
		{"no from", `{"db":{"node":"","health":"ok"}}`, "empty from"},
		{"neither role", `{"from":"db2"}`, "neither db nor proxy"},
		{"both roles", `{"from":"db2","db":{"node":"db2","health":"ok"},"proxy":{"node":"db2"}}`, "both db and proxy"},
		{"node mismatch", `{"from":"db2","db":{"node":"db3","health":"ok"}}`, `db.node "db3" differs`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := wantError(t, a.do(t, "POST", api.PathReports, c.body), 400, api.CodeBadRequest)
			if !strings.Contains(e.Message, c.want) {
				t.Errorf("message %q, want it to mention %q", e.Message, c.want)
			}
		})
	}
	if n := len(a.b.CallsTo("Report")); n != 0 {
		t.Errorf("backend saw %d reports, want 0", n)
	}
}

func TestJoinAndLeave(t *testing.T) {
	a := newAgent(t, "px1", api.HandlerOptions{})
	m := cluster.Member{Name: "db4", Roles: []cluster.Role{cluster.RoleDB}, APIAddr: "198.18.0.14:7070", RaftAddr: "198.18.0.14:7071", MySQLAddr: "198.18.0.14:3306"}
	if r := a.do(t, "POST", api.PathMembers, mustJSON(t, api.JoinRequest{Member: m})); r.status != 204 {
		t.Fatalf("join: status %d body %s", r.status, r.body)
	}
	if c := a.b.CallsTo("Join"); len(c) != 1 || !reflect.DeepEqual(c[0].Arg, m) {
		t.Errorf("join calls %+v", c)
	}
	bad := m
	bad.MySQLAddr = ""
	e := wantError(t, a.do(t, "POST", api.PathMembers, mustJSON(t, api.JoinRequest{Member: bad})), 400, api.CodeBadRequest)
	if !strings.Contains(e.Message, "mysql address") {
		t.Errorf("message %q does not say what is wrong", e.Message)
	}
	wantError(t, a.do(t, "POST", api.PathMembers, `{"member":{"name":"db5"},"force":true}`), 400, api.CodeBadRequest)

	a.b.SetErr("Join", fmt.Errorf("db4 already joined with another raft address: %w", api.ErrConflict))
	wantError(t, a.do(t, "POST", api.PathMembers, mustJSON(t, api.JoinRequest{Member: m})), 409, api.CodeConflict)

	if r := a.do(t, "DELETE", api.PathMembers+"/db4", ""); r.status != 204 {
		t.Fatalf("leave: status %d body %s", r.status, r.body)
	}
	if c := a.b.CallsTo("Leave"); len(c) != 1 || c[0].Arg != cluster.NodeName("db4") {
		t.Errorf("leave calls %+v", c)
	}
	a.b.SetErr("Leave", api.ErrNotFound)
	wantError(t, a.do(t, "DELETE", api.PathMembers+"/nope", ""), 404, api.CodeNotFound)
}

func TestBackendErrorCodes(t *testing.T) {
	cases := []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("x: %w", api.ErrBadRequest), 400, api.CodeBadRequest},
		{fmt.Errorf("x: %w", api.ErrNotFound), 404, api.CodeNotFound},
		{fmt.Errorf("x: %w", api.ErrConflict), 409, api.CodeConflict},
		{fmt.Errorf("x: %w", api.ErrNoLeader), 503, api.CodeNoLeader},
		{fmt.Errorf("x: %w", api.ErrUnavailable), 503, api.CodeUnavailable},
		{fmt.Errorf("raft apply: %w", context.DeadlineExceeded), 503, api.CodeUnavailable},
		{errors.New("disk on fire"), 500, api.CodeInternal},
	}
	a := newAgent(t, "px1", api.HandlerOptions{})
	for _, c := range cases {
		a.b.SetErr("Join", c.err)
		m := cluster.Member{Name: "px3", Roles: []cluster.Role{cluster.RoleProxy}, RaftAddr: "198.18.0.23:7071"}
		wantError(t, a.do(t, "POST", api.PathMembers, mustJSON(t, api.JoinRequest{Member: m})), c.status, c.code)
		if st, code := api.StatusOf(c.err); st != c.status || code != c.code {
			t.Errorf("StatusOf(%v) = %d %s, want %d %s", c.err, st, code, c.status, c.code)
		}
	}
	for code, want := range map[string]error{
		api.CodeBadRequest: api.ErrBadRequest, api.CodeNotFound: api.ErrNotFound, api.CodeConflict: api.ErrConflict,
		api.CodeNotLeader: api.ErrNotLeader, api.CodeNoLeader: api.ErrNoLeader, api.CodeUnavailable: api.ErrUnavailable,
		api.CodeInternal: nil,
	} {
		if got := api.Sentinel(code); got != want {
			t.Errorf("Sentinel(%s) = %v, want %v", code, got, want)
		}
	}
}

func TestUnknownRouteAndWrongMethod(t *testing.T) {
	a := newAgent(t, "px1", api.HandlerOptions{})
	wantError(t, a.do(t, "GET", "/v1/nope", ""), 404, api.CodeNotFound)
	wantError(t, a.do(t, "GET", "/", ""), 404, api.CodeNotFound)
	wantError(t, a.do(t, "GET", "/v2/status", ""), 404, api.CodeNotFound)
	wantError(t, a.do(t, "GET", "/v1/health/primary", ""), 404, api.CodeNotFound)
	wantError(t, a.do(t, "DELETE", api.PathMembers+"/", ""), 404, api.CodeNotFound)
	cases := []struct{ method, path, allow string }{
		{"POST", api.PathStatus, "GET"},
		{"DELETE", api.PathEvents, "GET"},
		{"GET", api.PathReports, "POST"},
		{"GET", api.PathMembers, "POST"},
		{"PUT", api.PathMembers + "/db1", "DELETE"},
		{"POST", api.PathHealthWriter, "GET"},
	}
	for _, c := range cases {
		r := a.do(t, c.method, c.path, "")
		wantError(t, r, 405, api.CodeMethodNotAllowed)
		if got := r.header.Get("Allow"); got != c.allow {
			t.Errorf("%s %s: Allow %q, want %q", c.method, c.path, got, c.allow)
		}
	}
	if calls := a.b.Calls(); len(calls) != 0 {
		t.Errorf("backend was called for unrouted requests: %+v", calls)
	}
}

func TestHealth(t *testing.T) {
	a := newAgent(t, "db1", api.HandlerOptions{})
	a.b.SetHealth(api.Health{Role: api.RoleWriter, OK: true, Epoch: 12, Reason: "db1 is the writer at epoch 12"})
	a.b.SetHealth(api.Health{Role: api.RoleReader, OK: false, Epoch: 12, Reason: "db1 is the writer and writer_is_reader is off"})

	r := a.do(t, "GET", api.PathHealthWriter, "")
	h := decode[api.Health](t, r)
	if r.status != 200 || !h.OK || h.Node != "db1" || h.Role != api.RoleWriter {
		t.Errorf("writer health: status %d %+v, want 200 ok for db1", r.status, h)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", cc)
	}
	r = a.do(t, "GET", api.PathHealthReader, "")
	h = decode[api.Health](t, r)
	if r.status != 503 || h.OK || h.Reason == "" {
		t.Errorf("reader health: status %d %+v, want 503 with a reason", r.status, h)
	}
	// Health is this node's answer: never forwarded, even with a leader known.
	leader := newAgent(t, "px1", api.HandlerOptions{})
	a.b.SetLeaderAPI(leader.addr())
	a.do(t, "GET", api.PathHealthReader, "")
	if len(leader.b.Calls()) != 0 {
		t.Errorf("health was forwarded to the leader")
	}
}

func TestWritesForwardToLeader(t *testing.T) {
	leader := newAgent(t, "px1", api.HandlerOptions{})
	follower := newAgent(t, "db2", api.HandlerOptions{})
	follower.b.SetLeaderAPI("http://" + leader.addr())
	for _, m := range []string{"Report", "Join", "Leave"} {
		follower.b.SetErr(m, fmt.Errorf("apply on db2: %w", api.ErrNotLeader))
	}

	rep := validReport()
	if r := follower.do(t, "POST", api.PathReports, mustJSON(t, rep)); r.status != 204 {
		t.Fatalf("forwarded report: status %d body %s", r.status, r.body)
	}
	if c := leader.b.CallsTo("Report"); len(c) != 1 || !reflect.DeepEqual(c[0].Arg, rep) {
		t.Errorf("leader got reports %+v, want the same report once", c)
	}
	m := cluster.Member{Name: "px3", Roles: []cluster.Role{cluster.RoleProxy}, RaftAddr: "198.18.0.23:7071"}
	if r := follower.do(t, "POST", api.PathMembers, mustJSON(t, api.JoinRequest{Member: m})); r.status != 204 {
		t.Fatalf("forwarded join: status %d body %s", r.status, r.body)
	}
	if r := follower.do(t, "DELETE", api.PathMembers+"/px3", ""); r.status != 204 {
		t.Fatalf("forwarded leave: status %d body %s", r.status, r.body)
	}
	if c := leader.b.CallsTo("Leave"); len(c) != 1 || c[0].Arg != cluster.NodeName("px3") {
		t.Errorf("leader got leaves %+v", c)
	}
	if n := leader.forwarded.Load(); n != 3 {
		t.Errorf("leader saw %d requests with %s, want 3", n, api.HeaderForwarded)
	}
	// The leader's error answer comes back unchanged.
	leader.b.SetErr("Join", fmt.Errorf("px3: %w", api.ErrConflict))
	wantError(t, follower.do(t, "POST", api.PathMembers, mustJSON(t, api.JoinRequest{Member: m})), 409, api.CodeConflict)
}

func TestForwardLoopGuard(t *testing.T) {
	// a and b each believe the other leads.
	a := newAgent(t, "db1", api.HandlerOptions{})
	b := newAgent(t, "db2", api.HandlerOptions{})
	a.b.SetLeaderAPI(b.addr())
	b.b.SetLeaderAPI(a.addr())
	a.b.SetErr("Report", api.ErrNotLeader)
	b.b.SetErr("Report", api.ErrNotLeader)

	e := wantError(t, a.do(t, "POST", api.PathReports, mustJSON(t, validReport())), 503, api.CodeNotLeader)
	if e.Leader != a.addr() {
		t.Errorf("not_leader answer names leader %q, want b's view %q", e.Leader, a.addr())
	}
	if na, nb := len(a.b.CallsTo("Report")), len(b.b.CallsTo("Report")); na != 1 || nb != 1 {
		t.Errorf("report reached a %d times and b %d times, want once each (no bouncing)", na, nb)
	}
}

func TestForwardWithoutReachableLeader(t *testing.T) {
	a := newAgent(t, "db1", api.HandlerOptions{})
	a.b.SetErr("Join", api.ErrNotLeader)
	m := cluster.Member{Name: "px3", Roles: []cluster.Role{cluster.RoleProxy}, RaftAddr: "198.18.0.23:7071"}
	body := mustJSON(t, api.JoinRequest{Member: m})
	// No leader known.
	wantError(t, a.do(t, "POST", api.PathMembers, body), 503, api.CodeNoLeader)
	// The backend itself says no leader.
	a.b.SetErr("Join", api.ErrNoLeader)
	wantError(t, a.do(t, "POST", api.PathMembers, body), 503, api.CodeNoLeader)
	// Leader known but down.
	dead := httptest.NewServer(http.NotFoundHandler())
	deadAddr := strings.TrimPrefix(dead.URL, "http://")
	dead.Close()
	a.b.SetErr("Join", api.ErrNotLeader)
	a.b.SetLeaderAPI(deadAddr)
	e := wantError(t, a.do(t, "POST", api.PathMembers, body), 503, api.CodeUnavailable)
	if !strings.Contains(e.Message, deadAddr) {
		t.Errorf("message %q does not name the leader %s", e.Message, deadAddr)
	}
	// A nonsense leader address.
	a.b.SetLeaderAPI("ftp://px1")
	wantError(t, a.do(t, "POST", api.PathMembers, body), 503, api.CodeUnavailable)
}
