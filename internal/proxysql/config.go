package proxysql

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/dbha/dbha/internal/cluster"
)

// Defaults. docs/proxysql.md documents them.
const (
	DefaultAddr            = "127.0.0.1:6032"
	DefaultWriterHostgroup = 10
	DefaultReaderHostgroup = 20
	DefaultConnectTimeout  = 2 * time.Second
	DefaultQueryTimeout    = 5 * time.Second
	DefaultApplyTimeout    = 15 * time.Second
	DefaultWeight          = 1
	DefaultMaxConnections  = 1000
)

// ServerOptions are the mysql_servers columns dbha writes for every row it
// owns. dbha owns its hostgroups completely: a hand edit of these columns
// in dbha's hostgroups is reverted at the next apply.
type ServerOptions struct {
	Weight         int // 0..10000000, default 1
	MaxConnections int // ≥0, default 1000
	UseSSL         bool
	Compression    bool
	MaxLatencyMs   int // ≥0, 0 = off
}

// Config configures the ProxySQL driver of one proxy agent.
type Config struct {
	// Node is the proxy agent's node name; it only labels errors and logs.
	Node cluster.NodeName
	// Addr is the admin interface, host:port (default 127.0.0.1:6032).
	Addr string
	// User and Password are the admin credentials. The caller loads them,
	// e.g. with config.LoadCredentials; they are never logged.
	User     string
	Password string
	// WriterHostgroup and ReaderHostgroup are the hostgroups dbha owns
	// (defaults 10 and 20). Rows of every other hostgroup are never touched.
	WriterHostgroup int
	ReaderHostgroup int
	// ConnectTimeout bounds the TCP connect and handshake.
	ConnectTimeout time.Duration
	// QueryTimeout bounds each read and write on the admin connection.
	QueryTimeout time.Duration
	// ApplyTimeout bounds a whole Apply, Check or Observe.
	ApplyTimeout time.Duration
	// Server holds the columns written for each row.
	Server ServerOptions
}

// DefaultConfig returns a Config with every default filled in and no
// credentials.
func DefaultConfig() Config {
	return Config{
		Addr:            DefaultAddr,
		WriterHostgroup: DefaultWriterHostgroup,
		ReaderHostgroup: DefaultReaderHostgroup,
		ConnectTimeout:  DefaultConnectTimeout,
		QueryTimeout:    DefaultQueryTimeout,
		ApplyTimeout:    DefaultApplyTimeout,
		Server:          ServerOptions{Weight: DefaultWeight, MaxConnections: DefaultMaxConnections},
	}
}

// WithDefaults returns c with zero fields replaced by their defaults. A
// hostgroup of 0 counts as unset: ProxySQL's hostgroup 0 is where unknown
// values land (reference 2.2), so dbha does not use it. A weight of 0 and
// max_connections of 0 count as unset too (both would route nothing).
func (c Config) WithDefaults() Config {
	d := DefaultConfig()
	if c.Addr == "" {
		c.Addr = d.Addr
	}
	if c.WriterHostgroup == 0 {
		c.WriterHostgroup = d.WriterHostgroup
	}
	if c.ReaderHostgroup == 0 {
		c.ReaderHostgroup = d.ReaderHostgroup
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = d.ConnectTimeout
	}
	if c.QueryTimeout == 0 {
		c.QueryTimeout = d.QueryTimeout
	}
	if c.ApplyTimeout == 0 {
		c.ApplyTimeout = d.ApplyTimeout
	}
	if c.Server.Weight == 0 {
		c.Server.Weight = d.Server.Weight
	}
	if c.Server.MaxConnections == 0 {
		c.Server.MaxConnections = d.Server.MaxConnections
	}
	return c
}

// Validate reports every problem of c at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if host, port, err := net.SplitHostPort(c.Addr); err != nil {
		bad("admin_addr %q: %v", c.Addr, err)
	} else if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 || host == "" {
		bad("admin_addr %q: want host:port with a port in 1..65535", c.Addr)
	}
	if c.User == "" {
		bad("admin user is empty (load it from the credentials file)")
	}
	if c.WriterHostgroup <= 0 {
		bad("writer_hostgroup %d: must be positive", c.WriterHostgroup)
	}
	if c.ReaderHostgroup <= 0 {
		bad("reader_hostgroup %d: must be positive", c.ReaderHostgroup)
	}
	if c.WriterHostgroup == c.ReaderHostgroup {
		bad("writer_hostgroup and reader_hostgroup are both %d: they must differ", c.WriterHostgroup)
	}
	for name, d := range map[string]time.Duration{"connect_timeout": c.ConnectTimeout, "query_timeout": c.QueryTimeout, "apply_timeout": c.ApplyTimeout} {
		if d <= 0 {
			bad("%s %v: must be positive", name, d)
		}
	}
	// Ranges from the mysql_servers CHECK constraints (reference 1.1).
	if c.Server.Weight < 0 || c.Server.Weight > 10000000 {
		bad("server.weight %d: must be in 0..10000000", c.Server.Weight)
	}
	if c.Server.MaxConnections < 0 {
		bad("server.max_connections %d: must not be negative", c.Server.MaxConnections)
	}
	if c.Server.MaxLatencyMs < 0 {
		bad("server.max_latency_ms %d: must not be negative", c.Server.MaxLatencyMs)
	}
	if len(errs) > 0 {
		return fmt.Errorf("proxysql config: %w", errors.Join(errs...))
	}
	return nil
}
