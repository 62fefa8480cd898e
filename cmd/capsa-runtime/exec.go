package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	capsart "github.com/capsa-project/capsa/runtime"
)

func init() {
	commands["exec"] = command{
		usage: "[--process FILE | options] ID [COMMAND [ARGS...]]",
		flags: func(fs *flag.FlagSet) func(*globalOptions, []string) error {
			var o capsart.ExecOptions
			var processFile, cwd, user, apparmor, label string
			var detach, tty, noNewPrivs bool
			var env, caps, gids stringList
			fs.StringVar(&processFile, "process", "", "process.json describing the process")
			fs.StringVar(&processFile, "p", "", "process.json describing the process")
			fs.BoolVar(&detach, "detach", false, "do not wait for the process")
			fs.BoolVar(&detach, "d", false, "do not wait for the process")
			fs.BoolVar(&tty, "tty", false, "allocate a pseudo-TTY")
			fs.BoolVar(&tty, "t", false, "allocate a pseudo-TTY")
			fs.StringVar(&o.ConsoleSocket, "console-socket", "", "unix socket that receives the pty master")
			fs.StringVar(&o.PidFile, "pid-file", "", "file to write the process pid to")
			fs.Var(&env, "env", "set an environment variable (repeatable)")
			fs.Var(&env, "e", "set an environment variable (repeatable)")
			fs.StringVar(&cwd, "cwd", "", "working directory in the container")
			fs.StringVar(&user, "user", "", "UID[:GID]")
			fs.StringVar(&user, "u", "", "UID[:GID]")
			fs.Var(&gids, "additional-gids", "additional group (repeatable)")
			fs.Var(&gids, "g", "additional group (repeatable)")
			fs.Var(&caps, "cap", "add a capability (repeatable)")
			fs.Var(&caps, "c", "add a capability (repeatable)")
			fs.BoolVar(&noNewPrivs, "no-new-privs", false, "set no_new_privs")
			fs.StringVar(&apparmor, "apparmor", "", "AppArmor profile")
			fs.StringVar(&label, "process-label", "", "SELinux label")
			fs.IntVar(&o.PreserveFds, "preserve-fds", 0, "pass N more fds (from 3)")
			return func(g *globalOptions, args []string) error {
				if len(args) < 1 {
					return fmt.Errorf("usage: exec [options] ID [COMMAND [ARGS...]]")
				}
				c, err := capsart.Load(g.root, args[0])
				if err != nil {
					return err
				}
				p, err := execProcess(c, processFile, args[1:])
				if err != nil {
					return err
				}
				// Flags refine the process, as with runc.
				p.Env = append(p.Env, env...)
				if cwd != "" {
					p.Cwd = cwd
				}
				if tty {
					p.Terminal = true
				}
				if noNewPrivs {
					p.NoNewPrivileges = true
				}
				if apparmor != "" {
					p.ApparmorProfile = apparmor
				}
				if label != "" {
					p.SelinuxLabel = label
				}
				if user != "" {
					uid, gid, err := parseUser(user)
					if err != nil {
						return err
					}
					p.User.UID, p.User.GID = uid, gid
				}
				for _, s := range gids {
					n, err := strconv.ParseUint(s, 10, 32)
					if err != nil {
						return fmt.Errorf("--additional-gids %q: %w", s, err)
					}
					p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(n))
				}
				if len(caps) > 0 {
					if p.Capabilities == nil {
						p.Capabilities = &specs.LinuxCapabilities{}
					}
					for _, cp := range caps {
						n := strings.ToUpper(cp)
						if !strings.HasPrefix(n, "CAP_") {
							n = "CAP_" + n
						}
						pc := p.Capabilities
						pc.Bounding = append(pc.Bounding, n)
						pc.Effective = append(pc.Effective, n)
						pc.Permitted = append(pc.Permitted, n)
					}
				}
				o.Process = p
				var tty *ttyProxy
				if p.Terminal && o.ConsoleSocket == "" && !detach {
					if tty, err = newTTYProxy(); err != nil {
						return err
					}
					defer tty.close()
					o.ConsoleSocket = tty.path()
				}
				cmd, err := c.Exec(o)
				if err != nil {
					return err
				}
				if tty != nil {
					if err := tty.start(); err != nil {
						return err
					}
				}
				if detach {
					return nil
				}
				if code := waitForwarding(cmd.Process, func(s syscall.Signal) { _ = cmd.Process.Signal(s) }); code != 0 {
					return exitError{code}
				}
				return nil
			}
		},
	}
}

// execProcess builds the process to exec: from --process, else the
// container's own process with the given args.
func execProcess(c *capsart.Container, file string, args []string) (*specs.Process, error) {
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read --process: %w", err)
		}
		p := new(specs.Process)
		if err := capsart.DecodeJSON(data, p); err != nil {
			return nil, fmt.Errorf("parse --process %s: %w", file, err)
		}
		return p, nil
	}
	if len(args) == 0 {
		return nil, fmt.Errorf("exec needs a command or --process")
	}
	p := specs.Process{Cwd: "/"}
	if base := c.Spec.Process; base != nil {
		p = *base
		p.Env = append([]string{}, base.Env...)
		p.Terminal = false
	}
	p.Args = args
	return &p, nil
}

func parseUser(s string) (uid, gid uint32, err error) {
	u, g, hasGid := strings.Cut(s, ":")
	n, err := strconv.ParseUint(u, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("--user %q: want UID[:GID]", s)
	}
	uid = uint32(n)
	if hasGid {
		m, err := strconv.ParseUint(g, 10, 32)
		if err != nil {
			return 0, 0, fmt.Errorf("--user %q: want UID[:GID]", s)
		}
		gid = uint32(m)
	}
	return uid, gid, nil
}
