package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Proc is a process the sandbox started. Binary is checked against
// /proc/PID/exe before any signal, so a recycled PID is never signalled.
type Proc struct {
	Name   string `json:"name"` // mariadbd, haproxy, dbagent
	PID    int    `json:"pid"`
	Binary string `json:"binary"`
	Log    string `json:"log"`
}

// startProc starts name in namespace ns as a detached process group leader
// (so it survives the caller, and its own children such as SST helpers can be
// signalled with it). Output goes to logPath.
func startProc(ns, name, logPath string, argv ...string) (Proc, error) {
	bin, err := exec.LookPath(argv[0])
	if err != nil {
		return Proc{}, fmt.Errorf("start %s in %s: %w", name, ns, err)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return Proc{}, fmt.Errorf("start %s in %s: %w", name, ns, err)
	}
	defer logf.Close()
	// `ip netns exec` execs the command in place, so the PID we get is the
	// PID of the command itself.
	args := append([]string{"netns", "exec", ns, bin}, argv[1:]...)
	cmd := exec.Command("ip", args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return Proc{}, fmt.Errorf("start %s in %s: %w", name, ns, err)
	}
	p := Proc{Name: name, PID: cmd.Process.Pid, Binary: bin, Log: logPath}
	// Reap it in the background when we are its parent; when the sandbox
	// outlives this process (dbctl sandbox up), init reaps it.
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	// Wait until `ip netns exec` has exec'd the binary, so Alive is
	// meaningful from the moment we return.
	deadline := time.Now().Add(5 * time.Second)
	for !p.Alive() {
		select {
		case <-done:
			return p, fmt.Errorf("start %s in %s: exited at once: %s", name, ns, strings.TrimSpace(tail(logPath, 5)))
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = syscall.Kill(-p.PID, syscall.SIGKILL)
			return p, fmt.Errorf("start %s in %s: did not exec within 5s", name, ns)
		}
	}
	return p, nil
}

// Alive reports whether p still runs the binary it was started with.
func (p Proc) Alive() bool {
	if p.PID <= 0 {
		return false
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.PID))
	if err != nil {
		return false
	}
	exe = strings.TrimSuffix(exe, " (deleted)")
	if exe != p.Binary && filepath.Base(exe) != filepath.Base(p.Binary) {
		return false
	}
	// A zombie has an exe link only until reaped; treat it as dead.
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.PID))
	if err != nil {
		return false
	}
	if i := strings.LastIndexByte(string(stat), ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return false
	}
	return true
}

// Signal sends sig to p's process group (p leads it), only if p is alive.
func (p Proc) Signal(sig syscall.Signal) error {
	if !p.Alive() {
		return fmt.Errorf("signal %s pid %d: %w", p.Name, p.PID, ErrNotRunning)
	}
	if err := syscall.Kill(-p.PID, sig); err != nil {
		return fmt.Errorf("signal %s pid %d: %w", p.Name, p.PID, err)
	}
	return nil
}

// ErrNotRunning is returned when a process the sandbox expects is gone.
var ErrNotRunning = errors.New("process not running")

// Stop sends SIGTERM, waits up to grace, then SIGKILLs the process group.
func (p Proc) Stop(ctx context.Context, grace time.Duration) error {
	if !p.Alive() {
		return nil
	}
	_ = p.Signal(syscall.SIGTERM)
	if waitGone(ctx, p, grace) {
		return nil
	}
	_ = syscall.Kill(-p.PID, syscall.SIGKILL)
	if waitGone(ctx, p, 10*time.Second) {
		return nil
	}
	return fmt.Errorf("stop %s pid %d: still running after SIGKILL", p.Name, p.PID)
}

func waitGone(ctx context.Context, p Proc, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !p.Alive() {
			return true
		}
		select {
		case <-ctx.Done():
			return !p.Alive()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return !p.Alive()
}

// pidsInNamespace lists the PIDs of processes whose network namespace is ns.
// Teardown uses it to find children (SST helpers) that escaped the process
// group; every one of them lives in a namespace this run created.
func pidsInNamespace(ns string) []int {
	target, err := os.Stat("/var/run/netns/" + ns)
	if err != nil {
		return nil
	}
	tst, ok := target.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		st, err := os.Stat(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil {
			continue
		}
		if s, ok := st.Sys().(*syscall.Stat_t); ok && s.Ino == tst.Ino && s.Dev == tst.Dev {
			pids = append(pids, pid)
		}
	}
	return pids
}
