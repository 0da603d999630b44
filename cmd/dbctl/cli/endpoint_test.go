package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dbha/dbha/internal/api"
	"github.com/dbha/dbha/internal/api/apitest"
	"github.com/dbha/dbha/internal/cluster"
)

// isolate clears the endpoint sources dbctl reads from the environment:
// no $DBHA_ENDPOINT and an empty sandbox base.
func isolate(t *testing.T) (sandboxBase string) {
	t.Helper()
	base := t.TempDir()
	t.Setenv("DBHA_SANDBOX_DIR", base)
	t.Setenv(endpointEnv, "")
	return base
}

// ctl runs dbctl in-process and returns its exit code and output.
func ctl(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// fakeAgent serves a fake backend on loopback TCP and returns it with its
// endpoint.
func fakeAgent(t *testing.T, node cluster.NodeName) (*apitest.Backend, string) {
	t.Helper()
	b := apitest.New()
	srv := apitest.NewServer(t, b, node)
	return b, srv.URL
}

// fakeAgentUnix serves a fake backend on a unix socket and returns it with
// its unix:// endpoint.
func fakeAgentUnix(t *testing.T, node cluster.NodeName) (*apitest.Backend, string) {
	t.Helper()
	b := apitest.New()
	ep := "unix://" + filepath.Join(t.TempDir(), "api.sock")
	ln, err := api.Listen(ep)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.Serve(ctx, ln, api.NewHandler(b, api.HandlerOptions{Node: node})) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve %s: %v", ep, err)
		}
	})
	return b, ep
}

// closedEndpoint returns a loopback endpoint where nothing listens.
func closedEndpoint(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// writeSandboxEndpoint records ep as the running sandbox's endpoint, the
// way 'dbctl sandbox up' lays it out: base/current -> base/run-x.
func writeSandboxEndpoint(t *testing.T, base, content string) {
	t.Helper()
	run := filepath.Join(base, "run-test")
	if err := os.MkdirAll(run, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(run, sandboxEndpointFile), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(run, filepath.Join(base, "current")); err != nil {
		t.Fatal(err)
	}
}

func statusNode(t *testing.T, stdout string) cluster.NodeName {
	t.Helper()
	var st api.Status
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatalf("status -o json is not a Status: %v\n%s", err, stdout)
	}
	return st.Node
}

// TestEndpointPrecedence: --endpoint beats $DBHA_ENDPOINT, which beats the
// sandbox's endpoint file (here a unix socket).
func TestEndpointPrecedence(t *testing.T) {
	base := isolate(t)
	now := time.Now()
	fromFlag, flagEP := fakeAgent(t, "flag")
	fromEnv, envEP := fakeAgent(t, "env")
	fromFile, fileEP := fakeAgentUnix(t, "file")
	for name, b := range map[cluster.NodeName]*apitest.Backend{"flag": fromFlag, "env": fromEnv, "file": fromFile} {
		st := apitest.HealthyStatus(now)
		st.Node = name
		b.SetStatus(st)
	}
	writeSandboxEndpoint(t, base, "\n  "+fileEP+"\n")

	code, out, errOut := ctl(t, "status", "-o", "json")
	if code != ExitOK || statusNode(t, out) != "file" {
		t.Errorf("sandbox file only: code %d, answered by %q (stderr %q), want 0 from file", code, statusNode(t, out), errOut)
	}
	t.Setenv(endpointEnv, envEP)
	code, out, _ = ctl(t, "status", "-o", "json")
	if code != ExitOK || statusNode(t, out) != "env" {
		t.Errorf("env + file: code %d, answered by %q, want env", code, statusNode(t, out))
	}
	code, out, _ = ctl(t, "--endpoint", flagEP, "status", "-o", "json")
	if code != ExitOK || statusNode(t, out) != "flag" {
		t.Errorf("flag + env + file: code %d, answered by %q, want flag", code, statusNode(t, out))
	}
	// The flag also works after the subcommand.
	code, out, _ = ctl(t, "status", "-o", "json", "--endpoint", flagEP)
	if code != ExitOK || statusNode(t, out) != "flag" {
		t.Errorf("flag after subcommand: code %d, answered by %q, want flag", code, statusNode(t, out))
	}
}

func TestEndpointMissing(t *testing.T) {
	base := isolate(t)
	for _, cmd := range []string{"status", "events", "why", "members"} {
		code, _, errOut := ctl(t, cmd)
		if code != ExitUsage || !strings.Contains(errOut, "--endpoint") || !strings.Contains(errOut, endpointEnv) {
			t.Errorf("%s without endpoint: code %d stderr %q; want usage error naming --endpoint and %s", cmd, code, errOut, endpointEnv)
		}
	}
	writeSandboxEndpoint(t, base, "\n\n")
	code, _, errOut := ctl(t, "status")
	if code != ExitUsage || !strings.Contains(errOut, "is empty") {
		t.Errorf("empty sandbox endpoint file: code %d stderr %q; want a usage error saying it is empty", code, errOut)
	}
}

func TestEndpointBadValues(t *testing.T) {
	isolate(t)
	_, ep := fakeAgent(t, "px1")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--endpoint", "ftp://db1:21", "status"}, "bad endpoint"},
		{[]string{"--endpoint", "db1", "status"}, "bad endpoint"},
		{[]string{"--endpoint", ep, "--timeout", "0s", "status"}, "--timeout"},
		{[]string{"--endpoint", ep, "--timeout", "soon", "status"}, "invalid argument"},
	}
	for _, c := range cases {
		code, _, errOut := ctl(t, c.args...)
		if code != ExitUsage || !strings.Contains(errOut, c.want) {
			t.Errorf("dbctl %v: code %d stderr %q; want usage error with %q", c.args, code, errOut, c.want)
		}
	}
}

func TestUnreachableAgent(t *testing.T) {
	isolate(t)
	ep := closedEndpoint(t)
	for _, cmd := range []string{"status", "events", "why", "members"} {
		code, _, errOut := ctl(t, "--endpoint", ep, cmd)
		if code != ExitError || !strings.Contains(errOut, "cannot reach dbagent at "+ep) || !strings.Contains(errOut, "from --endpoint") {
			t.Errorf("%s on a dead agent: code %d stderr %q; want exit 1 naming %s", cmd, code, errOut, ep)
		}
	}
}

// TestHungAgentTimesOut: --timeout bounds a request to an agent that
// accepts connections but never answers.
func TestHungAgentTimesOut(t *testing.T) {
	isolate(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { close(release); srv.Close() })
	start := time.Now()
	code, _, errOut := ctl(t, "--endpoint", ln.Addr().String(), "--timeout", "200ms", "status")
	if code != ExitError || !strings.Contains(errOut, "cannot reach dbagent") {
		t.Errorf("hung agent: code %d stderr %q, want exit 1", code, errOut)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %v with --timeout 200ms", d)
	}
}
