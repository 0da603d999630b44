package vip

import (
	"slices"
	"testing"
)

func TestParseCapEff(t *testing.T) {
	status := []byte("Name:\tdbagent\nCapInh:\t0000000000000000\nCapPrm:\t0000000000003000\nCapEff:\t0000000000003000\nCapBnd:\t000001ffffffffff\n")
	got, err := parseCapEff(status)
	if err != nil {
		t.Fatal(err)
	}
	if got != 0x3000 {
		t.Fatalf("CapEff = %#x, want 0x3000", got)
	}
	if _, err := parseCapEff([]byte("Name:\tx\n")); err == nil {
		t.Fatal("missing CapEff line: want error")
	}
	if _, err := parseCapEff([]byte("CapEff:\tzz\n")); err == nil {
		t.Fatal("garbage CapEff: want error")
	}
}

func TestMissingCaps(t *testing.T) {
	for _, tc := range []struct {
		mask uint64
		want []string
	}{
		{0, []string{"CAP_NET_ADMIN", "CAP_NET_RAW"}},
		{1 << 12, []string{"CAP_NET_RAW"}},
		{1 << 13, []string{"CAP_NET_ADMIN"}},
		{1<<12 | 1<<13, nil},
		{0x000001fffeffffff, nil}, // root in a container without CAP_SYS_RESOURCE
		{0x000001ffffffcfff, []string{"CAP_NET_ADMIN", "CAP_NET_RAW"}},
	} {
		if got := missingCaps(tc.mask); !slices.Equal(got, tc.want) {
			t.Errorf("missingCaps(%#x) = %v, want %v", tc.mask, got, tc.want)
		}
	}
}
