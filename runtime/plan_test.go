package runtime

import (
	"encoding/binary"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// planOp is one decoded operation, for tests.
type planOp struct {
	code   int
	fields []string
}

// decodePlan reads a plan the way init.c does.
func decodePlan(t *testing.T, b []byte) []planOp {
	t.Helper()
	if !strings.HasPrefix(string(b), planMagic) {
		t.Fatalf("plan does not start with %q", planMagic)
	}
	b = b[len(planMagic):]
	var ops []planOp
	for len(b) > 0 {
		if len(b) < 4 {
			t.Fatalf("truncated operation")
		}
		op := planOp{code: int(binary.LittleEndian.Uint16(b))}
		n := int(binary.LittleEndian.Uint16(b[2:]))
		b = b[4:]
		for i := 0; i < n; i++ {
			l := int(binary.LittleEndian.Uint32(b))
			op.fields = append(op.fields, string(b[4:4+l]))
			b = b[4+l:]
		}
		ops = append(ops, op)
	}
	return ops
}

func TestPlanFraming(t *testing.T) {
	p := newPlan()
	p.op(opLabel, "x")
	p.op(opMountIn, "/dev", "0", "tmpfs", "tmpfs", num(unix.MS_NOSUID), "mode=755")
	p.op(opProcArgs)
	ops := decodePlan(t, p.b)
	if len(ops) != 3 || ops[1].code != opMountIn || strings.Join(ops[1].fields, "|") != "/dev|0|tmpfs|tmpfs|2|mode=755" || len(ops[2].fields) != 0 {
		t.Fatalf("decoded %+v", ops)
	}
}

// hybridMountinfo is a cgroup v1 hybrid host's cgroup mounts.
var hybridMountinfo = []mountinfoEntry{
	{pre: strings.Fields("30 25 0:26 / /sys/fs/cgroup ro,nosuid"), post: strings.Fields("tmpfs tmpfs ro,mode=755")},
	{pre: strings.Fields("31 30 0:27 / /sys/fs/cgroup/unified rw"), post: strings.Fields("cgroup2 cgroup2 rw,nsdelegate")},
	{pre: strings.Fields("35 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw"), post: strings.Fields("cgroup cgroup rw,cpu,cpuacct")},
	{pre: strings.Fields("36 30 0:32 / /sys/fs/cgroup/memory rw"), post: strings.Fields("cgroup cgroup rw,memory")},
}

func TestPlanCgroupsV1(t *testing.T) {
	own := map[string]string{"": "/", "cpu,cpuacct": "/c1", "memory": "/c1"}
	m := specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "ro"}}
	p := newPlan()
	planCgroups(p, m, parseMountOptions(m.Options), hybridMountinfo, own, false)
	var got []string
	for _, op := range decodePlan(t, p.b) {
		got = append(got, num(op.code)+":"+strings.Join(op.fields, "|"))
	}
	flags := num(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	bind := num(unix.MS_BIND | unix.MS_REC)
	ro := num(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY)
	want := []string{
		"4:/sys/fs/cgroup|0|tmpfs|tmpfs|" + flags + "|mode=755",
		"4:/sys/fs/cgroup/unified|0|/sys/fs/cgroup/unified||" + bind + "|",
		"5:/sys/fs/cgroup/unified|" + ro + "||1|0",
		"4:/sys/fs/cgroup/cpu,cpuacct|0|/sys/fs/cgroup/cpu,cpuacct/c1||" + bind + "|",
		"5:/sys/fs/cgroup/cpu,cpuacct|" + ro + "||1|0",
		"6:cpu,cpuacct|/sys/fs/cgroup/cpu",
		"6:cpu,cpuacct|/sys/fs/cgroup/cpuacct",
		"4:/sys/fs/cgroup/memory|0|/sys/fs/cgroup/memory/c1||" + bind + "|",
		"5:/sys/fs/cgroup/memory|" + ro + "||1|0",
		"5:/sys/fs/cgroup|" + num(unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC) + "|mode=755|0|0",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// With a cgroup namespace each hierarchy is a fresh cgroup mount.
	p = newPlan()
	planCgroups(p, m, parseMountOptions(m.Options), hybridMountinfo, own, true)
	ops := decodePlan(t, p.b)
	if ops[2].fields[2] != "cgroup" || ops[2].fields[3] != "cgroup" || ops[2].fields[5] != "cpu,cpuacct" {
		t.Fatalf("cgroupns hierarchy mount: %+v", ops[2])
	}
	if mountPointIn(hybridMountinfo, "/sys/fs/cgroup/memory/x") != "/sys/fs/cgroup/memory" || mountPointIn(hybridMountinfo, "/srv") != "/" {
		t.Fatal("mountPointIn")
	}
}

// TestPlanFieldCountBound: a list longer than the u16 count is an error,
// never a wrapped count (the C init would read config strings as
// operations), and such configs go to the Go init.
func TestPlanFieldCountBound(t *testing.T) {
	p := newPlan()
	p.op(opProcArgs, make([]string, maxPlanFields+1)...)
	if p.err == nil || len(p.b) != len(planMagic) {
		t.Fatalf("65536 fields: err %v, plan %d bytes", p.err, len(p.b))
	}
	cfg := &initConfig{Mode: modeCreate, Spec: &specs.Spec{
		Process: &specs.Process{Args: []string{"true"}, Env: make([]string, maxPlanFields+1)},
		Linux:   &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: specs.MountNamespace}}},
	}}
	if why := planEligible(cfg, &spawnSpec{}); !strings.Contains(why, "65535") {
		t.Fatalf("planEligible = %q, want the Go init for 65536 env entries", why)
	}
}

func TestPlanRefusesNUL(t *testing.T) {
	p := newPlan()
	p.op(opMountIn, "/etc\x00/x", "0", "tmpfs", "tmpfs", "0", "")
	if p.err == nil || len(p.b) != len(planMagic) {
		t.Fatalf("NUL in a path: err %v, plan %d bytes", p.err, len(p.b))
	}
	p = newPlan()
	p.op(opSeccomp, "CSBF\x00\x01")
	if p.err != nil {
		t.Fatalf("the seccomp program is binary: %v", p.err)
	}
}
