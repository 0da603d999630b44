package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dbha/dbha/internal/cluster"
)

// HandlerOptions configures NewHandler. The zero value works: it logs
// nowhere, forwards with a 5 s timeout and limits bodies to 1 MiB.
type HandlerOptions struct {
	Logger *slog.Logger
	// Node is this agent's name, used in log lines and error messages.
	Node cluster.NodeName
	// Client forwards writes (and status reads) to the leader. Nil means a
	// client with ForwardTimeout.
	Client *http.Client
	// MaxBodyBytes bounds request bodies (0 = DefaultMaxBodyBytes). A
	// larger body is a 400 bad_request.
	MaxBodyBytes int64
}

// ForwardTimeout bounds one forwarded request when HandlerOptions.Client is
// nil.
const ForwardTimeout = 5 * time.Second

// maxForwardedResponse bounds what the handler copies back from the leader.
const maxForwardedResponse = 16 << 20

type handler struct {
	b       Backend
	log     *slog.Logger
	node    cluster.NodeName
	hc      *http.Client
	maxBody int64
	mux     *http.ServeMux
}

// NewHandler returns the /v1 API served by one agent.
//
// Reads are answered from b. GET /v1/status is forwarded to the leader when
// the local answer carries no live observations (disable with ?local=1).
// Writes that b refuses with ErrNotLeader are forwarded to b.LeaderAPI()
// with the HeaderForwarded hop header; a forwarded request is never
// forwarded again. Health endpoints are never forwarded: they are this
// node's answer for load balancers.
func NewHandler(b Backend, opts HandlerOptions) http.Handler {
	h := &handler{
		b:       b,
		log:     opts.Logger,
		node:    opts.Node,
		hc:      opts.Client,
		maxBody: opts.MaxBodyBytes,
		mux:     http.NewServeMux(),
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.hc == nil {
		h.hc = &http.Client{Timeout: ForwardTimeout}
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	h.mux.HandleFunc("GET "+PathStatus, h.status)
	h.mux.HandleFunc("GET "+PathEvents, h.events)
	h.mux.HandleFunc("GET "+PathWhy, h.why)
	h.mux.HandleFunc("POST "+PathReports, h.report)
	h.mux.HandleFunc("POST "+PathMembers, h.join)
	h.mux.HandleFunc("DELETE "+PathMembers+"/{name}", h.leave)
	h.mux.HandleFunc("POST "+PathVIPRenew, h.renewVIP)
	h.mux.HandleFunc("POST "+PathVIPMove, h.moveVIP)
	h.mux.HandleFunc("POST "+PathVIPRelease, h.releaseVIP)
	h.mux.HandleFunc("GET "+PathHealthWriter, h.health(RoleWriter))
	h.mux.HandleFunc("GET "+PathHealthReader, h.health(RoleReader))
	h.mux.HandleFunc("/", h.fallback)
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	h.mux.ServeHTTP(rec, r)
	h.log.Debug("api request", "node", h.node, "method", r.Method, "path", r.URL.Path,
		"status", rec.status, "forwarded", r.Header.Get(HeaderForwarded) != "",
		"duration", time.Since(start))
}

// statusRecorder remembers the status code for the request log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// fallback answers every request no route matched: 405 when the path exists
// under another method, 404 otherwise, both as JSON errors.
func (h *handler) fallback(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := h.mux.Handler(probe); pattern != "/" && pattern != "" {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		h.writeJSON(w, http.StatusMethodNotAllowed, Error{
			Code:    CodeMethodNotAllowed,
			Message: fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allowed, ", ")),
		})
		return
	}
	h.writeJSON(w, http.StatusNotFound, Error{
		Code:    CodeNotFound,
		Message: fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path),
	})
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	local, err := queryBool(r.URL.Query(), "local")
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	st, err := h.b.Status(r.Context())
	if err != nil {
		h.writeError(w, r, fmt.Errorf("status on %s: %w", h.node, err))
		return
	}
	if !st.Observed && !st.IsLeader && !local && r.Header.Get(HeaderForwarded) == "" {
		if leader := h.b.LeaderAPI(); leader != "" {
			fst, err := h.leaderStatus(r, leader)
			if err == nil {
				h.writeJSON(w, http.StatusOK, fst)
				return
			}
			// The committed view is still worth showing; dbctl sees
			// Observed=false and says the observations are missing.
			h.log.Warn("status: leader did not answer, serving the local view",
				"node", h.node, "leader_api", leader, "err", err)
		}
	}
	h.writeJSON(w, http.StatusOK, st)
}

// leaderStatus fetches GET /v1/status from the leader.
func (h *handler) leaderStatus(r *http.Request, leader string) (Status, error) {
	target, err := leaderURL(leader, r.URL)
	if err != nil {
		return Status{}, err
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, target, nil)
	if err != nil {
		return Status{}, fmt.Errorf("forward status to leader %s: %w", leader, err)
	}
	copyRequestHeaders(req.Header, r.Header)
	resp, err := h.hc.Do(req)
	if err != nil {
		return Status{}, fmt.Errorf("forward status to leader %s: %w", leader, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Status{}, fmt.Errorf("forward status to leader %s: http %d", leader, resp.StatusCode)
	}
	var st Status
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxForwardedResponse)).Decode(&st); err != nil {
		return Status{}, fmt.Errorf("forward status to leader %s: decode: %w", leader, err)
	}
	return st, nil
}

func (h *handler) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, err := queryUint(q, "since", 0)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	limit, err := queryUint(q, "limit", DefaultEventsLimit)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	if limit < 1 || limit > MaxEventsLimit {
		h.writeError(w, r, fmt.Errorf("query limit=%d: %w: want 1 to %d", limit, ErrBadRequest, MaxEventsLimit))
		return
	}
	evs, err := h.b.Events(r.Context(), since, int(limit))
	if err != nil {
		h.writeError(w, r, fmt.Errorf("events since %d on %s: %w", since, h.node, err))
		return
	}
	if evs == nil {
		evs = []cluster.Event{}
	}
	h.writeJSON(w, http.StatusOK, EventList{Events: evs})
}

func (h *handler) why(w http.ResponseWriter, r *http.Request) {
	epoch, err := queryUint(r.URL.Query(), "epoch", 0)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	why, err := h.b.Why(r.Context(), cluster.Epoch(epoch))
	if err != nil {
		h.writeError(w, r, fmt.Errorf("why epoch %d on %s: %w", epoch, h.node, err))
		return
	}
	if why.Events == nil {
		why.Events = []cluster.Event{}
	}
	h.writeJSON(w, http.StatusOK, why)
}

func (h *handler) report(w http.ResponseWriter, r *http.Request) {
	body, err := h.readBody(w, r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	var rep cluster.Report
	if err := decodeStrict(body, &rep); err != nil {
		h.writeError(w, r, fmt.Errorf("report: %w", err))
		return
	}
	if err := ValidateReport(rep); err != nil {
		h.writeError(w, r, err)
		return
	}
	err = h.b.Report(r.Context(), rep)
	h.finishWrite(w, r, body, fmt.Sprintf("report from %s", rep.From), err)
}

func (h *handler) join(w http.ResponseWriter, r *http.Request) {
	body, err := h.readBody(w, r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	var req JoinRequest
	if err := decodeStrict(body, &req); err != nil {
		h.writeError(w, r, fmt.Errorf("join: %w", err))
		return
	}
	if err := req.Member.Validate(); err != nil {
		h.writeError(w, r, fmt.Errorf("join: %w: %w", ErrBadRequest, err))
		return
	}
	err = h.b.Join(r.Context(), req.Member)
	h.finishWrite(w, r, body, fmt.Sprintf("join %s", req.Member.Name), err)
}

func (h *handler) leave(w http.ResponseWriter, r *http.Request) {
	name := cluster.NodeName(r.PathValue("name"))
	err := h.b.Leave(r.Context(), name)
	h.finishWrite(w, r, nil, fmt.Sprintf("leave %s", name), err)
}

// finishWrite answers a write the Backend handled: 204 on success, a
// forward to the leader on ErrNotLeader, an error otherwise.
func (h *handler) finishWrite(w http.ResponseWriter, r *http.Request, body []byte, op string, err error) {
	switch {
	case err == nil:
		w.WriteHeader(http.StatusNoContent)
	case errors.Is(err, ErrNotLeader):
		h.forward(w, r, body, op)
	default:
		h.writeError(w, r, fmt.Errorf("%s on %s: %w", op, h.node, err))
	}
}

// forward replays a write on the leader and copies its answer back.
func (h *handler) forward(w http.ResponseWriter, r *http.Request, body []byte, op string) {
	leader := h.b.LeaderAPI()
	if r.Header.Get(HeaderForwarded) != "" {
		// Whoever forwarded this thought we lead; we do not. Stop here
		// rather than bounce the request between followers.
		h.writeError(w, r, fmt.Errorf("%s on %s (forwarded here as the leader): %w", op, h.node, ErrNotLeader))
		return
	}
	if leader == "" {
		h.writeError(w, r, fmt.Errorf("%s on %s: %w", op, h.node, ErrNoLeader))
		return
	}
	target, err := leaderURL(leader, r.URL)
	if err != nil {
		h.writeError(w, r, fmt.Errorf("%s on %s: %w: %w", op, h.node, ErrUnavailable, err))
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, target, bytes.NewReader(body))
	if err != nil {
		h.writeError(w, r, fmt.Errorf("%s on %s: forward: %w", op, h.node, err))
		return
	}
	copyRequestHeaders(req.Header, r.Header)
	resp, err := h.hc.Do(req)
	if err != nil {
		h.writeError(w, r, fmt.Errorf("%s on %s: forward to leader %s: %w: %w", op, h.node, leader, ErrUnavailable, err))
		return
	}
	defer resp.Body.Close()
	h.log.Debug("api forwarded", "node", h.node, "method", r.Method, "path", r.URL.Path,
		"leader_api", leader, "status", resp.StatusCode)
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(w, io.LimitReader(resp.Body, maxForwardedResponse)); err != nil {
		h.log.Warn("api forward: copy response", "node", h.node, "leader_api", leader, "err", err)
	}
}

func (h *handler) health(role string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		hl := h.b.Health(r.Context(), role)
		if hl.Node == "" {
			hl.Node = h.node
		}
		if hl.Role == "" {
			hl.Role = role
		}
		code := http.StatusOK
		if !hl.OK {
			code = http.StatusServiceUnavailable
		}
		w.Header().Set("Cache-Control", "no-store")
		h.writeJSON(w, code, hl)
	}
}

// readBody reads at most maxBody bytes of the request body.
func (h *handler) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, fmt.Errorf("%s %s: %w: body over %d bytes", r.Method, r.URL.Path, ErrBadRequest, tooLarge.Limit)
		}
		return nil, fmt.Errorf("%s %s: %w: read body: %w", r.Method, r.URL.Path, ErrBadRequest, err)
	}
	return body, nil
}

// decodeStrict decodes exactly one JSON value and rejects unknown fields
// and trailing data.
func decodeStrict(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return fmt.Errorf("%w: empty body", ErrBadRequest)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: decode body: %w", ErrBadRequest, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: trailing data after the JSON body", ErrBadRequest)
	}
	return nil
}

func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code := StatusOf(err)
	e := Error{Code: code, Message: err.Error()}
	if code == CodeNotLeader {
		e.Leader = h.b.LeaderAPI()
	}
	if status >= http.StatusInternalServerError && code == CodeInternal {
		h.log.Error("api request failed", "node", h.node, "method", r.Method, "path", r.URL.Path, "err", err)
	} else {
		h.log.Debug("api request refused", "node", h.node, "method", r.Method, "path", r.URL.Path, "code", code, "err", err)
	}
	h.writeJSON(w, status, e)
}

func (h *handler) writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		h.log.Error("api encode response", "node", h.node, "err", err)
		status = http.StatusInternalServerError
		b, _ = json.Marshal(Error{Code: CodeInternal, Message: "encode response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// copyRequestHeaders copies the headers a forwarded request keeps and
// marks it forwarded.
func copyRequestHeaders(dst, src http.Header) {
	for _, k := range []string{"Content-Type", "Accept", "Authorization"} {
		if v := src.Get(k); v != "" {
			dst.Set(k, v)
		}
	}
	dst.Set(HeaderForwarded, "1")
}

// leaderURL builds the leader's URL for the request's path and query.
// leader is an API address as members register it: host:port or an
// http(s):// URL.
func leaderURL(leader string, u *url.URL) (string, error) {
	base := leader
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	lu, err := url.Parse(base)
	if err != nil || lu.Host == "" || (lu.Scheme != "http" && lu.Scheme != "https") {
		return "", fmt.Errorf("leader api address %q: want host:port or an http(s) URL", leader)
	}
	lu.Path, lu.RawPath, lu.RawQuery = u.Path, u.RawPath, u.RawQuery
	return lu.String(), nil
}

func queryUint(q url.Values, key string, def uint64) (uint64, error) {
	s := q.Get(key)
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("query %s=%q: %w: want a non-negative integer", key, s, ErrBadRequest)
	}
	return v, nil
}

func queryBool(q url.Values, key string) (bool, error) {
	s := q.Get(key)
	if s == "" {
		return false, nil
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("query %s=%q: %w: want 1 or 0", key, s, ErrBadRequest)
	}
	return v, nil
}
