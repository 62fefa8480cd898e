package cgroups

import (
	"errors"
	"fmt"
	"math"
	"strconv"
)

// SharesToWeight converts cgroup v1 cpu.shares [2, 262144] to cgroup v2
// cpu.weight [1, 10000] with the quadratic fit runc (>= 1.3.2) and crun
// (>= 1.23) use, which maps min to min, max to max and the default 1024 to
// the default 100. 0 means unset and stays 0.
func SharesToWeight(shares uint64) uint64 {
	switch {
	case shares == 0:
		return 0
	case shares <= 2:
		return 1
	case shares >= 262144:
		return 10000
	}
	l := math.Log2(float64(shares))
	exponent := (l*l+125*l)/612.0 - 7.0/34.0
	return uint64(math.Ceil(math.Pow(10, exponent)))
}

// WeightToShares is the inverse of SharesToWeight, rounded to the nearest
// share: update and stats code that reads cpu.weight back uses it to report
// shares.
func WeightToShares(weight uint64) uint64 {
	switch {
	case weight == 0:
		return 0
	case weight <= 1:
		return 2
	case weight >= 10000:
		return 262144
	}
	// Solve (l^2 + 125 l)/612 - 7/34 = log10(w) for l = log2(shares).
	c := (math.Log10(float64(weight)) + 7.0/34.0) * 612.0
	l := (-125 + math.Sqrt(125*125+4*c)) / 2
	return uint64(math.Round(math.Pow(2, l)))
}

// BlkioWeightToIOWeight converts a v1 blkio weight [10, 1000] to a v2
// io.weight [1, 10000] linearly, as runc does. 0 means unset.
func BlkioWeightToIOWeight(w uint16) uint64 {
	if w == 0 {
		return 0
	}
	if w < 10 {
		w = 10
	}
	return 1 + (uint64(w)-10)*9999/990
}

// MemorySwapToV2 converts the spec's swap value (memory+swap, the v1
// memsw semantics) to v2 memory.swap.max (swap alone), following runc:
// -1 is unlimited, 0 is unset, and an unlimited memory with unset swap
// makes swap unlimited too.
func MemorySwapToV2(swap, memory int64) (int64, error) {
	if memory == -1 && swap == 0 {
		return -1, nil
	}
	if swap == -1 || swap == 0 {
		return swap, nil
	}
	if memory == 0 || memory == -1 {
		return 0, errors.New("cgroups: a swap limit needs a memory limit")
	}
	if memory < 0 {
		return 0, fmt.Errorf("cgroups: invalid memory limit %d", memory)
	}
	if swap < memory {
		return 0, fmt.Errorf("cgroups: memory+swap limit %d is below the memory limit %d", swap, memory)
	}
	return swap - memory, nil
}

// CPUMax formats cpu.max from a CFS quota and period (microseconds): a
// quota <= 0 is "max"; a zero period is the kernel default 100000. It
// returns "" when neither is set.
func CPUMax(quota int64, period uint64) string {
	if quota == 0 && period == 0 {
		return ""
	}
	if period == 0 {
		period = 100000
	}
	if quota <= 0 {
		return "max " + strconv.FormatUint(period, 10)
	}
	return strconv.FormatInt(quota, 10) + " " + strconv.FormatUint(period, 10)
}

// v2Limit formats a byte or count limit for v2 files: negative is "max".
func v2Limit(v int64) string {
	if v < 0 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}
