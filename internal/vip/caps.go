package vip

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Capability bit numbers from linux/capability.h.
const (
	capNetAdmin = 12
	capNetRaw   = 13
)

// parseCapEff returns the CapEff mask from the text of /proc/self/status.
func parseCapEff(status []byte) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != "CapEff" {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(value), 16, 64)
		if err != nil {
			return 0, fmt.Errorf("parse CapEff %q: %w", strings.TrimSpace(value), err)
		}
		return mask, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read status: %w", err)
	}
	return 0, fmt.Errorf("no CapEff line in status")
}

// missingCaps lists the required capabilities absent from an effective mask:
// netlink address changes need CAP_NET_ADMIN, the raw packet socket for
// gratuitous ARP needs CAP_NET_RAW.
func missingCaps(capEff uint64) []string {
	required := [...]struct {
		bit  uint
		name string
	}{
		{capNetAdmin, "CAP_NET_ADMIN"},
		{capNetRaw, "CAP_NET_RAW"},
	}
	var missing []string
	for _, c := range required {
		if capEff&(1<<c.bit) == 0 {
			missing = append(missing, c.name)
		}
	}
	return missing
}
