package haproxy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"time"
)

// runtimeAPI talks to HAProxy's Runtime API: one command per connection.
// HAProxy runs the line, writes its answer and closes the connection, so
// the answer is everything read up to EOF. That costs a connect per
// command (well under a millisecond on a unix socket) and never leaves a
// session half-read after a timeout, unlike "prompt" mode.
type runtimeAPI struct {
	proxy          string
	socket         string
	dialTimeout    time.Duration
	commandTimeout time.Duration
	counts         *counters
}

// counters counts commands sent, by kind. Tests use them to prove that an
// Apply on a matching state sends no state-changing command.
type counters struct {
	set, shutdown, show atomic.Uint64
}

// CommandCounts is how many Runtime API commands a Driver has sent.
type CommandCounts struct {
	Set      uint64 // "set server ... state ..."
	Shutdown uint64 // "shutdown sessions server ..."
	Show     uint64 // read-only "show ..." commands
}

// maxResponse bounds one answer. "show stat" for a few dozen servers is a
// few kilobytes.
const maxResponse = 8 << 20

// exec sends one command and returns HAProxy's raw answer. Only socket
// failures are errors here; callers judge the text.
func (a *runtimeAPI) exec(ctx context.Context, cmd string) (string, error) {
	switch {
	case strings.HasPrefix(cmd, "set "):
		a.counts.set.Add(1)
	case strings.HasPrefix(cmd, "shutdown "):
		a.counts.shutdown.Add(1)
	default:
		a.counts.show.Add(1)
	}
	fail := func(err error) (string, error) {
		return "", &SocketError{Proxy: a.proxy, Socket: a.socket, Command: cmd, Err: err}
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	d := net.Dialer{Timeout: a.dialTimeout}
	conn, err := d.DialContext(ctx, "unix", a.socket)
	if err != nil {
		return fail(err)
	}
	defer conn.Close()
	deadline := time.Now().Add(a.commandTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return fail(err)
	}
	// Abort the exchange when ctx ends before the deadline does.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if _, err := io.WriteString(conn, cmd+"\n"); err != nil {
		return fail(err)
	}
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(conn, maxResponse+1))
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return fail(err)
	}
	if n > maxResponse {
		return fail(fmt.Errorf("answer longer than %d bytes", maxResponse))
	}
	return buf.String(), nil
}

// errorTexts maps HAProxy 2.x CLI error answers to sentinels.
var errorTexts = []struct {
	prefix string
	err    error
}{
	{"No such backend.", ErrNoSuchBackend},
	{"Can't find backend.", ErrNoSuchBackend},
	{"No such server.", ErrNoSuchServer},
	{"Permission denied", ErrPermissionDenied},
}

// classify turns an error answer into a *CommandError.
func (a *runtimeAPI) classify(cmd, backend, server, answer string) error {
	text := strings.TrimSpace(answer)
	sentinel := ErrCommand
	for _, et := range errorTexts {
		if strings.HasPrefix(text, et.prefix) {
			sentinel = et.err
			break
		}
	}
	if len(text) > 200 {
		text = text[:200] + "..."
	}
	return &CommandError{Proxy: a.proxy, Command: cmd, Backend: backend, Server: server, Response: text, Err: sentinel}
}

// action runs a state-changing command on backend/server. HAProxy answers
// those with nothing on success; any text is an error.
func (a *runtimeAPI) action(ctx context.Context, cmd, backend, server string) error {
	answer, err := a.exec(ctx, cmd)
	if err != nil {
		return err
	}
	if strings.TrimSpace(answer) != "" {
		return a.classify(cmd, backend, server, answer)
	}
	return nil
}
