package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/capsa-project/capsa/internal/testregistry"
	"github.com/capsa-project/capsa/internal/testutil"
)

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is not installed (make deps installs it): %v", name, err)
	}
	return p
}

func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(needTool(t, name), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// podmanArgs keeps podman's storage private to the test.
func podmanArgs(t *testing.T) []string {
	dir := t.TempDir()
	return []string{"--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"), "--storage-driver", "vfs", "--events-backend", "none", "--cgroup-manager", "cgroupfs"}
}

// Acceptance 2: skopeo's docker-archive and oci-archive tars load and
// run; capsa save output is accepted by skopeo and podman load.
func TestArchivesInterop(t *testing.T) {
	state := t.TempDir()
	testutil.CheckLeaks(t, state)
	c := newCLI(t)
	reg := testregistry.Start(t, testregistry.Options{})
	name := reg.Host + "/imgtest/busybox:v1"
	c.run("import", "-c", `CMD ["/bin/echo","archive-ok"]`, busyboxTar(t), name)
	c.run("push", name)
	dir := t.TempDir()

	// skopeo → capsa
	dockerTar := filepath.Join(dir, "skopeo-docker.tar")
	runTool(t, "skopeo", "copy", "--src-tls-verify=false", "docker://"+name, "docker-archive:"+dockerTar+":imgtest/from-skopeo:docker")
	ociTar := filepath.Join(dir, "skopeo-oci.tar")
	runTool(t, "skopeo", "copy", "--src-tls-verify=false", "docker://"+name, "oci-archive:"+ociTar+":imgtest/from-skopeo:oci")
	c2 := newCLI(t)
	if out := c2.run("load", "-i", dockerTar); strings.TrimSpace(out) != "Loaded image: imgtest/from-skopeo:docker" {
		t.Fatalf("load of skopeo docker-archive: %q", out)
	}
	if out := c2.run("load", "-i", ociTar); strings.TrimSpace(out) != "Loaded image: imgtest/from-skopeo:oci" {
		t.Fatalf("load of skopeo oci-archive: %q", out)
	}
	for _, ref := range []string{"imgtest/from-skopeo:docker", "imgtest/from-skopeo:oci"} {
		if out := c2.runImage(ref, state); !strings.Contains(out, "archive-ok") {
			t.Fatalf("run %s: %q", ref, out)
		}
	}
	// An OCI archive without a name loads by ID.
	noName := filepath.Join(dir, "noname.tar")
	runTool(t, "skopeo", "copy", "--src-tls-verify=false", "docker://"+name, "oci-archive:"+noName)
	if out := c2.run("load", "-i", noName); !strings.HasPrefix(out, "Loaded image") {
		t.Fatalf("load of an unnamed oci-archive: %q", out)
	}

	// capsa → skopeo, podman
	for _, format := range []string{"docker-archive", "oci-archive"} {
		saved := filepath.Join(dir, "capsa-"+format+".tar")
		c.run("save", "--format", format, "-o", saved, name)
		runTool(t, "skopeo", "copy", format+":"+saved, "oci:"+filepath.Join(dir, "layout-"+format)+":x")
		pa := podmanArgs(t)
		out := runTool(t, "podman", append(pa, "load", "-i", saved)...)
		if !strings.Contains(out, "Loaded image") {
			t.Fatalf("podman load of capsa %s: %s", format, out)
		}
		imgs := runTool(t, "podman", append(pa, "images", "--format", "{{.Repository}}:{{.Tag}}")...)
		if !strings.Contains(imgs, "imgtest/busybox:v1") {
			t.Fatalf("podman images after loading capsa %s:\n%s", format, imgs)
		}
		// And capsa loads its own output back.
		c3 := newCLI(t)
		if out := c3.run("load", "-i", saved); !strings.Contains(out, "Loaded image: "+name) {
			t.Fatalf("capsa load of its own %s: %q", format, out)
		}
	}
	// docker save | gzip loads too.
	gz := filepath.Join(dir, "save.tar.gz")
	c.run("save", "-o", filepath.Join(dir, "plain.tar"), name)
	if out, err := exec.Command("sh", "-c", "gzip -c "+filepath.Join(dir, "plain.tar")+" > "+gz).CombinedOutput(); err != nil {
		t.Fatalf("gzip: %v %s", err, out)
	}
	c4 := newCLI(t)
	if out := c4.run("load", "-i", gz); !strings.Contains(out, "Loaded image: "+name) {
		t.Fatalf("load of a gzipped archive: %q", out)
	}
	_ = os.Remove(gz)
}
