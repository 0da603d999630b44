package wsrep

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/dbha/dbha/internal/cluster"
)

// Defaults for PollerConfig and ProberConfig.
const (
	DefaultInterval     = 250 * time.Millisecond
	DefaultTimeout      = time.Second
	DefaultProbeTimeout = 500 * time.Millisecond
)

// ErrInvalidConfig wraps every problem Validate finds.
var ErrInvalidConfig = errors.New("invalid config")

// ErrAlreadyRunning is returned by Run when the poller is already running.
var ErrAlreadyRunning = errors.New("poller already running")

// DialFunc opens a network connection. It suits net.Dialer.DialContext and
// sandbox.DialContextIn (a dial from inside a network namespace).
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// PollerConfig says which mariadbd to poll and how often.
type PollerConfig struct {
	// Node is the name observations carry.
	Node cluster.NodeName
	// Net is "tcp" (the default) or "unix"; Addr is host:port or the
	// socket path.
	Net  string
	Addr string
	// User and Password log in. The user needs no privilege beyond
	// USAGE to read global status and these variables. Password is never
	// logged.
	User     string
	Password string `json:"-"`
	// Interval between poll starts; default 250 ms.
	Interval time.Duration
	// Timeout bounds one poll (connect, both queries); default 1 s. Polls
	// never overlap: a slow poll delays the next one instead, so against
	// a hung server the streak rises once per Timeout, not per Interval.
	Timeout time.Duration
}

// WithDefaults fills unset fields with their defaults.
func (c PollerConfig) WithDefaults() PollerConfig {
	if c.Net == "" {
		c.Net = "tcp"
	}
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// Validate lists every problem of the config (after defaults) at once.
func (c PollerConfig) Validate() error {
	c = c.WithDefaults()
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: wsrep poller: %s", ErrInvalidConfig, fmt.Sprintf(format, args...)))
	}
	if c.Node == "" {
		bad("empty node name")
	}
	switch c.Net {
	case "tcp", "tcp4", "tcp6":
		if _, _, err := net.SplitHostPort(c.Addr); err != nil {
			bad("addr %q: want host:port: %v", c.Addr, err)
		}
	case "unix":
		if c.Addr == "" {
			bad("empty unix socket path")
		}
	default:
		bad("net %q: want tcp or unix", c.Net)
	}
	if c.User == "" {
		bad("empty user")
	}
	if c.Interval < 0 {
		bad("negative interval %s", c.Interval)
	}
	if c.Timeout < 0 {
		bad("negative timeout %s", c.Timeout)
	}
	return errors.Join(errs...)
}

// LogValue logs the config without the password.
func (c PollerConfig) LogValue() slog.Value {
	return slog.GroupValue(slog.String("node", string(c.Node)), slog.String("net", c.Net), slog.String("addr", c.Addr),
		slog.String("user", c.User), slog.Duration("interval", c.Interval), slog.Duration("timeout", c.Timeout))
}

// String prints the config without the password.
func (c PollerConfig) String() string {
	return fmt.Sprintf("wsrep poller %s at %s/%s as %s every %s (timeout %s)", c.Node, c.Net, c.Addr, c.User, c.Interval, c.Timeout)
}

// PollerDeps are the poller's collaborators; all are optional.
type PollerDeps struct {
	Logger *slog.Logger     // default: discard
	Now    func() time.Time // stamps observations; default time.Now
	Dial   DialFunc         // default: net.Dialer
}

// Poller polls one mariadbd and reports an Observation per poll.
type Poller struct {
	cfg     PollerConfig
	log     *slog.Logger
	now     func() time.Time
	dial    DialFunc
	running atomic.Bool

	mu     sync.Mutex
	latest cluster.Observation
	have   bool
}

// NewPoller checks cfg and returns a poller. Nothing connects until Run.
func NewPoller(cfg PollerConfig, deps PollerDeps) (*Poller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Poller{cfg: cfg.WithDefaults(), log: deps.Logger, now: deps.Now, dial: deps.Dial}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	p.log = p.log.With("node", string(cfg.Node))
	return p, nil
}

// Latest returns the last observation and whether there is one yet.
func (p *Poller) Latest() (cluster.Observation, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.latest, p.have
}

// Run polls until ctx is done, then closes its connections and returns nil.
// It polls at once, then every Interval, one poll at a time, and calls out
// (when not nil) with each observation from its own goroutine: out should
// not block for long, since it delays the next poll. A poll cut short by
// ctx is not reported. Connections are reopened as needed, so a restarted
// mariadbd is picked up by the next poll.
func (p *Poller) Run(ctx context.Context, out func(cluster.Observation)) error {
	if !p.running.CompareAndSwap(false, true) {
		return fmt.Errorf("wsrep poller on %s: %w", p.cfg.Node, ErrAlreadyRunning)
	}
	defer p.running.Store(false)
	db, err := p.open()
	if err != nil {
		return fmt.Errorf("wsrep poller on %s: %w", p.cfg.Node, err)
	}
	defer db.Close()

	tick := time.NewTicker(p.cfg.Interval)
	defer tick.Stop()
	for {
		obs := p.poll(ctx, db)
		if ctx.Err() != nil {
			return nil
		}
		p.record(&obs)
		if out != nil {
			out(obs)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// open builds the connection pool: at most two connections (one poll in
// flight, one spare) with short timeouts.
func (p *Poller) open() (*sql.DB, error) {
	mc := mysql.NewConfig()
	mc.User, mc.Passwd = p.cfg.User, p.cfg.Password
	mc.Net, mc.Addr = p.cfg.Net, p.cfg.Addr
	// The poll's context enforces Timeout; the socket timeouts are a
	// backstop set a little later, so a slow server is reported as a
	// deadline rather than as the driver's "invalid connection".
	mc.Timeout = p.cfg.Timeout
	mc.ReadTimeout, mc.WriteTimeout = 2*p.cfg.Timeout, 2*p.cfg.Timeout
	mc.DialFunc = p.dial
	mc.Logger = driverLogger{p.log}
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		return nil, err
	}
	db := sql.OpenDB(conn)
	db.SetMaxOpenConns(2)
	db.SetMaxIdleConns(2)
	// Recycle connections now and then so a long-lived one never pins
	// state (or a stale route) forever.
	db.SetConnMaxLifetime(10 * time.Minute)
	return db, nil
}

// poll reads and classifies once.
func (p *Poller) poll(ctx context.Context, db *sql.DB) cluster.Observation {
	pctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	w, err := Read(pctx, db)
	timedOut := errors.Is(pctx.Err(), context.DeadlineExceeded)
	cancel()
	obs := cluster.Observation{Node: p.cfg.Node, Time: p.now()}
	switch {
	case err == nil:
		obs.Reachable, obs.Wsrep, obs.Health = true, &w, Classify(w)
	case answered(err):
		// The server spoke SQL but we cannot tell its state: keep it out
		// of the pools without calling it unreachable.
		obs.Reachable, obs.Health = true, cluster.HealthNotSynced
		obs.Error = fmt.Sprintf("poll wsrep on %s: %v", p.cfg.Node, err)
	case timedOut:
		obs.Health = cluster.HealthUnreachable
		obs.Error = fmt.Sprintf("poll wsrep on %s: no answer within %s: %v", p.cfg.Node, p.cfg.Timeout, err)
	default:
		obs.Health = cluster.HealthUnreachable
		obs.Error = fmt.Sprintf("poll wsrep on %s: %v", p.cfg.Node, err)
	}
	return obs
}

// answered reports whether err came from a server that answered: a MySQL
// error packet (access denied, unknown variable, too many connections) or
// a status that fails validation. Anything else (refused, timeout, reset)
// means unreachable.
func answered(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) || errors.Is(err, ErrBadStatus)
}

// record sets obs.Streak from the previous observation, keeps obs as the
// latest, and logs changes of health.
func (p *Poller) record(obs *cluster.Observation) {
	p.mu.Lock()
	prev, had := p.latest, p.have
	obs.Streak = 1
	if had && prev.Health == obs.Health {
		obs.Streak = prev.Streak + 1
	}
	p.latest, p.have = *obs, true
	p.mu.Unlock()

	if had && prev.Health == obs.Health {
		return
	}
	attrs := []any{"health", obs.Health, "previous", prev.Health}
	if obs.Wsrep != nil {
		attrs = append(attrs, "rule", Match(*obs.Wsrep).Name, "state", obs.Wsrep.LocalStateComment,
			"cluster_status", obs.Wsrep.ClusterStatus)
	}
	if obs.Error != "" {
		attrs = append(attrs, "error", obs.Error)
	}
	if obs.Health == cluster.HealthOK {
		p.log.Info("wsrep health changed", attrs...)
	} else {
		p.log.Warn("wsrep health changed", attrs...)
	}
}

// driverLogger sends go-sql-driver/mysql's messages (such as "closing bad
// idle connection") to the injected logger at debug level.
type driverLogger struct{ log *slog.Logger }

func (d driverLogger) Print(v ...any) { d.log.Debug("mysql driver", "msg", fmt.Sprint(v...)) }
