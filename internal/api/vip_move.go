package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/dbha/dbha/internal/cluster"
)

// PathVIPMove is POST /v1/vip/move: a planned VIP move (dbctl vip move).
// The leader releases the current owner first and gives the VIP to the
// target once the old owner's lease is over, so two proxies never hold it.
// Followers forward it like every write.
//
// Answers: 202 with a VIPMove when the move started; 400 for a bad body;
// 404 when the target is not a member; 409 when the target is not a proxy,
// is not eligible (unhealthy, silent, behind on epochs, in maintenance or
// draining) or owns the VIP already.
const PathVIPMove = "/v1/vip/move"

// PathVIPRelease is POST /v1/vip/release: a proxy confirms to the leader
// that it removed the VIP address (after losing ownership, or on shutdown
// with vip.on_stop: release), so the leader can hand the VIP over without
// waiting for the old lease. Answers 204; 409 when the lease epoch is not
// the committed one (the confirmation is stale and ignored). Followers
// forward it.
const PathVIPRelease = "/v1/vip/release"

// VIPMoveRequest is the body of POST /v1/vip/move.
type VIPMoveRequest struct {
	To cluster.NodeName `json:"to"`
}

// VIPMove is the answer of POST /v1/vip/move: the move the leader started.
// It is done when GET /v1/status shows the VIP owned by To.
type VIPMove struct {
	To    cluster.NodeName `json:"to"`
	From  cluster.NodeName `json:"from,omitempty"` // the owner when the move started
	Since time.Time        `json:"since"`
}

// VIPReleaseRequest is the body of POST /v1/vip/release. LeaseEpoch is the
// committed lease epoch the proxy saw when it removed the address; the
// leader ignores (409) a release for any other epoch, so a late
// confirmation cannot end a lease the proxy took afterwards.
type VIPReleaseRequest struct {
	Node       cluster.NodeName `json:"node"`
	LeaseEpoch uint64           `json:"lease_epoch"`
}

func (h *handler) moveVIP(w http.ResponseWriter, r *http.Request) {
	body, err := h.readBody(w, r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	var req VIPMoveRequest
	if err := decodeStrict(body, &req); err != nil {
		h.writeError(w, r, fmt.Errorf("vip move: %w", err))
		return
	}
	if req.To == "" {
		h.writeError(w, r, fmt.Errorf("vip move: %w: empty target (want {\"to\": \"<proxy>\"})", ErrBadRequest))
		return
	}
	mv, err := h.b.MoveVIP(r.Context(), req.To)
	switch {
	case err == nil:
		h.writeJSON(w, http.StatusAccepted, mv)
	case errors.Is(err, ErrNotLeader):
		h.forward(w, r, body, fmt.Sprintf("vip move to %s", req.To))
	default:
		h.writeError(w, r, fmt.Errorf("vip move to %s on %s: %w", req.To, h.node, err))
	}
}

func (h *handler) releaseVIP(w http.ResponseWriter, r *http.Request) {
	body, err := h.readBody(w, r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	var req VIPReleaseRequest
	if err := decodeStrict(body, &req); err != nil {
		h.writeError(w, r, fmt.Errorf("vip release: %w", err))
		return
	}
	if req.Node == "" {
		h.writeError(w, r, fmt.Errorf("vip release: %w: empty node", ErrBadRequest))
		return
	}
	if req.LeaseEpoch == 0 {
		h.writeError(w, r, fmt.Errorf("vip release from %s: %w: lease_epoch must be positive", req.Node, ErrBadRequest))
		return
	}
	err = h.b.ReleaseVIP(r.Context(), req.Node, req.LeaseEpoch)
	h.finishWrite(w, r, body, fmt.Sprintf("vip release from %s", req.Node), err)
}
