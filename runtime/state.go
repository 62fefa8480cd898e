package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/capsa-project/capsa/internal/proctree"
	"github.com/capsa-project/capsa/runtime/cgroups"
)

// Status values as the runtime spec and runc report them.
const (
	StatusCreating = "creating"
	StatusCreated  = "created"
	StatusRunning  = "running"
	StatusPaused   = "paused"
	StatusStopped  = "stopped"
)

const (
	stateFile   = "state.json"
	seccompFile = "seccomp.bpf"
	fifoName    = "exec.fifo"
)

// Container is what the runtime remembers of one container between
// invocations, stored as state.json in a 0700 directory named after its id.
type Container struct {
	ID          string            `json:"id"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	InitPid     int               `json:"init_process_pid"`
	InitStart   uint64            `json:"init_process_start"`
	Created     time.Time         `json:"created"`
	CgroupPaths map[string]string `json:"cgroup_paths,omitempty"`
	Spec        *specs.Spec       `json:"config"`

	dir string
	cg  cgroups.Manager // found again from CgroupPaths on first use
	// seccomp is the compiled filter, saved once as seccompFile.
	seccomp []byte
	// specJSON, when set, is Spec as JSON without its seccomp section
	// (config.json's bytes at create), which save stores as it is:
	// encoding the spec with reflection costs a create more than
	// anything else it encodes. Whoever changes Spec clears it.
	specJSON []byte
}

// Dir is the container's state directory.
func (c *Container) Dir() string { return c.dir }

// Owner names the user who owns the container's state directory, as runc
// reports it ("" if it cannot be found).
func (c *Container) Owner() string {
	fi, err := os.Stat(c.dir)
	if err != nil {
		return ""
	}
	uid := strconv.FormatUint(uint64(fi.Sys().(*syscall.Stat_t).Uid), 10)
	if u, err := user.LookupId(uid); err == nil {
		return u.Username
	}
	return "#" + uid
}

// Load reads the state of container id from the state root.
func Load(root, id string) (*Container, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	dir := filepath.Join(root, id)
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("container %s does not exist", id)
		}
		return nil, fmt.Errorf("read state of %s: %w", id, err)
	}
	c := &Container{dir: dir}
	if err := DecodeJSON(data, c); err != nil {
		return nil, fmt.Errorf("state of %s is corrupt: %w", id, err)
	}
	if c.Spec == nil {
		c.Spec = &specs.Spec{}
	}
	return c, nil
}

// List loads every container under root, skipping entries that are not
// containers (a half-created one without state.json, foreign files).
func List(root string) ([]*Container, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []*Container
	for _, e := range entries {
		if !e.IsDir() || ValidateID(e.Name()) != nil {
			continue
		}
		c, err := Load(root, e.Name())
		if err != nil {
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

// save writes state.json atomically so that a crash never leaves a torn file.
// The seccomp profile, often the largest part of a config, is not kept:
// its compiled filter goes to a file of its own, written once at create,
// which only exec reads.
func (c *Container) save() error {
	var data []byte
	var err error
	if c.specJSON != nil {
		saved := struct {
			*Container
			Spec json.RawMessage `json:"config"`
		}{c, c.specJSON}
		data, err = json.Marshal(&saved)
	} else {
		saved := *c
		if c.Spec != nil && c.Spec.Linux != nil && c.Spec.Linux.Seccomp != nil {
			spec, linux := *c.Spec, *c.Spec.Linux
			linux.Seccomp = nil
			spec.Linux = &linux
			saved.Spec = &spec
		}
		data, err = json.Marshal(&saved)
	}
	if err != nil {
		return err
	}
	if c.seccomp != nil {
		path := filepath.Join(c.dir, seccompFile)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			if err := writeFileAtomic(path, c.seccomp, 0o600); err != nil {
				return err
			}
		}
	}
	if err := writeFileAtomic(filepath.Join(c.dir, fastpathFile), c.fastpathRecord(), 0o600); err != nil {
		return err
	}
	// The C front prints it for `state`; without it the Go runtime does.
	if f, err := c.stateFmt(); err == nil {
		if err := writeFileAtomic(filepath.Join(c.dir, stateFmtFile), f, 0o600); err != nil {
			return err
		}
	}
	return writeFileAtomic(filepath.Join(c.dir, stateFile), data, 0o600)
}

// loadSeccompFilter reads the compiled seccomp filter saved at create
// (nil: the container has none) and whether it uses SCMP_ACT_NOTIFY.
func (c *Container) loadSeccompFilter() ([]byte, bool, error) {
	data, err := os.ReadFile(filepath.Join(c.dir, seccompFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("read seccomp filter of %s: %w", c.ID, err)
	}
	f, err := decodeSeccomp(data)
	if err != nil {
		return nil, false, fmt.Errorf("seccomp filter of %s is corrupt: %w", c.ID, err)
	}
	return data, f.UsesNotify(), nil
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// processStartTime returns the start time of pid, which tells a recycled
// pid apart from the container's init, and whether it is a zombie.
func processStartTime(pid int) (start uint64, zombie bool, err error) {
	st, err := proctree.ReadStat(pid)
	return st.StartTime, st.State == 'Z' || st.State == 'X', err
}

// initAlive reports whether the recorded init process still runs (and is
// the same process, not a recycled pid).
func (c *Container) initAlive() bool {
	if c.InitPid <= 0 {
		return false
	}
	start, zombie, err := processStartTime(c.InitPid)
	return err == nil && !zombie && start == c.InitStart
}

// cgroup returns the container's cgroup manager (nil when it has none).
func (c *Container) cgroup() (cgroups.Manager, error) {
	if c.cg != nil || len(c.CgroupPaths) == 0 {
		return c.cg, nil
	}
	m, err := cgroups.FromPaths(c.CgroupPaths)
	if err != nil {
		return nil, err
	}
	c.cg = m
	return m, nil
}

// Status derives the container's status from the kernel: the init process,
// the exec fifo (present until `start`) and the freezer.
func (c *Container) Status() string {
	if !c.initAlive() {
		return StatusStopped
	}
	if _, err := os.Lstat(filepath.Join(c.dir, fifoName)); err == nil {
		return StatusCreated
	}
	if m, err := c.cgroup(); err == nil && m != nil {
		if st, err := m.State(); err == nil && st == cgroups.Frozen {
			return StatusPaused
		}
	}
	return StatusRunning
}

// OCIState is the state the runtime spec defines (printed by `state`, fed
// to hooks on stdin).
func (c *Container) OCIState() specs.State {
	st := specs.State{
		Version: specs.Version,
		ID:      c.ID,
		Status:  specs.ContainerState(c.Status()),
		Bundle:  c.Bundle,
	}
	if st.Status != StatusStopped {
		st.Pid = c.InitPid
	}
	if c.Spec != nil {
		st.Annotations = c.Spec.Annotations
	}
	return st
}

// signal sends sig to the init process, checking it is still the same one.
func (c *Container) signal(sig unix.Signal) error {
	if !c.initAlive() {
		return fmt.Errorf("container %s is not running", c.ID)
	}
	if err := unix.Kill(c.InitPid, sig); err != nil {
		return fmt.Errorf("signal %d to container %s: %w", sig, c.ID, err)
	}
	return nil
}
