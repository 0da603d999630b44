package cluster

// MaxEvents bounds the Events ring in the replicated state.
const MaxEvents = 500

// State is the replicated state held by the raft FSM. The FSM applies
// Commands to it; everything else reads copies of it.
//
// State.Apply (in apply.go) is the only code that changes a State, and it is
// deterministic: no clock, no network, no logging.
type State struct {
	Members  map[NodeName]Member `json:"members"`
	Topology Topology            `json:"topology"`
	VIP      VIPState            `json:"vip"`
	Grants   Grants              `json:"grants"`
	Events   []Event             `json:"events"` // oldest first, at most MaxEvents
	// NextEventSeq is the Seq the next appended event gets.
	NextEventSeq uint64 `json:"next_event_seq"`
}

// NewState returns an empty state at epoch 0.
func NewState() State {
	return State{Members: map[NodeName]Member{}, Topology: Topology{}.Normalize(), Events: []Event{}, NextEventSeq: 1}
}
