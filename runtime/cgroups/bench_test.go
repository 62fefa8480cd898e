package cgroups_test

import (
	"os"
	"strconv"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/capsa-project/capsa/runtime/cgroups"
)

// BenchmarkCreateApplyDestroy measures what a container start and delete
// cost in cgroup work: New, Apply with typical limits (creating the
// directories and writing the files), and Destroy of an empty cgroup.
func BenchmarkCreateApplyDestroy(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}
	limit, pids := int64(256<<20), int64(1024)
	shares := uint64(512)
	r := &specs.LinuxResources{
		Devices: cgroups.DefaultDeviceRules(),
		Memory:  &specs.LinuxMemory{Limit: &limit},
		Pids:    &specs.LinuxPids{Limit: &pids},
		CPU:     &specs.LinuxCPU{Shares: &shares},
	}
	base := "/cgtest-bench-" + strconv.Itoa(os.Getpid())
	for i := 0; i < b.N; i++ {
		m, err := cgroups.New(cgroups.Config{Path: base + "-" + strconv.Itoa(i), Resources: r})
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Apply(-1); err != nil {
			b.Fatal(err)
		}
		if err := m.Destroy(); err != nil {
			b.Fatal(err)
		}
	}
}
