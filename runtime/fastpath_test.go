package runtime

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestFastpathRecord(t *testing.T) {
	spec := &specs.Spec{
		Process: &specs.Process{Args: []string{"true"}},
		Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{
			{Type: specs.PIDNamespace}, {Type: specs.MountNamespace},
		}},
	}
	c := &Container{InitPid: 42, InitStart: 777, Spec: spec, CgroupPaths: map[string]string{
		"freezer": "/sys/fs/cgroup/freezer/a",
		"cpu":     "/sys/fs/cgroup/cpu,cpuacct/a",
		"cpuacct": "/sys/fs/cgroup/cpu,cpuacct/a",
	}}
	want := "capsa-fastpath 1\npid 42\nstart 777\npidns 1\nstart-ok 1\ndelete-ok 1\n" +
		"freezer /sys/fs/cgroup/freezer/a/freezer.state\n" +
		"cgroup /sys/fs/cgroup/cpu,cpuacct/a\ncgroup /sys/fs/cgroup/freezer/a\n"
	if got := string(c.fastpathRecord()); got != want {
		t.Fatalf("record:\n%s\nwant:\n%s", got, want)
	}

	// Hooks, a joined pid namespace, no process and a path the line format
	// cannot hold each turn a fast path off.
	spec.Linux.Namespaces[0].Path = "/proc/1/ns/pid"
	spec.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: "/bin/true"}}}
	spec.Process = nil
	c.CgroupPaths = map[string]string{"": "/sys/fs/cgroup/a\nb"}
	got := string(c.fastpathRecord())
	for _, line := range []string{"pidns 0", "start-ok 0", "delete-ok 0"} {
		if !strings.Contains(got, line+"\n") {
			t.Errorf("record lacks %q:\n%s", line, got)
		}
	}
	if strings.Contains(got, "cgroup ") {
		t.Errorf("record names a cgroup path with a newline:\n%s", got)
	}
	spec.Hooks = &specs.Hooks{Poststart: []specs.Hook{{Path: "/bin/true"}}}
	spec.Process = &specs.Process{}
	c.CgroupPaths = map[string]string{"": "/sys/fs/cgroup/a"}
	got = string(c.fastpathRecord())
	if !strings.Contains(got, "start-ok 0\ndelete-ok 1\nfreezer /sys/fs/cgroup/a/cgroup.freeze\n") {
		t.Errorf("poststart hook or v2 freezer wrong:\n%s", got)
	}
}
