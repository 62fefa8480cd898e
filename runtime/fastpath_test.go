package runtime

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/capsa-project/capsa/runtime/seccomp"
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
		"cgroup /sys/fs/cgroup/cpu,cpuacct/a\ncgroup /sys/fs/cgroup/freezer/a\n" +
		"ns pid\nns mount\nseccomp 0\nexec-ok 1\n"
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

// TestFastpathRecordExec: what the front's exec needs, and every case
// that must leave exec to the Go runtime (exec-ok 0).
func TestFastpathRecordExec(t *testing.T) {
	newC := func() *Container {
		return &Container{InitPid: 42, InitStart: 777, Spec: &specs.Spec{
			Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace, Path: "/run/netns/x"},
				{Type: specs.IPCNamespace}, {Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
				{Type: specs.CgroupNamespace},
			}},
		}, CgroupPaths: map[string]string{"": "/sys/fs/cgroup/a"}}
	}
	c := newC()
	c.Spec.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32}
	got := string(c.fastpathRecord())
	want := "ns pid\nns network\nns ipc\nns uts\nns mount\nns cgroup\npersonality 8\nseccomp 0\nexec-ok 1\n"
	if !strings.HasSuffix(got, want) {
		t.Fatalf("record:\n%s\nwant it to end in:\n%s", got, want)
	}

	compile := func(s *specs.LinuxSeccomp) []byte {
		f, err := seccomp.Compile(s)
		if err != nil {
			t.Fatal(err)
		}
		b, err := f.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	plain := compile(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"getcwd"}, Action: specs.ActErrno}}})
	notify := compile(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/x",
		Syscalls: []specs.LinuxSyscall{{Names: []string{"getcwd"}, Action: specs.ActNotify}}})
	for _, tc := range []struct {
		name  string
		edit  func(c *Container)
		lines []string
	}{
		{"filter in memory (create)", func(c *Container) { c.seccomp = plain }, []string{"seccomp 1", "exec-ok 1"}},
		{"filter in the state dir (update)", func(c *Container) {
			c.dir = t.TempDir()
			if err := os.WriteFile(filepath.Join(c.dir, seccompFile), plain, 0o600); err != nil {
				t.Fatal(err)
			}
		}, []string{"seccomp 1", "exec-ok 1"}},
		{"no filter in the state dir", func(c *Container) { c.dir = t.TempDir() }, []string{"seccomp 0", "exec-ok 1"}},
		{"notify", func(c *Container) { c.seccomp = notify }, []string{"seccomp 1", "exec-ok 0"}},
		{"notify in the state dir", func(c *Container) {
			c.dir = t.TempDir()
			if err := os.WriteFile(filepath.Join(c.dir, seccompFile), notify, 0o600); err != nil {
				t.Fatal(err)
			}
		}, []string{"seccomp 1", "exec-ok 0"}},
		{"corrupt filter", func(c *Container) { c.seccomp = []byte("CSBF") }, []string{"exec-ok 0"}},
		{"user namespace", func(c *Container) {
			c.Spec.Linux.Namespaces = append(c.Spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		}, []string{"ns user", "exec-ok 0"}},
		{"time namespace", func(c *Container) {
			c.Spec.Linux.Namespaces = append(c.Spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
		}, []string{"ns time", "exec-ok 0"}},
		{"unknown namespace", func(c *Container) {
			c.Spec.Linux.Namespaces = append(c.Spec.Linux.Namespaces, specs.LinuxNamespace{Type: "nosuch\nexec-ok 1"})
		}, []string{"exec-ok 0"}},
		{"unknown personality", func(c *Container) {
			c.Spec.Linux.Personality = &specs.LinuxPersonality{Domain: "PER_BSD"}
		}, []string{"exec-ok 0"}},
		{"linux personality", func(c *Container) {
			c.Spec.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux}
		}, []string{"personality 0", "exec-ok 1"}},
		{"no linux section", func(c *Container) { c.Spec.Linux = nil }, []string{"exec-ok 0"}},
		{"cgroup path with a newline", func(c *Container) { c.CgroupPaths[""] = "/sys/fs/cgroup/a\nb" }, []string{"exec-ok 0"}},
		{"unclean cgroup path", func(c *Container) { c.CgroupPaths[""] = "/sys/fs/cgroup/a/../b" }, []string{"exec-ok 0"}},
		{"v1 and v2 mixed", func(c *Container) { c.CgroupPaths["cpu"] = "/sys/fs/cgroup/cpu/a" }, []string{"exec-ok 0"}},
		{"no cgroup", func(c *Container) { c.CgroupPaths = nil }, []string{"exec-ok 1"}},
	} {
		c := newC()
		tc.edit(c)
		got := string(c.fastpathRecord())
		for _, l := range tc.lines {
			if !strings.Contains(got, "\n"+l+"\n") {
				t.Errorf("%s: record lacks %q:\n%s", tc.name, l, got)
			}
		}
		if strings.Count(got, "exec-ok ") != 1 {
			t.Errorf("%s: record has not exactly one exec-ok line:\n%s", tc.name, got)
		}
	}
}
