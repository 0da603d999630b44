package wsrep

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
	"unicode"

	"github.com/dbha/dbha/internal/cluster"
)

// ErrNotMySQL means the port accepted a TCP connection but what it sent
// first is not a MySQL server greeting.
var ErrNotMySQL = errors.New("not a mysql server greeting")

// GreetingError is a MySQL error packet sent instead of the greeting, such
// as 1129 "Host ... is blocked" or 1040 "Too many connections". The server
// is up and speaking MySQL, so the node counts as reachable.
type GreetingError struct {
	Code    uint16
	Message string
}

func (e *GreetingError) Error() string {
	return fmt.Sprintf("mysql error %d before handshake: %s", e.Code, e.Message)
}

// maxGreeting bounds the greeting payload we accept. Real greetings are
// about 100 bytes; anything near this is some other protocol.
const maxGreeting = 4096

// Target is one DB node to probe.
type Target struct {
	Node cluster.NodeName
	Addr string // host:port of its MySQL port
}

// ProberConfig lists the DB nodes a proxy agent probes.
type ProberConfig struct {
	Targets []Target
	// Timeout bounds each probe (connect and greeting); default 500 ms.
	Timeout time.Duration
}

// Validate lists every problem of the config at once.
func (c ProberConfig) Validate() error {
	var errs []error
	seen := map[cluster.NodeName]bool{}
	for i, t := range c.Targets {
		if t.Node == "" {
			errs = append(errs, fmt.Errorf("%w: wsrep prober: target %d: empty node name", ErrInvalidConfig, i))
		} else if seen[t.Node] {
			errs = append(errs, fmt.Errorf("%w: wsrep prober: node %s listed twice", ErrInvalidConfig, t.Node))
		}
		seen[t.Node] = true
		if _, _, err := net.SplitHostPort(t.Addr); err != nil {
			errs = append(errs, fmt.Errorf("%w: wsrep prober: node %s: addr %q: want host:port: %v", ErrInvalidConfig, t.Node, t.Addr, err))
		}
	}
	if c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("%w: wsrep prober: negative timeout %s", ErrInvalidConfig, c.Timeout))
	}
	return errors.Join(errs...)
}

// ProberDeps are the prober's collaborators; both are optional.
type ProberDeps struct {
	Logger *slog.Logger // default: discard
	Dial   DialFunc     // default: net.Dialer
}

// Prober checks, from where it runs, that each DB node's MySQL port answers
// with a MySQL greeting. It never logs in.
//
// A probe opens TCP, reads the greeting and closes. The server counts that
// as an aborted connect (Aborted_connects_preauth); it does not block the
// prober's host as long as mariadbd runs with skip-name-resolve, since the
// host cache that enforces max_connect_errors is then unused (checked on
// MariaDB 10.11). Without skip-name-resolve, raise max_connect_errors.
type Prober struct {
	targets []Target
	timeout time.Duration
	log     *slog.Logger
	dial    DialFunc
}

// NewProber checks cfg and returns a prober.
func NewProber(cfg ProberConfig, deps ProberDeps) (*Prober, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Prober{targets: append([]Target(nil), cfg.Targets...), timeout: cfg.Timeout, log: deps.Logger, dial: deps.Dial}
	if p.timeout == 0 {
		p.timeout = DefaultProbeTimeout
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.dial == nil {
		var d net.Dialer
		p.dial = d.DialContext
	}
	return p, nil
}

// Probe probes every target in parallel and returns one result per target,
// in the configured order. It returns within about one Timeout.
func (p *Prober) Probe(ctx context.Context) []cluster.ProbeResult {
	out := make([]cluster.ProbeResult, len(p.targets))
	var wg sync.WaitGroup
	for i, t := range p.targets {
		wg.Go(func() {
			err := p.probe(ctx, t)
			r := cluster.ProbeResult{Node: t.Node, Reachable: err == nil}
			var ge *GreetingError
			if errors.As(err, &ge) {
				r.Reachable = true
			}
			if err != nil {
				r.Error = err.Error()
				p.log.Debug("mysql probe", "node", string(t.Node), "addr", t.Addr, "reachable", r.Reachable, "error", r.Error)
			}
			out[i] = r
		})
	}
	wg.Wait()
	return out
}

// probe connects to one target and reads its greeting. It returns nil for
// a protocol-10 greeting, a *GreetingError for an error packet, and any
// other error when the node is unreachable from here.
func (p *Prober) probe(ctx context.Context, t Target) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	conn, err := p.dial(ctx, "tcp", t.Addr)
	if err != nil {
		return fmt.Errorf("probe %s at %s: %w", t.Node, t.Addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(dl); err != nil {
			return fmt.Errorf("probe %s at %s: %w", t.Node, t.Addr, err)
		}
	}
	// Close the connection when ctx is cancelled early, so the read
	// returns at once.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := ReadGreeting(conn); err != nil {
		return fmt.Errorf("probe %s at %s: %w", t.Node, t.Addr, err)
	}
	return nil
}

// ReadGreeting reads the first packet a MySQL server sends and returns the
// server version from a protocol-10 handshake. An error packet comes back
// as a *GreetingError; anything else that is not a greeting wraps
// ErrNotMySQL.
func ReadGreeting(r io.Reader) (version string, err error) {
	var hdr [4]byte
	if n, err := io.ReadFull(r, hdr[:]); err != nil {
		if n > 0 || errors.Is(err, io.ErrUnexpectedEOF) {
			return "", fmt.Errorf("%w: %d-byte answer", ErrNotMySQL, n)
		}
		if errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read greeting: connection closed without a greeting: %w", err)
		}
		return "", fmt.Errorf("read greeting: no greeting: %w", err)
	}
	size := int(hdr[0]) | int(hdr[1])<<8 | int(hdr[2])<<16
	if hdr[3] != 0 || size == 0 || size > maxGreeting {
		return "", fmt.Errorf("%w: header % x (length %d, sequence %d)", ErrNotMySQL, hdr, size, hdr[3])
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(r, body); err != nil {
		return "", fmt.Errorf("%w: truncated %d-byte packet: %v", ErrNotMySQL, size, err)
	}
	switch body[0] {
	case 10:
		return parseHandshakeV10(body)
	case 0xff:
		return "", parseErrorPacket(body)
	default:
		return "", fmt.Errorf("%w: protocol version byte 0x%02x, want 10", ErrNotMySQL, body[0])
	}
}

// parseHandshakeV10 checks the fixed part of a protocol-10 handshake:
// version string, NUL, connection id (4), auth data (8), filler (1) and
// capability flags (2).
func parseHandshakeV10(body []byte) (string, error) {
	end := bytes.IndexByte(body[1:], 0)
	if end <= 0 {
		return "", fmt.Errorf("%w: protocol 10 without a server version", ErrNotMySQL)
	}
	version := string(body[1 : 1+end])
	for _, r := range version {
		if r > unicode.MaxASCII || !unicode.IsPrint(r) {
			return "", fmt.Errorf("%w: server version %q is not printable", ErrNotMySQL, version)
		}
	}
	if rest := len(body) - (1 + end + 1); rest < 4+8+1+2 {
		return "", fmt.Errorf("%w: protocol 10 greeting too short (%d bytes after the version)", ErrNotMySQL, rest)
	}
	return version, nil
}

// parseErrorPacket reads 0xff, a 2-byte code and a message that may start
// with '#' and a 5-character SQL state.
func parseErrorPacket(body []byte) error {
	if len(body) < 3 {
		return fmt.Errorf("%w: %d-byte error packet", ErrNotMySQL, len(body))
	}
	e := &GreetingError{Code: binary.LittleEndian.Uint16(body[1:3])}
	msg := body[3:]
	if len(msg) >= 6 && msg[0] == '#' {
		msg = msg[6:]
	}
	e.Message = string(bytes.ToValidUTF8(msg, []byte("?")))
	return e
}
