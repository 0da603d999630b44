package planner

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dbha/dbha/internal/cluster"
)

var update = flag.Bool("update", false, "rewrite the golden scenario files in testdata/")

// Scenario files (testdata/*.txt) drive a small simulated cluster through
// time. Setup and fault lines change the simulation; each "run DURATION" line
// polls every agent once per poll interval for that long, calls Plan after
// each poll, applies the commands to the simulated state and prints every
// committed change. The printed block follows the run line after "----" and
// ends at the next blank line. `go test ./internal/planner -update` rewrites
// the blocks.
//
// Lines (names are node names; # starts a comment):
//
//	policy key=value...            fail_after recover_after agent_timeout
//	                               writer_is_reader vip_lease vip_kernel
//	                               vip_skew poll (the poll interval)
//	member NAME roles=db,proxy [priority=N] [committed=N]
//	health DB HEALTH               what the DB agent reports while mysql is up
//	committed DB N                 wsrep_last_committed the agent reports
//	mysql DB up|down               mariadbd runs or not (down: the agent
//	                               reports unreachable and probes fail)
//	agent NAME stop|start          the agent stops or starts reporting
//	proxy NAME healthy|unhealthy   the proxy's own health
//	renew NAME on|off              whether the proxy sends VIP renewals (the
//	                               leader answers as CanRenewVIP says)
//	probe PROXY DB up|down         cut or heal one probe path
//	flag NAME FLAG on|off          maintenance, draining or no_writer
//	grant join JOINER DONOR | grant none
//	newleader                      leader change: reports and renewals are
//	                               forgotten, LeaderSince is now
//	run DURATION
type sim struct {
	t           *testing.T
	now         time.Time
	poll        time.Duration
	policy      Policy
	state       cluster.State
	reports     map[cluster.NodeName]Received
	renewals    map[cluster.NodeName]time.Time
	leaderSince time.Time
	agents      map[cluster.NodeName]*simAgent
}

type simAgent struct {
	stopped   bool
	health    cluster.Health
	mysqlDown bool
	committed int64
	// last reported health and its streak; reset when the agent restarts.
	last   cluster.Health
	streak int
	// proxy side
	unhealthy bool
	noRenew   bool
	applied   cluster.Epoch
	cut       map[cluster.NodeName]bool
}

func newSim(t *testing.T) *sim {
	return &sim{
		t: t, now: start(), poll: 250 * time.Millisecond, policy: DefaultPolicy(),
		state: cluster.NewState(), reports: map[cluster.NodeName]Received{},
		renewals: map[cluster.NodeName]time.Time{}, leaderSince: start(),
		agents: map[cluster.NodeName]*simAgent{},
	}
}

func TestScenarios(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 6 {
		t.Fatalf("found %d scenario files, want at least 6", len(files))
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) { runScenario(t, file) })
	}
}

func runScenario(t *testing.T, file string) {
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	s := newSim(t)
	var out []string
	runs := 0
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		out = append(out, line)
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if fields[0] != "run" {
			if err := s.do(fields); err != nil {
				t.Fatalf("%s:%d: %v", file, i+1, err)
			}
			continue
		}
		runs++
		d, err := time.ParseDuration(argAt(fields, 1))
		if err != nil {
			t.Fatalf("%s:%d: %v", file, i+1, err)
		}
		got := s.run(d)
		// The expected block is "----" and the lines up to the next blank
		// line, which the loop then copies as the separator.
		var want []string
		hasBlock := i+1 < len(lines) && lines[i+1] == "----"
		if hasBlock {
			for i += 2; i < len(lines) && lines[i] != ""; i++ {
				want = append(want, lines[i])
			}
			i-- // back to the block's last line; the loop moves on to the blank
		} else if !*update {
			t.Fatalf("%s:%d: run without a ---- block; use -update", file, i+1)
		}
		if !*update && !slices.Equal(got, want) {
			t.Errorf("%s: run %s output differs (rerun with -update to accept)\n--- want\n%s\n--- got\n%s",
				file, fields[1], strings.Join(want, "\n"), strings.Join(got, "\n"))
		}
		out = append(out, "----")
		out = append(out, got...)
	}
	if runs == 0 {
		t.Fatalf("%s: no run lines", file)
	}
	if *update {
		text := strings.TrimRight(strings.Join(out, "\n"), "\n") + "\n"
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func argAt(f []string, i int) string {
	if i < len(f) {
		return f[i]
	}
	return ""
}

// do executes one setup or fault line.
func (s *sim) do(f []string) error {
	need := func(n int) error {
		if len(f) < n {
			return fmt.Errorf("%s: want at least %d fields, got %q", f[0], n, strings.Join(f, " "))
		}
		return nil
	}
	agent := func(name string) (*simAgent, error) {
		a, ok := s.agents[cluster.NodeName(name)]
		if !ok {
			return nil, fmt.Errorf("%s: unknown node %s", f[0], name)
		}
		return a, nil
	}
	onOff := func(v string) (bool, error) {
		switch v {
		case "on", "up", "start", "healthy":
			return true, nil
		case "off", "down", "stop", "unhealthy":
			return false, nil
		}
		return false, fmt.Errorf("%s: bad switch %q", f[0], v)
	}
	switch f[0] {
	case "policy":
		return s.setPolicy(f[1:])
	case "member":
		if err := need(2); err != nil {
			return err
		}
		return s.addMember(f[1], f[2:])
	case "health", "committed", "mysql", "agent", "proxy", "renew", "flag", "probe":
		if err := need(3); err != nil {
			return err
		}
		a, err := agent(f[1])
		if err != nil {
			return err
		}
		return s.setAgent(a, f, onOff)
	case "grant":
		if err := need(2); err != nil {
			return err
		}
		if f[1] == "none" {
			s.state.Grants.Join = nil
			return nil
		}
		if err := need(4); err != nil {
			return err
		}
		s.state.Grants.Join = &cluster.JoinGrant{Joiner: cluster.NodeName(f[2]), Donor: cluster.NodeName(f[3]), Since: s.now}
		return nil
	case "newleader":
		clear(s.reports)
		clear(s.renewals)
		s.leaderSince = s.now
		return nil
	}
	return fmt.Errorf("unknown line %q", strings.Join(f, " "))
}

func (s *sim) setAgent(a *simAgent, f []string, onOff func(string) (bool, error)) error {
	switch f[0] {
	case "health":
		a.health = cluster.Health(f[2])
		return nil
	case "committed":
		n, err := strconv.ParseInt(f[2], 10, 64)
		a.committed = n
		return err
	case "mysql":
		up, err := onOff(f[2])
		a.mysqlDown = !up
		return err
	case "agent":
		up, err := onOff(f[2])
		if up && a.stopped {
			a.last, a.streak = "", 0 // a restarted agent counts afresh
		}
		a.stopped = !up
		return err
	case "proxy":
		ok, err := onOff(f[2])
		a.unhealthy = !ok
		return err
	case "renew":
		ok, err := onOff(f[2])
		a.noRenew = !ok
		return err
	case "probe":
		if len(f) < 4 {
			return fmt.Errorf("probe: want PROXY DB up|down")
		}
		up, err := onOff(f[3])
		a.cut[cluster.NodeName(f[2])] = !up
		return err
	case "flag":
		if len(f) < 4 {
			return fmt.Errorf("flag: want NAME FLAG on|off")
		}
		on, err := onOff(f[3])
		if err != nil {
			return err
		}
		m := s.state.Members[cluster.NodeName(f[1])]
		switch cluster.MemberFlag(f[2]) {
		case cluster.FlagMaintenance:
			m.Maintenance = on
		case cluster.FlagDraining:
			m.Draining = on
		case cluster.FlagNoWriter:
			m.NoWriter = on
		default:
			return fmt.Errorf("flag: unknown flag %q", f[2])
		}
		s.state.Members[m.Name] = m
	}
	return nil
}

func (s *sim) setPolicy(kvs []string) error {
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("policy: want key=value, got %q", kv)
		}
		var err error
		dur := func(d *time.Duration) { *d, err = time.ParseDuration(v) }
		switch k {
		case "fail_after":
			s.policy.FailAfter, err = strconv.Atoi(v)
		case "recover_after":
			s.policy.RecoverAfter, err = strconv.Atoi(v)
		case "writer_is_reader":
			s.policy.WriterIsReader, err = strconv.ParseBool(v)
		case "agent_timeout":
			dur(&s.policy.AgentTimeout)
		case "vip_lease":
			dur(&s.policy.VIPLease)
		case "vip_kernel":
			dur(&s.policy.VIPKernelLifetime)
		case "vip_skew":
			dur(&s.policy.VIPSkew)
		case "poll":
			dur(&s.poll)
		default:
			return fmt.Errorf("policy: unknown key %q", k)
		}
		if err != nil {
			return fmt.Errorf("policy %s: %w", k, err)
		}
	}
	return nil
}

func (s *sim) addMember(name string, kvs []string) error {
	n := cluster.NodeName(name)
	m := cluster.Member{Name: n, RaftAddr: name + ":7000"}
	a := &simAgent{health: cluster.HealthOK, committed: 100, cut: map[cluster.NodeName]bool{}}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("member %s: want key=value, got %q", name, kv)
		}
		var err error
		switch k {
		case "roles":
			for _, r := range strings.Split(v, ",") {
				m.Roles = append(m.Roles, cluster.Role(r))
			}
		case "priority":
			m.Priority, err = strconv.Atoi(v)
		case "committed":
			a.committed, err = strconv.ParseInt(v, 10, 64)
		default:
			return fmt.Errorf("member %s: unknown key %q", name, k)
		}
		if err != nil {
			return fmt.Errorf("member %s %s: %w", name, k, err)
		}
	}
	if m.Has(cluster.RoleDB) {
		m.MySQLAddr = name + ":3306"
	}
	if err := m.Validate(); err != nil {
		return err
	}
	s.state.Members[n] = m
	s.agents[n] = a
	return nil
}

// run polls for d and returns the printed commits plus a final summary line.
func (s *sim) run(d time.Duration) []string {
	var out []string
	end := s.now.Add(d)
	for s.now.Before(end) {
		s.now = s.now.Add(s.poll)
		s.pollAgents()
		dec := Plan(s.input())
		for _, c := range dec.Commands {
			out = append(out, s.describe(c)...)
		}
		applyDecision(s.t, &s.state, dec)
		if st, ok := topoOf(dec); ok {
			if err := st.Topology.Validate(); err != nil {
				s.t.Errorf("t=%s: invalid topology: %v", s.clock(), err)
			}
		}
	}
	vip := string(s.state.VIP.Owner)
	if vip == "" {
		vip = "-"
	}
	out = append(out, fmt.Sprintf("end t=%s epoch=%d %s vip=%s/%d",
		s.clock(), s.state.Topology.Epoch, routing(s.state.Topology), vip, s.state.VIP.LeaseEpoch))
	return out
}

func (s *sim) clock() string { return fmt.Sprintf("%.3fs", s.now.Sub(start()).Seconds()) }

func (s *sim) describe(c cluster.Command) []string {
	switch c := c.(type) {
	case cluster.SetTopology:
		return []string{
			fmt.Sprintf("t=%s epoch=%d %s %s", s.clock(), c.Topology.Epoch, c.Event.Kind, routing(c.Topology)),
			"  " + c.Event.Reason,
		}
	case cluster.SetVIPOwner:
		owner := string(c.VIP.Owner)
		if owner == "" {
			owner = "-"
		}
		return []string{
			fmt.Sprintf("t=%s vip owner=%s lease_epoch=%d", s.clock(), owner, c.VIP.LeaseEpoch),
			"  " + c.Event.Reason,
		}
	}
	return []string{fmt.Sprintf("t=%s unexpected %T", s.clock(), c)}
}

// pollAgents makes every running agent report once and renew its VIP lease
// when it owns the VIP.
func (s *sim) pollAgents() {
	names := make([]cluster.NodeName, 0, len(s.agents))
	for n := range s.agents {
		names = append(names, n)
	}
	slices.Sort(names)
	var dbs []cluster.NodeName
	for _, n := range names {
		if s.state.Members[n].Has(cluster.RoleDB) {
			dbs = append(dbs, n)
		}
	}
	for _, n := range names {
		a, m := s.agents[n], s.state.Members[n]
		if a.stopped {
			continue
		}
		rep := cluster.Report{From: n, Sent: s.now}
		if m.Has(cluster.RoleDB) {
			h := a.health
			if a.mysqlDown {
				h = cluster.HealthUnreachable
			}
			if h == a.last {
				a.streak++
			} else {
				a.last, a.streak = h, 1
			}
			rep.DB = dbReport(n, h, a.streak, a.committed, s.now).Report.DB
		}
		if m.Has(cluster.RoleProxy) {
			if !a.unhealthy {
				a.applied = s.state.Topology.Epoch
			}
			pr := &cluster.ProxyReport{Node: n, Time: s.now, Healthy: !a.unhealthy, AppliedEpoch: a.applied}
			for _, db := range dbs {
				pr.Probes = append(pr.Probes, cluster.ProbeResult{Node: db, Reachable: !s.agents[db].mysqlDown && !a.cut[db]})
			}
			rep.Proxy = pr
		}
		s.reports[n] = Received{Report: rep, At: s.now}
	}
	// The VIP owner renews its lease; the leader answers as CanRenewVIP says.
	if n := s.state.VIP.Owner; n != "" {
		if a, ok := s.agents[n]; ok && !a.stopped && !a.noRenew {
			if ok, _ := CanRenewVIP(s.input(), n); ok {
				s.renewals[n] = s.now
			}
		}
	}
}

func (s *sim) input() Input {
	return Input{Now: s.now, State: s.state, Reports: s.reports, VIPRenewals: s.renewals,
		LeaderSince: s.leaderSince, Policy: s.policy}
}
