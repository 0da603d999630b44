package api

import (
	"context"
	"errors"
	"net/http"
)

// ErrUnavailable is returned by a Backend that cannot answer right now (for
// example while the agent is starting). The handlers map it to 503
// CodeUnavailable.
var ErrUnavailable = errors.New("unavailable")

// errorMapping maps sentinel errors to an HTTP status and a stable code.
// The first row whose sentinel matches (errors.Is) wins.
var errorMapping = []struct {
	err    error
	status int
	code   string
}{
	{ErrBadRequest, http.StatusBadRequest, CodeBadRequest},
	{ErrNotFound, http.StatusNotFound, CodeNotFound},
	{ErrConflict, http.StatusConflict, CodeConflict},
	{ErrNotLeader, http.StatusServiceUnavailable, CodeNotLeader},
	{ErrNoLeader, http.StatusServiceUnavailable, CodeNoLeader},
	{ErrUnavailable, http.StatusServiceUnavailable, CodeUnavailable},
	{context.DeadlineExceeded, http.StatusServiceUnavailable, CodeUnavailable},
	{context.Canceled, http.StatusServiceUnavailable, CodeUnavailable},
}

// StatusOf returns the HTTP status and the stable code for a Backend error.
// Errors that match no sentinel are 500 CodeInternal.
func StatusOf(err error) (status int, code string) {
	for _, m := range errorMapping {
		if errors.Is(err, m.err) {
			return m.status, m.code
		}
	}
	return http.StatusInternalServerError, CodeInternal
}

// Sentinel returns the sentinel error for a stable code, or nil for codes
// without one. The client uses it so that callers can test API errors with
// errors.Is(err, api.ErrNotLeader) too.
func Sentinel(code string) error {
	for _, m := range errorMapping {
		if m.code == code {
			return m.err
		}
	}
	return nil
}
