package runtime

import (
	"context"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/capsa-project/capsa/runtime/cgroups"
)

// cgroupOf returns the container's cgroup manager, or an error when it has
// none recorded.
func (c *Container) cgroupOf() (cgroups.Manager, error) {
	m, err := c.cgroup()
	if err != nil {
		return nil, fmt.Errorf("cgroup of %s: %w", c.ID, err)
	}
	if m == nil {
		return nil, fmt.Errorf("container %s has no cgroup", c.ID)
	}
	return m, nil
}

// Pause freezes every process of a running container.
func (c *Container) Pause() error {
	if st := c.Status(); st != StatusRunning {
		return fmt.Errorf("container %s is not running: %s", c.ID, st)
	}
	m, err := c.cgroupOf()
	if err != nil {
		return err
	}
	return m.Freeze()
}

// Resume thaws a paused container.
func (c *Container) Resume() error {
	if st := c.Status(); st != StatusPaused {
		return fmt.Errorf("container %s is not paused: %s", c.ID, st)
	}
	m, err := c.cgroupOf()
	if err != nil {
		return err
	}
	return m.Thaw()
}

// Update changes the resource limits of a container that is not stopped:
// the fields upd sets replace the current ones, in the kernel and in the
// saved config.
func (c *Container) Update(upd *specs.LinuxResources) error {
	if st := c.Status(); st == StatusStopped {
		return fmt.Errorf("container %s is stopped", c.ID)
	}
	m, err := c.cgroupOf()
	if err != nil {
		return err
	}
	if c.Spec.Linux == nil {
		c.Spec.Linux = &specs.Linux{}
	}
	merged, err := cgroups.MergeResources(c.Spec.Linux.Resources, upd)
	if err != nil {
		return err
	}
	apply := *merged
	if upd.Devices == nil {
		// Rewriting unchanged device rules would deny every device for a
		// moment on v1; leave them as they are.
		apply.Devices = nil
	} else {
		spec := *c.Spec
		linux := *spec.Linux
		linux.Resources = merged
		spec.Linux = &linux
		apply = *withDeviceRules(&spec)
	}
	if err := m.Set(&apply); err != nil {
		return err
	}
	c.Spec.Linux.Resources = merged
	c.specJSON = nil
	return c.save()
}

// Stats reads the container's cgroup usage figures.
func (c *Container) Stats() (*cgroups.Stats, error) {
	m, err := c.cgroupOf()
	if err != nil {
		return nil, err
	}
	return m.Stats()
}

// OOM delivers an event each time the container's memory limit makes the
// kernel's OOM killer act.
func (c *Container) OOM(ctx context.Context) (<-chan string, error) {
	m, err := c.cgroupOf()
	if err != nil {
		return nil, err
	}
	return m.OOM(ctx)
}

// OOMCount is the number of OOM kills the kernel counted for the
// container's cgroup so far.
func (c *Container) OOMCount() (uint64, error) {
	m, err := c.cgroupOf()
	if err != nil {
		return 0, err
	}
	return m.OOMCount()
}
