//go:build linux

package vip

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// GuardStartTimeout bounds how long StartGuard waits for "ready".
const GuardStartTimeout = 2 * time.Second

// guardExitTimeout bounds how long Close waits for the guard to exit.
const guardExitTimeout = 5 * time.Second

// guardWriteTimeout bounds one order. A guard that does not read its
// orders for this long is stuck (stopped, or the host is starved), and is
// killed: the agent then treats it as gone and lets go of the VIP.
const guardWriteTimeout = time.Second

// monotonic is CLOCK_MONOTONIC, which both processes share (Go's own
// monotonic readings are not comparable across processes).
func monotonic() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(fmt.Sprintf("clock_gettime(CLOCK_MONOTONIC): %v", err)) // cannot fail on Linux
	}
	return time.Duration(ts.Nano())
}

// Guard is the agent's handle on its running VIP guard child. Its methods
// are safe for concurrent use. A nil *Guard does nothing.
type Guard struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the child has exited
	err  error         // the child's exit status, after done

	mu     sync.Mutex
	w      *os.File // the child's stdin; nil after Close
	broken error    // first write error
}

// StartGuard starts argv (the agent's own binary and GuardCommand) with
// GuardArgs(cfg, logFormat) appended, and waits until the guard is ready:
// it has checked its capabilities and the interface, and can remove the
// address. The child's stderr (its log) goes to logOut.
func StartGuard(argv []string, cfg Config, logFormat string, logOut io.Writer) (*Guard, error) {
	if len(argv) == 0 {
		return nil, errors.New("start vip guard: no command")
	}
	args := append(argv[1:len(argv):len(argv)], GuardArgs(cfg, logFormat)...)
	cmd := exec.Command(argv[0], args...)
	if argv[0] == SelfExe {
		// Show the binary's name in ps, not /proc/self/exe.
		if p, err := os.Executable(); err == nil {
			cmd.Args[0] = p
		}
	}
	cmd.Stderr = logOut
	// Its own process group: a Ctrl-C meant for the agent must not reach
	// the guard before the agent has had its say (on_stop).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Our own pipes (not cmd.StdinPipe/StdoutPipe): the orders pipe needs
	// write deadlines, and the ready pipe is read while Wait runs.
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("start vip guard: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		_, _ = inR.Close(), inW.Close()
		return nil, fmt.Errorf("start vip guard: %w", err)
	}
	cmd.Stdin, cmd.Stdout = inR, outW
	err = cmd.Start()
	_, _ = inR.Close(), outW.Close() // the child's ends
	if err != nil {
		_, _ = inW.Close(), outR.Close()
		return nil, fmt.Errorf("start vip guard %s: %w", argv[0], err)
	}
	g := &Guard{cmd: cmd, w: inW, done: make(chan struct{})}
	ready := make(chan error, 1)
	go func() {
		defer outR.Close()
		line, err := bufio.NewReader(outR).ReadString('\n')
		switch {
		case strings.TrimSpace(line) == guardReady:
			ready <- nil
		case err != nil:
			ready <- fmt.Errorf("guard exited before it was ready: %w", err)
		default:
			ready <- fmt.Errorf("guard said %q, want %q", strings.TrimSpace(line), guardReady)
		}
	}()
	go func() {
		g.err = cmd.Wait()
		close(g.done)
	}()
	select {
	case err = <-ready:
	case <-time.After(GuardStartTimeout):
		err = fmt.Errorf("guard not ready after %s", GuardStartTimeout)
	}
	if err != nil {
		_ = cmd.Process.Kill()
		<-g.done
		_ = inW.Close()
		return nil, fmt.Errorf("start vip guard: %w (exit: %v)", err, g.err)
	}
	return g, nil
}

// PID is the guard's process id.
func (g *Guard) PID() int {
	if g == nil {
		return 0
	}
	return g.cmd.Process.Pid
}

// Hold tells the guard that the address may stay for left from now and
// must go then unless a later Hold arrives. Call it before every
// Ensure(true) that renews the address, with the time left on the lease.
func (g *Guard) Hold(left time.Duration) error {
	return g.send(fmt.Sprintf("%s %d", guardHold, int64(monotonic()+left)))
}

// None tells the guard that the agent does not hold the address.
func (g *Guard) None() error { return g.send(guardNone) }

// Retain tells the guard to leave the address when the agent exits
// (vip.on_stop: retain). The kernel lifetime still ends it.
func (g *Guard) Retain() error { return g.send(guardRetain) }

func (g *Guard) send(msg string) error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.broken != nil {
		return g.broken
	}
	if g.w == nil {
		return errors.New("vip guard: closed")
	}
	_ = g.w.SetWriteDeadline(time.Now().Add(guardWriteTimeout))
	if _, err := io.WriteString(g.w, msg+"\n"); err != nil {
		g.broken = fmt.Errorf("vip guard (pid %d) is gone or stuck: %w", g.PID(), err)
		// A stuck guard must not look alive: the agent would keep the
		// VIP with nobody to remove it.
		_ = g.cmd.Process.Kill()
		return g.broken
	}
	return nil
}

// Done is closed when the guard process has exited.
func (g *Guard) Done() <-chan struct{} {
	if g == nil {
		return nil
	}
	return g.done
}

// Alive reports whether the guard process is still running and taking
// orders.
func (g *Guard) Alive() bool {
	if g == nil {
		return false
	}
	select {
	case <-g.done:
		return false
	default:
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.broken == nil
}

// Close closes the guard's stdin, which makes it remove the address
// (unless Retain was sent) and exit, and waits for that.
func (g *Guard) Close() error {
	if g == nil {
		return nil
	}
	g.mu.Lock()
	if g.w != nil {
		_ = g.w.Close()
		g.w = nil
	}
	g.mu.Unlock()
	select {
	case <-g.done:
	case <-time.After(guardExitTimeout):
		_ = g.cmd.Process.Kill()
		<-g.done
		return fmt.Errorf("vip guard (pid %d) did not exit within %s; killed", g.PID(), guardExitTimeout)
	}
	if g.err != nil {
		return fmt.Errorf("vip guard (pid %d): %w", g.PID(), g.err)
	}
	return nil
}

// RunGuard is the guard process's main loop (see GuardCommand). It reads
// orders from in until EOF, removes the address when a hold deadline
// passes, and on EOF removes it unless told to retain. It says "ready" on
// out once it can act: it has the capabilities and the interface exists.
func RunGuard(ctx context.Context, cfg Config, in io.Reader, out io.Writer, logger *slog.Logger) error {
	// The agent decides what a stop means (vip.on_stop); the guard acts
	// on the agent's exit, which it sees as EOF. Being in a background
	// process group, it must not stop on terminal I/O either, and a gone
	// log reader must not kill it.
	signal.Ignore(os.Interrupt, syscall.SIGTERM, syscall.SIGHUP,
		syscall.SIGTTOU, syscall.SIGTTIN, syscall.SIGTSTP, syscall.SIGPIPE)
	v, err := New(cfg, logger)
	if err != nil {
		return err
	}
	defer v.Close()
	if err := v.Check(); err != nil {
		return fmt.Errorf("vip guard: %w", err)
	}
	log := logger.With("vip", cfg.Address.String(), "interface", cfg.Interface)
	type order struct {
		word     string
		deadline time.Duration
		err      error
	}
	// latest is the newest hold deadline read from the pipe (0: none). The
	// reader stores it before it queues the order, so an expiry that races
	// with a newer hold can see it (see the timer case below).
	var latest atomic.Int64
	orders := make(chan order)
	go func() {
		defer close(orders)
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			o := order{}
			switch {
			case len(f) == 2 && f[0] == guardHold:
				ns, err := strconv.ParseInt(f[1], 10, 64)
				if err != nil || ns <= 0 {
					o.err = fmt.Errorf("bad order %q", sc.Text())
					latest.Store(0)
				} else {
					latest.Store(ns)
				}
				o.word, o.deadline = guardHold, time.Duration(ns)
			case len(f) == 1 && (f[0] == guardNone || f[0] == guardRetain):
				o.word = f[0]
				if f[0] == guardNone {
					latest.Store(0)
				}
			default:
				o.err = fmt.Errorf("unknown order %q", sc.Text())
				latest.Store(0)
			}
			select {
			case orders <- o:
			case <-ctx.Done():
				return
			}
		}
	}()
	if _, err := fmt.Fprintln(out, guardReady); err != nil {
		return fmt.Errorf("vip guard: say ready: %w", err)
	}
	log.Info("vip guard watching", "agent_pid", os.Getppid())

	remove := func(why string) {
		held, err := v.Held()
		if err == nil && !held {
			return
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if err := v.Ensure(rctx, false); err != nil {
			log.Error("vip guard could not remove the address", "why", why, "err", err)
			return
		}
		log.Warn("vip guard removed the address", "why", why)
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	retain := false
	for {
		select {
		case o, ok := <-orders:
			if !ok {
				if retain {
					log.Info("agent exited; address retained (vip.on_stop=retain)")
					return nil
				}
				remove("the agent exited")
				return nil
			}
			switch {
			case o.err != nil:
				// Bad orders mean a confused agent: fail safe.
				log.Error("vip guard", "err", o.err)
				timer.Stop()
				remove("bad order from the agent")
			case o.word == guardHold:
				timer.Reset(o.deadline - monotonic())
			case o.word == guardNone:
				timer.Stop()
			case o.word == guardRetain:
				retain = true
			}
		case <-timer.C:
			// A newer hold may have been read but not yet taken from
			// the channel (select picks at random among ready cases).
			if d := time.Duration(latest.Load()); d > monotonic() {
				timer.Reset(d - monotonic())
				continue
			}
			remove("the lease ran out without a renewal from the agent")
		case <-ctx.Done():
			return nil
		}
	}
}
