package haproxy

import (
	"errors"
	"fmt"
)

// Sentinel errors. Test for them with errors.Is; the wrapping errors carry
// the proxy, the command, the backend and the server.
var (
	// ErrSocket: the Runtime API socket could not be reached, or the
	// exchange on it failed (missing path, not a socket, refused, timeout).
	ErrSocket = errors.New("haproxy runtime api socket unusable")
	// ErrNoSuchBackend: HAProxy runs no backend of that name.
	ErrNoSuchBackend = errors.New("no such backend")
	// ErrNoSuchServer: the backend has no server of that name.
	ErrNoSuchServer = errors.New("no such server")
	// ErrPermissionDenied: the socket's level does not allow the command
	// (dbha needs "level admin").
	ErrPermissionDenied = errors.New("permission denied by haproxy (dbha needs a stats socket with level admin)")
	// ErrCommand: HAProxy answered a command with an error text dbha does
	// not know, or with output in an unexpected format.
	ErrCommand = errors.New("haproxy command failed")
	// ErrInvalidRouting: the routing handed to Apply is inconsistent.
	ErrInvalidRouting = errors.New("invalid routing")
	// ErrStaleEpoch: Apply was handed an epoch older than one already applied.
	ErrStaleEpoch = errors.New("stale epoch")
	// ErrAddrMismatch: HAProxy routes a node to another address than the
	// routing names, so the rendered config and the cluster disagree.
	ErrAddrMismatch = errors.New("server address differs from routing")
	// ErrVerify: the read-back after Apply does not match the routing.
	ErrVerify = errors.New("haproxy state does not match after apply")
	// ErrInvalidConfig: a Config or TemplateData failed validation.
	ErrInvalidConfig = errors.New("invalid haproxy config")
)

// SocketError is a failed exchange on the Runtime API socket. It matches
// ErrSocket with errors.Is and unwraps to the underlying net error.
type SocketError struct {
	Proxy   string // proxy node name (Config.Name)
	Socket  string // socket path
	Command string
	Err     error
}

func (e *SocketError) Error() string {
	return fmt.Sprintf("%s: runtime api socket %s: %v", e.Command, e.Socket, e.Err)
}

// Is makes errors.Is(err, ErrSocket) true.
func (e *SocketError) Is(target error) bool { return target == ErrSocket }

// Unwrap returns the underlying error.
func (e *SocketError) Unwrap() error { return e.Err }

// CommandError is an error answer from HAProxy to one Runtime API command.
// Err is one of the sentinels (ErrNoSuchBackend, ErrNoSuchServer,
// ErrPermissionDenied, ErrCommand).
type CommandError struct {
	Proxy    string // proxy node name (Config.Name)
	Command  string
	Backend  string // empty when the command names none
	Server   string // empty when the command names none
	Response string // HAProxy's answer, trimmed
	Err      error
}

func (e *CommandError) Error() string {
	what := "backend " + e.Backend
	if e.Server != "" && e.Err != ErrNoSuchBackend {
		what = "server " + e.Server + " in backend " + e.Backend
	}
	if e.Err == ErrCommand || e.Err == ErrPermissionDenied {
		return fmt.Sprintf("%s: %v (haproxy said %q)", e.Command, e.Err, e.Response)
	}
	return fmt.Sprintf("%s: %s: %v (haproxy said %q)", e.Command, what, e.Err, e.Response)
}

// Unwrap returns the sentinel.
func (e *CommandError) Unwrap() error { return e.Err }
