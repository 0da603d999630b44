package wsrep

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/wsrep/wsreptest"
)

// mariadbGreeting is the first packet MariaDB 10.11.19 sent in the sandbox.
const mariadbGreeting = "d\x00\x00\x00\n5.5.5-10.11.19-MariaDB-0+deb12u1\x00\x14\x00\x00\x00ToT8W0's\x00\xfe\xf7\b\x02\x00\xff\x81\x15\x00\x00\x00\x00\x00\x00\x1d\x00\x00\x00.,.DL3U7Nd.V\x00mysql_native_password\x00"

// hostBlocked is the error packet MariaDB sends to a host over
// max_connect_errors.
var hostBlocked = packet(0, append([]byte{0xff, 0x69, 0x04}, "Host '198.18.0.101' is blocked because of many connection errors; unblock with 'mariadb-admin flush-hosts'"...))

func packet(seq byte, body []byte) []byte {
	n := len(body)
	return append([]byte{byte(n), byte(n >> 8), byte(n >> 16), seq}, body...)
}

func TestReadGreeting(t *testing.T) {
	v10 := []byte(mariadbGreeting)[4:]
	tests := []struct {
		name        string
		in          []byte
		wantVersion string
		wantCode    uint16 // a *GreetingError with this code
		notMySQL    bool   // wraps ErrNotMySQL
	}{
		{name: "mariadb 10.11", in: []byte(mariadbGreeting), wantVersion: "5.5.5-10.11.19-MariaDB-0+deb12u1"},
		{name: "host blocked", in: hostBlocked, wantCode: 1129},
		{name: "too many connections with sqlstate", in: packet(0, append([]byte{0xff, 0x10, 0x04}, "#08004Too many connections"...)), wantCode: 1040},
		{name: "http", in: []byte("HTTP/1.1 400 Bad Request\r\n\r\n"), notMySQL: true},
		{name: "ssh banner", in: []byte("SSH-2.0-OpenSSH_9.2p1\r\n"), notMySQL: true},
		{name: "protocol 9", in: packet(0, append([]byte{9}, v10[1:]...)), notMySQL: true},
		{name: "sequence 1", in: packet(1, v10), notMySQL: true},
		{name: "empty packet", in: packet(0, nil), notMySQL: true},
		{name: "truncated packet", in: []byte(mariadbGreeting)[:40], notMySQL: true},
		{name: "short header", in: []byte{0x64, 0}, notMySQL: true},
		{name: "no version terminator", in: packet(0, []byte("\n5.5.5-10.11")), notMySQL: true},
		{name: "empty version", in: packet(0, append([]byte{10, 0}, make([]byte, 20)...)), notMySQL: true},
		{name: "binary version", in: packet(0, append([]byte{10, 1, 2, 0}, make([]byte, 20)...)), notMySQL: true},
		{name: "greeting cut after version", in: packet(0, []byte("\n10.11\x00\x01\x02")), notMySQL: true},
		{name: "error packet too short", in: packet(0, []byte{0xff, 1}), notMySQL: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := ReadGreeting(bytes.NewReader(tc.in))
			var ge *GreetingError
			switch {
			case tc.wantVersion != "":
				if err != nil || v != tc.wantVersion {
					t.Errorf("ReadGreeting = %q, %v; want %q", v, err, tc.wantVersion)
				}
			case tc.wantCode != 0:
				if !errors.As(err, &ge) || ge.Code != tc.wantCode || ge.Message == "" || ge.Message[0] == '#' {
					t.Errorf("ReadGreeting error %v (%+v), want a GreetingError %d with a message", err, ge, tc.wantCode)
				}
			case tc.notMySQL:
				if !errors.Is(err, ErrNotMySQL) {
					t.Errorf("ReadGreeting = %q, %v; want ErrNotMySQL", v, err)
				}
			}
		})
	}
	t.Run("closed without a word", func(t *testing.T) {
		_, err := ReadGreeting(bytes.NewReader(nil))
		if !errors.Is(err, io.EOF) || errors.Is(err, ErrNotMySQL) {
			t.Errorf("ReadGreeting on EOF = %v, want io.EOF, not ErrNotMySQL", err)
		}
	})
}

// fakePort listens on 127.0.0.1 and, for each connection, writes greeting
// (when not nil) and holds the connection until the client closes it or
// the test ends.
func fakePort(t *testing.T, greeting []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() {
				defer c.Close()
				if greeting != nil {
					_, _ = c.Write(greeting)
				}
				_, _ = io.Copy(io.Discard, c)
			})
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func TestProbe(t *testing.T) {
	live := wsreptest.Start(t)
	targets := []Target{
		{Node: "live", Addr: live.Addr()},
		{Node: "mariadb", Addr: fakePort(t, []byte(mariadbGreeting))},
		{Node: "closed", Addr: closedPort(t)},
		{Node: "garbage", Addr: fakePort(t, []byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))},
		{Node: "silent", Addr: fakePort(t, nil)},
		{Node: "blocked", Addr: fakePort(t, hostBlocked)},
	}
	want := map[cluster.NodeName]bool{"live": true, "mariadb": true, "closed": false, "garbage": false, "silent": false, "blocked": true}
	wantErr := map[cluster.NodeName]bool{"closed": true, "garbage": true, "silent": true, "blocked": true}

	const timeout = 300 * time.Millisecond
	p, err := NewProber(ProberConfig{Targets: targets, Timeout: timeout}, ProberDeps{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res := p.Probe(context.Background())
	elapsed := time.Since(start)
	if len(res) != len(targets) {
		t.Fatalf("%d results for %d targets", len(res), len(targets))
	}
	for i, r := range res {
		if r.Node != targets[i].Node {
			t.Errorf("result %d is for %s, want %s (target order)", i, r.Node, targets[i].Node)
		}
		if r.Reachable != want[r.Node] || (r.Error != "") != wantErr[r.Node] {
			t.Errorf("%s: %+v, want reachable %v, error %v", r.Node, r, want[r.Node], wantErr[r.Node])
		}
	}
	// The silent target costs one timeout; probes run in parallel.
	if elapsed < timeout || elapsed > 2*timeout {
		t.Errorf("Probe took %s, want about one timeout (%s)", elapsed, timeout)
	}

	// The reasons, as errors.
	for _, tc := range []struct {
		node  cluster.NodeName
		check func(error) bool
	}{
		{"garbage", func(err error) bool { return errors.Is(err, ErrNotMySQL) }},
		{"silent", func(err error) bool { return errors.Is(err, context.DeadlineExceeded) || isTimeout(err) }},
		{"blocked", func(err error) bool { var ge *GreetingError; return errors.As(err, &ge) && ge.Code == 1129 }},
		{"closed", func(err error) bool { var oe *net.OpError; return errors.As(err, &oe) && oe.Op == "dial" }},
	} {
		for _, tg := range targets {
			if tg.Node == tc.node {
				if err := p.probe(context.Background(), tg); !tc.check(err) {
					t.Errorf("probe %s: %v: wrong kind of error", tc.node, err)
				}
			}
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestProbeCustomDialerAndCancel(t *testing.T) {
	addr := fakePort(t, nil) // never greets
	var dials atomic.Int64
	dial := func(ctx context.Context, network, a string) (net.Conn, error) {
		dials.Add(1)
		if network != "tcp" || a != addr {
			t.Errorf("dial %s %s, want tcp %s", network, a, addr)
		}
		var d net.Dialer
		return d.DialContext(ctx, network, a)
	}
	p, err := NewProber(ProberConfig{Targets: []Target{{Node: "db1", Addr: addr}}, Timeout: time.Minute}, ProberDeps{Dial: dial})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	res := p.Probe(ctx)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Probe took %s after its context ended at 100ms", d)
	}
	if dials.Load() != 1 {
		t.Errorf("custom dialer called %d times, want 1", dials.Load())
	}
	if len(res) != 1 || res[0].Reachable || res[0].Error == "" {
		t.Errorf("Probe = %+v, want db1 unreachable with an error", res)
	}
}

func TestProberConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  ProberConfig
		n    int
	}{
		{"empty is fine", ProberConfig{}, 0},
		{"good", ProberConfig{Targets: []Target{{"db1", "198.18.0.11:3306"}, {"db2", "[::1]:3306"}}}, 0},
		{"bad", ProberConfig{Targets: []Target{{"", "198.18.0.11:3306"}, {"db2", "x"}, {"db2", "y:1"}}, Timeout: -1}, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			n := 0
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				n = len(j.Unwrap())
			}
			if n != tc.n || (tc.n > 0) != errors.Is(err, ErrInvalidConfig) {
				t.Errorf("Validate = %v (%d problems), want %d wrapping ErrInvalidConfig", err, n, tc.n)
			}
			if _, err := NewProber(tc.cfg, ProberDeps{}); (err != nil) != (tc.n > 0) {
				t.Errorf("NewProber error %v, want error %v", err, tc.n > 0)
			}
		})
	}
}
