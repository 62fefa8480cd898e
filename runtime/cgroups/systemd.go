package cgroups

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// systemdManager is the systemd cgroup driver (runc's --systemd-cgroup):
// systemd creates the container's scope unit over D-Bus and owns the
// cgroup; the limits are set both as unit properties (so that a systemd
// daemon-reload keeps them) and written to the cgroup files by the fs
// manager of the same directory, as runc does.
type systemdManager struct {
	unit  string // e.g. capsa-ID.scope
	slice string // e.g. system.slice
	fs    Manager
	res   *specs.LinuxResources
}

// systemdRunning reports whether systemd is the init system (sd_booted).
func systemdRunning() bool {
	fi, err := os.Lstat("/run/systemd/system")
	return err == nil && fi.IsDir()
}

// parseSystemdPath splits "slice:prefix:name" (runc's format). Empty
// means "system.slice:capsa:<id>".
func parseSystemdPath(path, id string) (slice, unit string, err error) {
	if path == "" {
		if id == "" {
			return "", "", errors.New("cgroups: systemd driver: neither cgroupsPath nor container id given")
		}
		return "system.slice", "capsa-" + id + ".scope", nil
	}
	parts := strings.Split(path, ":")
	if len(parts) != 3 {
		return "", "", fmt.Errorf("cgroups: systemd cgroupsPath %q is not \"slice:prefix:name\"", path)
	}
	slice, prefix, name := parts[0], parts[1], parts[2]
	if slice == "" {
		slice = "system.slice"
	}
	for _, s := range []string{slice, prefix, name} {
		if strings.ContainsAny(s, "/\x00") {
			return "", "", fmt.Errorf("cgroups: systemd cgroupsPath %q holds a '/'", path)
		}
	}
	if name == "" {
		return "", "", fmt.Errorf("cgroups: systemd cgroupsPath %q has no name", path)
	}
	if strings.HasSuffix(name, ".slice") {
		return slice, name, nil // the container gets a slice of its own
	}
	if prefix != "" {
		return slice, prefix + "-" + name + ".scope", nil
	}
	return slice, name + ".scope", nil
}

// expandSlice turns "a-b-c.slice" into "/a.slice/a-b.slice/a-b-c.slice",
// where systemd puts that slice in the cgroup tree.
func expandSlice(slice string) (string, error) {
	base, ok := strings.CutSuffix(slice, ".slice")
	if !ok || base == "" || strings.Contains(slice, "/") {
		return "", fmt.Errorf("cgroups: invalid slice name %q", slice)
	}
	if base == "-" {
		return "/", nil
	}
	var path, prefix strings.Builder
	for _, comp := range strings.Split(base, "-") {
		if comp == "" {
			return "", fmt.Errorf("cgroups: invalid slice name %q", slice)
		}
		if prefix.Len() > 0 {
			prefix.WriteByte('-')
		}
		prefix.WriteString(comp)
		path.WriteString("/" + prefix.String() + ".slice")
	}
	return path.String(), nil
}

func newSystemd(c Config) (Manager, error) {
	if !systemdRunning() {
		init, _ := os.ReadFile("/proc/1/comm")
		return nil, fmt.Errorf("cgroups: the systemd cgroup driver needs systemd as the init system, but PID 1 is %q and /run/systemd/system is missing; run without --systemd-cgroup: %w",
			strings.TrimSpace(string(init)), ErrNotSupported)
	}
	slice, unit, err := parseSystemdPath(c.Path, c.ID)
	if err != nil {
		return nil, err
	}
	slicePath, err := expandSlice(slice)
	if err != nil {
		return nil, err
	}
	inner := filepath.Join(slicePath, unit)
	var fs Manager
	if IsV2() {
		fs, err = newV2(inner, nil)
	} else {
		fs, err = newV1(inner, nil)
	}
	if err != nil {
		return nil, err
	}
	return &systemdManager{unit: unit, slice: slice, fs: fs, res: c.Resources}, nil
}

// unitProperty is one (name, value) of StartTransientUnit's a(sv).
type unitProperty struct {
	Name  string
	Value dbus.Variant
}

// unitProperties maps the resources systemd knows to unit properties.
func unitProperties(r *specs.LinuxResources, v2 bool) []unitProperty {
	var props []unitProperty
	add := func(name string, v any) { props = append(props, unitProperty{name, dbus.MakeVariant(v)}) }
	if r == nil {
		return nil
	}
	if m := r.Memory; m != nil && m.Limit != nil && *m.Limit > 0 {
		if v2 {
			add("MemoryMax", uint64(*m.Limit))
		} else {
			add("MemoryLimit", uint64(*m.Limit))
		}
	}
	if p := r.Pids; p != nil && p.Limit != nil {
		if *p.Limit > 0 {
			add("TasksMax", uint64(*p.Limit))
		} else {
			add("TasksMax", ^uint64(0))
		}
	}
	if c := r.CPU; c != nil {
		if c.Shares != nil && *c.Shares != 0 {
			if v2 {
				add("CPUWeight", SharesToWeight(*c.Shares))
			} else {
				add("CPUShares", *c.Shares)
			}
		}
		if c.Quota != nil && *c.Quota > 0 {
			period := uint64(100000)
			if c.Period != nil && *c.Period != 0 {
				period = *c.Period
				add("CPUQuotaPeriodUSec", period)
			}
			// systemd takes the quota per second of wall time.
			add("CPUQuotaPerSecUSec", uint64(*c.Quota)*1000000/period)
		}
	}
	return props
}

func (m *systemdManager) bus() (*dbus.Conn, dbus.BusObject, error) {
	conn, err := dbus.ConnectSystemBus()
	if err != nil {
		return nil, nil, fmt.Errorf("cgroups: connect to the system bus: %w", err)
	}
	return conn, conn.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1"), nil
}

// callJob runs a systemd manager method that queues a job and waits for the
// job to finish.
func callJob(conn *dbus.Conn, obj dbus.BusObject, method string, args ...any) error {
	if err := conn.AddMatchSignal(
		dbus.WithMatchInterface("org.freedesktop.systemd1.Manager"),
		dbus.WithMatchMember("JobRemoved"),
	); err != nil {
		return fmt.Errorf("cgroups: subscribe to systemd jobs: %w", err)
	}
	sig := make(chan *dbus.Signal, 16)
	conn.Signal(sig)
	defer conn.RemoveSignal(sig)
	var job dbus.ObjectPath
	if err := obj.Call("org.freedesktop.systemd1.Manager."+method, 0, args...).Store(&job); err != nil {
		return fmt.Errorf("cgroups: systemd %s: %w", method, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		select {
		case s := <-sig:
			// JobRemoved(u id, o job, s unit, s result)
			if len(s.Body) == 4 {
				if p, _ := s.Body[1].(dbus.ObjectPath); p == job {
					if res, _ := s.Body[3].(string); res != "done" {
						return fmt.Errorf("cgroups: systemd %s job %s: %s", method, job, res)
					}
					return nil
				}
			}
		case <-ctx.Done():
			return fmt.Errorf("cgroups: systemd %s job %s did not finish", method, job)
		}
	}
}

// Apply implements Manager: a transient scope holding pid, delegated so
// that the container may manage its own sub-cgroups, then the fs manager
// writes the limits.
func (m *systemdManager) Apply(pid int) error {
	conn, obj, err := m.bus()
	if err != nil {
		return err
	}
	defer conn.Close()
	props := []unitProperty{
		{"Description", dbus.MakeVariant("capsa container " + m.unit)},
		{"Delegate", dbus.MakeVariant(true)},
		{"MemoryAccounting", dbus.MakeVariant(true)},
		{"CPUAccounting", dbus.MakeVariant(true)},
		{"TasksAccounting", dbus.MakeVariant(true)},
		{"DefaultDependencies", dbus.MakeVariant(false)},
	}
	if strings.HasSuffix(m.unit, ".scope") {
		props = append(props, unitProperty{"Slice", dbus.MakeVariant(m.slice)})
		if pid > 0 {
			props = append(props, unitProperty{"PIDs", dbus.MakeVariant([]uint32{uint32(pid)})})
		}
	}
	props = append(props, unitProperties(m.res, IsV2())...)
	aux := []struct {
		Name  string
		Props []unitProperty
	}{}
	if err := callJob(conn, obj, "StartTransientUnit", m.unit, "replace", props, aux); err != nil {
		return err
	}
	return m.fs.Apply(pid)
}

// Set implements Manager.
func (m *systemdManager) Set(r *specs.LinuxResources) error {
	if props := unitProperties(r, IsV2()); len(props) > 0 {
		conn, obj, err := m.bus()
		if err != nil {
			return err
		}
		defer conn.Close()
		if err := obj.Call("org.freedesktop.systemd1.Manager.SetUnitProperties", 0, m.unit, true, props).Err; err != nil {
			return fmt.Errorf("cgroups: systemd SetUnitProperties %s: %w", m.unit, err)
		}
	}
	return m.fs.Set(r)
}

// Destroy implements Manager: stop the unit (systemd kills what is left),
// then make sure the directories are gone.
func (m *systemdManager) Destroy() error {
	conn, obj, err := m.bus()
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := callJob(conn, obj, "StopUnit", m.unit, "replace"); err != nil {
		var de dbus.Error
		if !errors.As(err, &de) || de.Name != "org.freedesktop.systemd1.NoSuchUnit" {
			return err
		}
	}
	return m.fs.Destroy()
}

// Freeze implements Manager.
func (m *systemdManager) Freeze() error { return m.fs.Freeze() }

// Thaw implements Manager.
func (m *systemdManager) Thaw() error { return m.fs.Thaw() }

// State implements Manager.
func (m *systemdManager) State() (FreezerState, error) { return m.fs.State() }

// Pids implements Manager.
func (m *systemdManager) Pids() ([]int, error) { return m.fs.Pids() }

// Stats implements Manager.
func (m *systemdManager) Stats() (*Stats, error) { return m.fs.Stats() }

// Paths implements Manager.
func (m *systemdManager) Paths() map[string]string { return m.fs.Paths() }

// OOM implements Manager.
func (m *systemdManager) OOM(ctx context.Context) (<-chan string, error) { return m.fs.OOM(ctx) }

// OOMCount implements Manager.
func (m *systemdManager) OOMCount() (uint64, error) { return m.fs.OOMCount() }
