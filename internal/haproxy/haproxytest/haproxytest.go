// Package haproxytest runs a real HAProxy and fake DB backends for tests.
// Everything it starts is stopped in t.Cleanup, by PID.
package haproxytest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"github.com/dbha/dbha/internal/testport"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// DefaultBinary is where Debian installs HAProxy. DBHA_HAPROXY overrides it.
const DefaultBinary = "/usr/sbin/haproxy"

// Binary returns the HAProxy binary to test against. When it is missing the
// test is skipped, unless CI is set, in which case it fails.
func Binary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("DBHA_HAPROXY")
	if bin == "" {
		bin = DefaultBinary
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("haproxy binary %s: %v (CI is set, so this is not skipped)", bin, err)
		}
		t.Skipf("haproxy binary %s: %v", bin, err)
	}
	return bin
}

// Process is one HAProxy run in the foreground (-db) from a config file.
type Process struct {
	t      testing.TB
	bin    string
	Config string // config file path
	Socket string // admin socket path, polled to know HAProxy is up

	mu     sync.Mutex
	cmd    *exec.Cmd
	output *bytes.Buffer
	done   chan struct{}
}

// Start writes cfg to a temp file and runs HAProxy on it, returning when
// the admin socket at socket answers. HAProxy is killed in t.Cleanup.
func Start(t testing.TB, cfg []byte, socket string) *Process {
	t.Helper()
	path := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(path, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	p := &Process{t: t, bin: Binary(t), Config: path, Socket: socket}
	out, err := exec.Command(p.bin, "-c", "-f", path).CombinedOutput()
	if err != nil {
		t.Fatalf("haproxy -c rejects the config: %v\n%s\n%s", err, out, cfg)
	}
	p.start()
	t.Cleanup(p.Kill)
	return p
}

func (p *Process) start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := exec.Command(p.bin, "-f", p.Config, "-db")
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("start haproxy: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p.cmd, p.output, p.done = cmd, out, done
	deadline := time.Now().Add(5 * time.Second)
	for {
		if ans, err := Exec(p.Socket, "show info"); err == nil && strings.Contains(ans, "Pid: ") && pidOf(ans) == cmd.Process.Pid {
			return
		}
		select {
		case <-done:
			p.t.Fatalf("haproxy exited at start: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("haproxy socket %s not answering after 5s: %s", p.Socket, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func pidOf(info string) int {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(line, "Pid: "); ok {
			if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				return n
			}
		}
	}
	return -1
}

// PID is the running HAProxy's process ID.
func (p *Process) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.Process.Pid
}

// Kill SIGKILLs this HAProxy (by PID) and waits for it to exit.
func (p *Process) Kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		p.t.Errorf("haproxy pid %d did not exit after SIGKILL", cmd.Process.Pid)
	}
}

// Restart kills HAProxy and starts it again on the same config, as a crash
// and a supervisor restart would.
func (p *Process) Restart() {
	p.t.Helper()
	p.Kill()
	p.start()
}

// Relaunch starts HAProxy again after Kill.
func (p *Process) Relaunch() {
	p.t.Helper()
	p.start()
}

// Output is what HAProxy wrote to stdout and stderr so far.
func (p *Process) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.output.String()
}

// Exec sends one Runtime API command to socket and returns the answer.
func Exec(socket, cmd string) (string, error) {
	conn, err := net.DialTimeout("unix", socket, time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(conn)
	return string(b), err
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago,
// outside the kernel's ephemeral range (see testport.Free).
func FreePort(t testing.TB) int { t.Helper(); return testport.Free(t) }

// Backend is a fake DB node: a TCP server on 127.0.0.1 that greets every
// connection with its name and a newline, then echoes lines back.
type Backend struct {
	Name string
	Host string
	Port int

	l     net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// StartBackend starts a fake backend named name; t.Cleanup stops it and
// every connection it holds.
func StartBackend(t testing.TB, name string) *Backend {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &Backend{Name: name, Host: "127.0.0.1", Port: l.Addr().(*net.TCPAddr).Port, l: l, conns: map[net.Conn]struct{}{}}
	b.wg.Add(1)
	go b.accept()
	t.Cleanup(b.Close)
	return b
}

// Addr is host:port.
func (b *Backend) Addr() string { return net.JoinHostPort(b.Host, strconv.Itoa(b.Port)) }

func (b *Backend) accept() {
	defer b.wg.Done()
	for {
		c, err := b.l.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		b.conns[c] = struct{}{}
		b.mu.Unlock()
		b.wg.Add(1)
		go b.serve(c)
	}
}

func (b *Backend) serve(c net.Conn) {
	defer b.wg.Done()
	defer func() {
		b.mu.Lock()
		delete(b.conns, c)
		b.mu.Unlock()
		c.Close()
	}()
	if _, err := io.WriteString(c, b.Name+"\n"); err != nil {
		return
	}
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		if _, err := io.WriteString(c, sc.Text()+"\n"); err != nil {
			return
		}
	}
}

// Conns is how many client connections the backend holds now.
func (b *Backend) Conns() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.conns)
}

// Close stops the listener and every connection, and waits for them.
func (b *Backend) Close() {
	_ = b.l.Close()
	b.mu.Lock()
	for c := range b.conns {
		_ = c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// Client is one client connection through a proxy frontend.
type Client struct {
	Conn   net.Conn
	Landed string // the name the backend greeted with
	r      *bufio.Reader
}

// Dial connects to addr and reads the backend's greeting. It fails when
// HAProxy has no server to route to (it closes the connection).
func Dial(ctx context.Context, addr string) (*Client, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	r := bufio.NewReader(c)
	name, err := r.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetReadDeadline(time.Time{})
	return &Client{Conn: c, Landed: strings.TrimSpace(name), r: r}, nil
}

// Echo sends line and waits for it to come back within timeout.
func (c *Client) Echo(line string, timeout time.Duration) error {
	_ = c.Conn.SetDeadline(time.Now().Add(timeout))
	defer c.Conn.SetDeadline(time.Time{})
	if _, err := io.WriteString(c.Conn, line+"\n"); err != nil {
		return err
	}
	got, err := c.r.ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(got) != line {
		return errors.New("echo mismatch: sent " + line + ", got " + strings.TrimSpace(got))
	}
	return nil
}

// WaitClosed waits up to timeout for the proxy to close the connection and
// reports whether it did (EOF or reset), as opposed to timing out.
func (c *Client) WaitClosed(timeout time.Duration) bool {
	_ = c.Conn.SetReadDeadline(time.Now().Add(timeout))
	defer c.Conn.SetReadDeadline(time.Time{})
	buf := make([]byte, 64)
	for {
		_, err := c.r.Read(buf)
		if err == nil {
			continue
		}
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
}

// Close closes the connection.
func (c *Client) Close() error { return c.Conn.Close() }
