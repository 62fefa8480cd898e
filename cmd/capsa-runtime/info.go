package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"

	capsart "github.com/capsa-project/capsa/runtime"
	"github.com/capsa-project/capsa/runtime/seccomp"
	"github.com/capsa-project/capsa/runtime/specgen"
)

func init() {
	commands["ps"] = command{
		usage:        "[--format table|json] ID [PS ARGS...]",
		interspersed: false,
		flags: func(fs *flag.FlagSet) func(*globalOptions, []string) error {
			var format string
			fs.StringVar(&format, "format", "table", "table or json")
			fs.StringVar(&format, "f", "table", "table or json")
			return func(g *globalOptions, args []string) error {
				if len(args) < 1 {
					return fmt.Errorf("usage: ps [--format table|json] ID [PS ARGS...]")
				}
				c, err := capsart.Load(g.root, args[0])
				if err != nil {
					return err
				}
				pids, err := c.Pids()
				if err != nil {
					return err
				}
				switch format {
				case "json":
					if pids == nil {
						pids = []int{}
					}
					return json.NewEncoder(os.Stdout).Encode(pids)
				case "table":
					return psTable(pids, args[1:])
				}
				return fmt.Errorf("invalid --format %q (want table or json)", format)
			}
		},
	}
	commands["spec"] = command{
		usage: "[--bundle DIR] [--rootless]",
		flags: func(fs *flag.FlagSet) func(*globalOptions, []string) error {
			var bundle string
			var rootless bool
			fs.StringVar(&bundle, "bundle", "", "directory to write config.json in")
			fs.StringVar(&bundle, "b", "", "directory to write config.json in")
			fs.BoolVar(&rootless, "rootless", false, "a config for a rootless container")
			return func(g *globalOptions, args []string) error {
				if err := needArgs(args, 0, 0, "spec [--bundle DIR] [--rootless]"); err != nil {
					return err
				}
				s := specgen.Default("sh")
				s.Process.Terminal = true
				if rootless {
					specgen.Rootless(s, os.Geteuid(), os.Getegid())
				}
				path := filepath.Join(bundle, "config.json")
				if _, err := os.Stat(path); err == nil {
					return fmt.Errorf("file %s exists. Remove it first", path)
				}
				data, err := json.MarshalIndent(s, "", "\t")
				if err != nil {
					return err
				}
				return os.WriteFile(path, append(data, '\n'), 0o644)
			}
		},
	}
	commands["features"] = command{
		usage: "",
		flags: func(fs *flag.FlagSet) func(*globalOptions, []string) error {
			return func(g *globalOptions, args []string) error {
				out, err := json.MarshalIndent(featureSet(), "", "    ")
				if err != nil {
					return err
				}
				fmt.Println(string(out))
				return nil
			}
		},
	}
}

// psTable runs ps(1) on the host and keeps the header and the lines of the
// container's processes, as runc does.
func psTable(pids []int, psArgs []string) error {
	if len(psArgs) == 0 {
		psArgs = []string{"-ef"}
	}
	out, err := exec.Command("ps", psArgs...).Output()
	if err != nil {
		return fmt.Errorf("ps %s: %w", strings.Join(psArgs, " "), err)
	}
	s := bufio.NewScanner(bytes.NewReader(out))
	if !s.Scan() {
		return nil
	}
	header := s.Text()
	pidCol := -1
	for i, f := range strings.Fields(header) {
		if f == "PID" {
			pidCol = i
		}
	}
	if pidCol < 0 {
		return fmt.Errorf("ps output has no PID column")
	}
	in := map[int]bool{}
	for _, p := range pids {
		in[p] = true
	}
	fmt.Println(header)
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) > pidCol {
			if p, err := strconv.Atoi(f[pidCol]); err == nil && in[p] {
				fmt.Println(s.Text())
			}
		}
	}
	return nil
}

func featureSet() *features.Features {
	t := true
	nsList := []string{"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"}
	mountOpts := capsart.MountOptionNames()
	f := &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions:  mountOpts,
		Linux: &features.Linux{
			Namespaces:   nsList,
			Capabilities: capsart.CapabilityNames(),
			Cgroup:       &features.Cgroup{V1: &t, V2: &t, Systemd: &t, SystemdUser: &t},
			Seccomp:      seccomp.Features(),
			Apparmor:     &features.Apparmor{Enabled: &t},
			Selinux:      &features.Selinux{Enabled: &t},
		},
		Annotations: map[string]string{"io.github.capsa-project.capsa.version": version},
	}
	return f
}
