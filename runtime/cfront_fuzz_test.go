//go:build cgo

package runtime

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/capsa-project/capsa/internal/cfront"
	"github.com/capsa-project/capsa/runtime/specgen"
)

// goPlan is what the Go runtime's create makes of config: the plan for
// the C init, or why it would not send one (an error, the Go init, a
// seccomp profile, create-time hooks).
func goPlan(config []byte, bundle string, pid int) ([]byte, string) {
	spec, sc, err := decodeSpec(config)
	if err != nil {
		return nil, "decode: " + err.Error()
	}
	if err := ValidateSpec(spec, bundle); err != nil {
		return nil, "validate: " + err.Error()
	}
	if len(sc) > 0 {
		return nil, "seccomp"
	}
	cfg := &initConfig{Mode: modeCreate, ID: "fuzz", Bundle: bundle, Rootfs: RootfsPath(spec, bundle), Spec: spec,
		ConsoleFd: -1, FifoFd: 4}
	ss := spawnSpec{}
	for _, ns := range spec.Linux.Namespaces {
		switch {
		case ns.Path == "" && ns.Type == specs.CgroupNamespace:
			cfg.NewCgroupNS = true
		case ns.Path == "" && ns.Type == specs.TimeNamespace:
			cfg.NewTimeNS = true
		case ns.Path == "":
			ss.cloneflags |= uintptr(nsFlag[string(ns.Type)])
		case ns.Type == specs.MountNamespace:
			cfg.MountNS = ns.Path
		default:
			return nil, "joined namespace"
		}
	}
	//lint:ignore SA1019 prestart is deprecated, but configs still use it and runtimes must run it
	if spec.Hooks != nil && (len(spec.Hooks.Prestart) > 0 || len(spec.Hooks.CreateRuntime) > 0) {
		return nil, "create hooks"
	}
	if why := configEligible(cfg, &ss); why != "" {
		return nil, "Go init: " + why
	}
	plan, err := buildPlan(cfg, pid)
	if err != nil {
		return nil, "plan: " + err.Error()
	}
	return plan, ""
}

// frontFuzzBundle makes a bundle dir with a rootfs and a file and a dir
// for bind mounts.
func frontFuzzBundle(t testing.TB) string {
	dir := t.TempDir()
	for _, d := range []string{"rootfs", "data"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// frontFuzzSeeds are configs the front's create covers, and near misses.
func frontFuzzSeeds(t testing.TB) [][]byte {
	base := specgen.Default("/bin/sh", "-c", "true")
	base.Process.Terminal = false
	base.Root.Path = "rootfs"
	base.Linux.CgroupsPath = "/fuzz/c"
	variants := []func(s *specs.Spec){
		func(s *specs.Spec) {},
		func(s *specs.Spec) {
			s.Hostname, s.Domainname = "h", "d"
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "65536"}
			s.Root.Readonly = true
			s.Linux.RootfsPropagation = "rslave"
		},
		func(s *specs.Spec) {
			s.Mounts = append(s.Mounts,
				specs.Mount{Destination: "/data", Source: "data", Options: []string{"rbind", "ro", "nosuid", "rprivate"}},
				specs.Mount{Destination: "/etc/f", Type: "bind", Source: "file", Options: []string{"bind"}})
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229}}
		},
		func(s *specs.Spec) {
			umask := uint32(0o22)
			oom := 100
			s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10, 20}, Umask: &umask}
			s.Process.OOMScoreAdj = &oom
			s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_NPROC", Soft: 10, Hard: 20})
			s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 3}
			s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32}
		},
		func(s *specs.Spec) {
			limit := int64(100)
			s.Linux.Resources = &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &limit}}
			s.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: "/bin/true"}}}
			s.Annotations = map[string]string{"a": "<b>"}
		},
	}
	var out [][]byte
	for _, v := range variants {
		var s specs.Spec
		b, err := json.Marshal(base)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &s); err != nil {
			t.Fatal(err)
		}
		v(&s)
		if b, err = json.Marshal(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// checkFrontPlan fails when the front would create a container from
// config that the Go runtime refuses or plans differently.
func checkFrontPlan(t *testing.T, config []byte, bundle string) bool {
	pid := os.Getpid()
	cplan, ok := cfront.Plan(config, bundle, pid)
	if !ok {
		return false
	}
	gplan, why := goPlan(config, bundle, pid)
	if why != "" {
		t.Fatalf("the front creates from a config the Go runtime does not (%s):\n%s", why, config)
	}
	if string(cplan) != string(gplan) {
		t.Fatalf("plans differ for\n%s\nfront:\n%q\nGo:\n%q", config, cplan, gplan)
	}
	return true
}

func TestFrontPlanSeeds(t *testing.T) {
	if _, err := os.Stat("/proc/self/mountinfo"); err != nil {
		t.Skip(err)
	}
	bundle := frontFuzzBundle(t)
	for i, seed := range frontFuzzSeeds(t) {
		if !checkFrontPlan(t, seed, bundle) {
			t.Errorf("seed %d: the front hands it off, want it to create:\n%s", i, seed)
		}
	}
}

// FuzzFrontConfig holds the C front's config reader and planner against
// the Go runtime's, on mutated configs.
func FuzzFrontConfig(f *testing.F) {
	for _, s := range frontFuzzSeeds(f) {
		f.Add(s)
	}
	bundle := frontFuzzBundle(f)
	f.Fuzz(func(t *testing.T, config []byte) {
		checkFrontPlan(t, config, bundle)
	})
}
