package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/capsa-project/capsa/runtime/seccomp"
)

// busyboxPath is the static busybox from Debian's busybox-static package.
const busyboxPath = "/bin/busybox"

// makeRootfs fills dir with busybox-static and links for the few applets the
// benchmark runs. Every container of every runtime shares it, read-only.
func makeRootfs(dir string) error {
	for _, d := range []string{"bin", "proc", "dev", "sys", "tmp", "etc", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	data, err := os.ReadFile(busyboxPath)
	if err != nil {
		return fmt.Errorf("read busybox (apt-get install busybox-static): %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "busybox"), data, 0o755); err != nil {
		return err
	}
	for _, applet := range []string{"true", "sleep", "sh"} {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", applet)); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
}

// runcDefaultSpec is the config that `runc spec` (runc 1.1) writes, running
// args. It is spelled out here rather than taken from capsa's runtime
// package, so that the benchmark's workload does not change with the code
// under test.
func runcDefaultSpec(args ...string) *specs.Spec {
	caps := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	return &specs.Spec{
		// crun 1.8.1 rejects configs newer than it knows ("unknown version
		// specified").
		Version: "1.0.2",
		Process: &specs.Process{
			User: specs.User{UID: 0, GID: 0},
			Args: args,
			Env:  []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"},
			Cwd:  "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: "rootfs", Readonly: true},
		Hostname: "bench",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		},
		Linux: &specs.Linux{
			Resources: &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
			},
			MaskedPaths: []string{"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
}

// containerSpec is the config of one benchmark container. The minimal spec
// is what the reference figures were taken with: namespaces pid, mount,
// uts, ipc and net, pivot_root into a read-only rootfs, /proc and a /dev
// tmpfs, and a cgroupsPath of its own. full is runc's whole default spec
// (minus the cgroup namespace, which not every runtime supports on v1).
func containerSpec(rootfs, cgroupsPath string, full bool, args ...string) *specs.Spec {
	s := runcDefaultSpec(args...)
	s.Root.Path = rootfs
	s.Linux.CgroupsPath = cgroupsPath
	if full {
		return s
	}
	var mounts []specs.Mount
	for _, m := range s.Mounts {
		// A /dev tmpfs keeps the runtimes from creating device nodes in the
		// shared rootfs.
		if m.Destination == "/proc" || m.Destination == "/dev" {
			mounts = append(mounts, m)
		}
	}
	s.Mounts = mounts
	s.Linux.MaskedPaths = nil
	s.Linux.ReadonlyPaths = nil
	return s
}

// writeBundle writes a bundle directory holding only config.json; its root
// is the shared rootfs given by absolute path.
func writeBundle(dir string, s *specs.Spec) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, "config.json"), s)
}

func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// execProcess is the process that the exec benchmark runs in a container.
func execProcess(args ...string) *specs.Process {
	return runcDefaultSpec(args...).Process
}

// dockerProfile is Docker's default seccomp profile (moby/profiles, through
// capsa's converter, as the engine will use it) for the benchmark bundle's
// bounding set: the linux.seccomp section that runc and crun take as well.
func dockerProfile() (*specs.LinuxSeccomp, error) {
	s, err := seccomp.DockerDefault(runcDefaultSpec().Process.Capabilities.Bounding)
	if err != nil {
		return nil, fmt.Errorf("docker's default seccomp profile: %w", err)
	}
	return s, nil
}
