// Command bench compares image pull + unpack from a local registry:
// capsa pull vs podman pull vs skopeo copy + umoci unpack, side by side on
// the same image (default ~200 MB uncompressed in 5 gzip layers, half
// random and half compressible data), each run on empty storage. It
// prints wall times, their ratios to capsa's, and every tool's peak RSS
// (the largest ru_maxrss of its processes).
//
// Usage (as root): bench -capsa bin/capsa [-size 200] [-layers 5] [-n 3]
package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/capsa-project/capsa/internal/testregistry"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/klauspost/compress/gzip"
)

func main() {
	capsa := flag.String("capsa", "bin/capsa", "capsa binary")
	sizeMB := flag.Int("size", 200, "uncompressed image size in MB")
	layers := flag.Int("layers", 5, "number of layers")
	runs := flag.Int("n", 3, "runs per tool (the median is reported)")
	serve := flag.Bool("serve", false, "only serve the image (prints its name) until interrupted, for profiling")
	flag.Parse()
	if *serve {
		*runs = 0
	}
	if err := run(*capsa, *sizeMB, *layers, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type result struct {
	wall []time.Duration
	rss  int64 // KiB
	err  error
}

func run(capsa string, sizeMB, nLayers, runs int) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("run as root")
	}
	capsa, err := filepath.Abs(capsa)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "imgbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	reg, stop, err := testregistry.StartServer(filepath.Join(work, "registry"), testregistry.Options{})
	if err != nil {
		return err
	}
	defer stop()
	ref := reg.Host + "/imgbench/big:v1"
	fmt.Printf("building a %d MB, %d-layer image in the local registry %s ...\n", sizeMB, nLayers, reg.Host)
	compressed, err := pushImage(ref, sizeMB, nLayers)
	if err != nil {
		return err
	}
	fmt.Printf("image: %d MB compressed\n\n", compressed>>20)
	if runs == 0 {
		fmt.Println(ref)
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		<-sig
		return nil
	}

	tools := []struct {
		name string
		cmds func(dir string) [][]string
	}{
		{"capsa pull", func(dir string) [][]string {
			return [][]string{{capsa, "--root", dir, "pull", "-q", ref}}
		}},
		{"podman pull", func(dir string) [][]string {
			return [][]string{{"podman", "--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"), "--storage-driver", "overlay", "--events-backend", "none", "pull", "-q", "--tls-verify=false", ref}}
		}},
		{"skopeo copy + umoci unpack", func(dir string) [][]string {
			return [][]string{
				{"skopeo", "copy", "-q", "--src-tls-verify=false", "docker://" + ref, "oci:" + filepath.Join(dir, "layout") + ":v1"},
				{"umoci", "unpack", "--image", filepath.Join(dir, "layout") + ":v1", filepath.Join(dir, "bundle")},
			}
		}},
	}
	results := make([]result, len(tools))
	// Round-robin, so that a noisy machine hurts every tool alike.
	for i := 0; i < runs; i++ {
		for ti, tool := range tools {
			if results[ti].err != nil {
				continue
			}
			dir, err := os.MkdirTemp(work, "run-")
			if err != nil {
				return err
			}
			start := time.Now()
			for _, argv := range tool.cmds(dir) {
				rss, err := execute(argv)
				if err != nil {
					results[ti].err = err
					break
				}
				results[ti].rss = max(results[ti].rss, rss)
			}
			results[ti].wall = append(results[ti].wall, time.Since(start))
			cleanup(dir)
		}
	}
	capsaWall := median(results[0].wall)
	fmt.Printf("%-28s %10s %14s %12s\n", "tool", "wall (s)", "capsa/tool", "peak RSS")
	for ti, tool := range tools {
		r := results[ti]
		if r.err != nil {
			fmt.Printf("%-28s failed: %v\n", tool.name, r.err)
			continue
		}
		w := median(r.wall)
		fmt.Printf("%-28s %10.2f %14.2f %9.1f MiB\n", tool.name, w.Seconds(), capsaWall.Seconds()/w.Seconds(), float64(r.rss)/1024)
	}
	fmt.Printf("\ngoal: capsa under 0.5x the others' wall time, capsa peak RSS under 64 MiB\n")
	return nil
}

// execute runs argv under GNU time and returns its peak RSS (KiB). The
// rusage of a direct child of this process would count this process's
// own memory, which the child shares until it execs.
func execute(argv []string) (int64, error) {
	rssFile, err := os.CreateTemp("", "imgbench-rss-")
	if err != nil {
		return 0, err
	}
	rssFile.Close()
	defer os.Remove(rssFile.Name())
	cmd := exec.Command("/usr/bin/time", append([]string{"-f", "%M", "-o", rssFile.Name()}, argv...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, out.String())
	}
	data, err := os.ReadFile(rssFile.Name())
	if err != nil {
		return 0, err
	}
	var kib int64
	if _, err := fmt.Sscan(strings.TrimSpace(string(data)), &kib); err != nil {
		return 0, fmt.Errorf("GNU time output %q: %w", data, err)
	}
	return kib, nil
}

// cleanup unmounts what podman left (its overlay storage) and removes dir.
func cleanup(dir string) {
	_ = exec.Command("podman", "--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run"), "--storage-driver", "overlay", "system", "reset", "-f").Run()
	_ = exec.Command("umount", "-R", filepath.Join(dir, "root", "overlay")).Run()
	if err := os.RemoveAll(dir); err != nil {
		fmt.Fprintln(os.Stderr, "bench: cleanup:", err)
	}
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration{}, ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// pushImage builds the benchmark image and pushes it; returns the
// compressed size.
func pushImage(ref string, sizeMB, nLayers int) (int64, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return 0, err
	}
	rng := mrand.New(mrand.NewPCG(1, 2))
	var ls []v1.Layer
	var total int64
	per := sizeMB << 20 / nLayers
	for i := 0; i < nLayers; i++ {
		gz, err := layerData(rng, i, per)
		if err != nil {
			return 0, err
		}
		total += int64(len(gz))
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(gz)), nil })
		if err != nil {
			return 0, err
		}
		ls = append(ls, l)
	}
	img, err := mutate.AppendLayers(empty.Image, ls...)
	if err != nil {
		return 0, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return 0, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Cmd = []string{"/bin/sh"}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return 0, err
	}
	return total, remote.Write(r, img)
}

// layerData makes one gzip layer of about size bytes: files of 1 MiB,
// alternately random and text-like, in a few directories.
func layerData(rng *mrand.Rand, layer, size int) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	const fileSize = 1 << 20
	words := []string{"alpha ", "beta ", "gamma ", "delta ", "lib ", "usr ", "share ", "config\n"}
	data := make([]byte, fileSize)
	for n := 0; n*fileSize < size; n++ {
		dir := fmt.Sprintf("layer%d/d%d", layer, n%8)
		if n < 8 {
			if err := tw.WriteHeader(&tar.Header{Name: dir + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
				return nil, err
			}
		}
		if n%2 == 0 {
			for i := 0; i+8 <= len(data); i += 8 {
				v := rng.Uint64()
				for k := 0; k < 8; k++ {
					data[i+k] = byte(v >> (8 * k))
				}
			}
		} else {
			for i := 0; i < len(data); {
				i += copy(data[i:], words[rng.IntN(len(words))])
			}
		}
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("%s/f%d", dir, n), Typeflag: tar.TypeReg, Mode: 0o644, Size: fileSize}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
