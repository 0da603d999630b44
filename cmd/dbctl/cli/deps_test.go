package cli

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const (
	dbctlPkg   = "github.com/dbha/dbha/cmd/dbctl"
	sandboxPkg = "github.com/dbha/dbha/internal/sandbox"
	clientPkg  = "github.com/dbha/dbha/internal/api/client"
)

// daemonDeps are packages dbctl's own code must not link: it talks to
// agents only through the API client (STYLE rule 12). internal/sandbox is
// exempt, with what it imports: 'dbctl sandbox' drives the test-bed itself.
var daemonDeps = []string{
	"github.com/dbha/dbha/internal/raft",
	"github.com/dbha/dbha/internal/planner",
	"github.com/dbha/dbha/internal/controller",
	"github.com/dbha/dbha/internal/agent",
	"github.com/dbha/dbha/internal/wsrep",
	"github.com/dbha/dbha/internal/proxysql",
	"github.com/dbha/dbha/internal/haproxy",
	"github.com/dbha/dbha/internal/vip",
	"github.com/hashicorp/raft",
}

// coreDaemonDeps must not be linked at all, not even through the sandbox.
var coreDaemonDeps = []string{
	"github.com/dbha/dbha/internal/raft",
	"github.com/dbha/dbha/internal/planner",
	"github.com/dbha/dbha/internal/controller",
	"github.com/dbha/dbha/internal/agent",
	"github.com/hashicorp/raft",
}

// importGraph returns every package dbctl links and its imports, from
// go list -deps.
func importGraph(t *testing.T) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}", dbctlPkg)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("go list -deps %s: %v\n%s", dbctlPkg, err, stderr)
	}
	g := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 {
			g[f[0]] = f[1:]
		}
	}
	return g
}

// reachable walks g from root, not entering the packages in skip.
func reachable(g map[string][]string, root string, skip ...string) map[string]bool {
	seen := map[string]bool{}
	var walk func(string)
	walk = func(p string) {
		if seen[p] || slices.Contains(skip, p) {
			return
		}
		seen[p] = true
		for _, q := range g[p] {
			walk(q)
		}
	}
	walk(root)
	return seen
}

func matches(pkg string, prefixes []string) bool {
	for _, f := range prefixes {
		if pkg == f || strings.HasPrefix(pkg, f+"/") {
			return true
		}
	}
	return false
}

// TestDbctlLinksNoDaemonPackages keeps the CLI thin.
func TestDbctlLinksNoDaemonPackages(t *testing.T) {
	g := importGraph(t)
	if _, ok := g[clientPkg]; !ok {
		t.Fatalf("dbctl does not link %s; the dependency list looks wrong: %d packages", clientPkg, len(g))
	}
	for p := range reachable(g, dbctlPkg, sandboxPkg) {
		if matches(p, daemonDeps) {
			t.Errorf("dbctl links daemon package %s; talk to the agent through %s instead", p, clientPkg)
		}
	}
	for p := range g {
		if matches(p, coreDaemonDeps) {
			t.Errorf("dbctl links core daemon package %s (through %s or directly)", p, sandboxPkg)
		}
	}
}

// TestReachableSkipsSandbox checks the graph walk itself, so that the test
// above cannot pass by walking nothing.
func TestReachableSkipsSandbox(t *testing.T) {
	g := map[string][]string{
		"cmd":     {"cli"},
		"cli":     {"client", "sandbox"},
		"sandbox": {"haproxy"},
		"client":  {"api"},
	}
	got := reachable(g, "cmd", "sandbox")
	if !got["api"] || got["haproxy"] || got["sandbox"] {
		t.Errorf("reachable = %v, want api but not sandbox or haproxy", got)
	}
	if !matches("github.com/hashicorp/raft/x", daemonDeps) || matches("github.com/hashicorp/raft-boltdb", daemonDeps) {
		t.Error("matches: wrong prefix semantics")
	}
}
