package cgroups

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// OOM implements Manager for v1: an eventfd registered on
// memory.oom_control through cgroup.event_control. The kernel signals the
// eventfd on each OOM and once more when the cgroup is removed.
func (m *v1Manager) OOM(ctx context.Context) (<-chan string, error) {
	d, ok := m.paths["memory"]
	if !ok {
		return nil, fmt.Errorf("cgroups: the memory controller is not mounted: %w", ErrNotSupported)
	}
	oc, err := os.Open(filepath.Join(d, "memory.oom_control"))
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		oc.Close()
		return nil, fmt.Errorf("cgroups: eventfd: %w", err)
	}
	ev := os.NewFile(uintptr(efd), "oom-eventfd")
	reg := strconv.Itoa(efd) + " " + strconv.Itoa(int(oc.Fd()))
	if err := writeFile(d, "cgroup.event_control", reg); err != nil {
		ev.Close()
		oc.Close()
		return nil, err
	}
	ch := make(chan string)
	var once sync.Once
	closeAll := func() { once.Do(func() { ev.Close(); oc.Close() }) }
	go func() {
		<-ctx.Done()
		closeAll() // unblocks the reader
	}()
	go func() {
		defer close(ch)
		defer closeAll()
		buf := make([]byte, 8)
		for {
			if _, err := ev.Read(buf); err != nil {
				return
			}
			// The removal of the cgroup signals too: not an OOM.
			if _, err := os.Stat(filepath.Join(d, "memory.oom_control")); err != nil {
				return
			}
			select {
			case ch <- "oom":
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch, nil
}

// OOMCount implements Manager for v1: memory.oom_control's oom_kill.
func (m *v1Manager) OOMCount() (uint64, error) {
	d, ok := m.paths["memory"]
	if !ok {
		return 0, fmt.Errorf("cgroups: the memory controller is not mounted: %w", ErrNotSupported)
	}
	kv, err := readKeyValues(d, "memory.oom_control")
	if err != nil {
		return 0, err
	}
	return kv["oom_kill"], nil
}

// OOMCount implements Manager for v2: memory.events' oom (OOM events) or
// oom_kill, whichever is larger (a kill without an event, with
// memory.oom.group, still is one).
func (m *v2Manager) OOMCount() (uint64, error) {
	kv, err := readKeyValues(m.path, "memory.events")
	if err != nil {
		return 0, err
	}
	return max(kv["oom"], kv["oom_kill"]), nil
}

// OOM implements Manager for v2: memory.events is watched with inotify and
// each rise of its oom_kill (or oom) counter is one event.
func (m *v2Manager) OOM(ctx context.Context) (<-chan string, error) {
	file := filepath.Join(m.path, "memory.events")
	ifd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("cgroups: inotify: %w", err)
	}
	if _, err := unix.InotifyAddWatch(ifd, file, unix.IN_MODIFY); err != nil {
		unix.Close(ifd)
		if errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("cgroups: %s is missing (memory controller not enabled?): %w", file, ErrNotSupported)
		}
		return nil, fmt.Errorf("cgroups: watch %s: %w", file, err)
	}
	in := os.NewFile(uintptr(ifd), "oom-inotify")
	count := func() (uint64, bool) {
		n, err := m.OOMCount()
		return n, err == nil
	}
	last, ok := count()
	if !ok {
		in.Close()
		return nil, fmt.Errorf("cgroups: cannot read %s", file)
	}
	ch := make(chan string)
	var once sync.Once
	closeAll := func() { once.Do(func() { in.Close() }) }
	go func() {
		<-ctx.Done()
		closeAll()
	}()
	go func() {
		defer close(ch)
		defer closeAll()
		buf := make([]byte, 4096)
		for {
			if _, err := in.Read(buf); err != nil {
				return
			}
			n, ok := count()
			if !ok {
				return // the cgroup is gone
			}
			for ; last < n; last++ {
				select {
				case ch <- "oom":
				case <-ctx.Done():
					return
				}
			}
			last = n
		}
	}()
	return ch, nil
}
