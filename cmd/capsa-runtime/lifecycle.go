package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	capsart "github.com/capsa-project/capsa/runtime"
)

func specVersion() string { return specs.Version }

// createFlags registers the flags create and run share.
func createFlags(fs *flag.FlagSet, o *capsart.CreateOptions) {
	fs.StringVar(&o.Bundle, "bundle", ".", "path to the OCI bundle")
	fs.StringVar(&o.Bundle, "b", ".", "path to the OCI bundle")
	fs.StringVar(&o.PidFile, "pid-file", "", "file to write the init's pid to")
	fs.StringVar(&o.ConsoleSocket, "console-socket", "", "unix socket that receives the pty master")
	fs.BoolVar(&o.NoPivot, "no-pivot", false, "use MS_MOVE + chroot instead of pivot_root")
	fs.BoolVar(&o.NoNewKeyring, "no-new-keyring", false, "keep the caller's session keyring")
	fs.IntVar(&o.PreserveFds, "preserve-fds", 0, "pass N more fds (from 3) to the container")
}

func init() {
	commands["create"] = command{
		usage: "[--bundle DIR] [--pid-file FILE] [--console-socket SOCK] [--no-pivot] [--no-new-keyring] [--preserve-fds N] ID",
		flags: func(fs *flag.FlagSet) func(*globalOptions, []string) error {
			var o capsart.CreateOptions
			createFlags(fs, &o)
			return func(g *globalOptions, args []string) error {
				if err := needArgs(args, 1, 1, "create [options] ID"); err != nil {
					return err
				}
				o.Root, o.ID, o.Systemd = g.root, args[0], g.systemdCgroup
				_, err := capsart.Create(o)
				return err
			}
		},
	}
	commands["start"] = command{
		usage: "ID",
		flags: func(fs *flag.FlagSet) func(*globalOptions, []string) error {
			return func(g *globalOptions, args []string) error {
				if err := needArgs(args, 1, 1, "start ID"); err != nil {
					return err
				}
				c, err := capsart.Load(g.root, args[0])
				if err != nil {
					return err
				}
				return c.Start()
			}
		},
	}
	commands["run"] = command{
		usage: "[create options] [--detach] [--keep] ID",
		flags: func(fs *flag.FlagSet) func(*globalOptions, []string) error {
			var o capsart.CreateOptions
			var detach, keep bool
			createFlags(fs, &o)
			fs.BoolVar(&detach, "detach", false, "do not wait for the container to exit")
			fs.BoolVar(&detach, "d", false, "do not wait for the container to exit")
			fs.BoolVar(&keep, "keep", false, "do not delete the container after it exits")
			return func(g *globalOptions, args []string) error {
				if err := needArgs(args, 1, 1, "run [options] ID"); err != nil {
					return err
				}
				o.Root, o.ID, o.Systemd = g.root, args[0], g.systemdCgroup
				return runContainer(o, detach, keep)
			}
		},
	}
	commands["state"] = command{
		usage: "ID",
		flags: func(fs *flag.FlagSet) func(*globalOptions, []string) error {
			return func(g *globalOptions, args []string) error {
				if err := needArgs(args, 1, 1, "state ID"); err != nil {
					return err
				}
				c, err := capsart.Load(g.root, args[0])
				if err != nil {
					return err
				}
				out, err := json.MarshalIndent(c.StateDoc(), "", "  ")
				if err != nil {
					return err
				}
				fmt.Println(string(out))
				return nil
			}
		},
	}
	commands["list"] = command{
		usage: "[--format table|json] [-q]",
		flags: func(fs *flag.FlagSet) func(*globalOptions, []string) error {
			var format string
			var quiet bool
			fs.StringVar(&format, "format", "table", "table or json")
			fs.StringVar(&format, "f", "table", "table or json")
			fs.BoolVar(&quiet, "quiet", false, "print only ids")
			fs.BoolVar(&quiet, "q", false, "print only ids")
			return func(g *globalOptions, args []string) error {
				if err := needArgs(args, 0, 0, "list [options]"); err != nil {
					return err
				}
				cs, err := capsart.List(g.root)
				if err != nil {
					return err
				}
				return printList(cs, format, quiet)
			}
		},
	}
	commands["kill"] = command{
		usage:        "[--all] ID [SIGNAL]",
		interspersed: true,
		flags: func(fs *flag.FlagSet) func(*globalOptions, []string) error {
			var all bool
			fs.BoolVar(&all, "all", false, "send the signal to every process of the container")
			fs.BoolVar(&all, "a", false, "send the signal to every process of the container")
			return func(g *globalOptions, args []string) error {
				if err := needArgs(args, 1, 2, "kill [--all] ID [SIGNAL]"); err != nil {
					return err
				}
				sig := unix.SIGTERM
				if len(args) == 2 {
					var err error
					if sig, err = capsart.ParseSignal(args[1]); err != nil {
						return err
					}
				}
				c, err := capsart.Load(g.root, args[0])
				if err != nil {
					return err
				}
				return c.Kill(sig, all)
			}
		},
	}
	commands["delete"] = command{
		usage:        "[--force] ID",
		interspersed: true,
		flags: func(fs *flag.FlagSet) func(*globalOptions, []string) error {
			var force bool
			fs.BoolVar(&force, "force", false, "kill the container if it is running")
			fs.BoolVar(&force, "f", false, "kill the container if it is running")
			return func(g *globalOptions, args []string) error {
				if err := needArgs(args, 1, 1, "delete [--force] ID"); err != nil {
					return err
				}
				c, err := capsart.Load(g.root, args[0])
				if err != nil {
					// runc: deleting a container that does not exist with
					// --force is not an error (containerd relies on it).
					if force && capsart.ValidateID(args[0]) == nil {
						if _, serr := os.Stat(g.root + "/" + args[0]); os.IsNotExist(serr) {
							return nil
						}
					}
					return err
				}
				return c.Delete(force)
			}
		},
	}
}

// runContainer is `run`: create, start and (unless detached) wait for the
// container, forwarding signals, then delete it and exit with its status.
func runContainer(o capsart.CreateOptions, detach, keep bool) error {
	conf, err := capsart.LoadConfig(o.Bundle)
	if err != nil {
		return err
	}
	o.Config = conf
	var tty *ttyProxy
	if p := conf.Spec.Process; !detach && o.ConsoleSocket == "" && p != nil && p.Terminal {
		if tty, err = newTTYProxy(); err != nil {
			return err
		}
		defer tty.close()
		o.ConsoleSocket = tty.path()
	}
	created, err := capsart.Create(o)
	if err != nil {
		return err
	}
	if tty != nil {
		if err := tty.start(); err != nil {
			_ = created.Container.Delete(true) // already failing
			return err
		}
	}
	c := created.Container
	if err := c.Start(); err != nil {
		if derr := c.Delete(true); derr != nil {
			return fmt.Errorf("%w (and deleting the container: %v)", err, derr)
		}
		return err
	}
	if detach {
		return nil
	}
	code := waitForwarding(created.Cmd.Process, func(s syscall.Signal) { _ = c.Kill(s, false) })
	if !keep {
		if err := c.Delete(true); err != nil {
			return err
		}
	}
	if code != 0 {
		return exitError{code}
	}
	return nil
}

// waitForwarding waits for p, passing on every signal this process gets
// through forward, and returns p's exit status the way a shell reports it
// (128+N for a signal).
func waitForwarding(p *os.Process, forward func(syscall.Signal)) int {
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs)
	defer signal.Stop(sigs)
	done := make(chan *os.ProcessState, 1)
	go func() {
		st, _ := p.Wait()
		done <- st
	}()
	for {
		select {
		case s := <-sigs:
			if s == syscall.SIGCHLD || s == syscall.SIGURG || s == syscall.SIGPIPE {
				continue
			}
			forward(s.(syscall.Signal)) // the process may be exiting
		case st := <-done:
			if st == nil {
				return 255
			}
			if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				return 128 + int(ws.Signal())
			}
			return st.ExitCode()
		}
	}
}

func printList(cs []*capsart.Container, format string, quiet bool) error {
	if quiet {
		for _, c := range cs {
			fmt.Println(c.ID)
		}
		return nil
	}
	switch format {
	case "json":
		out := make([]capsart.StateDoc, 0, len(cs))
		for _, c := range cs {
			out = append(out, c.StateDoc())
		}
		return json.NewEncoder(os.Stdout).Encode(out)
	case "table":
		w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
		fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
		for _, c := range cs {
			s := c.StateDoc()
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\n", s.ID, s.Pid, s.Status, s.Bundle, s.Created.Format(time.RFC3339Nano), s.Owner)
		}
		return w.Flush()
	}
	return fmt.Errorf("invalid --format %q (want table or json)", format)
}
