package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/dbha/dbha/internal/cluster"
)

// Timeouts for bring-up steps. They are hang guards, not expectations.
const (
	syncTimeout   = 180 * time.Second
	socketTimeout = 60 * time.Second
)

func killPID(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }

// startGalera bootstraps db1 with --wsrep-new-cluster, creates the users,
// then joins the other DB nodes one at a time (one SST at a time).
func (s *Sandbox) startGalera(ctx context.Context) error {
	dbs := s.Nodes(KindDB)
	for i, n := range dbs {
		if err := s.writeDBConfig(n, "mariabackup"); err != nil {
			return fmt.Errorf("configure %s: %w", n.Name, err)
		}
		if i == 0 {
			p := pathsFor(s.State.Dir, n.Name)
			if err := installDB(ctx, p); err != nil {
				return fmt.Errorf("install datadir on %s: %w", n.Name, err)
			}
			if err := s.startMariaDB(n, "--wsrep-new-cluster"); err != nil {
				return err
			}
		} else {
			if err := s.startMariaDB(n); err != nil {
				return err
			}
		}
		if err := s.WaitSynced(ctx, n.Name, syncTimeout); err != nil {
			return err
		}
		if i == 0 {
			if err := s.withRoot(ctx, n.Name, createUsersFn); err != nil {
				return fmt.Errorf("create users on %s: %w", n.Name, err)
			}
		}
		fmt.Fprintf(s.log, "sandbox %s: %s Synced\n", s.State.Prefix, n.Name)
	}
	return nil
}

var createUsersFn = createUsers

// withRoot runs fn with a root connection to the node's mariadbd.
func (s *Sandbox) withRoot(ctx context.Context, node cluster.NodeName, fn func(context.Context, *sqlDB) error) error {
	p := pathsFor(s.State.Dir, node)
	db, err := rootDB(p.Socket)
	if err != nil {
		return err
	}
	defer db.Close()
	return fn(ctx, db)
}

// Wsrep reads a DB node's wsrep status over its unix socket.
func (s *Sandbox) Wsrep(ctx context.Context, node cluster.NodeName) (cluster.WsrepStatus, error) {
	n, err := s.Node(node)
	if err != nil {
		return cluster.WsrepStatus{}, err
	}
	if n.Kind != KindDB {
		return cluster.WsrepStatus{}, fmt.Errorf("sandbox %s: %s is not a DB node", s.State.Prefix, node)
	}
	var w cluster.WsrepStatus
	err = s.withRoot(ctx, node, func(ctx context.Context, db *sqlDB) error {
		var err error
		w, err = ReadWsrep(ctx, db)
		return err
	})
	if err != nil {
		return w, fmt.Errorf("read wsrep on %s: %w", node, err)
	}
	return w, nil
}

// Query runs one statement as root on a DB node and returns the rows as
// strings.
func (s *Sandbox) Query(ctx context.Context, node cluster.NodeName, q string, args ...any) ([][]string, error) {
	var out [][]string
	err := s.withRoot(ctx, node, func(ctx context.Context, db *sqlDB) error {
		rows, err := db.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		cols, err := rows.Columns()
		if err != nil {
			return err
		}
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				return err
			}
			row := make([]string, len(cols))
			for i, v := range vals {
				if b, ok := v.([]byte); ok {
					row[i] = string(b)
				} else if v != nil {
					row[i] = fmt.Sprint(v)
				}
			}
			out = append(out, row)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("query on %s: %w", node, err)
	}
	return out, nil
}

// WaitSynced polls until the node is Synced in a Primary component, or
// fails early when its mariadbd has exited.
func (s *Sandbox) WaitSynced(ctx context.Context, node cluster.NodeName, timeout time.Duration) error {
	n, err := s.Node(node)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	var last error
	for {
		w, err := s.Wsrep(ctx, node)
		if err == nil && w.LocalState == cluster.WsrepSynced && w.ClusterStatus == cluster.WsrepPrimary && w.Ready {
			return nil
		}
		if err == nil {
			last = fmt.Errorf("state %s, cluster %s", w.LocalStateComment, w.ClusterStatus)
		} else {
			last = err
		}
		if p, ok := n.Procs["mariadbd"]; ok && !p.Alive() && time.Since(s.State.Created) > time.Second {
			return fmt.Errorf("wait for %s Synced: mariadbd exited; see %s: %s", node,
				filepath.Join(pathsFor(s.State.Dir, node).Dir, "error.log"), tail(filepath.Join(pathsFor(s.State.Dir, node).Dir, "error.log"), 5))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("wait for %s Synced: timeout after %s: %v", node, timeout, last)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for %s Synced: %w", node, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	ls := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}

// KillMariaDB sends SIGKILL to a DB node's mariadbd.
func (s *Sandbox) KillMariaDB(node cluster.NodeName) error {
	return s.Signal(node, "mariadbd", syscall.SIGKILL)
}

// Signal sends sig to one of a node's processes (by its recorded PID).
func (s *Sandbox) Signal(node cluster.NodeName, proc string, sig syscall.Signal) error {
	n, err := s.Node(node)
	if err != nil {
		return err
	}
	p, ok := n.Procs[proc]
	if !ok {
		return fmt.Errorf("sandbox %s: %s has no %s process", s.State.Prefix, node, proc)
	}
	return p.Signal(sig)
}

// WaitGone polls until the node's process has exited.
func (s *Sandbox) WaitGone(ctx context.Context, node cluster.NodeName, proc string, timeout time.Duration) error {
	n, err := s.Node(node)
	if err != nil {
		return err
	}
	if !waitGone(ctx, n.Procs[proc], timeout) {
		return fmt.Errorf("%s on %s still running after %s", proc, node, timeout)
	}
	return nil
}

// RestartMariaDB starts a stopped or killed DB node so that it rejoins by
// IST: it waits until the survivors have evicted the old instance (a node
// restarted before that sits non-Primary for about 19 s), recovers the
// position with --wsrep-recover, and starts with --wsrep-start-position.
func (s *Sandbox) RestartMariaDB(ctx context.Context, node cluster.NodeName) error {
	n, err := s.Node(node)
	if err != nil {
		return err
	}
	if p, ok := n.Procs["mariadbd"]; ok && p.Alive() {
		return fmt.Errorf("restart %s: mariadbd still running (pid %d)", node, p.PID)
	}
	if err := s.WaitEvicted(ctx, node, syncTimeout); err != nil {
		return fmt.Errorf("restart %s: %w", node, err)
	}
	p := pathsFor(s.State.Dir, node)
	pos, err := recoverPosition(ctx, n.Namespace, p)
	if err != nil {
		return fmt.Errorf("restart %s: %w", node, err)
	}
	return s.startMariaDB(n, "--wsrep-start-position="+pos)
}

// WaitEvicted polls the other running DB nodes until none counts node in
// its cluster size any more.
func (s *Sandbox) WaitEvicted(ctx context.Context, node cluster.NodeName, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		running, maxSize := 0, 0
		for _, m := range s.Nodes(KindDB) {
			if m.Name == node || !m.Procs["mariadbd"].Alive() {
				continue
			}
			running++
			w, err := s.Wsrep(ctx, m.Name)
			if err != nil {
				continue
			}
			maxSize = max(maxSize, w.ClusterSize)
		}
		if running == 0 || maxSize <= running {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("survivors still count %s after %s (cluster size %d, %d running)", node, timeout, maxSize, running)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ErrLink is returned when a link change fails.
var ErrLink = errors.New("link change failed")

// LinkDown cuts a node's only link (its hub-side veth port goes down).
func (s *Sandbox) LinkDown(ctx context.Context, node cluster.NodeName) error {
	return s.setLink(ctx, node, "down")
}

// LinkUp restores a node's link.
func (s *Sandbox) LinkUp(ctx context.Context, node cluster.NodeName) error {
	return s.setLink(ctx, node, "up")
}

func (s *Sandbox) setLink(ctx context.Context, node cluster.NodeName, state string) error {
	n, err := s.Node(node)
	if err != nil {
		return err
	}
	if err := ipCmd(ctx, "-n", s.State.Hub, "link", "set", n.HubPort, state); err != nil {
		return fmt.Errorf("%w: %s %s: %v", ErrLink, node, state, err)
	}
	return nil
}

// Partition cuts traffic between every node of a and every node of b, in
// both directions, with blackhole routes inside the nodes' namespaces.
// Nodes not named keep talking to both sides.
func (s *Sandbox) Partition(ctx context.Context, a, b []cluster.NodeName) error {
	return s.routes(ctx, "add", a, b)
}

// Heal removes the blackhole routes that Partition(a, b) added.
func (s *Sandbox) Heal(ctx context.Context, a, b []cluster.NodeName) error {
	return s.routes(ctx, "del", a, b)
}

func (s *Sandbox) routes(ctx context.Context, op string, a, b []cluster.NodeName) error {
	for _, x := range a {
		nx, err := s.Node(x)
		if err != nil {
			return err
		}
		for _, y := range b {
			ny, err := s.Node(y)
			if err != nil {
				return err
			}
			if err := ipCmd(ctx, "-n", nx.Namespace, "route", op, "blackhole", ny.Addr+"/32"); err != nil {
				return err
			}
			if err := ipCmd(ctx, "-n", ny.Namespace, "route", op, "blackhole", nx.Addr+"/32"); err != nil {
				return err
			}
		}
	}
	return nil
}

// Exec runs a command inside a node's namespace and returns its stdout.
func (s *Sandbox) Exec(ctx context.Context, node cluster.NodeName, argv ...string) ([]byte, error) {
	n, err := s.Node(node)
	if err != nil {
		return nil, err
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("exec on %s: empty command", node)
	}
	return run(ctx, "ip", append([]string{"netns", "exec", n.Namespace}, argv...)...)
}
