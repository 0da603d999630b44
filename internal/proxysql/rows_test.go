package proxysql

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/dbha/dbha/internal/cluster"
	"github.com/dbha/dbha/internal/proxy"
)

func testRouting(writer cluster.NodeName, readers []cluster.NodeName, offline map[cluster.NodeName]cluster.OfflineReason, wir bool) proxy.Routing {
	top := cluster.Topology{Epoch: 7, Writer: writer, Readers: readers}
	for n, r := range offline {
		top.Offline = append(top.Offline, cluster.OfflineNode{Node: n, Reason: r})
	}
	b := map[cluster.NodeName]proxy.Backend{}
	for i, n := range []cluster.NodeName{"db1", "db2", "db3", "db4"} {
		b[n] = proxy.Backend{Host: fmt.Sprintf("198.18.0.%d", 11+i), Port: 3306}
	}
	return proxy.Routing{Topology: top.Normalize(), Backends: b, WriterIsReader: wir}
}

func render(rows []serverRow) []string {
	var out []string
	for _, r := range rows {
		out = append(out, fmt.Sprintf("%d %s %s %s", r.Hostgroup, r.Hostname, r.Status, r.Comment))
	}
	return out
}

var opts = ServerOptions{Weight: 1, MaxConnections: 1000}

func TestDesiredRows(t *testing.T) {
	type off = map[cluster.NodeName]cluster.OfflineReason
	key := func(hg int, n int) rowKey { return rowKey{hg, fmt.Sprintf("198.18.0.%d", 10+n), 3306} }
	tests := []struct {
		name    string
		r       proxy.Routing
		current map[rowKey]string
		want    []string
	}{
		{
			name: "writer and readers",
			r:    testRouting("db1", []cluster.NodeName{"db2", "db3"}, nil, false),
			want: []string{"10 198.18.0.11 ONLINE dbha node=db1", "20 198.18.0.12 ONLINE dbha node=db2", "20 198.18.0.13 ONLINE dbha node=db3"},
		},
		{
			name: "writer is reader by policy",
			r:    testRouting("db1", []cluster.NodeName{"db2"}, nil, true),
			want: []string{"10 198.18.0.11 ONLINE dbha node=db1", "20 198.18.0.11 ONLINE dbha node=db1", "20 198.18.0.12 ONLINE dbha node=db2"},
		},
		{
			name: "writer listed among readers",
			r:    testRouting("db1", []cluster.NodeName{"db1", "db2"}, nil, false),
			want: []string{"10 198.18.0.11 ONLINE dbha node=db1", "20 198.18.0.11 ONLINE dbha node=db1", "20 198.18.0.12 ONLINE dbha node=db2"},
		},
		{
			name: "fenced old writer, other offline reasons removed",
			r: testRouting("db2", []cluster.NodeName{"db3"}, off{
				"db1": cluster.ReasonFenced, "db4": cluster.ReasonUnreachable,
			}, false),
			current: map[rowKey]string{key(10, 1): "ONLINE", key(20, 4): "ONLINE"},
			want:    []string{"10 198.18.0.11 OFFLINE_HARD dbha node=db1", "10 198.18.0.12 ONLINE dbha node=db2", "20 198.18.0.13 ONLINE dbha node=db3"},
		},
		{
			name:    "draining stays where it has rows",
			r:       testRouting("", []cluster.NodeName{"db2"}, off{"db1": cluster.ReasonDraining, "db3": cluster.ReasonDraining}, false),
			current: map[rowKey]string{key(10, 1): "ONLINE", key(20, 1): "SHUNNED", key(99, 3): "ONLINE"},
			want:    []string{"10 198.18.0.11 OFFLINE_SOFT dbha node=db1", "20 198.18.0.11 OFFLINE_SOFT dbha node=db1", "20 198.18.0.12 ONLINE dbha node=db2"},
		},
		{
			name:    "a fence is never softened",
			r:       testRouting("db2", nil, off{"db1": cluster.ReasonDraining}, false),
			current: map[rowKey]string{key(10, 1): "OFFLINE_HARD", key(20, 1): "ONLINE"},
			want:    []string{"10 198.18.0.11 OFFLINE_HARD dbha node=db1", "10 198.18.0.12 ONLINE dbha node=db2", "20 198.18.0.11 OFFLINE_SOFT dbha node=db1"},
		},
		{
			name:    "draining old writer once a new writer is online",
			r:       testRouting("db2", []cluster.NodeName{"db3"}, off{"db1": cluster.ReasonDraining}, false),
			current: map[rowKey]string{key(10, 1): "OFFLINE_SOFT", key(20, 1): "ONLINE"},
			want:    []string{"10 198.18.0.11 OFFLINE_HARD dbha node=db1", "10 198.18.0.12 ONLINE dbha node=db2", "20 198.18.0.11 OFFLINE_SOFT dbha node=db1", "20 198.18.0.13 ONLINE dbha node=db3"},
		},
		{
			name: "no writer, nothing else",
			r:    testRouting("", nil, off{"db1": cluster.ReasonNonPrimary}, true),
			want: nil,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := desiredRows(tc.r, 10, 20, opts, tc.current)
			if err != nil {
				t.Fatal(err)
			}
			if g := render(got); !slices.Equal(g, tc.want) {
				t.Errorf("got  %q\nwant %q", g, tc.want)
			}
			for _, r := range got {
				if r.Weight != 1 || r.MaxConnections != 1000 || r.Port != 3306 {
					t.Errorf("row options: %+v", r)
				}
			}
		})
	}
}

func TestDesiredRowsRejectsBadRouting(t *testing.T) {
	base := testRouting("db1", []cluster.NodeName{"db2"}, nil, false)
	dup := base
	dup.Backends = map[cluster.NodeName]proxy.Backend{"db1": {Host: "198.18.0.11", Port: 3306}, "db2": {Host: "198.18.0.11", Port: 3306}}
	missing := base
	missing.Backends = map[cluster.NodeName]proxy.Backend{"db1": {Host: "198.18.0.11", Port: 3306}}
	quote := base
	quote.Backends = map[cluster.NodeName]proxy.Backend{"db1": {Host: "x';DROP", Port: 3306}, "db2": {Host: "198.18.0.12", Port: 3306}}
	name := testRouting("db 1", nil, nil, false)
	name.Backends["db 1"] = proxy.Backend{Host: "198.18.0.20", Port: 3306}
	for label, r := range map[string]proxy.Routing{"duplicate backend": dup, "missing backend": missing, "quote in host": quote, "space in name": name} {
		if _, err := desiredRows(r, 10, 20, opts, nil); !errors.Is(err, ErrInvalidRouting) {
			t.Errorf("%s: %v, want ErrInvalidRouting", label, err)
		}
	}
}

func TestRuntimeDiff(t *testing.T) {
	d := serverRow{Hostgroup: 10, Hostname: "h1", Port: 3306, Status: StatusOnline, Weight: 1, MaxConnections: 1000, Comment: "dbha node=db1"}
	shunned := d
	shunned.Status = StatusShunned
	if diff := runtimeDiff([]serverRow{d}, []serverRow{shunned}); len(diff) != 0 {
		t.Errorf("SHUNNED should count as ONLINE: %q", diff)
	}
	soft := d
	soft.Status = StatusOfflineSoft
	shunnedWantSoft := runtimeDiff([]serverRow{soft}, []serverRow{shunned})
	if len(shunnedWantSoft) != 1 {
		t.Errorf("SHUNNED is not OFFLINE_SOFT: %q", shunnedWantSoft)
	}
	lingering := serverRow{Hostgroup: 20, Hostname: "old", Port: 3306, Status: StatusOfflineHard}
	if diff := runtimeDiff([]serverRow{d}, []serverRow{lingering, d}); len(diff) != 0 {
		t.Errorf("a deleted row lingering as OFFLINE_HARD is not drift: %q", diff)
	}
	extra := lingering
	extra.Status = StatusOnline
	if diff := runtimeDiff([]serverRow{d}, []serverRow{extra, d}); len(diff) != 1 || !strings.HasPrefix(diff[0], "unexpected") {
		t.Errorf("extra ONLINE row: %q", diff)
	}
	if diff := runtimeDiff([]serverRow{d}, nil); len(diff) != 1 || !strings.HasPrefix(diff[0], "missing") {
		t.Errorf("missing row: %q", diff)
	}
	w := d
	w.Weight = 2
	if diff := runtimeDiff([]serverRow{d}, []serverRow{w}); len(diff) != 1 {
		t.Errorf("weight differs: %q", diff)
	}
}

func TestCurrentStatus(t *testing.T) {
	main := []serverRow{{Hostgroup: 10, Hostname: "a", Port: 1, Status: "offline_hard"}}
	rt := []serverRow{
		{Hostgroup: 10, Hostname: "a", Port: 1, Status: "ONLINE"},
		{Hostgroup: 20, Hostname: "b", Port: 1, Status: "OFFLINE_HARD"}, // deleted, lingering
		{Hostgroup: 20, Hostname: "c", Port: 1, Status: "SHUNNED"},
	}
	got := currentStatus(main, rt)
	want := map[rowKey]string{{10, "a", 1}: "OFFLINE_HARD", {20, "c", 1}: "SHUNNED"}
	if len(got) != len(want) {
		t.Fatalf("got %v want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%v: got %q want %q", k, got[k], v)
		}
	}
}

func TestWriteStatements(t *testing.T) {
	keep := serverRow{Hostgroup: 10, Hostname: "h1", Port: 3306, Status: StatusOnline, Weight: 1, MaxConnections: 1000, Comment: "dbha node=db1"}
	gone := serverRow{Hostgroup: 20, Hostname: "h'2", Port: 3306, Status: StatusOnline}
	changed := keep
	changed.Hostgroup = 20
	old := changed
	old.Status = "online"
	got := writeStatements([]serverRow{gone, keep, old}, []serverRow{keep, changed})
	want := []string{
		"DELETE FROM mysql_servers WHERE hostgroup_id=20 AND hostname='h''2' AND port=3306",
		"REPLACE INTO mysql_servers (hostgroup_id, hostname, port, gtid_port, status, weight, compression, max_connections, max_replication_lag, use_ssl, max_latency_ms, comment) VALUES (20, 'h1', 3306, 0, 'ONLINE', 1, 0, 1000, 0, 0, 0, 'dbha node=db1')",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, q := range got {
		if strings.Contains(q, ";") {
			t.Errorf("statement contains ';': %s", q)
		}
	}
}

func TestSQLString(t *testing.T) {
	for in, want := range map[string]string{"a": "'a'", "it's": "'it''s'", `back\slash`: `'back\slash'`, "": "''"} {
		if got := sqlString(in); got != want {
			t.Errorf("sqlString(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestConfigValidateListsEveryProblem(t *testing.T) {
	c := Config{Addr: "nope", WriterHostgroup: -1, ReaderHostgroup: -1, ConnectTimeout: -1, QueryTimeout: 1, ApplyTimeout: 1,
		Server: ServerOptions{Weight: 20000000, MaxConnections: -1, MaxLatencyMs: -5}}
	err := c.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, frag := range []string{"admin_addr", "admin user", "writer_hostgroup -1", "reader_hostgroup -1", "both -1", "connect_timeout", "server.weight", "server.max_connections", "server.max_latency_ms"} {
		if !strings.Contains(err.Error(), frag) {
			t.Errorf("error does not mention %q: %v", frag, err)
		}
	}
	ok := Config{User: "radmin"}.WithDefaults()
	if err := ok.Validate(); err != nil {
		t.Errorf("defaults with a user: %v", err)
	}
	if ok.Addr != DefaultAddr || ok.WriterHostgroup != 10 || ok.ReaderHostgroup != 20 || ok.Server.Weight != 1 || ok.Server.MaxConnections != 1000 {
		t.Errorf("defaults: %+v", ok)
	}
	if _, err := New(Config{User: "u", WriterHostgroup: 5, ReaderHostgroup: 5}, nil); err == nil {
		t.Error("New accepted equal hostgroups")
	}
}
