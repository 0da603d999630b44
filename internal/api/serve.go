package api

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"strings"
	"time"
)

// ShutdownTimeout bounds the graceful shutdown in Serve: in-flight requests
// get this long to finish once ctx is done.
const ShutdownTimeout = 5 * time.Second

// Serve serves h on ln until ctx is done, then shuts down gracefully and
// returns nil. It returns early with the error if serving fails. ln is
// closed when Serve returns.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       time.Minute,
		// Requests outlive ctx by up to ShutdownTimeout so that they can
		// finish during the graceful shutdown.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("api serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	shutdownErr := srv.Shutdown(sctx)
	if shutdownErr != nil {
		// Deadline passed with requests still running: cut them off.
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("api serve on %s: %w", ln.Addr(), err)
	}
	if shutdownErr != nil {
		return fmt.Errorf("api shutdown on %s: %w", ln.Addr(), shutdownErr)
	}
	return nil
}

// ErrSocketInUse is returned by Listen when another process already
// answers on the unix socket.
var ErrSocketInUse = errors.New("unix socket in use")

// Listen opens the API listener for addr: "unix:///path/to/api.sock" for a
// unix socket, otherwise a TCP host:port. A stale socket file left by a
// killed agent is removed; a live one is ErrSocketInUse.
func Listen(addr string) (net.Listener, error) {
	path, ok := strings.CutPrefix(addr, "unix://")
	if !ok {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("api listen %s: %w", addr, err)
		}
		return ln, nil
	}
	if path == "" {
		return nil, fmt.Errorf("api listen %s: empty socket path", addr)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("api listen %s: %s exists and is not a socket", addr, path)
		}
		if c, err := net.DialTimeout("unix", path, 200*time.Millisecond); err == nil {
			c.Close()
			return nil, fmt.Errorf("api listen %s: %w", addr, ErrSocketInUse)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("api listen %s: remove stale socket: %w", addr, err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("api listen %s: %w", addr, err)
	}
	return ln, nil
}
