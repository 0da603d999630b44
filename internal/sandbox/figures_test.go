package sandbox

import (
	"slices"
	"testing"
	"time"
)

func TestMedianAndRoundAll(t *testing.T) {
	ds := []time.Duration{3 * time.Second, 1*time.Second + 400*time.Microsecond, 2*time.Second + 600*time.Microsecond}
	if got, want := Median(ds), 2*time.Second+time.Millisecond; got != want {
		t.Errorf("Median(%v) = %s, want %s", ds, got, want)
	}
	if ds[0] != 3*time.Second {
		t.Errorf("Median reordered its input: %v", ds)
	}
	if got := Median(nil); got != 0 {
		t.Errorf("Median(nil) = %s, want 0", got)
	}
	want := []time.Duration{3 * time.Second, time.Second, 2*time.Second + time.Millisecond}
	if got := RoundAll(ds); !slices.Equal(got, want) {
		t.Errorf("RoundAll(%v) = %v, want %v", ds, got, want)
	}
}
