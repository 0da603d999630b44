// Package testport picks TCP ports for tests that must name a port before
// the process that binds it starts (HAProxy, raft, agents).
package testport

import (
	"math/rand/v2"
	"net"
	"strconv"
	"testing"
)

// Free returns a TCP port on 127.0.0.1 that was free a moment ago. It picks
// from 20000-29999, below Linux's ephemeral range (32768 and up), so an
// outgoing connection of another process cannot take the port between this
// check and the caller's bind, as happens with a kernel-chosen port.
func Free(t testing.TB) int {
	t.Helper()
	for range 200 {
		p := 20000 + rand.IntN(10000)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		l.Close()
		return p
	}
	t.Fatal("no free TCP port in 20000-29999 on 127.0.0.1")
	return 0
}
