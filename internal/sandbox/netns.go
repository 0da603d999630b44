package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/vishvananda/netns"
)

// ipCmd runs `ip args...` and returns a wrapped error with ip's stderr.
func ipCmd(ctx context.Context, args ...string) error {
	_, err := run(ctx, "ip", args...)
	return err
}

// run runs a command to completion and returns its stdout.
func run(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// nsExists reports whether the named network namespace exists.
func nsExists(name string) bool {
	_, err := os.Stat("/var/run/netns/" + name)
	return err == nil
}

// createNamespace adds a namespace with loopback up and IPv6 off (no DAD
// delays on the veths).
func createNamespace(ctx context.Context, name string) error {
	if err := ipCmd(ctx, "netns", "add", name); err != nil {
		return err
	}
	if err := ipCmd(ctx, "-n", name, "link", "set", "lo", "up"); err != nil {
		return err
	}
	for _, key := range []string{"all", "default"} {
		if _, err := run(ctx, "ip", "netns", "exec", name, "sysctl", "-q", "-w", "net.ipv6.conf."+key+".disable_ipv6=1"); err != nil {
			return err
		}
	}
	return nil
}

// deleteNamespace removes a namespace; a missing one is not an error.
func deleteNamespace(ctx context.Context, name string) error {
	if !nsExists(name) {
		return nil
	}
	return ipCmd(ctx, "netns", "del", name)
}

// createBridge adds br0 in the hub namespace with the settings that avoid
// surprises on a test-bed: no STP, no forward delay, no multicast snooping.
func createBridge(ctx context.Context, hub string) error {
	if err := ipCmd(ctx, "-n", hub, "link", "add", "br0", "type", "bridge",
		"stp_state", "0", "forward_delay", "0", "mcast_snooping", "0"); err != nil {
		return err
	}
	return ipCmd(ctx, "-n", hub, "link", "set", "br0", "up")
}

// attach creates a veth pair directly inside the namespaces (no name in
// the root namespace, so parallel runs never collide): hubPort in the hub,
// enslaved to br0, and eth0 in the node namespace with addr/prefix.
func attach(ctx context.Context, hub, hubPort, nodeNS string, addr string, prefixLen int) error {
	steps := [][]string{
		{"-n", hub, "link", "add", hubPort, "type", "veth", "peer", "name", "eth0", "netns", nodeNS},
		{"-n", hub, "link", "set", hubPort, "master", "br0"},
		{"-n", hub, "link", "set", hubPort, "up"},
		{"-n", nodeNS, "addr", "add", fmt.Sprintf("%s/%d", addr, prefixLen), "dev", "eth0"},
		{"-n", nodeNS, "link", "set", "eth0", "up"},
	}
	for _, s := range steps {
		if err := ipCmd(ctx, s...); err != nil {
			return err
		}
	}
	return nil
}

// InNamespace runs fn on a thread switched into the named namespace. Sockets
// created inside fn belong to that namespace for their whole life.
func InNamespace(name string, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return fmt.Errorf("get current netns: %w", err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", name, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return fmt.Errorf("enter netns %s: %w", name, err)
	}
	fnErr := fn()
	if err := netns.Set(orig); err != nil {
		// The thread is in the wrong namespace: do not unlock it, so the
		// runtime discards it instead of reusing it.
		runtime.LockOSThread()
		return errors.Join(fnErr, fmt.Errorf("return from netns %s: %w", name, err))
	}
	return fnErr
}

// DialVIP opens (and closes) one TCP connection from the namespace
// clientNS to the VIP's writer port, within timeout.
func DialVIP(ctx context.Context, clientNS string, timeout time.Duration) error {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := DialContextIn(clientNS)(cctx, "tcp", net.JoinHostPort(VIP, strconv.Itoa(WriterPort)))
	if err != nil {
		return err
	}
	return conn.Close()
}

// DialContextIn returns a dial function that opens TCP connections from
// inside the named namespace. It suits mysql.RegisterDialContext and
// http.Transport.DialContext.
func DialContextIn(ns string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var conn net.Conn
		err := InNamespace(ns, func() error {
			var d net.Dialer
			var err error
			conn, err = d.DialContext(ctx, network, addr)
			return err
		})
		return conn, err
	}
}

// ListenIn opens a TCP listener inside the named namespace.
func ListenIn(ns, addr string) (net.Listener, error) {
	var l net.Listener
	err := InNamespace(ns, func() error {
		var err error
		l, err = net.Listen("tcp", addr)
		return err
	})
	return l, err
}
