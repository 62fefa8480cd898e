package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	capsart "github.com/capsa-project/capsa/runtime"
	"github.com/capsa-project/capsa/runtime/cgroups"
)

func init() {
	for name, do := range map[string]func(*capsart.Container) error{
		"pause":  (*capsart.Container).Pause,
		"resume": (*capsart.Container).Resume,
	} {
		do, name := do, name
		commands[name] = command{
			usage: "ID",
			flags: func(fs *flag.FlagSet) func(*globalOptions, []string) error {
				return func(g *globalOptions, args []string) error {
					if err := needArgs(args, 1, 1, name+" ID"); err != nil {
						return err
					}
					c, err := capsart.Load(g.root, args[0])
					if err != nil {
						return err
					}
					return do(c)
				}
			},
		}
	}
	commands["update"] = command{
		usage:        "[--resources FILE|-] [--memory N] [--cpu-quota N] … ID",
		interspersed: true,
		flags:        updateFlags,
	}
	commands["events"] = command{
		usage:        "[--stats] [--interval DURATION] ID",
		interspersed: true,
		flags: func(fs *flag.FlagSet) func(*globalOptions, []string) error {
			var stats bool
			interval := 5 * time.Second
			fs.BoolVar(&stats, "stats", false, "print the stats once and exit")
			fs.DurationVar(&interval, "interval", interval, "time between stats")
			return func(g *globalOptions, args []string) error {
				if err := needArgs(args, 1, 1, "events [--stats] [--interval D] ID"); err != nil {
					return err
				}
				if interval <= 0 {
					return fmt.Errorf("--interval must be positive")
				}
				c, err := capsart.Load(g.root, args[0])
				if err != nil {
					return err
				}
				return events(c, stats, interval)
			}
		},
	}
}

// event is one line of `events`, in runc's shape.
type event struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data any    `json:"data,omitempty"`
}

// events prints stats (once, or every interval) and OOM notifications as
// they happen, until the container stops.
func events(c *capsart.Container, once bool, interval time.Duration) error {
	if st := c.Status(); st == capsart.StatusStopped {
		return fmt.Errorf("container %s is not running", c.ID)
	}
	enc := json.NewEncoder(os.Stdout)
	printStats := func() error {
		s, err := c.Stats()
		if err != nil {
			return err
		}
		return enc.Encode(event{Type: "stats", ID: c.ID, Data: s})
	}
	if once {
		return printStats()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	oom, err := c.OOM(ctx)
	if err != nil {
		return err
	}
	// The kernel's count, against which the events printed are checked
	// when the container stops: an OOM kill that ended it may not have
	// come through the channel yet.
	base, baseErr := c.OOMCount()
	var printed uint64
	tick := time.NewTicker(interval)
	defer tick.Stop()
	if err := printStats(); err != nil {
		return err
	}
	for {
		select {
		case _, ok := <-oom:
			if !ok {
				oom = nil
				continue
			}
			if err := enc.Encode(event{Type: "oom", ID: c.ID}); err != nil {
				return err
			}
			printed++
		case <-tick.C:
			if c.Status() == capsart.StatusStopped {
				if n, err := c.OOMCount(); err == nil && baseErr == nil {
					for ; base+printed < n; printed++ {
						if err := enc.Encode(event{Type: "oom", ID: c.ID}); err != nil {
							return err
						}
					}
				}
				return nil
			}
			if err := printStats(); err != nil {
				return err
			}
		}
	}
}

// updateFlags registers runc's update flags; each one given replaces that
// limit, and --resources supplies a whole linux.resources document.
func updateFlags(fs *flag.FlagSet) func(*globalOptions, []string) error {
	var resources string
	fs.StringVar(&resources, "resources", "", "linux.resources JSON file, or - for stdin")
	fs.StringVar(&resources, "r", "", "linux.resources JSON file, or - for stdin")
	var u cgroups.Update
	set := map[string]func(string) error{}
	num := func(name, usage string, dst func(int64)) {
		set[name] = func(v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("--%s %q: %w", name, v, err)
			}
			dst(n)
			return nil
		}
		fs.Func(name, usage, set[name])
	}
	bytes := func(name, usage string, dst func(int64)) {
		fs.Func(name, usage, func(v string) error {
			n, err := cgroups.ParseBytes(v)
			if err != nil {
				return fmt.Errorf("--%s %q: %w", name, v, err)
			}
			dst(n)
			return nil
		})
	}
	num("blkio-weight", "block IO weight (10-1000)", func(n int64) { w := uint16(n); u.BlkioWeight = &w })
	num("cpu-period", "CPU CFS period (µs)", func(n int64) { p := uint64(n); u.CPUPeriod = &p })
	num("cpu-quota", "CPU CFS quota (µs)", func(n int64) { u.CPUQuota = &n })
	num("cpu-burst", "CPU CFS burst (µs)", func(n int64) { b := uint64(n); u.CPUBurst = &b })
	num("cpu-share", "CPU shares", func(n int64) { s := uint64(n); u.CPUShares = &s })
	num("cpu-rt-period", "realtime period (µs)", func(n int64) { p := uint64(n); u.CPURtPeriod = &p })
	num("cpu-rt-runtime", "realtime runtime (µs)", func(n int64) { u.CPURtRuntime = &n })
	fs.Func("cpuset-cpus", "CPUs to run on", func(v string) error { u.CpusetCpus = &v; return nil })
	fs.Func("cpuset-mems", "memory nodes to use", func(v string) error { u.CpusetMems = &v; return nil })
	bytes("memory", "memory limit", func(n int64) { u.Memory = &n })
	bytes("memory-reservation", "memory soft limit", func(n int64) { u.MemoryReservation = &n })
	bytes("memory-swap", "memory + swap limit (-1 unlimited)", func(n int64) { u.MemorySwap = &n })
	bytes("kernel-memory-tcp", "kernel TCP buffer limit", func(n int64) { u.KernelMemoryTCP = &n })
	num("pids-limit", "maximum number of pids", func(n int64) { u.PidsLimit = &n })
	return func(g *globalOptions, args []string) error {
		if err := needArgs(args, 1, 1, "update [options] ID"); err != nil {
			return err
		}
		c, err := capsart.Load(g.root, args[0])
		if err != nil {
			return err
		}
		upd := &specs.LinuxResources{}
		if resources != "" {
			var r io.Reader = os.Stdin
			if resources != "-" {
				f, err := os.Open(resources)
				if err != nil {
					return fmt.Errorf("--resources: %w", err)
				}
				defer f.Close()
				r = f
			}
			if err := json.NewDecoder(io.LimitReader(r, 1<<20)).Decode(upd); err != nil {
				return fmt.Errorf("--resources: parse linux.resources: %w", err)
			}
		}
		if upd, err = cgroups.ApplyUpdate(upd, u); err != nil {
			return err
		}
		return c.Update(upd)
	}
}
