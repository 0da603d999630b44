package haproxy

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Defaults, written in one place (docs/haproxy.md lists them).
const (
	DefaultWriterBackend  = "dbha_writer"
	DefaultReaderBackend  = "dbha_reader"
	DefaultDialTimeout    = time.Second
	DefaultCommandTimeout = 2 * time.Second
)

// Config configures one Driver.
type Config struct {
	// Name is the proxy node's name. Every error names it.
	Name string `mapstructure:"name" json:"name"`
	// Socket is the path of HAProxy's stats socket. It must be bound with
	// "level admin".
	Socket string `mapstructure:"socket" json:"socket"`
	// WriterBackend and ReaderBackend are the backends dbha owns. Their
	// server names are the DB nodes' names.
	WriterBackend string `mapstructure:"writer_backend" json:"writer_backend"`
	ReaderBackend string `mapstructure:"reader_backend" json:"reader_backend"`
	// DialTimeout bounds connecting to the socket; CommandTimeout bounds one
	// command's round trip. A context deadline, when sooner, wins.
	DialTimeout    time.Duration `mapstructure:"dial_timeout" json:"dial_timeout"`
	CommandTimeout time.Duration `mapstructure:"command_timeout" json:"command_timeout"`
}

// WithDefaults returns c with empty fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.WriterBackend == "" {
		c.WriterBackend = DefaultWriterBackend
	}
	if c.ReaderBackend == "" {
		c.ReaderBackend = DefaultReaderBackend
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.CommandTimeout == 0 {
		c.CommandTimeout = DefaultCommandTimeout
	}
	return c
}

// Validate lists every problem with c at once. Call it on WithDefaults().
func (c Config) Validate() error {
	var problems []string
	bad := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	if c.Name == "" {
		bad("name is empty")
	}
	if c.Socket == "" {
		bad("socket is empty")
	} else if !filepath.IsAbs(c.Socket) {
		bad("socket %q is not an absolute path", c.Socket)
	}
	if !validName(c.WriterBackend) {
		bad("writer_backend %q is not a valid haproxy name", c.WriterBackend)
	}
	if !validName(c.ReaderBackend) {
		bad("reader_backend %q is not a valid haproxy name", c.ReaderBackend)
	}
	if c.WriterBackend != "" && c.WriterBackend == c.ReaderBackend {
		bad("writer_backend and reader_backend are both %q", c.WriterBackend)
	}
	if c.DialTimeout <= 0 {
		bad("dial_timeout %v is not positive", c.DialTimeout)
	}
	if c.CommandTimeout <= 0 {
		bad("command_timeout %v is not positive", c.CommandTimeout)
	}
	return problemsError("haproxy config for "+strconv.Quote(c.Name), problems)
}

// nameRE is the character set HAProxy accepts in proxy and server names.
// Checking it also keeps node names from injecting text into a Runtime API
// command line.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)

func validName(s string) bool { return nameRE.MatchString(s) }

// problemsError returns nil for no problems, else one ErrInvalidConfig
// error listing them all.
func problemsError(what string, problems []string) error {
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("%s: %w: %s", what, ErrInvalidConfig, strings.Join(problems, "; "))
}
