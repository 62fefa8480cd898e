package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The benchmarks.
const (
	benchLifecycle        = "lifecycle"         // create, start, wait for exit, delete of /bin/true
	benchLifecycleSeccomp = "lifecycle-seccomp" // the same with Docker's default seccomp profile
	benchExec             = "exec"              // exec /bin/true into a running container
	benchKill             = "kill"              // delete --force of a running container
)

var benchOrder = []string{benchLifecycle, benchLifecycleSeccomp, benchExec, benchKill}

var benchTitle = map[string]string{
	benchLifecycle:        "lifecycle: create + start + wait for exit + delete of /bin/true",
	benchLifecycleSeccomp: "lifecycle-seccomp: the same with Docker's default seccomp profile in config.json",
	benchExec:             "exec: `exec --process` of /bin/true into a running container",
	benchKill:             "kill: `delete --force` of a running container, until its init is reaped",
}

// opTimeout bounds every runtime command and every wait, so that a hung
// runtime fails the run instead of stalling it.
const opTimeout = 2 * time.Minute

// sample is one measured operation.
type sample struct{ wall, cpu time.Duration }

// rt is one runtime under test.
type rt struct {
	name, path string
	root       string   // its --root state directory
	outPath    string   // stdout and stderr of its commands and containers
	out        *os.File //
	err        error    // first failure; the runtime sits out the rest of the run
	samples    map[string][]sample
	// parts holds, per benchmark, the samples of each runtime command and of
	// the init (cpu only) in measured rounds; partOrder keeps their order.
	parts     map[string]map[string][]sample
	partOrder map[string][]string
	peakKiB   map[string]int64 // per benchmark, largest ru_maxrss of its processes
	live      map[string]*container
}

// container is a container the benchmark created and has not deleted yet.
type container struct {
	id, bundle string
	pid        int
	pidfd      int // refers to the init even after its pid is reused
}

type bench struct {
	ctx      context.Context
	o        options
	dir      string // everything the run writes, removed at the end
	rootfs   string
	execJSON string
	// seccomp is Docker's default profile for the bundle's capabilities:
	// in every bundle with -seccomp, else in lifecycle-seccomp's only.
	seccomp      *specs.LinuxSeccomp
	devnull      *os.File
	cgroupParent string
	rts          []*rt
	seq          int
	// rssPass is set while the runtimes' commands run under GNU time for
	// their peak RSS; see measureRSS.
	rssPass bool
	// measuring is set during an operation of a measured round.
	measuring bool
}

// gnuTime reports the peak RSS of the process it runs (package time).
const gnuTime = "/usr/bin/time"

func newBench(ctx context.Context, o options) (*bench, error) {
	dir, err := os.MkdirTemp("", "capsa-bench-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	b := &bench{
		ctx:    ctx,
		o:      o,
		dir:    dir,
		rootfs: filepath.Join(dir, "rootfs"),
		// One parent cgroup per run keeps runs apart and is easy to remove.
		cgroupParent: fmt.Sprintf("capsa-bench-%d", os.Getpid()),
	}
	if b.devnull, err = os.Open(os.DevNull); err != nil {
		return b, err
	}
	if err := makeRootfs(b.rootfs); err != nil {
		return b, fmt.Errorf("rootfs: %w", err)
	}
	if o.seccomp || o.benches[benchLifecycleSeccomp] {
		if b.seccomp, err = dockerProfile(); err != nil {
			return b, err
		}
	}
	b.execJSON = filepath.Join(dir, "exec-true.json")
	if err := writeJSON(b.execJSON, execProcess("/bin/true")); err != nil {
		return b, fmt.Errorf("exec process: %w", err)
	}
	for _, spec := range o.runtimes {
		r := &rt{
			name:      spec.name,
			path:      spec.path,
			root:      filepath.Join(dir, "state-"+spec.name),
			outPath:   filepath.Join(dir, spec.name+".out"),
			samples:   map[string][]sample{},
			parts:     map[string]map[string][]sample{},
			partOrder: map[string][]string{},
			peakKiB:   map[string]int64{},
			live:      map[string]*container{},
		}
		b.rts = append(b.rts, r)
		if r.out, err = os.OpenFile(r.outPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			return b, err
		}
		if !isExecutable(r.path) {
			r.err = fmt.Errorf("%s is not an executable file", r.path)
			fmt.Fprintf(os.Stderr, "%s: %v; left out\n", r.name, r.err)
			continue
		}
		if err := os.Mkdir(r.root, 0o700); err != nil {
			return b, err
		}
	}
	return b, nil
}

// run runs the selected benchmarks, round-robin over the runtimes. A runtime
// that fails is reported and left out; run's error is for the benchmark's
// own failures (and cancellation).
func (b *bench) run() error {
	fmt.Fprintf(os.Stderr, "benchmarking %d iterations (+%d warm-up) in %s\n", b.o.iterations, b.o.warmup, b.dir)
	lifecycles := 0
	for _, name := range benchOrder {
		if !b.o.benches[name] {
			continue
		}
		var err error
		switch name {
		case benchLifecycle, benchLifecycleSeccomp:
			// With and without the profile in the same rounds,
			// alternating, so that the difference is the profile's and
			// not the machine's drift between two runs.
			if lifecycles++; lifecycles == 1 {
				var names []string
				for _, n := range []string{benchLifecycle, benchLifecycleSeccomp} {
					if b.o.benches[n] {
						names = append(names, n)
					}
				}
				err = b.rounds(names, b.lifecycle)
			}
		case benchExec:
			err = b.execBench()
		case benchKill:
			err = b.rounds([]string{name}, b.kill)
		}
		if err != nil {
			return err
		}
	}
	return b.measureRSS()
}

// rounds runs op for every runtime and benchmark in names, round after
// round: first one preflight round and the warm-up rounds, unmeasured, then
// the measured ones. Each round starts with the next runtime, so none is
// always first; a runtime runs the benchmarks of names in turn, each round
// starting with the next one.
func (b *bench) rounds(names []string, op func(r *rt, name string) (sample, error)) error {
	pre := 1 + b.o.warmup
	for i := 0; i < pre+b.o.iterations; i++ {
		for j := range len(b.rts) * len(names) {
			r := b.rts[(i+j/len(names))%len(b.rts)]
			name := names[(i+j)%len(names)]
			if r.err != nil {
				continue
			}
			if err := b.ctx.Err(); err != nil {
				return err
			}
			b.measuring = i >= pre
			s, err := op(r, name)
			b.measuring = false
			if err != nil {
				if b.ctx.Err() != nil {
					return b.ctx.Err()
				}
				b.fail(r, fmt.Errorf("%s, round %d of %d: %w", name, i+1, pre+b.o.iterations, err))
				continue
			}
			if i >= pre {
				r.samples[name] = append(r.samples[name], s)
			}
			if b.o.verbose {
				label := "warm-up"
				if i >= pre {
					label = fmt.Sprintf("%d", i-pre)
				}
				fmt.Fprintf(os.Stderr, "%-9s %-5s %7s  wall %8.2f ms  cpu %8.2f ms\n", name, r.name, label,
					float64(s.wall)/float64(time.Millisecond), float64(s.cpu)/float64(time.Millisecond))
			}
		}
	}
	return nil
}

// fail records r's first failure and removes its containers, so that it sits
// out the rest of the run without leaving anything behind.
func (b *bench) fail(r *rt, err error) {
	r.err = err
	fmt.Fprintf(os.Stderr, "%s FAILED: %v\n", r.name, err)
	for _, c := range r.live {
		if err := b.forceDelete(r, c); err != nil {
			fmt.Fprintf(os.Stderr, "%s: cleanup of %s: %v\n", r.name, c.id, err)
		}
	}
}

// newContainer writes the bundle of a new container (outside any measured
// window: real engines write config.json before they call the runtime).
func (b *bench) newContainer(r *rt, name string, args ...string) (*container, error) {
	b.seq++
	id := fmt.Sprintf("bench-%s-%d-%d", r.name, os.Getpid(), b.seq)
	c := &container{id: id, bundle: filepath.Join(b.dir, "bundles", id), pidfd: -1}
	s := containerSpec(b.rootfs, "/"+b.cgroupParent+"/"+id, b.o.fullSpec, args...)
	if b.o.seccomp || name == benchLifecycleSeccomp {
		s.Linux.Seccomp = b.seccomp
	}
	if err := writeBundle(c.bundle, s); err != nil {
		return nil, fmt.Errorf("bundle: %w", err)
	}
	return c, nil
}

// lifecycle measures create, start, wait for exit and delete of /bin/true.
func (b *bench) lifecycle(r *rt, name string) (sample, error) {
	c, err := b.newContainer(r, name, "/bin/true")
	if err != nil {
		return sample{}, err
	}
	t0, cpu0 := time.Now(), childrenCPU()
	if err := b.create(r, c, name); err != nil {
		return sample{}, err
	}
	if err := b.runtime(r, name, "start", c.id); err != nil {
		return sample{}, err
	}
	status, _, err := b.reap(b.ctx, r, c, name)
	if err != nil {
		return sample{}, err
	}
	if err := b.delete(r, c, name, false); err != nil {
		return sample{}, err
	}
	b.sweep(r, name)
	s := sample{wall: time.Since(t0), cpu: childrenCPU() - cpu0}
	if status != nil && (!status.Exited() || status.ExitStatus() != 0) {
		return s, fmt.Errorf("/bin/true in %s ended with %s", c.id, describeStatus(*status))
	}
	return s, nil
}

// execBench starts one long-running container per runtime, measures exec
// into it round-robin, and deletes them.
func (b *bench) execBench() error {
	target := map[*rt]*container{}
	for _, r := range b.rts {
		if r.err != nil {
			continue
		}
		c, err := b.startSleeper(r, benchExec)
		if err != nil {
			b.fail(r, fmt.Errorf("exec setup: %w", err))
			continue
		}
		target[r] = c
	}
	err := b.rounds([]string{benchExec}, func(r *rt, name string) (sample, error) {
		c := target[r]
		t0, cpu0 := time.Now(), childrenCPU()
		if err := b.runtime(r, name, "exec", "--process", b.execJSON, c.id); err != nil {
			return sample{}, err
		}
		b.sweep(r, name)
		return sample{wall: time.Since(t0), cpu: childrenCPU() - cpu0}, nil
	})
	for r, c := range target {
		if r.live[c.id] == nil {
			continue // fail() removed it
		}
		if derr := b.forceDelete(r, c); derr != nil && r.err == nil {
			b.fail(r, fmt.Errorf("exec teardown: %w", derr))
		}
	}
	return err
}

// kill measures `delete --force` of a running container until its init has
// been reaped. The CPU time of that init is left out: its rusage holds what
// it spent being set up, which the lifecycle benchmark already counts.
func (b *bench) kill(r *rt, name string) (sample, error) {
	// Only delete --force goes into the per-command figures: not the
	// setup, nor the init, whose CPU time is its setup's.
	measuring := b.measuring
	defer func() { b.measuring = measuring }()
	b.measuring = false
	c, err := b.startSleeper(r, name)
	if err != nil {
		return sample{}, fmt.Errorf("setup: %w", err)
	}
	t0, cpu0 := time.Now(), childrenCPU()
	b.measuring = measuring
	if err := b.runtime(r, name, "delete", "--force", c.id); err != nil {
		return sample{}, err
	}
	b.measuring = false
	_, initRU, err := b.reap(b.ctx, r, c, name)
	if err != nil {
		return sample{}, err
	}
	b.sweep(r, name)
	s := sample{wall: time.Since(t0), cpu: childrenCPU() - cpu0}
	if initRU != nil {
		s.cpu -= rusageCPU(initRU)
	}
	b.forget(r, c)
	return s, nil
}

// startSleeper creates and starts a container that runs until killed.
func (b *bench) startSleeper(r *rt, name string) (*container, error) {
	c, err := b.newContainer(r, name, "/bin/sleep", "1000000")
	if err != nil {
		return nil, err
	}
	if err := b.create(r, c, name); err != nil {
		return nil, err
	}
	if err := b.runtime(r, name, "start", c.id); err != nil {
		return nil, err
	}
	return c, nil
}

// create runs `create` and opens a pidfd on the container's init.
func (b *bench) create(r *rt, c *container, name string) error {
	pidFile := filepath.Join(c.bundle, "pid")
	// Tracked before the call: a create that fails half-way may still have
	// left state behind that the cleanup must delete.
	r.live[c.id] = c
	if err := b.runtime(r, name, "create", "--bundle", c.bundle, "--pid-file", pidFile, c.id); err != nil {
		return err
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return fmt.Errorf("%s create %s: pid file: %w", r.name, c.id, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return fmt.Errorf("%s create %s: pid file holds %q", r.name, c.id, data)
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("%s create %s: pidfd_open(%d): %w", r.name, c.id, pid, err)
	}
	c.pid, c.pidfd = pid, fd
	return nil
}

// delete runs `delete` (with --force if force) and forgets the container.
func (b *bench) delete(r *rt, c *container, name string, force bool) error {
	args := []string{"delete", c.id}
	if force {
		args = []string{"delete", "--force", c.id}
	}
	if err := b.runtime(r, name, args...); err != nil {
		return err
	}
	b.forget(r, c)
	return nil
}

func (b *bench) forget(r *rt, c *container) {
	delete(r.live, c.id)
	if c.pidfd >= 0 {
		unix.Close(c.pidfd)
		c.pidfd = -1
	}
	if err := os.RemoveAll(c.bundle); err != nil {
		fmt.Fprintf(os.Stderr, "remove bundle %s: %v\n", c.bundle, err)
	}
}

// forceDelete removes a container outside any measurement, also after the
// run was cancelled.
func (b *bench) forceDelete(r *rt, c *container) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.path, "--root", r.root, "delete", "--force", c.id)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = b.devnull, r.out, r.out
	off := fileSize(r.outPath)
	if err := cmd.Run(); err != nil {
		// A create that failed early leaves nothing to delete; only a
		// container the runtime still knows is a failed cleanup.
		state := exec.CommandContext(ctx, r.path, "--root", r.root, "state", c.id)
		state.Stdin, state.Stdout, state.Stderr = b.devnull, nil, nil
		if state.Run() == nil {
			return fmt.Errorf("%s delete --force %s: %w%s", r.name, c.id, err, outputSince(r.outPath, off))
		}
	}
	if c.pidfd >= 0 {
		if _, _, err := b.reap(ctx, r, c, ""); err != nil {
			return err
		}
	}
	b.forget(r, c)
	return nil
}

// runtime runs one command of r and keeps the peak RSS of its process.
func (b *bench) runtime(r *rt, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(b.ctx, opTimeout)
	defer cancel()
	argv := append([]string{r.path, "--root", r.root}, args...)
	rssFile := filepath.Join(b.dir, "rss")
	if b.rssPass {
		argv = append([]string{gnuTime, "-f", "%M", "-o", rssFile}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = b.devnull, r.out, r.out
	off := fileSize(r.outPath)
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w%s", r.path, strings.Join(args, " "), err, outputSince(r.outPath, off))
	}
	if b.measuring {
		part := sample{wall: time.Since(t0)}
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			part.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
		r.addPart(name, args[0], part)
	}
	if b.rssPass {
		kib, err := readRSS(rssFile)
		if err != nil {
			return fmt.Errorf("%s %s: %w", r.path, strings.Join(args, " "), err)
		}
		b.notePeak(r, name, kib)
		if b.o.verbose {
			fmt.Fprintf(os.Stderr, "peak RSS %-5s %-8s %s\n", r.name, args[0], mib(kib))
		}
	}
	return nil
}

// readRSS parses the "%M" that GNU time wrote: the child's ru_maxrss in KiB.
func readRSS(path string) (int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read peak RSS: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	kib, err := strconv.ParseInt(lines[len(lines)-1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("peak RSS from %s: %q", gnuTime, data)
	}
	return kib, nil
}

// measureRSS runs each benchmark once more per runtime with every runtime
// command under GNU time, for peak RSS. Our own children cannot report it:
// Go starts them with vfork (CLONE_VM), and exec carries the high-water RSS
// of the mm it leaves (here the benchmark's own, ~6 MiB) into the child's
// ru_maxrss. GNU time forks from a small C process instead; processes that
// the runtime forks (the container init, helpers) are clean either way.
func (b *bench) measureRSS() error {
	b.rssPass = true
	defer func() { b.rssPass = false }()
	for _, name := range benchOrder {
		if !b.o.benches[name] {
			continue
		}
		for _, r := range b.rts {
			if r.err != nil {
				continue
			}
			if err := b.ctx.Err(); err != nil {
				return err
			}
			var err error
			switch name {
			case benchLifecycle, benchLifecycleSeccomp:
				_, err = b.lifecycle(r, name)
			case benchExec:
				var c *container
				if c, err = b.startSleeper(r, name); err == nil {
					err = b.runtime(r, name, "exec", "--process", b.execJSON, c.id)
					if derr := b.forceDelete(r, c); err == nil {
						err = derr
					}
				}
			case benchKill:
				_, err = b.kill(r, name)
			}
			if err != nil {
				if b.ctx.Err() != nil {
					return b.ctx.Err()
				}
				b.fail(r, fmt.Errorf("%s, peak RSS run: %w", name, err))
			}
		}
	}
	return nil
}

// reap waits until the container's init has exited and reaps it when it is
// our child (the runtime left it orphaned, and we are a subreaper). Status
// and rusage are nil when a process of the runtime reaped it instead.
func (b *bench) reap(ctx context.Context, r *rt, c *container, name string) (*unix.WaitStatus, *unix.Rusage, error) {
	if err := waitPidfd(ctx, c.pidfd); err != nil {
		return nil, nil, fmt.Errorf("wait for the init (pid %d) of %s to exit: %w", c.pid, c.id, err)
	}
	var ws unix.WaitStatus
	var ru unix.Rusage
	for {
		_, err := unix.Wait4(c.pid, &ws, 0, &ru)
		switch {
		case err == nil:
			b.notePeak(r, name, ru.Maxrss)
			if b.measuring {
				r.addPart(name, "init", sample{cpu: rusageCPU(&ru)})
			}
			if b.rssPass && b.o.verbose {
				fmt.Fprintf(os.Stderr, "peak RSS %-5s %-8s %s\n", r.name, "init", mib(ru.Maxrss))
			}
			return &ws, &ru, nil
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ECHILD):
			return nil, nil, nil
		default:
			return nil, nil, fmt.Errorf("wait4(%d): %w", c.pid, err)
		}
	}
}

// waitPidfd waits until the process behind a pidfd has exited. Polling in
// slices keeps cancellation responsive; poll returns at once on the exit.
func waitPidfd(ctx context.Context, fd int) error {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 200)
		if err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("poll pidfd: %w", err)
		}
		if n > 0 {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// sweep reaps every child that has exited: processes that the runtime left
// orphaned (intermediate forks, helpers). No os/exec command is running when
// it is called, so it cannot steal one of theirs.
func (b *bench) sweep(r *rt, name string) {
	for {
		var ws unix.WaitStatus
		var ru unix.Rusage
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, &ru)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		b.notePeak(r, name, ru.Maxrss)
	}
}

// addPart records one command's share of a measured operation.
func (r *rt) addPart(name, part string, s sample) {
	if r.parts[name] == nil {
		r.parts[name] = map[string][]sample{}
	}
	if _, seen := r.parts[name][part]; !seen {
		r.partOrder[name] = append(r.partOrder[name], part)
	}
	r.parts[name][part] = append(r.parts[name][part], s)
}

// notePeak keeps the largest ru_maxrss of r's processes in a benchmark, but
// only during the RSS pass (see measureRSS).
func (b *bench) notePeak(r *rt, name string, kib int64) {
	if b.rssPass && r != nil && name != "" && kib > r.peakKiB[name] {
		r.peakKiB[name] = kib
	}
}

// childrenCPU is the user+sys time of all reaped descendants so far.
func childrenCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_CHILDREN, &ru); err != nil {
		// Cannot happen for RUSAGE_CHILDREN; a zero would corrupt the figures.
		panic(fmt.Sprintf("getrusage: %v", err))
	}
	return rusageCPU(&ru)
}

func rusageCPU(ru *unix.Rusage) time.Duration {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func describeStatus(ws unix.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exit status %d", ws.ExitStatus())
	case ws.Signaled():
		return fmt.Sprintf("signal %v", ws.Signal())
	default:
		return fmt.Sprintf("wait status %#x", uint32(ws))
	}
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// outputSince is what a runtime (and its containers) wrote after offset off,
// for error messages.
func outputSince(path string, off int64) string {
	data, err := os.ReadFile(path)
	if err != nil || int64(len(data)) <= off {
		return ""
	}
	out := strings.TrimSpace(string(data[off:]))
	if len(out) > 2000 {
		out = "…" + out[len(out)-2000:]
	}
	return "\n\t" + strings.ReplaceAll(out, "\n", "\n\t")
}
