// Package client is the typed client of dbagent's HTTP API. dbctl uses it
// and nothing else to talk to agents.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dbha/dbha/internal/api"
	"github.com/dbha/dbha/internal/cluster"
)

// DefaultTimeout bounds one request unless WithTimeout says otherwise.
const DefaultTimeout = 5 * time.Second

// maxResponse bounds a response body.
const maxResponse = 16 << 20

// unixHost is the URL host of requests sent over a unix socket.
const unixHost = "dbha"

// ErrBadEndpoint is returned by New for an endpoint it cannot parse.
var ErrBadEndpoint = errors.New("bad endpoint")

// ErrUnreachable wraps every error that happened before the agent answered
// (dial, timeout, connection reset): the agent may be down.
var ErrUnreachable = errors.New("agent unreachable")

// APIError is an error answer of the API: the HTTP status and the stable
// code and message of its api.Error body.
type APIError struct {
	Status  int
	Code    string
	Message string
	Leader  string // the leader's API address, for not_leader
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s (http %d): %s", e.Code, e.Status, e.Message)
}

// Is makes errors.Is(err, api.ErrNotLeader) and the other api sentinels
// match an APIError with the corresponding code.
func (e *APIError) Is(target error) bool {
	s := api.Sentinel(e.Code)
	return s != nil && s == target
}

// IsCode reports whether err is an APIError with the given stable code.
func IsCode(err error, code string) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Code == code
}

// Client talks to one agent. It is safe for concurrent use.
type Client struct {
	endpoint string // as given to New
	base     string // scheme://host used to build request URLs
	hc       *http.Client
	tr       *http.Transport
}

type options struct {
	timeout time.Duration
}

// Option configures New.
type Option func(*options)

// WithTimeout bounds each request (default DefaultTimeout; 0 = no bound
// beyond the context's).
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// New returns a client for endpoint: "http://host:port", "https://host:port",
// "host:port", or "unix:///path/to/api.sock".
func New(endpoint string, opts ...Option) (*Client, error) {
	o := options{timeout: DefaultTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	tr := &http.Transport{
		Proxy:               nil, // agents are never reached through HTTP_PROXY
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
		TLSHandshakeTimeout: 5 * time.Second,
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	c := &Client{endpoint: endpoint, tr: tr, hc: &http.Client{Transport: tr, Timeout: o.timeout}}
	switch {
	case strings.HasPrefix(endpoint, "unix://"):
		path := strings.TrimPrefix(endpoint, "unix://")
		if path == "" || !strings.HasPrefix(path, "/") {
			return nil, fmt.Errorf("client %q: %w: want unix:///absolute/path.sock", endpoint, ErrBadEndpoint)
		}
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", path)
		}
		c.base = "http://" + unixHost
	default:
		raw := endpoint
		if !strings.Contains(raw, "://") {
			raw = "http://" + raw
		}
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("client %q: %w: %w", endpoint, ErrBadEndpoint, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return nil, fmt.Errorf("client %q: %w: scheme %q, want http, https or unix", endpoint, ErrBadEndpoint, u.Scheme)
		}
		if u.Host == "" || u.Port() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return nil, fmt.Errorf("client %q: %w: want host:port, http://host:port or unix:///path.sock", endpoint, ErrBadEndpoint)
		}
		tr.DialContext = dialer.DialContext
		c.base = u.Scheme + "://" + u.Host
	}
	return c, nil
}

// Endpoint returns the endpoint the client was created with.
func (c *Client) Endpoint() string { return c.endpoint }

// Close releases idle connections.
func (c *Client) Close() { c.tr.CloseIdleConnections() }

// Status returns the cluster status. A follower forwards the request to the
// leader so that the answer carries live observations when it can.
func (c *Client) Status(ctx context.Context) (api.Status, error) {
	var st api.Status
	err := c.do(ctx, http.MethodGet, api.PathStatus, nil, nil, &st)
	return st, err
}

// LocalStatus returns the answering agent's own view, never forwarded.
func (c *Client) LocalStatus(ctx context.Context) (api.Status, error) {
	var st api.Status
	err := c.do(ctx, http.MethodGet, api.PathStatus, url.Values{"local": {"1"}}, nil, &st)
	return st, err
}

// Events returns up to limit events with Seq greater than since, oldest
// first. limit 0 means the server's default.
func (c *Client) Events(ctx context.Context, since uint64, limit int) ([]cluster.Event, error) {
	q := url.Values{}
	if since > 0 {
		q.Set("since", strconv.FormatUint(since, 10))
	}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var el api.EventList
	if err := c.do(ctx, http.MethodGet, api.PathEvents, q, nil, &el); err != nil {
		return nil, err
	}
	return el.Events, nil
}

// Why explains the topology at epoch (0 = the current one).
func (c *Client) Why(ctx context.Context, epoch cluster.Epoch) (api.Why, error) {
	q := url.Values{}
	if epoch > 0 {
		q.Set("epoch", strconv.FormatUint(uint64(epoch), 10))
	}
	var w api.Why
	err := c.do(ctx, http.MethodGet, api.PathWhy, q, nil, &w)
	return w, err
}

// Report sends an observation report to the leader (through this agent).
func (c *Client) Report(ctx context.Context, r cluster.Report) error {
	return c.do(ctx, http.MethodPost, api.PathReports, nil, r, nil)
}

// Join registers a member.
func (c *Client) Join(ctx context.Context, m cluster.Member) error {
	return c.do(ctx, http.MethodPost, api.PathMembers, nil, api.JoinRequest{Member: m}, nil)
}

// Leave removes a member.
func (c *Client) Leave(ctx context.Context, name cluster.NodeName) error {
	return c.do(ctx, http.MethodDelete, api.PathMembers+"/"+url.PathEscape(string(name)), nil, nil, nil)
}

// Health asks the agent whether its node may take the role's traffic
// (api.RoleWriter or api.RoleReader). An unhealthy answer (HTTP 503 with a
// Health body) is a Health with OK false and a nil error.
func (c *Client) Health(ctx context.Context, role string) (api.Health, error) {
	path := "/v1/health/" + url.PathEscape(role)
	resp, body, err := c.roundTrip(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return api.Health{}, err
	}
	if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusServiceUnavailable {
		var hb struct {
			api.Health
			Code string `json:"code"`
		}
		if err := json.Unmarshal(body, &hb); err == nil && hb.Code == "" && hb.Role != "" {
			return hb.Health, nil
		}
	}
	return api.Health{}, c.errorFrom(http.MethodGet, path, resp, body)
}

// do sends one request and decodes a 2xx answer into out (when non-nil).
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	resp, body, err := c.roundTrip(ctx, method, path, q, in)
	if err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return c.errorFrom(method, path, resp, body)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s %s on %s: decode response: %w", method, path, c.endpoint, err)
	}
	return nil
}

func (c *Client) roundTrip(ctx context.Context, method, path string, q url.Values, in any) (*http.Response, []byte, error) {
	target := c.base + path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	var rd io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, nil, fmt.Errorf("%s %s on %s: encode request: %w", method, path, c.endpoint, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s on %s: %w", method, path, c.endpoint, err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s on %s: %w: %w", method, path, c.endpoint, ErrUnreachable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s on %s: read response: %w: %w", method, path, c.endpoint, ErrUnreachable, err)
	}
	return resp, body, nil
}

// errorFrom builds the error for a non-2xx answer. A body that is not an
// api.Error (a proxy in between, an old agent) still gives an APIError,
// with a code derived from the status.
func (c *Client) errorFrom(method, path string, resp *http.Response, body []byte) error {
	ae := &APIError{Status: resp.StatusCode}
	var e api.Error
	if err := json.Unmarshal(body, &e); err == nil && e.Code != "" {
		ae.Code, ae.Message, ae.Leader = e.Code, e.Message, e.Leader
	} else {
		ae.Code = codeForStatus(resp.StatusCode)
		ae.Message = strings.TrimSpace(string(body))
		if len(ae.Message) > 200 {
			ae.Message = ae.Message[:200] + "..."
		}
		if ae.Message == "" {
			ae.Message = http.StatusText(resp.StatusCode)
		}
	}
	return fmt.Errorf("%s %s on %s: %w", method, path, c.endpoint, ae)
}

func codeForStatus(status int) string {
	switch {
	case status == http.StatusNotFound:
		return api.CodeNotFound
	case status == http.StatusConflict:
		return api.CodeConflict
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return api.CodeUnauthorized
	case status == http.StatusServiceUnavailable:
		return api.CodeUnavailable
	case status >= 400 && status < 500:
		return api.CodeBadRequest
	default:
		return api.CodeInternal
	}
}

// RenewVIP renews node's VIP lease with the leader (through this agent,
// which forwards it). A refused renewal is a VIPLease with Granted false
// and a nil error.
func (c *Client) RenewVIP(ctx context.Context, node cluster.NodeName) (api.VIPLease, error) {
	var l api.VIPLease
	err := c.do(ctx, http.MethodPost, api.PathVIPRenew, nil, api.VIPRenewRequest{Node: node}, &l)
	return l, err
}

// MoveVIP asks the leader (through this agent, which forwards it) to move
// the VIP to node to. The move runs in the background: poll Status until
// the VIP's owner is to. Errors match api.ErrNotFound (not a member) and
// api.ErrConflict (not an eligible proxy, or the owner already).
func (c *Client) MoveVIP(ctx context.Context, to cluster.NodeName) (api.VIPMove, error) {
	var mv api.VIPMove
	err := c.do(ctx, http.MethodPost, api.PathVIPMove, nil, api.VIPMoveRequest{To: to}, &mv)
	return mv, err
}

// ReleaseVIP tells the leader that node removed the VIP address while the
// committed lease epoch was leaseEpoch. A stale epoch is api.ErrConflict.
func (c *Client) ReleaseVIP(ctx context.Context, node cluster.NodeName, leaseEpoch uint64) error {
	return c.do(ctx, http.MethodPost, api.PathVIPRelease, nil, api.VIPReleaseRequest{Node: node, LeaseEpoch: leaseEpoch}, nil)
}
