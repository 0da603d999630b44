package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/dbha/dbha/internal/sandbox"
)

// defaultSandboxBase is where `dbctl sandbox` keeps run dirs; `current`
// points at the live one so `down` and `status` work from any shell.
const defaultSandboxBase = "/run/dbha/sandbox"

func sandboxBase() string {
	if d := os.Getenv("DBHA_SANDBOX_DIR"); d != "" {
		return d
	}
	return defaultSandboxBase
}

func newSandboxCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Run a local Galera + proxy test-bed in network namespaces",
		Long: `sandbox builds a test-bed on this machine: N MariaDB Galera nodes, M proxy
nodes and a client, each in its own network namespace behind one bridge, with
addresses from 198.18.0.0/24 that exist only inside those namespaces.

It needs root. Its state lives in ` + defaultSandboxBase + `/<prefix> (override the
base with DBHA_SANDBOX_DIR); ` + defaultSandboxBase + `/current points at the live run,
so 'dbctl sandbox down' works from another shell.`,
	}
	cmd.AddCommand(newSandboxUpCmd(), newSandboxDownCmd(), newSandboxStatusCmd())
	return cmd
}

func newSandboxUpCmd() *cobra.Command {
	var (
		o        sandbox.Options
		noAgents bool
		agentBin string
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Create the namespaces, start Galera and the proxies, wait until all are Synced",
		Example: `  sudo dbctl sandbox up                 # 3 DB nodes, 2 proxies
  sudo dbctl sandbox up --db 5 --proxies 3`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			warnings, err := o.Validate()
			if err != nil {
				return usageError{err}
			}
			for _, w := range warnings {
				fmt.Fprintf(cmd.ErrOrStderr(), "dbctl: warning: %s\n", w)
			}
			if err := sandbox.Preflight(); err != nil {
				return err
			}
			base := sandboxBase()
			if cur, err := loadCurrent(base); err == nil {
				return fmt.Errorf("a sandbox (%s) is already up in %s; run 'dbctl sandbox down' first", cur.State.Prefix, cur.State.Dir)
			}
			if err := os.MkdirAll(base, 0o755); err != nil {
				return err
			}
			if err := os.Chmod(base, 0o755); err != nil {
				return err
			}
			dir, err := os.MkdirTemp(base, "run-")
			if err != nil {
				return err
			}
			o.Dir = dir
			o.Log = cmd.ErrOrStderr()
			if !noAgents {
				bin, err := findAgent(agentBin)
				if err != nil {
					os.RemoveAll(dir)
					return err
				}
				o.AgentBinary = bin
			}
			s, err := sandbox.Up(cmd.Context(), o)
			if err != nil {
				os.RemoveAll(dir)
				return err
			}
			current := filepath.Join(base, "current")
			_ = os.Remove(current)
			if err := os.Symlink(dir, current); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "sandbox %s is up (state in %s)\n", s.State.Prefix, dir)
			return nil
		},
	}
	cmd.Flags().IntVar(&o.DBNodes, "db", 3, "number of Galera DB nodes (3 or more to survive a node loss)")
	cmd.Flags().IntVar(&o.Proxies, "proxies", 2, "number of proxy nodes")
	cmd.Flags().BoolVar(&noAgents, "no-agents", false, "run no dbagent; HAProxy gets a static config that sends writes to db1")
	cmd.Flags().StringVar(&agentBin, "agent-bin", "", "dbagent binary (default: dbagent next to dbctl, then $PATH)")
	cmd.Flags().StringVar(&o.ProxySQLBin, "proxysql-bin", os.Getenv("DBHA_PROXYSQL_BIN"), "run this ProxySQL binary on the proxy nodes instead of HAProxy (default $DBHA_PROXYSQL_BIN; see docs/proxysql.md)")
	return cmd
}

// findAgent locates the dbagent binary the sandbox runs on every node.
func findAgent(flag string) (string, error) {
	if flag != "" {
		if _, err := os.Stat(flag); err != nil {
			return "", usagef("--agent-bin: %v", err)
		}
		return filepath.Abs(flag)
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "dbagent")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("dbagent"); err == nil {
		return filepath.Abs(p)
	}
	return "", errors.New("dbagent binary not found next to dbctl or in $PATH; run 'make build', pass --agent-bin, or use --no-agents")
}

func loadCurrent(base string) (*sandbox.Sandbox, error) {
	dir, err := filepath.EvalSymlinks(filepath.Join(base, "current"))
	if err != nil {
		return nil, err
	}
	return sandbox.Load(dir)
}

func newSandboxDownCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "down",
		Short: "Stop every sandbox process and remove its namespaces and files",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if os.Geteuid() != 0 {
				return sandbox.ErrNotRoot
			}
			base := sandboxBase()
			s, err := loadCurrent(base)
			if errors.Is(err, fs.ErrNotExist) {
				fmt.Fprintln(cmd.OutOrStdout(), "no sandbox is up")
				_ = os.Remove(filepath.Join(base, "current"))
				return nil
			}
			if err != nil {
				return err
			}
			s.SetLog(cmd.ErrOrStderr())
			if err := s.Down(cmd.Context()); err != nil {
				return err
			}
			_ = os.RemoveAll(s.State.Dir)
			_ = os.Remove(filepath.Join(base, "current"))
			fmt.Fprintf(cmd.OutOrStdout(), "sandbox %s is down\n", s.State.Prefix)
			return nil
		},
	}
}

func newSandboxStatusCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each sandbox node: namespace, address, processes, wsrep state",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if os.Geteuid() != 0 {
				return sandbox.ErrNotRoot
			}
			s, err := loadCurrent(sandboxBase())
			if errors.Is(err, fs.ErrNotExist) {
				return exitError{ExitUnhealthy, errors.New("no sandbox is up; start one with 'sudo dbctl sandbox up'")}
			}
			if err != nil {
				return err
			}
			st := s.Status(cmd.Context())
			if output == "json" {
				return writeJSON(cmd.OutOrStdout(), st)
			}
			writeSandboxTable(cmd.OutOrStdout(), s, st)
			for _, n := range st {
				if !n.NSPresent {
					return exitError{ExitUnhealthy, fmt.Errorf("namespace %s is missing", n.Namespace)}
				}
				for name, up := range n.Procs {
					if !up {
						return exitError{ExitUnhealthy, fmt.Errorf("%s on %s is not running", name, n.Name)}
					}
				}
			}
			return nil
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}

func writeSandboxTable(w io.Writer, s *sandbox.Sandbox, st []sandbox.NodeStatus) {
	fmt.Fprintf(w, "sandbox %s (run dir %s)\n", s.State.Prefix, s.State.Dir)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tKIND\tNAMESPACE\tADDRESS\tPROCESSES\tWSREP STATE\tCLUSTER\tSIZE")
	for _, n := range st {
		var procs []string
		for name, up := range n.Procs {
			state := "running"
			if !up {
				state = "DEAD"
			}
			procs = append(procs, name+":"+state)
		}
		sort.Strings(procs)
		if len(procs) == 0 {
			procs = []string{"-"}
		}
		wsrep, status, size := "-", "-", "-"
		if n.Wsrep != nil {
			wsrep, status, size = n.Wsrep.LocalStateComment, n.Wsrep.ClusterStatus, fmt.Sprint(n.Wsrep.ClusterSize)
		} else if n.WsrepErr != "" {
			wsrep = "unreachable"
		}
		ns := n.Namespace
		if !n.NSPresent {
			ns += " (MISSING)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, n.Kind, ns, n.Addr, strings.Join(procs, ","), wsrep, status, size)
	}
	tw.Flush()
}

func addOutputFlag(cmd *cobra.Command, output *string) {
	cmd.Flags().StringVarP(output, "output", "o", "table", "output format: table or json")
}

func checkOutput(output string) error {
	if output != "table" && output != "json" {
		return usagef("--output %q: want table or json", output)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
