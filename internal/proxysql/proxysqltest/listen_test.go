package proxysqltest_test

import (
	"net"
	"slices"
	"sync"
	"testing"

	"github.com/dbha/dbha/internal/proxysql/proxysqltest"
)

// TestListenFuncAndQuery serves the stand-in through a caller's listen
// function (as the sandbox does inside a network namespace), checks that
// Restart listens through it again on the same address, and reads rows
// in-process with Query.
func TestListenFuncAndQuery(t *testing.T) {
	var mu sync.Mutex
	var calls []string
	listen := func(addr string) (net.Listener, error) {
		mu.Lock()
		calls = append(calls, addr)
		mu.Unlock()
		return net.Listen("tcp", addr)
	}
	s := proxysqltest.Start(t, proxysqltest.WithListenFunc("127.0.0.1:0", listen))
	c := dial(t, s)
	c.exec("INSERT INTO mysql_servers (hostgroup_id, hostname, port, comment) VALUES (10, '198.18.0.11', 3306, 'dbha node=db1')")
	c.exec("LOAD MYSQL SERVERS TO RUNTIME")
	c.exec("SAVE MYSQL SERVERS TO DISK")

	rows, err := s.Query("SELECT hostgroup_id, hostname, port, status, comment FROM runtime_mysql_servers")
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"10", "198.18.0.11", "3306", "ONLINE", "dbha node=db1"}}
	if !slices.EqualFunc(rows, want, slices.Equal) {
		t.Errorf("Query = %q, want %q", rows, want)
	}
	if _, err := s.Query("SELECT nope FROM runtime_mysql_servers"); err == nil {
		t.Error("Query of an unknown column succeeded")
	}

	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := slices.Clone(calls)
	mu.Unlock()
	if len(got) != 2 || got[0] != "127.0.0.1:0" || got[1] != s.Addr() {
		t.Errorf("listen calls = %q, want [127.0.0.1:0 %s]", got, s.Addr())
	}
	c2 := dial(t, s)
	if r := c2.rows("SELECT hostname FROM runtime_mysql_servers"); len(r) != 1 || r[0][0] != "198.18.0.11" {
		t.Errorf("after Restart through the listen function: runtime %q", r)
	}
}
