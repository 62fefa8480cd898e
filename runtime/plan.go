package runtime

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The C init (cmd/capsa-runtime/front/init.c) runs a container's init
// without a Go runtime: the Go runtime's start-up, and decoding the config
// in the init, were most of what a container start cost. Create computes
// everything from the config here — mount flags and data, devices, the
// cgroup hierarchies to show, capabilities as masks, rlimits as numbers,
// the seccomp program — and sends it as a plan: a list of operations the C
// init executes in order, each a primitive syscall sequence with the same
// safety as the Go init's (mount targets resolved inside the root with
// openat2(RESOLVE_IN_ROOT) and mounted by fd, sysctls written beneath a
// checked procfs, /dev/null checked before it masks anything).
//
// Configs the plan does not cover (planEligible says which) keep the Go
// init (runtime/init.go), which does everything.

// Plan operation codes; init.c has the same numbers.
const (
	opLabel            = 1  // text: the context of errors from later ops
	opMount            = 2  // src, target, fstype, flags, data: mount(2) with host paths
	opRoot             = 3  // path: open the root fs (O_PATH) for the *In ops
	opMountIn          = 4  // dest, isFile, src, fstype, flags, data
	opRemountIn        = 5  // dest, flags, data, useLocked, clear
	opSymlinkIn        = 6  // target, link: an existing entry is left alone
	opMknodIn          = 7  // path, mode, dev, uid, gid: replaces what the image has
	opReplaceSymlinkIn = 8  // path, target: replaces what the image has
	opUnshare          = 9  // flags
	opPivot            = 10 // rootfs, noPivot
	opRootPropagation  = 11 // flags
	opSysctl           = 12 // key, path below /proc, value
	opReadonly         = 13 // path
	opMask             = 14 // path
	opHostname         = 15 // name
	opDomainname       = 16 // name
	opRootReadonly     = 17
	opSetsid           = 18
	opKeyring          = 19 // name
	opRlimit           = 20 // resource, soft, hard, name
	opOOMScoreAdj      = 21 // value
	opPersonality      = 22 // value
	opIOPriority       = 23 // value
	opHooks            = 24 // ask the runtime to run prestart/createRuntime hooks
	opProcArgs         = 25 // argv...
	opProcEnv          = 26 // env...
	opProcGroups       = 27 // additional gids...
	opProcCreds        = 28 // cwd, uid, gid, umask (-1: none), noNewPrivs, preserveFds, fifoFd
	opProcCaps         = 29 // bounding, effective, permitted, inheritable, ambient, lastCap
	opSeccomp          = 30 // compiled filter (seccomp.MarshalBinary)
	opFinish           = 31 // drop privileges, report ready, wait for start, exec
	opEnter            = 32 // root dir, mount namespace ("": none): enter a running container (exec)
	opFinishExec       = 33 // drop privileges and exec (exec: no ready, no fifo)
)

const (
	planMagic = "CPLN1"
	// frontBinary is the C front, which is also the C init.
	frontBinary = "capsa-runtime"
	// envForceGoInit makes every container use the Go init (for tests and
	// for telling the two apart when something goes wrong).
	envForceGoInit = "CAPSA_RUNTIME_GO_INIT"
	// envPlanDump names a file that create writes the C init's plan to
	// as it sends it, in the Go runtime and in the C front alike: the
	// tests compare the two (test/integration/ccreate_test.go).
	envPlanDump = "CAPSA_RUNTIME_PLAN_DUMP"
)

// plan is an encoded list of operations: magic, then per operation a u16
// code, a u16 field count and the fields, each a u32 length (little
// endian) and its bytes. Numbers are decimal text.
type plan struct {
	b   []byte
	err error
}

func newPlan() *plan { return &plan{b: []byte(planMagic)} }

// maxPlanFields is what an operation's u16 field count holds. A longer
// list must never be encoded: its count would wrap, and the C init would
// read the fields that follow — strings from the config — as operations.
const maxPlanFields = 0xffff

func (p *plan) op(code int, fields ...string) {
	if len(fields) > maxPlanFields {
		if p.err == nil {
			p.err = fmt.Errorf("plan operation %d: %d fields, more than %d", code, len(fields), maxPlanFields)
		}
		return
	}
	// The C init reads fields as C strings: a NUL would cut a path or an
	// argument short where the Go init's syscalls fail with EINVAL.
	if code != opSeccomp {
		for _, f := range fields {
			if strings.IndexByte(f, 0) >= 0 {
				if p.err == nil {
					p.err = fmt.Errorf("config value %q holds a NUL byte: %w", f, unix.EINVAL)
				}
				return
			}
		}
	}
	p.b = append(p.b, byte(code), byte(code>>8), byte(len(fields)), byte(len(fields)>>8))
	for _, f := range fields {
		n := len(f)
		p.b = append(p.b, byte(n), byte(n>>8), byte(n>>16), byte(n>>24))
		p.b = append(p.b, f...)
	}
}

func num[T ~int | ~int64 | ~uint32 | ~uint64 | ~uintptr](v T) string {
	return strconv.FormatInt(int64(v), 10)
}

func unum(v uint64) string { return strconv.FormatUint(v, 10) }

func bit01(v bool) string {
	if v {
		return "1"
	}
	return "0"
}

// planEligible reports why the C init cannot run a config ("" when it
// can): whatever needs more than a plan of syscalls stays with the Go init.
func planEligible(cfg *initConfig, ss *spawnSpec) string {
	if why := configEligible(cfg, ss); why != "" {
		return why
	}
	return hostEligible()
}

// configEligible is planEligible for the config alone.
func configEligible(cfg *initConfig, ss *spawnSpec) string {
	spec := cfg.Spec
	proc := spec.Process
	if cfg.Mode == modeExec {
		proc = cfg.Process
	}
	switch {
	case os.Getenv(envForceGoInit) != "":
		return envForceGoInit + " is set"
	case proc == nil:
		return "no process"
	case proc.Terminal:
		return "terminal"
	case proc.ApparmorProfile != "" || proc.SelinuxLabel != "":
		return "LSM label"
	case proc.Scheduler != nil:
		return "scheduler"
	case ss.userNS != "" || ss.timeNS != "" || ss.cloneflags&unix.CLONE_NEWUSER != 0:
		return "user or time namespace"
	case spec.Linux.Personality != nil && spec.Linux.Personality.Domain != specs.PerLinux && spec.Linux.Personality.Domain != specs.PerLinux32:
		return "unknown personality"
	case len(proc.Args) > maxPlanFields || len(proc.Env) > maxPlanFields || len(proc.User.AdditionalGids) > maxPlanFields:
		return "more than 65535 args, env entries or groups"
	}
	if cfg.Mode == modeCreate {
		switch {
		case cfg.NewTimeNS || cfg.MountNS != "":
			return "time namespace or joined mount namespace"
		case !hasNS(spec, specs.MountNamespace):
			return "no mount namespace"
		case spec.Hooks != nil && (len(spec.Hooks.CreateContainer) > 0 || len(spec.Hooks.StartContainer) > 0):
			return "createContainer or startContainer hooks"
		}
		for _, m := range spec.Mounts {
			if parseMountOptions(m.Options).copyUp {
				return "tmpcopyup"
			}
		}
	}
	if cfg.seccompNotify {
		return "seccomp notify"
	}
	return ""
}

// hostEligible says why this host cannot run the C init ("" when it can).
func hostEligible() string {
	if _, err := os.Stat(frontPath()); err != nil {
		return "no " + frontBinary + " next to the runtime"
	}
	// The C init resolves paths with openat2 only (Linux 5.6).
	if fd, err := unix.Openat2(unix.AT_FDCWD, "/", &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC}); err != nil {
		return "no openat2"
	} else {
		unix.Close(fd)
	}
	return ""
}

// useCInit decides between the two inits and says which under --debug.
func useCInit(cfg *initConfig, ss *spawnSpec) bool {
	if why := planEligible(cfg, ss); why != "" {
		Debugf("%s: Go init (%s)", cfg.Mode, why)
		return false
	}
	Debugf("%s: C init", cfg.Mode)
	return true
}

// frontPath is the C front installed next to this binary, which is also
// the C init.
func frontPath() string {
	self, err := os.Executable()
	if err != nil {
		return ""
	}
	return filepath.Join(filepath.Dir(self), frontBinary)
}

// buildPlan computes the C init's plan for a config planEligible accepted.
// It runs after the init was placed in its cgroups (pid), whose paths the
// cgroup mounts show.
func buildPlan(cfg *initConfig, pid int) ([]byte, error) {
	spec := cfg.Spec
	p := newPlan()
	if cfg.NewCgroupNS {
		p.op(opLabel, "unshare cgroup namespace")
		p.op(opUnshare, num(unix.CLONE_NEWCGROUP))
	}
	if err := planRootfs(p, cfg, pid); err != nil {
		return nil, err
	}
	if cfg.Hooks {
		p.op(opHooks)
	}
	p.op(opLabel, "pivot_root "+cfg.Rootfs)
	p.op(opPivot, cfg.Rootfs, bit01(cfg.NoPivot))
	if rp := spec.Linux.RootfsPropagation; rp != "" {
		flag, _ := propagationFlag(rp)
		p.op(opLabel, "make / "+rp)
		p.op(opRootPropagation, num(flag))
	}
	// In key order, as the C front's create writes them: the two plans
	// are compared byte for byte (envPlanDump).
	for _, k := range slices.Sorted(maps.Keys(spec.Linux.Sysctl)) {
		p.op(opLabel, "linux.sysctl "+k)
		p.op(opSysctl, k, "sys/"+strings.ReplaceAll(k, ".", "/"), spec.Linux.Sysctl[k])
	}
	for _, r := range spec.Linux.ReadonlyPaths {
		p.op(opLabel, "linux.readonlyPaths "+r)
		p.op(opReadonly, r)
	}
	for _, m := range spec.Linux.MaskedPaths {
		p.op(opLabel, "linux.maskedPaths "+m)
		p.op(opMask, m)
	}
	if spec.Hostname != "" {
		p.op(opLabel, "set hostname")
		p.op(opHostname, spec.Hostname)
	}
	if spec.Domainname != "" {
		p.op(opLabel, "set domainname")
		p.op(opDomainname, spec.Domainname)
	}
	if spec.Root.Readonly {
		p.op(opLabel, "make root read-only")
		p.op(opRootReadonly)
	}
	p.op(opLabel, "setsid")
	p.op(opSetsid)
	if !cfg.NoNewKeyring {
		p.op(opLabel, "join session keyring")
		p.op(opKeyring, "_ses."+cfg.ID)
	}
	if err := planProcess(p, cfg, spec.Process); err != nil {
		return nil, err
	}
	p.op(opFinish)
	if p.err != nil {
		return nil, p.err
	}
	return p.b, nil
}

// buildExecPlan is the plan of an exec'd process (Exec): enter the
// container's mount namespace and root, then become the process.
func buildExecPlan(cfg *initConfig) ([]byte, error) {
	p := newPlan()
	p.op(opLabel, "")
	p.op(opEnter, "/proc/"+num(cfg.InitPid)+"/root", cfg.MountNS)
	p.op(opSetsid)
	if err := planProcess(p, cfg, cfg.Process); err != nil {
		return nil, err
	}
	p.op(opFinishExec)
	if p.err != nil {
		return nil, p.err
	}
	return p.b, nil
}

// planProcess is applyProcessLimits and prepareExec as a plan.
func planProcess(p *plan, cfg *initConfig, proc *specs.Process) error {
	spec := cfg.Spec
	// The ops below word their errors themselves.
	p.op(opLabel, "")
	for _, r := range proc.Rlimits {
		p.op(opRlimit, num(rlimitNames[r.Type]), unum(r.Soft), unum(r.Hard), r.Type)
	}
	if proc.OOMScoreAdj != nil {
		p.op(opOOMScoreAdj, num(*proc.OOMScoreAdj))
	}
	if per := spec.Linux.Personality; per != nil {
		v := 0
		if per.Domain == specs.PerLinux32 {
			v = 0x0008
		}
		p.op(opLabel, "linux.personality")
		p.op(opPersonality, num(v))
	}
	if io := proc.IOPriority; io != nil {
		class := map[specs.IOPriorityClass]int{specs.IOPRIO_CLASS_RT: 1, specs.IOPRIO_CLASS_BE: 2, specs.IOPRIO_CLASS_IDLE: 3}[io.Class]
		p.op(opLabel, "process.ioPriority")
		p.op(opIOPriority, num(class<<13|io.Priority))
	}
	if len(proc.Args) == 0 {
		return fmt.Errorf("process.args is empty")
	}
	p.op(opProcArgs, proc.Args...)
	p.op(opProcEnv, proc.Env...)
	groups := make([]string, len(proc.User.AdditionalGids))
	for i, g := range proc.User.AdditionalGids {
		groups[i] = num(g)
	}
	p.op(opProcGroups, groups...)
	umask := "-1"
	if proc.User.Umask != nil {
		umask = num(*proc.User.Umask)
	}
	p.op(opProcCreds, proc.Cwd, num(proc.User.UID), num(proc.User.GID), umask, bit01(proc.NoNewPrivileges),
		num(cfg.PreserveFds), num(cfg.FifoFd))
	caps, err := parseCaps(proc.Capabilities)
	if err != nil {
		return err
	}
	if missing := caps.missing(); missing != "" {
		return fmt.Errorf("process.capabilities: the runtime itself does not hold %s on this host, so the container cannot be given them", missing)
	}
	p.op(opProcCaps, unum(caps.bounding), unum(caps.effective), unum(caps.permitted), unum(caps.inheritable), unum(caps.ambient), num(lastCap()))
	if len(cfg.Seccomp) > 0 {
		p.op(opSeccomp, string(cfg.Seccomp))
	}
	return nil
}

// planRootfs is setupRootfs as a plan.
func planRootfs(p *plan, cfg *initConfig, pid int) error {
	spec := cfg.Spec
	prop := uintptr(unix.MS_SLAVE | unix.MS_REC)
	if rp := spec.Linux.RootfsPropagation; rp != "" {
		f, ok := propagationFlag(rp)
		if !ok {
			return fmt.Errorf("linux.rootfsPropagation: unknown value %q", rp)
		}
		prop = f
	}
	p.op(opLabel, "set propagation of /")
	p.op(opMount, "", "/", "", num(prop), "")
	// The init's mount table is a copy of this process's (it is read
	// before the init changes it).
	mi, err := readMountinfo()
	if err != nil {
		return err
	}
	mp := mountPointIn(mi, cfg.Rootfs)
	p.op(opLabel, "make "+mp+" private")
	p.op(opMount, "", mp, "", num(unix.MS_PRIVATE), "")
	p.op(opLabel, "bind root "+cfg.Rootfs)
	p.op(opMount, cfg.Rootfs, cfg.Rootfs, "", num(unix.MS_BIND|unix.MS_REC), "")
	p.op(opRoot, cfg.Rootfs)

	var own map[string]string
	devBound := false
	for i, m := range spec.Mounts {
		p.op(opLabel, fmt.Sprintf("mounts[%d] (%s on %s)", i, m.Source, m.Destination))
		mo := parseMountOptions(m.Options)
		typ := m.Type
		if typ == "" && mo.bind {
			typ = "bind"
		}
		switch {
		case typ == "bind" || mo.bind:
			if err := planBind(p, cfg.Bundle, m, mo); err != nil {
				return fmt.Errorf("mounts[%d] (%s on %s): %w", i, m.Source, m.Destination, err)
			}
		case typ == "cgroup" || typ == "cgroup2":
			if own == nil {
				if own, err = procCgroups(pid); err != nil {
					return err
				}
			}
			planCgroups(p, m, mo, mi, own, cfg.NewCgroupNS)
		default:
			p.op(opMountIn, m.Destination, "0", m.Source, typ, num(mo.flags), mo.dataString())
			planPropagation(p, m.Destination, mo)
		}
		if path.Clean(m.Destination) == "/dev" && mo.bind {
			devBound = true
		}
	}
	if !devBound {
		planDev(p, spec)
	}
	return nil
}

func planPropagation(p *plan, dest string, mo mountOptions) {
	for _, f := range mo.propagate {
		p.op(opRemountIn, dest, num(f), "", "0", "0")
	}
}

// bindSource resolves a bind mount's source against the bundle and says
// whether it is a file (the mount point must then be one) and which
// flags the bind takes.
func bindSource(bundle string, m specs.Mount, mo mountOptions) (src string, isFile bool, flags uintptr, err error) {
	src = m.Source
	if !filepath.IsAbs(src) {
		src = filepath.Join(bundle, src)
	}
	fi, err := os.Stat(src)
	if err != nil {
		return "", false, 0, fmt.Errorf("bind source: %w", err)
	}
	flags = unix.MS_BIND
	if mo.recursive {
		flags |= unix.MS_REC
	}
	return src, !fi.IsDir(), flags, nil
}

func planBind(p *plan, bundle string, m specs.Mount, mo mountOptions) error {
	src, isFile, bflags, err := bindSource(bundle, m, mo)
	if err != nil {
		return err
	}
	p.op(opMountIn, m.Destination, bit01(isFile), src, "", num(bflags), "")
	if extra := mo.flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT); extra != 0 || mo.clear != 0 {
		p.op(opRemountIn, m.Destination, num(extra|unix.MS_BIND|unix.MS_REMOUNT), "", "1", num(mo.clear))
	}
	planPropagation(p, m.Destination, mo)
	return nil
}

// planCgroups encodes cgroupSteps as plan operations.
func planCgroups(p *plan, m specs.Mount, mo mountOptions, mi []mountinfoEntry, own map[string]string, cgroupNS bool) {
	for _, st := range cgroupSteps(m, mo, cgroupMountsIn(mi), own, cgroupNS) {
		switch st.kind {
		case stepMount:
			p.op(opMountIn, st.dest, "0", st.src, st.fstype, num(st.flags), st.data)
		case stepRemount:
			p.op(opRemountIn, st.dest, num(st.flags), st.data, bit01(st.keepLocked), "0")
		case stepSymlink:
			p.op(opSymlinkIn, st.src, st.dest)
		}
	}
}

// planDev is setupDev as a plan (outside a user namespace: mknod).
func planDev(p *plan, spec *specs.Spec) {
	for _, d := range containerDevices(spec) {
		// ValidateSpec checked the type.
		typ, _ := deviceType(d.Type)
		perm := uint32(0o666)
		if d.FileMode != nil {
			perm = uint32(d.FileMode.Perm())
		}
		uid, gid := int64(-1), int64(-1)
		if d.UID != nil {
			uid = int64(*d.UID)
		}
		if d.GID != nil {
			gid = int64(*d.GID)
		}
		p.op(opLabel, "device "+d.Path)
		p.op(opMknodIn, d.Path, num(typ|perm), unum(unix.Mkdev(uint32(d.Major), uint32(d.Minor))), num(uid), num(gid))
	}
	links := [][2]string{
		{"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
	}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "/dev/core"})
	}
	p.op(opLabel, "/dev links")
	for _, l := range links {
		p.op(opSymlinkIn, l[0], l[1])
	}
	p.op(opLabel, "/dev/ptmx")
	p.op(opReplaceSymlinkIn, "/dev/ptmx", "pts/ptmx")
}

// mountinfoEntry is one line of /proc/self/mountinfo, split.
type mountinfoEntry struct{ pre, post []string }

func readMountinfo() ([]mountinfoEntry, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []mountinfoEntry
	for _, line := range strings.Split(string(data), "\n") {
		sep := strings.Index(line, " - ")
		if sep < 0 {
			continue
		}
		e := mountinfoEntry{pre: strings.Fields(line[:sep]), post: strings.Fields(line[sep+3:])}
		if len(e.pre) >= 5 && len(e.post) >= 3 {
			out = append(out, e)
		}
	}
	return out, nil
}

// mountPointIn is mountPointOf over a read mount table.
func mountPointIn(mi []mountinfoEntry, dir string) string {
	best := "/"
	for _, e := range mi {
		mp := unescapeMountinfo(e.pre[4])
		if (dir == mp || strings.HasPrefix(dir, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best) {
			best = mp
		}
	}
	return best
}

// cgroupMountsIn lists the cgroup hierarchies of a mount table.
func cgroupMountsIn(mi []mountinfoEntry) []cgroupMount {
	var out []cgroupMount
	for _, e := range mi {
		if cm, ok := e.cgroupMount(); ok {
			out = append(out, cm)
		}
	}
	return out
}

func (e mountinfoEntry) cgroupMount() (cgroupMount, bool) {
	if e.post[0] != "cgroup" && e.post[0] != "cgroup2" {
		return cgroupMount{}, false
	}
	var opts []string
	for _, o := range strings.Split(e.post[2], ",") {
		if o != "rw" && o != "ro" && !strings.HasPrefix(o, "relatime") && o != "nsdelegate" && o != "memory_recursiveprot" {
			opts = append(opts, o)
		}
	}
	return cgroupMount{mountPoint: unescapeMountinfo(e.pre[4]), fstype: e.post[0], options: strings.Join(opts, ","), root: unescapeMountinfo(e.pre[3])}, true
}

// procCgroups reads the cgroup of each hierarchy of pid.
func procCgroups(pid int) (map[string]string, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil {
		return nil, fmt.Errorf("cgroups of the init: %w", err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 {
			out[parts[1]] = parts[2]
		}
	}
	if len(out) == 0 {
		return nil, errors.New("cgroups of the init: none listed")
	}
	return out, nil
}
