// Command runtime compares OCI runtimes (capsa-runtime, runc, crun) on the
// same busybox bundle: the whole lifecycle of a /bin/true container, exec
// latency into a running container, and `delete --force` of a running one.
//
// The runtimes run round-robin in one process, so that a noisy machine
// hurts all of them alike. Wall time and CPU time (user+sys of every process
// involved, the container init included) are taken per operation; the
// benchmark is a child subreaper, so container inits orphaned by their
// runtime are reaped here and their CPU time is counted by
// getrusage(RUSAGE_CHILDREN). Peak RSS is the largest ru_maxrss of any
// process of a runtime.
//
// All runtimes run in ONE private mount namespace without
// /sys/fs/cgroup/unified: crun 1.8.1 refuses the hybrid cgroup layout of
// these hosts when the v2 hierarchy holds a controller (hugetlb), and
// wrapping every call in unshare(1) would add milliseconds to each of them.
// The namespace is made once, by re-executing this binary into it.
//
// With -seccomp every bundle has Docker's default seccomp profile; the
// lifecycle-seccomp benchmark always has it, and runs in the same rounds as
// lifecycle, so that `-bench lifecycle,lifecycle-seccomp` shows what the
// profile adds to a start for each runtime.
//
// Usage (as root):
//
//	runtime [-n 30] [-quick] [-runtime name=path ...] [-bench lifecycle,lifecycle-seccomp,exec,kill] [-full-spec] [-seccomp]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// innerEnv marks the re-executed process that runs inside the private mount
// namespace.
const innerEnv = "CAPSA_BENCH_MNTNS"

// runtimeFlag collects repeated -runtime name=path flags.
type runtimeFlag []runtimeSpec

type runtimeSpec struct{ name, path string }

func (r *runtimeFlag) String() string {
	var s []string
	for _, rt := range *r {
		s = append(s, rt.name+"="+rt.path)
	}
	return strings.Join(s, ",")
}

func (r *runtimeFlag) Set(v string) error {
	name, path, ok := strings.Cut(v, "=")
	if !ok || name == "" || path == "" {
		return fmt.Errorf("want name=path, got %q", v)
	}
	for _, rt := range *r {
		if rt.name == name {
			return fmt.Errorf("runtime %q given twice", name)
		}
	}
	*r = append(*r, runtimeSpec{name, path})
	return nil
}

type options struct {
	iterations int
	warmup     int
	runtimes   runtimeFlag
	benches    map[string]bool
	fullSpec   bool
	seccomp    bool
	verbose    bool
}

func main() {
	var o options
	var benches string
	var quick bool
	flag.IntVar(&o.iterations, "n", 30, "measured iterations of each benchmark per runtime")
	flag.IntVar(&o.warmup, "warmup", 2, "unmeasured iterations of each benchmark per runtime before measuring")
	flag.BoolVar(&quick, "quick", false, "quick mode: 5 iterations, no warm-up beyond the preflight run")
	flag.Var(&o.runtimes, "runtime", "runtime under test as name=path (repeatable; default: capsa=bin/capsa-runtime if built, runc, crun)")
	flag.StringVar(&benches, "bench", "lifecycle,exec,kill", "comma-separated benchmarks to run: lifecycle, lifecycle-seccomp, exec, kill")
	flag.BoolVar(&o.fullSpec, "full-spec", false, "use runc's full default spec (all of its mounts, masked and read-only paths) instead of the minimal one")
	flag.BoolVar(&o.seccomp, "seccomp", false, "put Docker's default seccomp profile in every bundle (lifecycle-seccomp always has it)")
	flag.BoolVar(&o.verbose, "v", false, "log every operation")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "unexpected arguments: %q\n", flag.Args())
		os.Exit(2)
	}
	if quick {
		o.iterations, o.warmup = 5, 0
	}
	if o.iterations < 1 || o.warmup < 0 {
		fmt.Fprintln(os.Stderr, "-n must be at least 1 and -warmup at least 0")
		os.Exit(2)
	}
	o.benches = map[string]bool{}
	for _, b := range strings.Split(benches, ",") {
		switch b = strings.TrimSpace(b); b {
		case benchLifecycle, benchLifecycleSeccomp, benchExec, benchKill:
			o.benches[b] = true
		case "":
		default:
			fmt.Fprintf(os.Stderr, "unknown benchmark %q (want lifecycle, lifecycle-seccomp, exec, kill)\n", b)
			os.Exit(2)
		}
	}
	if len(o.runtimes) == 0 {
		o.runtimes = defaultRuntimes()
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "the runtime benchmark needs root (namespaces, cgroups, mounts)")
		os.Exit(2)
	}

	if os.Getenv(innerEnv) == "" {
		os.Exit(reexecInPrivateMountNS())
	}
	os.Exit(inner(o))
}

// defaultRuntimes is capsa-runtime from the repository's bin/ when it was
// built, then runc and crun from Debian.
func defaultRuntimes() runtimeFlag {
	var rts runtimeFlag
	if exe, err := os.Executable(); err == nil {
		// make builds both this program and capsa-runtime into bin/.
		if p := filepath.Join(filepath.Dir(exe), "capsa-runtime"); isExecutable(p) {
			rts = append(rts, runtimeSpec{"capsa", p})
		}
	}
	if len(rts) == 0 {
		if wd, err := os.Getwd(); err == nil {
			if p := filepath.Join(wd, "bin", "capsa-runtime"); isExecutable(p) {
				rts = append(rts, runtimeSpec{"capsa", p})
			}
		}
	}
	if len(rts) == 0 {
		fmt.Fprintln(os.Stderr, "note: bin/capsa-runtime not found (run `make build`); benchmarking runc and crun only")
	}
	return append(rts, runtimeSpec{"runc", "/usr/sbin/runc"}, runtimeSpec{"crun", "/usr/bin/crun"})
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// reexecInPrivateMountNS runs this program again in a new mount namespace
// and returns its exit code. The parent only waits: it forwards SIGTERM and
// SIGINT and the child dies with it (Pdeathsig), so nothing it set up
// outlives the run.
func reexecInPrivateMountNS() int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "find own executable:", err)
		return 1
	}
	cmd := exec.Command(self, os.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), innerEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGTERM}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "re-exec into a private mount namespace:", err)
		return 1
	}
	go func() {
		for s := range sigs {
			// A terminal's ^C reaches the child too; a second SIGINT is harmless.
			if err := cmd.Process.Signal(s); err != nil {
				fmt.Fprintln(os.Stderr, "forward signal:", err)
			}
		}
	}()
	err = cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ee.ExitCode() >= 0 {
			return ee.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "benchmark:", err)
		return 1
	default:
		fmt.Fprintln(os.Stderr, "benchmark:", err)
		return 1
	}
}

// setupMountNS makes the (new) mount namespace private, so that nothing the
// runtimes mount propagates to the host, and removes the cgroup2 mount that
// makes crun refuse the hybrid layout.
func setupMountNS() error {
	if err := unix.Mount("", "/", "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make / private in the benchmark's mount namespace: %w", err)
	}
	const unified = "/sys/fs/cgroup/unified"
	var st unix.Statfs_t
	if err := unix.Statfs(unified, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("statfs %s: %w", unified, err)
	}
	if st.Type != unix.CGROUP2_SUPER_MAGIC {
		return nil
	}
	if err := unix.Unmount(unified, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount %s in the benchmark's mount namespace: %w", unified, err)
	}
	return nil
}

// inner is the benchmark proper, inside the private mount namespace.
func inner(o options) int {
	if err := setupMountNS(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// Orphaned container inits are reparented to us, so that we reap them
	// and their CPU time lands in our RUSAGE_CHILDREN.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "PR_SET_CHILD_SUBREAPER:", err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "\n%v: stopping and cleaning up\n", s)
		cancel()
	}()
	// Output piped into `head` must not kill us before the cleanup: with
	// SIGPIPE notified, writes to a closed stdout fail instead.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)

	b, err := newBench(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "setup:", err)
		if b != nil {
			b.cleanup()
		}
		return 1
	}
	runErr := b.run()
	b.report(os.Stdout)
	if err := b.cleanup(); err != nil {
		fmt.Fprintln(os.Stderr, "cleanup:", err)
		return 1
	}
	if runErr != nil {
		fmt.Fprintln(os.Stderr, "benchmark:", runErr)
		return 1
	}
	if failed := b.failedRuntimes(); len(failed) > 0 {
		fmt.Fprintf(os.Stderr, "runtimes that failed: %s\n", strings.Join(failed, ", "))
		return 1
	}
	return 0
}
