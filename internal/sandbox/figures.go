package sandbox

import (
	"slices"
	"time"
)

// Median is the middle of ds (the upper middle for an even count), rounded
// to the millisecond, for a test's figures; 0 for none.
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2].Round(time.Millisecond)
}

// RoundAll rounds every duration to the millisecond, for a test's figures.
func RoundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}
