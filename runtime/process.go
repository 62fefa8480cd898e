package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/capsa-project/capsa/runtime/seccomp"
)

// applyProcessLimits sets what must be set while the init is still
// privileged: rlimits, oom_score_adj, personality, I/O priority, scheduler.
func applyProcessLimits(p *specs.Process, spec *specs.Spec) error {
	for _, r := range p.Rlimits {
		res := rlimitNames[r.Type]
		// syscall.Setrlimit, not unix.Prlimit: it tells the Go runtime not to
		// restore its own RLIMIT_NOFILE at exec.
		if err := syscall.Setrlimit(res, &syscall.Rlimit{Cur: r.Soft, Max: r.Hard}); err != nil {
			if errors.Is(err, unix.EPERM) {
				var cur syscall.Rlimit
				_ = syscall.Getrlimit(res, &cur) // only for the message
				return fmt.Errorf("process.rlimits %s: raising the hard limit from %d to %d needs CAP_SYS_RESOURCE, which this host does not grant", r.Type, cur.Max, r.Hard)
			}
			return fmt.Errorf("process.rlimits %s: %w", r.Type, err)
		}
	}
	if p.OOMScoreAdj != nil {
		if err := setOOMScoreAdj(*p.OOMScoreAdj); err != nil {
			return err
		}
	}
	if spec.Linux != nil && spec.Linux.Personality != nil {
		var persona uintptr
		switch spec.Linux.Personality.Domain {
		case specs.PerLinux:
			persona = 0x0000
		case specs.PerLinux32:
			persona = 0x0008
		default:
			return fmt.Errorf("linux.personality: unknown domain %q", spec.Linux.Personality.Domain)
		}
		if _, _, e := unix.RawSyscall(unix.SYS_PERSONALITY, persona, 0, 0); e != 0 {
			return fmt.Errorf("linux.personality: %w", e)
		}
	}
	if p.IOPriority != nil {
		class := map[specs.IOPriorityClass]int{specs.IOPRIO_CLASS_RT: 1, specs.IOPRIO_CLASS_BE: 2, specs.IOPRIO_CLASS_IDLE: 3}[p.IOPriority.Class]
		prio := class<<13 | p.IOPriority.Priority
		const ioprioWhoProcess = 1
		if _, _, e := unix.RawSyscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, 0, uintptr(prio)); e != 0 {
			return fmt.Errorf("process.ioPriority: %w", e)
		}
	}
	if s := p.Scheduler; s != nil {
		if err := setScheduler(s); err != nil {
			return fmt.Errorf("process.scheduler: %w", err)
		}
	}
	return nil
}

// setOOMScoreAdj writes oom_score_adj. Lowering it below the current value
// needs CAP_SYS_RESOURCE; where the host does not grant it, the value is
// clamped to the current one (as containerd's restrict_oom_score_adj does)
// rather than failing every container.
func setOOMScoreAdj(v int) error {
	// Already set: by the nsenter constructor when joining a user namespace
	// (after which this process can no longer write its /proc files).
	if cur, err := os.ReadFile("/proc/self/oom_score_adj"); err == nil && strings.TrimSpace(string(cur)) == strconv.Itoa(v) {
		return nil
	}
	err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(v)), 0)
	if err == nil || !(errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM)) {
		if err != nil {
			return fmt.Errorf("process.oomScoreAdj: %w", err)
		}
		return nil
	}
	cur, rerr := os.ReadFile("/proc/self/oom_score_adj")
	if rerr != nil {
		return fmt.Errorf("process.oomScoreAdj: %w", err)
	}
	if n, perr := strconv.Atoi(strings.TrimSpace(string(cur))); perr == nil && v < n {
		return nil // clamped to the current value
	}
	return fmt.Errorf("process.oomScoreAdj: %w", err)
}

var schedPolicies = map[specs.LinuxSchedulerPolicy]int{
	specs.SchedOther: 0, specs.SchedFIFO: 1, specs.SchedRR: 2, specs.SchedBatch: 3,
	specs.SchedISO: 4, specs.SchedIdle: 5, specs.SchedDeadline: 6,
}

func setScheduler(s *specs.Scheduler) error {
	policy, ok := schedPolicies[s.Policy]
	if !ok {
		return fmt.Errorf("unknown policy %q", s.Policy)
	}
	var flags uint64
	for _, f := range s.Flags {
		switch f {
		case specs.SchedFlagResetOnFork:
			flags |= 0x01
		case specs.SchedFlagReclaim:
			flags |= 0x02
		case specs.SchedFlagDLOverrun:
			flags |= 0x04
		case specs.SchedFlagKeepPolicy:
			flags |= 0x08
		case specs.SchedFlagKeepParams:
			flags |= 0x10
		case specs.SchedFlagUtilClampMin:
			flags |= 0x20
		case specs.SchedFlagUtilClampMax:
			flags |= 0x40
		default:
			return fmt.Errorf("unknown flag %q", f)
		}
	}
	attr := unix.SchedAttr{
		Size: unix.SizeofSchedAttr, Policy: uint32(policy), Flags: flags, Nice: s.Nice,
		Priority: uint32(s.Priority), Runtime: s.Runtime, Deadline: s.Deadline, Period: s.Period,
	}
	return unix.SchedSetAttr(0, &attr, 0)
}

// execPlan is the container process's execve, prepared while the init can
// still read the filesystem freely.
type execPlan struct {
	path    string
	argv    []string
	env     []string
	seccomp *seccomp.Filter
	caps    capSets
	// hostPid is this process's pid as the host sees it, for a seccomp
	// agent.
	hostPid int
	// listener is the connection to the seccomp agent, dialled on the host
	// side, or -1.
	listener int
}

// prepareExec resolves args[0] in the container's PATH and completes the
// environment (HOME from /etc/passwd when unset, as runc does).
func prepareExec(p *specs.Process, filter *seccomp.Filter) (*execPlan, error) {
	env := append([]string{}, p.Env...)
	pathEnv := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	hasHome := false
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			pathEnv = v
		}
		if strings.HasPrefix(e, "HOME=") {
			hasHome = true
		}
	}
	if !hasHome {
		env = append(env, "HOME="+homeDir(p.User.UID))
	}
	argv := p.Args
	if len(argv) == 0 {
		return nil, fmt.Errorf("process.args is empty")
	}
	exe, err := lookPath(argv[0], pathEnv, p.Cwd)
	if err != nil {
		return nil, err
	}
	caps, err := parseCaps(p.Capabilities)
	if err != nil {
		return nil, err
	}
	// Fail at create, not after start, when the host withholds a
	// capability from the runtime itself.
	if missing := caps.missing(); missing != "" {
		return nil, fmt.Errorf("process.capabilities: the runtime itself does not hold %s on this host, so the container cannot be given them", missing)
	}
	return &execPlan{path: exe, argv: argv, env: env, seccomp: filter, caps: caps, listener: -1}, nil
}

func lookPath(name, pathEnv, cwd string) (string, error) {
	if strings.Contains(name, "/") {
		p := name
		if !path.IsAbs(p) {
			p = path.Join(cwd, p)
		}
		if err := executable(p); err != nil {
			return "", fmt.Errorf("exec %s: %w", name, err)
		}
		return name, nil
	}
	for _, dir := range strings.Split(pathEnv, ":") {
		if dir == "" {
			dir = "."
		}
		p := path.Join(dir, name)
		if !path.IsAbs(p) {
			p = path.Join(cwd, p)
		}
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec %q: executable file not found in $PATH", name)
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("is a directory")
	}
	if fi.Mode()&0o111 == 0 {
		return fmt.Errorf("permission denied")
	}
	return nil
}

// homeDir is the user's home from the container's /etc/passwd, else "/".
// The image decides what that file is: a FIFO must not block the init, so
// only a regular file is read.
func homeDir(uid uint32) string {
	f, err := os.OpenFile("/etc/passwd", os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return "/"
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return "/"
	}
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Split(s.Text(), ":")
		if len(fields) >= 6 && fields[2] == strconv.FormatUint(uint64(uid), 10) {
			return fields[5]
		}
	}
	return "/"
}

// dropPrivileges turns this thread into the container process but for the
// exec: working directory, fds, user and capabilities, LSM label (and the
// seccomp filter when there is no no_new_privs). The init does it before it
// reports ready, as runc does, so that its errors fail `create`, and it
// waits for `start` already unprivileged. Credentials are changed with raw
// syscalls on this locked thread only; execve takes this thread's
// credentials.
func dropPrivileges(cfg *initConfig, plan *execPlan) error {
	p := cfg.Process
	if err := unix.Chdir(p.Cwd); err != nil {
		return fmt.Errorf("chdir to cwd (%q) set in config.json: %w", p.Cwd, err)
	}
	// The cwd must be inside the container's root: a leaked host directory
	// fd as cwd is how CVE-2024-21626 escaped.
	if wd, err := unix.Getwd(); err != nil || !strings.HasPrefix(wd, "/") {
		return fmt.Errorf("current working directory is outside of the container root")
	}
	if p.User.Umask != nil {
		unix.Umask(int(*p.User.Umask))
	}
	// Nothing of the runtime's may reach the container: every fd past
	// stdio and the preserved ones closes at exec.
	if err := unix.CloseRange(uint(3+cfg.PreserveFds), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("mark fds close-on-exec: %w", err)
	}
	caps := plan.caps
	// Without no_new_privs the kernel only takes a filter from a process
	// with CAP_SYS_ADMIN, so it goes in before the capabilities are dropped
	// (as runc does); with no_new_privs as late as possible.
	if !p.NoNewPrivileges {
		if err := loadSeccomp(cfg, plan); err != nil {
			return err
		}
	}
	if err := dropBounding(caps.bounding); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("keep capabilities: %w", err)
	}
	if err := setUser(p.User); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("clear keepcaps: %w", err)
	}
	if err := caps.apply(); err != nil {
		return err
	}
	if p.ApparmorProfile != "" {
		if err := os.WriteFile("/proc/thread-self/attr/apparmor/exec", []byte("exec "+p.ApparmorProfile), 0); err != nil {
			return fmt.Errorf("process.apparmorProfile %s: %w", p.ApparmorProfile, err)
		}
	}
	if p.SelinuxLabel != "" {
		if err := os.WriteFile("/proc/thread-self/attr/exec", []byte(p.SelinuxLabel), 0); err != nil {
			return fmt.Errorf("process.selinuxLabel: %w", err)
		}
	}
	return nil
}

// execProcess sets no_new_privs, loads the seccomp filter as late as
// possible and execs the container process.
func execProcess(cfg *initConfig, plan *execPlan) error {
	if cfg.Process.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("no_new_privs: %w", err)
		}
		if err := loadSeccomp(cfg, plan); err != nil {
			return err
		}
	}
	err := syscall.Exec(plan.path, plan.argv, plan.env)
	return fmt.Errorf("exec %s: %w", plan.argv[0], err)
}

// setUser switches this thread to the process user.
func setUser(u specs.User) error {
	groups := make([]uint32, 0, len(u.AdditionalGids))
	groups = append(groups, u.AdditionalGids...)
	var gp unsafe.Pointer
	if len(groups) > 0 {
		gp = unsafe.Pointer(&groups[0])
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(groups)), uintptr(gp), 0); e != 0 {
		// setgroups is denied in a user namespace with setgroups=deny;
		// only an explicit request for groups is then an error.
		if !(e == unix.EPERM && len(groups) == 0) {
			return fmt.Errorf("setgroups %v: %w", groups, e)
		}
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); e != 0 {
		return fmt.Errorf("setgid %d: %w", u.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); e != 0 {
		return fmt.Errorf("setuid %d: %w", u.UID, e)
	}
	return nil
}
