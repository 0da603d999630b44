package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
)

// CommandType is the first byte of every encoded raft log entry.
type CommandType uint8

// Command types. Values are persisted in raft logs: never renumber.
const (
	CmdSetTopology   CommandType = 1
	CmdUpsertMember  CommandType = 2
	CmdRemoveMember  CommandType = 3
	CmdSetMemberFlag CommandType = 4
	CmdSetVIPOwner   CommandType = 5
	CmdSetJoinGrant  CommandType = 6
	CmdSetBootstrap  CommandType = 7
	CmdSetSwitchover CommandType = 8
	CmdAppendEvent   CommandType = 9
)

// Command is a typed state change for the FSM. Time-dependent values are
// carried in the command (set by the leader) so Apply stays deterministic.
type Command interface {
	Type() CommandType
}

// SetTopology commits a new topology. Epoch must be exactly one more than
// the current epoch. Event, when set, is appended to the ring.
type SetTopology struct {
	Topology Topology `json:"topology"`
	Event    *Event   `json:"event,omitempty"`
}

// UpsertMember adds or replaces a member.
type UpsertMember struct {
	Member Member `json:"member"`
	Event  *Event `json:"event,omitempty"`
}

// RemoveMember removes a member.
type RemoveMember struct {
	Name  NodeName `json:"name"`
	Event *Event   `json:"event,omitempty"`
}

// MemberFlag names an admin flag.
type MemberFlag string

const (
	FlagMaintenance MemberFlag = "maintenance"
	FlagDraining    MemberFlag = "draining"
	FlagNoWriter    MemberFlag = "no_writer"
)

// SetMemberFlag sets or clears one admin flag of a member.
type SetMemberFlag struct {
	Name  NodeName   `json:"name"`
	Flag  MemberFlag `json:"flag"`
	Value bool       `json:"value"`
	Event *Event     `json:"event,omitempty"`
}

// SetVIPOwner assigns the VIP (Owner empty = nobody). LeaseEpoch must be
// exactly one more than the current lease epoch.
type SetVIPOwner struct {
	VIP   VIPState `json:"vip"`
	Event *Event   `json:"event,omitempty"`
}

// SetJoinGrant sets (Grant non-nil) or clears the join grant.
type SetJoinGrant struct {
	Grant *JoinGrant `json:"grant"`
	Event *Event     `json:"event,omitempty"`
}

// SetBootstrap sets or clears the bootstrap grant.
type SetBootstrap struct {
	Grant *BootstrapGrant `json:"grant"`
	Event *Event          `json:"event,omitempty"`
}

// SetSwitchover sets or clears the switchover in progress.
type SetSwitchover struct {
	Switchover *Switchover `json:"switchover"`
	Event      *Event      `json:"event,omitempty"`
}

// AppendEvent records an event with no other state change.
type AppendEvent struct {
	Event Event `json:"event"`
}

func (SetTopology) Type() CommandType   { return CmdSetTopology }
func (UpsertMember) Type() CommandType  { return CmdUpsertMember }
func (RemoveMember) Type() CommandType  { return CmdRemoveMember }
func (SetMemberFlag) Type() CommandType { return CmdSetMemberFlag }
func (SetVIPOwner) Type() CommandType   { return CmdSetVIPOwner }
func (SetJoinGrant) Type() CommandType  { return CmdSetJoinGrant }
func (SetBootstrap) Type() CommandType  { return CmdSetBootstrap }
func (SetSwitchover) Type() CommandType { return CmdSetSwitchover }
func (AppendEvent) Type() CommandType   { return CmdAppendEvent }

// ErrUnknownCommand is returned when a log entry has an unknown type byte.
var ErrUnknownCommand = errors.New("unknown command type")

// ErrCorruptCommand is returned when a log entry cannot be decoded.
var ErrCorruptCommand = errors.New("corrupt command")

// newCommand is the decode dispatch table.
var newCommand = map[CommandType]func() Command{
	CmdSetTopology:   func() Command { return &SetTopology{} },
	CmdUpsertMember:  func() Command { return &UpsertMember{} },
	CmdRemoveMember:  func() Command { return &RemoveMember{} },
	CmdSetMemberFlag: func() Command { return &SetMemberFlag{} },
	CmdSetVIPOwner:   func() Command { return &SetVIPOwner{} },
	CmdSetJoinGrant:  func() Command { return &SetJoinGrant{} },
	CmdSetBootstrap:  func() Command { return &SetBootstrap{} },
	CmdSetSwitchover: func() Command { return &SetSwitchover{} },
	CmdAppendEvent:   func() Command { return &AppendEvent{} },
}

// Encode serializes c as one type byte followed by JSON.
func Encode(c Command) ([]byte, error) {
	if c == nil {
		return nil, fmt.Errorf("encode command: nil")
	}
	if _, ok := newCommand[c.Type()]; !ok {
		return nil, fmt.Errorf("encode command type %d: %w", c.Type(), ErrUnknownCommand)
	}
	body, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode command type %d: %w", c.Type(), err)
	}
	return append([]byte{byte(c.Type())}, body...), nil
}

// Decode parses a log entry produced by Encode. It returns a pointer to the
// concrete command type (for example *SetTopology).
func Decode(b []byte) (Command, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("decode command of %d bytes: %w", len(b), ErrCorruptCommand)
	}
	mk, ok := newCommand[CommandType(b[0])]
	if !ok {
		return nil, fmt.Errorf("decode command type %d: %w", b[0], ErrUnknownCommand)
	}
	c := mk()
	if err := json.Unmarshal(b[1:], c); err != nil {
		return nil, fmt.Errorf("decode command type %d: %w: %v", b[0], ErrCorruptCommand, err)
	}
	return c, nil
}
