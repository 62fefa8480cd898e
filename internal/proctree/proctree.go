// Package proctree reads the process table from /proc: one process's stat
// fields and the descendants of a process.
package proctree

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Stat holds the fields of /proc/PID/stat that capsa uses.
type Stat struct {
	State     byte   // R, S, D, Z, X, …
	PPid      int    // parent pid
	StartTime uint64 // in clock ticks since boot; tells a recycled pid apart
}

// ReadStat parses /proc/PID/stat.
func ReadStat(pid int) (Stat, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	return parseStat(pid, string(data))
}

func parseStat(pid int, s string) (Stat, error) {
	// The comm field is in parentheses and may hold anything, spaces and
	// parentheses included: the fields start after the last ')'.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 || len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return Stat{}, fmt.Errorf("malformed /proc/%d/stat: %w", pid, err)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return Stat{}, fmt.Errorf("malformed /proc/%d/stat: %w", pid, err)
	}
	return Stat{State: f[0][0], PPid: ppid, StartTime: start}, nil
}

// Descendants lists, sorted, the pids whose chain of parents leads to root.
func Descendants(root int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	parent := map[int]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := ReadStat(pid); err == nil {
			parent[pid] = st.PPid
		}
	}
	var out []int
	for pid := range parent {
		for p, hops := parent[pid], 0; p > 0 && hops < 64; p, hops = parent[p], hops+1 {
			if p == root {
				out = append(out, pid)
				break
			}
		}
	}
	sort.Ints(out)
	return out
}
