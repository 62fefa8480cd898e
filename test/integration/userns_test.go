package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/capsa-project/capsa/internal/testutil"
)

// userNSBundle is a bundle whose container runs in a new user namespace
// mapping root to host uid 100000; the bundle's directories are opened up
// so that the mapped root can reach its rootfs.
func userNSBundle(t *testing.T, args ...string) *testutil.Bundle {
	t.Helper()
	b := testutil.NewBundle(t, args...)
	for d := b.Dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b.Spec.Linux.Namespaces = append(b.Spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	b.Spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	b.Spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	b.Write(t)
	return b
}

// A container in its own user namespace; exec joins it, and a second
// container joins it (and the first's network namespace) by path.
func TestUserNamespaceExecAndJoin(t *testing.T) {
	r := newRT(t)
	b := userNSBundle(t, "sleep", "1000")
	r.ok("run", "-d", "--bundle", b.Dir, "userns")
	pid := strconv.Itoa(r.state("userns").Pid)
	hostUser, err := os.Readlink("/proc/" + pid + "/ns/user")
	if err != nil {
		t.Fatal(err)
	}
	out := r.ok("exec", "userns", "sh", "-c", "id -u; cat /proc/self/uid_map; readlink /proc/self/ns/user")
	fields := strings.Fields(out)
	if len(fields) != 5 || fields[0] != "0" || fields[1] != "0" || fields[2] != "100000" || fields[4] != hostUser {
		t.Fatalf("exec in the user namespace printed %q, want uid 0, the 0→100000 map and %s", out, hostUser)
	}

	j := testutil.NewBundle(t, "sh", "-c", "id -u; readlink /proc/self/ns/user; readlink /proc/self/ns/net; echo $$")
	for d := j.Dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	hostNet, err := os.Readlink("/proc/" + pid + "/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	for i, ns := range j.Spec.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			j.Spec.Linux.Namespaces[i].Path = "/proc/" + pid + "/ns/net"
		}
	}
	j.Spec.Linux.Namespaces = append(j.Spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace, Path: "/proc/" + pid + "/ns/user"})
	j.Write(t)
	res := r.runBundle(j, "userns-join")
	want := "0\n" + hostUser + "\n" + hostNet + "\n1\n"
	if res.code != 0 || res.stdout != want {
		t.Fatalf("joining container: exit %d, stdout %q, want %q; stderr %q", res.code, res.stdout, want, res.stderr)
	}
	r.ok("delete", "--force", "userns")
}
