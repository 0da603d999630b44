package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dbha/dbha/internal/api/client"
)

// endpointEnv names the environment variable that holds the agent endpoint
// when --endpoint is not given.
const endpointEnv = "DBHA_ENDPOINT"

// sandboxEndpointFile is the file, in a sandbox run dir, that holds the API
// endpoint of one of its agents (one line).
const sandboxEndpointFile = "endpoint"

// addGlobalFlags registers the flags every API command shares on root.
func addGlobalFlags(root *cobra.Command) {
	root.PersistentFlags().String("endpoint", "",
		"agent API to talk to: http://host:port, host:port or unix:///path/api.sock\n(default $"+endpointEnv+", else the running sandbox's agent)")
	root.PersistentFlags().Duration("timeout", client.DefaultTimeout, "timeout of each API request")
}

// endpointSource says where an endpoint came from, for error messages.
type endpointSource string

// resolveEndpoint picks the agent endpoint: --endpoint, else $DBHA_ENDPOINT,
// else the endpoint file of the running sandbox.
func resolveEndpoint(cmd *cobra.Command) (string, endpointSource, error) {
	if f := cmd.Flag("endpoint"); f != nil && f.Value.String() != "" {
		return f.Value.String(), "--endpoint", nil
	}
	if ep := strings.TrimSpace(os.Getenv(endpointEnv)); ep != "" {
		return ep, "$" + endpointEnv, nil
	}
	path := filepath.Join(sandboxBase(), "current", sandboxEndpointFile)
	ep, err := readEndpointFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", "", usagef("no agent endpoint: pass --endpoint http://host:port (or unix:///path/api.sock), set %s, or start a sandbox with 'sudo dbctl sandbox up'", endpointEnv)
	case err != nil:
		return "", "", usagef("no agent endpoint: %v; pass --endpoint or set %s", err, endpointEnv)
	}
	return ep, endpointSource(path), nil
}

// readEndpointFile returns the first non-empty line of path.
func readEndpointFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			return line, nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return "", fmt.Errorf("%s is empty", path)
}

// agentConn is a client plus where its endpoint came from.
type agentConn struct {
	*client.Client
	source endpointSource
}

// newAPIClient returns a client for the endpoint the command resolves to.
// A bad endpoint or timeout is a usage error. Callers Close it.
func newAPIClient(cmd *cobra.Command) (*agentConn, error) {
	ep, src, err := resolveEndpoint(cmd)
	if err != nil {
		return nil, err
	}
	timeout := client.DefaultTimeout
	if f := cmd.Flag("timeout"); f != nil {
		d, err := time.ParseDuration(f.Value.String())
		if err != nil || d <= 0 {
			return nil, usagef("--timeout %s: want a positive duration such as 5s", f.Value.String())
		}
		timeout = d
	}
	c, err := client.New(ep, client.WithTimeout(timeout))
	if err != nil {
		return nil, usagef("endpoint %q (from %s): %v", ep, src, err)
	}
	return &agentConn{Client: c, source: src}, nil
}

// explain turns an API call's error into what the DBA should read: an
// unreachable agent names the endpoint and where it came from.
func (a *agentConn) explain(err error) error {
	if errors.Is(err, client.ErrUnreachable) {
		return fmt.Errorf("cannot reach dbagent at %s (endpoint from %s); is it running? %w", a.Endpoint(), a.source, err)
	}
	return err
}
