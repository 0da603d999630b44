package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func runDbctl(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	code = Run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestSandboxBadInput(t *testing.T) {
	base := t.TempDir()
	env := []string{"DBHA_SANDBOX_DIR=" + base}
	cases := []struct {
		args     []string
		wantCode int
		wantErr  string
	}{
		{[]string{"sandbox", "up", "--bogus"}, ExitUsage, "unknown flag: --bogus"},
		{[]string{"sandbox", "up", "--db", "0"}, ExitUsage, "--db 0: want 1 to 9"},
		{[]string{"sandbox", "up", "--proxies", "0"}, ExitUsage, "--proxies 0"},
		{[]string{"sandbox", "up", "extra"}, ExitUsage, "takes no arguments"},
		{[]string{"sandbox", "up", "--proxysql-bin", "/nonexistent/proxysql"}, ExitUsage, "--proxysql-bin: stat /nonexistent/proxysql"},
		{[]string{"sandbox", "status", "-o", "yaml"}, ExitUsage, `--output "yaml"`},
	}
	for _, c := range cases {
		code, _, stderr := runDbctl(t, env, c.args...)
		if code != c.wantCode || !strings.Contains(stderr, c.wantErr) {
			t.Errorf("dbctl %v: code %d stderr %q; want code %d containing %q", c.args, code, stderr, c.wantCode, c.wantErr)
		}
	}
	assertEmptyDir(t, base)
}

func TestSandboxMissingPackages(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the missing-package check runs after the root check")
	}
	base := t.TempDir()
	t.Setenv("PATH", t.TempDir()) // nothing installed on this PATH
	code, _, stderr := runDbctl(t, []string{"DBHA_SANDBOX_DIR=" + base}, "sandbox", "up")
	if code != ExitError || !strings.Contains(stderr, "missing packages") || !strings.Contains(stderr, "install-deps") {
		t.Errorf("code %d stderr %q; want a missing-packages error that names install-deps", code, stderr)
	}
	assertEmptyDir(t, base)
}

// TestSandboxWithoutRoot runs the real binary as user nobody.
func TestSandboxWithoutRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to user nobody")
	}
	dir, err := os.MkdirTemp("", "dbctl-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "dbctl")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/dbha/dbha/cmd/dbctl").CombinedOutput(); err != nil {
		t.Fatalf("build dbctl: %v\n%s", err, out)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	for _, args := range [][]string{{"sandbox", "up"}, {"sandbox", "up", "--db", "2"}, {"sandbox", "down"}, {"sandbox", "status"}} {
		cmd := exec.Command(bin, args...)
		cmd.Env = []string{"DBHA_SANDBOX_DIR=" + base, "PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != ExitError || !strings.Contains(stderr.String(), "needs root") {
			t.Errorf("dbctl %v as nobody: err %v stderr %q; want exit 1 saying it needs root", args, err, stderr.String())
		}
		if args[len(args)-1] == "2" && !strings.Contains(stderr.String(), "warning") {
			t.Errorf("dbctl %v: no quorum warning in %q", args, stderr.String())
		}
	}
	assertEmptyDir(t, base)
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("left behind in %s: %s", dir, e.Name())
	}
}
