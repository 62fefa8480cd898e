package podman

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/capsa-project/capsa/internal/testutil"
)

// want checks stdout and exit code exactly.
func want(stdout string, code int) func(result) error {
	return func(r result) error {
		if r.code != code {
			return fmt.Errorf("exit code %d, want %d", r.code, code)
		}
		if r.stdout != stdout {
			return fmt.Errorf("stdout %q, want %q", r.stdout, stdout)
		}
		return nil
	}
}

func TestRunRmEcho(t *testing.T) {
	testutil.CheckLeaks(t, stateRoots...)
	e := newEnv(t)
	compare(t, func(r runtimeUnderTest) result {
		name := "ptest-echo-" + r.name
		res := e.podman(r, append(append([]string{"run", "--rm"}, e.runFlags(name)...), image, "echo", "hello", "from", "busybox")...)
		// --rm: the container must be gone once run returns.
		left := e.podman(r, "ps", "--all", "--quiet", "--filter", "name=^"+name+"$")
		res.stdout += "containers left: " + strings.Join(strings.Fields(left.stdout), " ") + "\n"
		return res
	}, want("hello from busybox\ncontainers left: \n", 0))
}

func TestExitCode(t *testing.T) {
	testutil.CheckLeaks(t, stateRoots...)
	e := newEnv(t)
	compare(t, func(r runtimeUnderTest) result {
		return e.podman(r, append(append([]string{"run", "--rm"}, e.runFlags("ptest-exit-"+r.name)...), image, "sh", "-c", "echo before; exit 3")...)
	}, want("before\n", 3))
}

// TestDetachExecStop runs a container in the background, execs into it,
// stops it (its init exits 0 on SIGTERM) and removes it.
func TestDetachExecStop(t *testing.T) {
	testutil.CheckLeaks(t, stateRoots...)
	e := newEnv(t)
	compare(t, func(r runtimeUnderTest) result {
		name := "ptest-detach-" + r.name
		var transcript strings.Builder
		step := func(args ...string) result {
			res := e.podman(r, args...)
			fmt.Fprintf(&transcript, "[%s] exit %d\n%s", args[0], res.code, res.stdout)
			return res
		}
		// busybox sh as pid 1: the trap makes SIGTERM end it with status 0.
		run := step(append(append([]string{"run", "--detach"}, e.runFlags(name)...), image, "sh", "-c", "trap 'exit 0' TERM; echo started; sleep 1000 & wait")...)
		if run.code != 0 {
			return result{cmd: "run --detach", stdout: transcript.String(), stderr: run.stderr, code: run.code}
		}
		// The container id differs between runs; keep only its shape.
		transcript.Reset()
		fmt.Fprintf(&transcript, "[run] exit 0\nid ok: %v\n", regexp.MustCompile(`^[0-9a-f]{64}\n$`).MatchString(run.stdout))
		steps := []result{
			step("exec", name, "sh", "-c", "echo exec says hi; id -u; cat /proc/1/comm"),
			step("exec", name, "sh", "-c", "exit 7"),
			step("inspect", "--format", "{{.State.Status}}", name),
			step("stop", "--time", "60", name),
			step("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name),
			step("logs", name),
			step("rm", name),
		}
		// Container names differ by runtime.
		res := result{cmd: "run -d / exec / exec / inspect / stop / inspect / logs / rm", stdout: strings.ReplaceAll(transcript.String(), name, "NAME")}
		for _, s := range steps {
			res.stderr += s.stderr
		}
		return res
	}, want(`[run] exit 0
id ok: true
[exec] exit 0
exec says hi
0
sh
[exec] exit 7
[inspect] exit 0
running
[stop] exit 0
NAME
[inspect] exit 0
exited 0
[logs] exit 0
started
[rm] exit 0
NAME
`, 0))
}

func TestInteractiveTTY(t *testing.T) {
	testutil.CheckLeaks(t, stateRoots...)
	e := newEnv(t)
	compare(t, func(r runtimeUnderTest) result {
		return e.podmanTTY(r, append(append([]string{"run", "--rm", "--interactive", "--tty"}, e.runFlags("ptest-tty-"+r.name)...),
			image, "sh", "-c", "tty; [ -t 0 ] && echo stdin-is-a-tty; stty size; echo hi")...)
	}, want("/dev/pts/0\nstdin-is-a-tty\n24 80\nhi\n", 0))
}

func TestUser(t *testing.T) {
	testutil.CheckLeaks(t, stateRoots...)
	e := newEnv(t)
	compare(t, func(r runtimeUnderTest) result {
		return e.podman(r, append(append([]string{"run", "--rm", "--user", "1000:1000"}, e.runFlags("ptest-user-"+r.name)...),
			image, "sh", "-c", "id; touch /root/x 2>/dev/null && echo root-dir-writable || echo root-dir-denied")...)
	}, func(r result) error {
		if err := want(r.stdout, 0)(r); err != nil {
			return err
		}
		if !strings.HasPrefix(r.stdout, "uid=1000(user) gid=1000(user)") {
			return fmt.Errorf("id printed %q, want uid=1000(user) gid=1000(user)", r.stdout)
		}
		if !strings.HasSuffix(r.stdout, "root-dir-denied\n") {
			return fmt.Errorf("user 1000 could write to /root: %q", r.stdout)
		}
		return nil
	})
}

func TestReadOnly(t *testing.T) {
	testutil.CheckLeaks(t, stateRoots...)
	e := newEnv(t)
	compare(t, func(r runtimeUnderTest) result {
		return e.podman(r, append(append([]string{"run", "--rm", "--read-only"}, e.runFlags("ptest-ro-"+r.name)...),
			image, "sh", "-c", "touch /x 2>/dev/null && echo root-writable || echo root-read-only; touch /tmp/y && echo tmp-writable")...)
	}, want("root-read-only\ntmp-writable\n", 0))
}

func TestHostname(t *testing.T) {
	testutil.CheckLeaks(t, stateRoots...)
	e := newEnv(t)
	compare(t, func(r runtimeUnderTest) result {
		return e.podman(r, append(append([]string{"run", "--rm", "--hostname", "ptest-host"}, e.runFlags("ptest-hostname-"+r.name)...),
			image, "sh", "-c", `hostname; echo "$(cat /etc/hostname)"`)...)
	}, want("ptest-host\nptest-host\n", 0))
}

func TestEnvWorkdir(t *testing.T) {
	testutil.CheckLeaks(t, stateRoots...)
	e := newEnv(t)
	compare(t, func(r runtimeUnderTest) result {
		return e.podman(r, append(append([]string{"run", "--rm", "--env", "PTEST_VAR=hello env", "--workdir", "/home/user"}, e.runFlags("ptest-env-"+r.name)...),
			image, "sh", "-c", `echo "$PTEST_VAR"; pwd`)...)
	}, want("hello env\n/home/user\n", 0))
}
