package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// writeFile writes one value to a cgroup control file. Control files take a
// whole value per write(2), so the value goes in one call and EINTR is
// retried rather than reported.
func writeFile(dir, file, value string) error {
	p := filepath.Join(dir, file)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("cgroups: %w", err) // the PathError names the file
	}
	defer f.Close()
	for {
		_, err = f.Write([]byte(value))
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("cgroups: write %q to %s: %w", value, p, err)
	}
	return nil
}

// readFile reads a cgroup control file.
func readFile(dir, file string) (string, error) {
	p := filepath.Join(dir, file)
	b, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("cgroups: %w", err)
	}
	return string(b), nil
}

// readUint reads a file holding one number; "max" reads as MaxUint64, as
// runc reports unlimited values.
func readUint(dir, file string) (uint64, error) {
	s, err := readFile(dir, file)
	if err != nil {
		return 0, err
	}
	v, err := parseUint(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("cgroups: parse %s: %w", filepath.Join(dir, file), err)
	}
	return v, nil
}

// parseUint parses a cgroup number: "max" is unlimited and negative values
// (v1 writes -1 for unlimited in some files) read as zero, as runc does.
func parseUint(s string) (uint64, error) {
	if s == "max" {
		return ^uint64(0), nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		if i, ierr := strconv.ParseInt(s, 10, 64); ierr == nil && i < 0 {
			return 0, nil
		}
		return 0, err
	}
	return v, nil
}

// parseKeyValues parses "key value" lines (memory.stat, cpu.stat, ...).
func parseKeyValues(s string) (map[string]uint64, error) {
	out := map[string]uint64{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if len(fields) != 2 {
			return nil, fmt.Errorf("malformed line %q", sc.Text())
		}
		v, err := parseUint(fields[1])
		if err != nil {
			return nil, fmt.Errorf("malformed value in %q: %w", sc.Text(), err)
		}
		out[fields[0]] = v
	}
	return out, nil
}

// readKeyValues reads and parses a flat keyed file.
func readKeyValues(dir, file string) (map[string]uint64, error) {
	s, err := readFile(dir, file)
	if err != nil {
		return nil, err
	}
	m, err := parseKeyValues(s)
	if err != nil {
		return nil, fmt.Errorf("cgroups: parse %s: %w", filepath.Join(dir, file), err)
	}
	return m, nil
}

// exists reports whether dir/file exists.
func exists(dir, file string) bool {
	_, err := os.Stat(filepath.Join(dir, file))
	return err == nil
}

// readProcs lists the pids in dir's cgroup.procs.
func readProcs(dir string) ([]int, error) {
	s, err := readFile(dir, "cgroup.procs")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(s) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("cgroups: parse %s/cgroup.procs: %w", dir, err)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// readProcsRecursive lists the pids of dir and every cgroup below it.
func readProcsRecursive(dir string) ([]int, error) {
	var all []int
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			// A child cgroup removed while walking is not an error.
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		pids, err := readProcs(p)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		all = append(all, pids...)
		return nil
	})
	return all, err
}

// subdirsDeepestFirst lists dir and its descendants, children before their
// parents, the order in which rmdir must remove them.
func subdirsDeepestFirst(dir string) []string {
	var dirs []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil // best effort: what vanished needs no removal
	})
	for i, j := 0, len(dirs)-1; i < j; i, j = i+1, j-1 {
		dirs[i], dirs[j] = dirs[j], dirs[i]
	}
	return dirs
}
