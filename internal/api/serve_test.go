package api_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/dbha/dbha/internal/api"
)

// TestServeGracefulShutdown: a request in flight when ctx ends still gets
// its answer, Serve returns nil, and the listener is closed.
func TestServeGracefulShutdown(t *testing.T) {
	ln, err := api.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "done")
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- api.Serve(ctx, ln, h) }()

	hc := testClient(t)
	type result struct {
		body string
		err  error
	}
	got := make(chan result, 1)
	go func() {
		resp, err := hc.Get("http://" + ln.Addr().String() + "/slow")
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		got <- result{string(b), err}
	}()
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("request never reached the handler")
	}
	cancel()
	// Serve must wait for the in-flight request rather than return.
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v with a request in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	select {
	case r := <-got:
		if r.err != nil || r.body != "done" {
			t.Errorf("in-flight request: body %q err %v, want done", r.body, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("in-flight request never finished")
	}
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve: %v, want nil after a graceful shutdown", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after ctx was cancelled")
	}
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Error("listener still accepts connections after Serve returned")
	}
}

func TestListenUnix(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "api.sock")
	addr := "unix://" + sock

	ln, err := api.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.Listen(addr); !errors.Is(err, api.ErrSocketInUse) {
		t.Errorf("second Listen on a live socket: %v, want ErrSocketInUse", err)
	}
	// Leave a stale socket file behind, as a SIGKILLed agent would.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := os.Lstat(sock); err != nil {
		t.Fatalf("stale socket file missing: %v", err)
	}
	ln, err = api.Listen(addr)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	ln.Close()

	plain := filepath.Join(dir, "not-a-socket")
	if err := os.WriteFile(plain, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := api.Listen("unix://" + plain); err == nil {
		t.Error("Listen over a regular file succeeded, want an error")
	}
	if _, err := api.Listen("unix://"); err == nil {
		t.Error("Listen on an empty socket path succeeded")
	}
}

func TestServeReturnsListenerError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close() // Serve on a closed listener fails at once.
	done := make(chan error, 1)
	go func() { done <- api.Serve(context.Background(), ln, http.NotFoundHandler()) }()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Serve on a closed listener returned nil")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve on a closed listener did not return")
	}
}
