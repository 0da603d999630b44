package api

import (
	"fmt"
	"net/http"

	"github.com/dbha/dbha/internal/cluster"
)

// PathVIPRenew is POST /v1/vip/renew: the VIP owner renews its lease with
// the raft leader (DESIGN §5). Followers forward it like every write.
const PathVIPRenew = "/v1/vip/renew"

// VIPRenewRequest is the body of POST /v1/vip/renew.
type VIPRenewRequest struct {
	Node cluster.NodeName `json:"node"`
}

// VIPLease is the leader's answer to a lease renewal. Granted is true only
// for the committed owner while the leader finds it fit; the owner's lease
// then runs until the moment it *sent* the renewal plus vip.lease. A refusal
// is an answer, not an error: Reason says why.
type VIPLease struct {
	Granted    bool             `json:"granted"`
	Owner      cluster.NodeName `json:"owner,omitempty"` // the committed owner, as the leader sees it
	LeaseEpoch uint64           `json:"lease_epoch"`
	Reason     string           `json:"reason,omitempty"`
}

func (h *handler) renewVIP(w http.ResponseWriter, r *http.Request) {
	body, err := h.readBody(w, r)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	var req VIPRenewRequest
	if err := decodeStrict(body, &req); err != nil {
		h.writeError(w, r, fmt.Errorf("vip renew: %w", err))
		return
	}
	if req.Node == "" {
		h.writeError(w, r, fmt.Errorf("vip renew: %w: empty node", ErrBadRequest))
		return
	}
	lease, err := h.b.RenewVIP(r.Context(), req.Node)
	if err != nil {
		h.finishWrite(w, r, body, fmt.Sprintf("vip renew from %s", req.Node), err)
		return
	}
	h.writeJSON(w, http.StatusOK, lease)
}
