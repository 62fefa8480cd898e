package cgroups

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Update holds the resource flags of the `update` command (runc's names in
// the comments); a nil field leaves the current value alone.
type Update struct {
	BlkioWeight       *uint16 // --blkio-weight
	CPUPeriod         *uint64 // --cpu-period
	CPUQuota          *int64  // --cpu-quota
	CPUBurst          *uint64 // --cpu-burst
	CPUShares         *uint64 // --cpu-share
	CPURtPeriod       *uint64 // --cpu-rt-period
	CPURtRuntime      *int64  // --cpu-rt-runtime
	CpusetCpus        *string // --cpuset-cpus
	CpusetMems        *string // --cpuset-mems
	Memory            *int64  // --memory
	MemoryReservation *int64  // --memory-reservation
	MemorySwap        *int64  // --memory-swap
	KernelMemoryTCP   *int64  // --kernel-memory-tcp
	PidsLimit         *int64  // --pids-limit
}

// MergeResources returns a copy of cur with every field that upd sets
// replacing cur's: what `update -r resources.json` does. Lists (devices,
// throttles, hugepages) are replaced whole; unified keys are merged.
func MergeResources(cur, upd *specs.LinuxResources) (*specs.LinuxResources, error) {
	out, err := cloneResources(cur)
	if err != nil {
		return nil, err
	}
	if upd == nil {
		return out, nil
	}
	u, err := cloneResources(upd)
	if err != nil {
		return nil, err
	}
	if u.Devices != nil {
		out.Devices = u.Devices
	}
	if u.Memory != nil {
		if out.Memory == nil {
			out.Memory = &specs.LinuxMemory{}
		}
		mergeNonNil(&out.Memory.Limit, u.Memory.Limit)
		mergeNonNil(&out.Memory.Reservation, u.Memory.Reservation)
		mergeNonNil(&out.Memory.Swap, u.Memory.Swap)
		mergeNonNil(&out.Memory.KernelTCP, u.Memory.KernelTCP)
		mergeNonNil(&out.Memory.Swappiness, u.Memory.Swappiness)
		mergeNonNil(&out.Memory.DisableOOMKiller, u.Memory.DisableOOMKiller)
		mergeNonNil(&out.Memory.UseHierarchy, u.Memory.UseHierarchy)
		mergeNonNil(&out.Memory.CheckBeforeUpdate, u.Memory.CheckBeforeUpdate)
	}
	if u.CPU != nil {
		if out.CPU == nil {
			out.CPU = &specs.LinuxCPU{}
		}
		mergeNonNil(&out.CPU.Shares, u.CPU.Shares)
		mergeNonNil(&out.CPU.Quota, u.CPU.Quota)
		mergeNonNil(&out.CPU.Burst, u.CPU.Burst)
		mergeNonNil(&out.CPU.Period, u.CPU.Period)
		mergeNonNil(&out.CPU.RealtimeRuntime, u.CPU.RealtimeRuntime)
		mergeNonNil(&out.CPU.RealtimePeriod, u.CPU.RealtimePeriod)
		mergeNonNil(&out.CPU.Idle, u.CPU.Idle)
		if u.CPU.Cpus != "" {
			out.CPU.Cpus = u.CPU.Cpus
		}
		if u.CPU.Mems != "" {
			out.CPU.Mems = u.CPU.Mems
		}
	}
	if u.Pids != nil {
		out.Pids = u.Pids
	}
	if u.BlockIO != nil {
		if out.BlockIO == nil {
			out.BlockIO = &specs.LinuxBlockIO{}
		}
		b, ub := out.BlockIO, u.BlockIO
		mergeNonNil(&b.Weight, ub.Weight)
		mergeNonNil(&b.LeafWeight, ub.LeafWeight)
		if ub.WeightDevice != nil {
			b.WeightDevice = ub.WeightDevice
		}
		if ub.ThrottleReadBpsDevice != nil {
			b.ThrottleReadBpsDevice = ub.ThrottleReadBpsDevice
		}
		if ub.ThrottleWriteBpsDevice != nil {
			b.ThrottleWriteBpsDevice = ub.ThrottleWriteBpsDevice
		}
		if ub.ThrottleReadIOPSDevice != nil {
			b.ThrottleReadIOPSDevice = ub.ThrottleReadIOPSDevice
		}
		if ub.ThrottleWriteIOPSDevice != nil {
			b.ThrottleWriteIOPSDevice = ub.ThrottleWriteIOPSDevice
		}
	}
	if u.HugepageLimits != nil {
		out.HugepageLimits = u.HugepageLimits
	}
	if u.Network != nil {
		out.Network = u.Network
	}
	if u.Rdma != nil {
		out.Rdma = u.Rdma
	}
	for k, v := range u.Unified {
		if out.Unified == nil {
			out.Unified = map[string]string{}
		}
		out.Unified[k] = v
	}
	return out, nil
}

// ApplyUpdate returns a copy of cur with the flags of u applied, the way
// `update --memory ... --cpu-quota ...` changes a container.
func ApplyUpdate(cur *specs.LinuxResources, u Update) (*specs.LinuxResources, error) {
	upd := &specs.LinuxResources{}
	if u.Memory != nil || u.MemoryReservation != nil || u.MemorySwap != nil || u.KernelMemoryTCP != nil {
		upd.Memory = &specs.LinuxMemory{Limit: u.Memory, Reservation: u.MemoryReservation, Swap: u.MemorySwap, KernelTCP: u.KernelMemoryTCP}
	}
	if u.CPUPeriod != nil || u.CPUQuota != nil || u.CPUBurst != nil || u.CPUShares != nil || u.CPURtPeriod != nil || u.CPURtRuntime != nil || u.CpusetCpus != nil || u.CpusetMems != nil {
		upd.CPU = &specs.LinuxCPU{Period: u.CPUPeriod, Quota: u.CPUQuota, Burst: u.CPUBurst, Shares: u.CPUShares,
			RealtimePeriod: u.CPURtPeriod, RealtimeRuntime: u.CPURtRuntime}
		if u.CpusetCpus != nil {
			upd.CPU.Cpus = *u.CpusetCpus
		}
		if u.CpusetMems != nil {
			upd.CPU.Mems = *u.CpusetMems
		}
	}
	if u.PidsLimit != nil {
		upd.Pids = &specs.LinuxPids{Limit: u.PidsLimit}
	}
	if u.BlkioWeight != nil {
		upd.BlockIO = &specs.LinuxBlockIO{Weight: u.BlkioWeight}
	}
	out, err := MergeResources(cur, upd)
	if err != nil {
		return nil, err
	}
	// runc: raising the memory limit above an old memory+swap limit that
	// the user did not restate would make the write fail, so swap follows
	// an unlimited memory.
	if u.Memory != nil && *u.Memory == -1 && u.MemorySwap == nil && out.Memory.Swap != nil {
		v := int64(-1)
		out.Memory.Swap = &v
	}
	return out, nil
}

func mergeNonNil[T any](dst **T, src *T) {
	if src != nil {
		v := *src
		*dst = &v
	}
}

// cloneResources deep-copies r (nil gives an empty value).
func cloneResources(r *specs.LinuxResources) (*specs.LinuxResources, error) {
	out := &specs.LinuxResources{}
	if r == nil {
		return out, nil
	}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("cgroups: copy resources: %w", err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return nil, fmt.Errorf("cgroups: copy resources: %w", err)
	}
	return out, nil
}

// ParseBytes parses a size as the update command takes it: a plain number
// of bytes, "-1" for unlimited, or a number with a binary unit suffix
// (k, m, g, t, p; optionally followed by "b"/"ib"; case-insensitive), as
// docker's RAMInBytes does: "512m" is 512 MiB.
func ParseBytes(s string) (int64, error) {
	orig := s
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "-1" {
		return -1, nil
	}
	s = strings.TrimSuffix(strings.TrimSuffix(s, "b"), "i")
	mult := int64(1)
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k':
			mult = 1 << 10
		case 'm':
			mult = 1 << 20
		case 'g':
			mult = 1 << 30
		case 't':
			mult = 1 << 40
		case 'p':
			mult = 1 << 50
		}
		if mult != 1 {
			s = s[:n-1]
		}
	}
	if s == "" || strings.ContainsAny(s, "+-") {
		return 0, fmt.Errorf("cgroups: invalid size %q", orig)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("cgroups: invalid size %q", orig)
	}
	v := f * float64(mult)
	if v >= 1<<63 {
		return 0, fmt.Errorf("cgroups: size %q is too large", orig)
	}
	return int64(v), nil
}
