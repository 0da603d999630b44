package proxysqltest

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"time"
)

// module is one unit of LOAD/SAVE ... (MYSQL SERVERS, MYSQL VARIABLES, ...).
type module struct {
	name      string   // as written in the command, e.g. "MYSQL SERVERS"
	tables    []string // tables copied verbatim between main, runtime_ and disk
	servers   bool     // also mysql_servers, with runtime normalisation
	varPrefix string   // global_variables rows with this prefix
	checksums []string // runtime_checksums_values rows bumped by a LOAD
}

// modules lists what the stand-in loads and saves. LOAD MYSQL SERVERS also
// carries the galera/replication/group-replication hostgroup tables, as in
// ProxySQL.
var modules = []module{
	{
		name:      "MYSQL SERVERS",
		tables:    []string{"mysql_galera_hostgroups", "mysql_group_replication_hostgroups", "mysql_replication_hostgroups"},
		servers:   true,
		checksums: []string{"mysql_servers", "mysql_servers_v2"},
	},
	{name: "MYSQL VARIABLES", varPrefix: "mysql-", checksums: []string{"mysql_variables"}},
	{name: "ADMIN VARIABLES", varPrefix: "admin-", checksums: []string{"admin_variables"}},
	{name: "PROXYSQL SERVERS", tables: []string{"proxysql_servers"}, checksums: []string{"proxysql_servers"}},
}

// checksumOrder is the row order of runtime_checksums_values in the reference.
var checksumOrder = []string{"admin_variables", "mysql_query_rules", "mysql_servers", "mysql_users", "mysql_variables", "proxysql_servers", "mysql_servers_v2"}

type checksum struct {
	version int64
	epoch   int64
	sum     uint64
}

// Runtime server statuses.
const (
	statusOnline      = "ONLINE"
	statusShunned     = "SHUNNED"
	statusOfflineSoft = "OFFLINE_SOFT"
	statusOfflineHard = "OFFLINE_HARD"
)

// rtServer is one server entry of the emulated hostgroup manager: a row of
// runtime_mysql_servers and of stats_mysql_connection_pool.
type rtServer struct {
	hostgroup         int64
	hostname          string
	port              int64
	gtidPort          int64
	status            string
	weight            int64
	compression       int64
	maxConnections    int64
	maxReplicationLag int64
	useSSL            int64
	maxLatencyMs      int64
	comment           string

	seq uint64 // creation order; the pool lists entries in this order

	// removed: deleted from the configuration by a LOAD while a connection
	// was in use. It stays in runtime as OFFLINE_HARD until ConnUsed is 0.
	removed bool
	// poolOnlyUntil: gone from runtime, still listed in the pool until then.
	poolOnlyUntil time.Time

	connUsed, connFree, connOK, connERR, maxConnUsed, queries int64
}

type serverKey struct {
	hostgroup int64
	hostname  string
	port      int64
}

func (r *rtServer) key() serverKey { return serverKey{r.hostgroup, r.hostname, r.port} }

func (r *rtServer) inRuntime() bool { return r.poolOnlyUntil.IsZero() }

// atoi converts like C's atoi, which ProxySQL applies when it loads rows:
// "abc" → 0, " 12x" → 12.
func atoi(v any) int64 {
	switch x := v.(type) {
	case nil:
		return 0
	case int64:
		return x
	case float64:
		return int64(x)
	case []byte:
		return atoiString(string(x))
	case string:
		return atoiString(x)
	default:
		return atoiString(fmt.Sprint(x))
	}
}

func atoiString(s string) int64 {
	s = strings.TrimLeft(s, " \t\n\r\v\f")
	end := 0
	if end < len(s) && (s[end] == '+' || s[end] == '-') {
		end++
	}
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	n, err := strconv.ParseInt(s[:end], 10, 64)
	if err != nil {
		return 0
	}
	return n
}

func text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case []byte:
		return string(x)
	case string:
		return x
	default:
		return fmt.Sprint(x)
	}
}

// prunePoolLocked drops pool-only entries whose linger has passed.
func (s *Server) prunePoolLocked(now time.Time) {
	s.servers = slices.DeleteFunc(s.servers, func(r *rtServer) bool {
		return !r.inRuntime() && now.After(r.poolOnlyUntil)
	})
}

// loadServersLocked is LOAD MYSQL SERVERS TO RUNTIME for mysql_servers:
// main.mysql_servers, normalised, becomes the runtime configuration.
func (s *Server) loadServersLocked(ctx context.Context) error {
	rows, err := s.sq.QueryContext(ctx, "SELECT hostgroup_id, hostname, port, gtid_port, status, weight, compression, max_connections, max_replication_lag, use_ssl, max_latency_ms, comment FROM main.mysql_servers")
	if err != nil {
		return err
	}
	var cfg []*rtServer
	for rows.Next() {
		v := make([]any, 12)
		p := make([]any, 12)
		for i := range v {
			p[i] = &v[i]
		}
		if err := rows.Scan(p...); err != nil {
			_ = rows.Close()
			return err
		}
		cfg = append(cfg, &rtServer{
			hostgroup: atoi(v[0]), hostname: text(v[1]), port: atoi(v[2]), gtidPort: atoi(v[3]),
			status: strings.ToUpper(text(v[4])), weight: atoi(v[5]), compression: atoi(v[6]),
			maxConnections: atoi(v[7]), maxReplicationLag: atoi(v[8]), useSSL: atoi(v[9]),
			maxLatencyMs: atoi(v[10]), comment: text(v[11]),
		})
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if err := rows.Err(); err != nil {
		return err
	}

	now := time.Now()
	old := map[serverKey]*rtServer{}
	for _, r := range s.servers {
		if r.inRuntime() {
			old[r.key()] = r
		}
	}
	wanted := map[serverKey]bool{}
	var next []*rtServer
	for _, c := range cfg {
		k := c.key()
		wanted[k] = true
		o, ok := old[k]
		if ok && !o.removed && !(o.status == statusOfflineHard && c.status != statusOfflineHard) {
			// Same entry, new settings. Counters stay.
			used, free, okc, errc, maxUsed, q, seq := o.connUsed, o.connFree, o.connOK, o.connERR, o.maxConnUsed, o.queries, o.seq
			*o = *c
			o.connUsed, o.connFree, o.connOK, o.connERR, o.maxConnUsed, o.queries, o.seq = used, free, okc, errc, maxUsed, q, seq
		} else {
			// New entry: fresh counters, listed after the existing ones
			// (OFFLINE_HARD → ONLINE and delete → re-insert also start over).
			delete(old, k)
			s.servers = slices.DeleteFunc(s.servers, func(r *rtServer) bool { return r.key() == k })
			s.serverSeq++
			c.seq = s.serverSeq
			o = c
			next = append(next, c)
		}
		if o.status == statusOfflineSoft || o.status == statusOfflineHard {
			o.connFree = 0
		}
	}
	for k, o := range old {
		if wanted[k] {
			continue
		}
		o.status, o.connFree = statusOfflineHard, 0
		if o.connUsed > 0 {
			o.removed = true
		} else {
			o.removed, o.poolOnlyUntil = false, now.Add(s.opts.statsLinger)
		}
	}
	// One LOAD creates its new entries in runtime order (reference 2.1: the
	// first pool listing is sorted); later LOADs append after them.
	slices.SortFunc(next, compareServers)
	s.servers = append(s.servers, next...)
	return nil
}

// runtimeServersLocked returns the runtime_mysql_servers rows, sorted as
// ProxySQL sorts them (hostgroup, hostname, port).
func (s *Server) runtimeServersLocked() []*rtServer {
	var out []*rtServer
	for _, r := range s.servers {
		if r.inRuntime() {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, compareServers)
	return out
}

func compareServers(a, b *rtServer) int {
	return cmp.Or(cmp.Compare(a.hostgroup, b.hostgroup), strings.Compare(a.hostname, b.hostname), cmp.Compare(a.port, b.port))
}

// syncTablesLocked rewrites the tables ProxySQL generates on demand
// (runtime_mysql_servers, stats_mysql_connection_pool, _reset,
// runtime_checksums_values) from the emulated state.
func (s *Server) syncTablesLocked(ctx context.Context) error {
	s.prunePoolLocked(time.Now())
	if err := s.execLocked(ctx, "DELETE FROM main.runtime_mysql_servers"); err != nil {
		return err
	}
	for _, r := range s.runtimeServersLocked() {
		if err := s.execLocked(ctx, "INSERT INTO main.runtime_mysql_servers VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
			r.hostgroup, r.hostname, r.port, r.gtidPort, r.status, r.weight, r.compression,
			r.maxConnections, r.maxReplicationLag, r.useSSL, r.maxLatencyMs, r.comment); err != nil {
			return err
		}
	}
	for _, t := range []string{"stats.stats_mysql_connection_pool", "stats.stats_mysql_connection_pool_reset"} {
		if err := s.execLocked(ctx, "DELETE FROM "+t); err != nil {
			return err
		}
		for _, r := range s.servers {
			if err := s.execLocked(ctx, "INSERT INTO "+t+" VALUES (?,?,?,?,?,?,?,?,?,?,0,0,0,0)",
				r.hostgroup, r.hostname, r.port, r.status, r.connUsed, r.connFree, r.connOK, r.connERR, r.maxConnUsed, r.queries); err != nil {
				return err
			}
		}
	}
	if err := s.execLocked(ctx, "DELETE FROM main.runtime_checksums_values"); err != nil {
		return err
	}
	for _, name := range checksumOrder {
		c := s.checksums[name]
		if c == nil {
			c = &checksum{version: 1, epoch: time.Now().Unix()}
			s.checksums[name] = c
		}
		if err := s.execLocked(ctx, "INSERT INTO main.runtime_checksums_values VALUES (?,?,?,?)",
			name, c.version, c.epoch, fmt.Sprintf("0x%016X", c.sum)); err != nil {
			return err
		}
	}
	return nil
}

// bumpChecksumLocked records a LOAD of module m: every LOAD raises the
// version, even an identical one (reference 2.4).
func (s *Server) bumpChecksumLocked(m module) {
	h := fnv.New64a()
	if m.servers {
		for _, r := range s.runtimeServersLocked() {
			fmt.Fprintf(h, "%d|%s|%d|%d|%s|%d|%d|%d|%d|%d|%d|%s\n", r.hostgroup, r.hostname, r.port, r.gtidPort,
				r.status, r.weight, r.compression, r.maxConnections, r.maxReplicationLag, r.useSSL, r.maxLatencyMs, r.comment)
		}
	}
	fmt.Fprint(h, m.name)
	for _, name := range m.checksums {
		c := s.checksums[name]
		if c == nil {
			c = &checksum{}
			s.checksums[name] = c
		}
		c.version++
		c.epoch = time.Now().Unix()
		c.sum = h.Sum64()
	}
}

func varFilter(prefix string) string {
	return fmt.Sprintf("substr(variable_name, 1, %d) = %s", len(prefix), quote(prefix))
}

// memoryToRuntimeLocked is LOAD <module> TO RUNTIME.
func (s *Server) memoryToRuntimeLocked(ctx context.Context, m module) error {
	for _, t := range m.tables {
		if err := s.copyTableLocked(ctx, "main."+t, "main.runtime_"+t); err != nil {
			return err
		}
	}
	if m.varPrefix != "" {
		f := varFilter(m.varPrefix)
		if err := s.execLocked(ctx, "DELETE FROM main.runtime_global_variables WHERE "+f); err != nil {
			return err
		}
		if err := s.execLocked(ctx, "INSERT INTO main.runtime_global_variables SELECT * FROM main.global_variables WHERE "+f); err != nil {
			return err
		}
	}
	if m.servers {
		if err := s.loadServersLocked(ctx); err != nil {
			return err
		}
	}
	s.bumpChecksumLocked(m)
	return nil
}

// runtimeToMemoryLocked is SAVE <module> FROM RUNTIME. A SHUNNED server is
// saved as ONLINE (reference 2.2): shunning is runtime state, not config.
func (s *Server) runtimeToMemoryLocked(ctx context.Context, m module) error {
	for _, t := range m.tables {
		if err := s.copyTableLocked(ctx, "main.runtime_"+t, "main."+t); err != nil {
			return err
		}
	}
	if m.varPrefix != "" {
		f := varFilter(m.varPrefix)
		if err := s.execLocked(ctx, "DELETE FROM main.global_variables WHERE "+f); err != nil {
			return err
		}
		if err := s.execLocked(ctx, "INSERT INTO main.global_variables SELECT * FROM main.runtime_global_variables WHERE "+f); err != nil {
			return err
		}
	}
	if m.servers {
		if err := s.execLocked(ctx, "DELETE FROM main.mysql_servers"); err != nil {
			return err
		}
		for _, r := range s.runtimeServersLocked() {
			st := r.status
			if st == statusShunned {
				st = statusOnline
			}
			if err := s.execLocked(ctx, "INSERT INTO main.mysql_servers VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
				r.hostgroup, r.hostname, r.port, r.gtidPort, st, r.weight, r.compression,
				r.maxConnections, r.maxReplicationLag, r.useSSL, r.maxLatencyMs, r.comment); err != nil {
				return err
			}
		}
	}
	return nil
}

// memoryToDiskLocked is SAVE <module> TO DISK.
func (s *Server) memoryToDiskLocked(ctx context.Context, m module) error {
	return s.copyModuleLocked(ctx, m, "main", "disk")
}

// diskToMemoryLocked is LOAD <module> FROM DISK.
func (s *Server) diskToMemoryLocked(ctx context.Context, m module) error {
	return s.copyModuleLocked(ctx, m, "disk", "main")
}

func (s *Server) copyModuleLocked(ctx context.Context, m module, from, to string) error {
	tables := slices.Clone(m.tables)
	if m.servers {
		tables = append(tables, "mysql_servers")
	}
	for _, t := range tables {
		if err := s.copyTableLocked(ctx, from+"."+t, to+"."+t); err != nil {
			return err
		}
	}
	if m.varPrefix != "" {
		f := varFilter(m.varPrefix)
		if from == "disk" {
			// Variables missing on disk keep their in-memory value.
			return s.execLocked(ctx, "INSERT OR REPLACE INTO "+to+".global_variables SELECT * FROM "+from+".global_variables WHERE "+f)
		}
		if err := s.execLocked(ctx, "DELETE FROM "+to+".global_variables WHERE "+f); err != nil {
			return err
		}
		return s.execLocked(ctx, "INSERT INTO "+to+".global_variables SELECT * FROM "+from+".global_variables WHERE "+f)
	}
	return nil
}

func (s *Server) copyTableLocked(ctx context.Context, from, to string) error {
	if err := s.execLocked(ctx, "DELETE FROM "+to); err != nil {
		return err
	}
	return s.execLocked(ctx, "INSERT INTO "+to+" SELECT * FROM "+from)
}

// SetConnStats sets ConnUsed and ConnFree of one connection-pool entry, the
// way client sessions and ProxySQL's pool would move them. ConnFree must be
// 0 for an OFFLINE_SOFT/OFFLINE_HARD server (ProxySQL frees those at the
// LOAD). A server that a LOAD removed while a connection was in use leaves
// runtime once ConnUsed drops to 0, and the pool shortly after.
func (s *Server) SetConnStats(hostgroup int, host string, port int, used, free int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if used < 0 || free < 0 {
		return fmt.Errorf("proxysqltest: set conn stats: negative counter")
	}
	k := serverKey{int64(hostgroup), host, int64(port)}
	for _, r := range s.servers {
		if r.key() != k || !r.inRuntime() {
			continue
		}
		if free > 0 && (r.status == statusOfflineSoft || r.status == statusOfflineHard) {
			return fmt.Errorf("proxysqltest: set conn stats %d:%s:%d: %s server has no free connections", hostgroup, host, port, r.status)
		}
		if int64(used) > r.connUsed {
			r.connOK += int64(used) - r.connUsed
		}
		r.connUsed, r.connFree = int64(used), int64(free)
		r.maxConnUsed = max(r.maxConnUsed, r.connUsed)
		if r.removed && used == 0 {
			r.removed, r.poolOnlyUntil = false, time.Now().Add(s.opts.statsLinger)
		}
		return nil
	}
	return fmt.Errorf("proxysqltest: set conn stats: no server %d:%s:%d in runtime", hostgroup, host, port)
}
