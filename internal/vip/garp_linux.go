//go:build linux

package vip

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
)

// garpWriteTimeout bounds one raw-socket write; a packet socket write
// normally completes at once.
const garpWriteTimeout = time.Second

// garpSender writes one prebuilt gratuitous ARP frame. It is safe for
// concurrent use (the socket is; the frame is never modified).
type garpSender struct {
	conn    *packet.Conn
	ifindex int
	mac     net.HardwareAddr
	frame   []byte
}

// openGARPSender opens a raw packet socket on the interface. It must run in
// the interface's network namespace.
//
// The frame is an ARP announcement (RFC 5227 §2.3): an ARP request, sender
// and target protocol address both the VIP, sender hardware address the
// interface's MAC, sent to the ethernet broadcast address. Linux treats
// such a request as gratuitous (sip == tip) and overrides an existing
// neighbour entry with the new MAC regardless of locktime; it does not
// create entries on hosts that never talked to the VIP (arp_accept=0),
// which is what we want.
func openGARPSender(ifindex int, ifname string, mac net.HardwareAddr, ip netip.Addr) (*garpSender, error) {
	p, err := arp.NewPacket(arp.OperationRequest, mac, ip, net.HardwareAddr{0, 0, 0, 0, 0, 0}, ip)
	if err != nil {
		return nil, fmt.Errorf("build arp packet: %w", err)
	}
	pb, err := p.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("marshal arp packet: %w", err)
	}
	f := &ethernet.Frame{
		Destination: ethernet.Broadcast,
		Source:      mac,
		EtherType:   ethernet.EtherTypeARP,
		Payload:     pb,
	}
	frame, err := f.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("marshal ethernet frame: %w", err)
	}

	// The socket only sends. A drop-all filter, installed before bind,
	// keeps the kernel from queueing every ARP on the link for a reader
	// that never comes.
	dropAll, err := bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: 0}})
	if err != nil {
		return nil, fmt.Errorf("assemble bpf filter: %w", err)
	}
	ifi := &net.Interface{Index: ifindex, Name: ifname, HardwareAddr: mac}
	conn, err := packet.Listen(ifi, packet.Raw, int(ethernet.EtherTypeARP), &packet.Config{Filter: dropAll})
	if err != nil {
		return nil, err
	}
	return &garpSender{conn: conn, ifindex: ifindex, mac: mac, frame: frame}, nil
}

// send writes the announcement once.
func (s *garpSender) send() error {
	if err := s.conn.SetWriteDeadline(time.Now().Add(garpWriteTimeout)); err != nil {
		return err
	}
	_, err := s.conn.WriteTo(s.frame, &packet.Addr{HardwareAddr: ethernet.Broadcast})
	return err
}

func (s *garpSender) close() error { return s.conn.Close() }
