// Command capsa-runtime is an OCI runtime with runc's command line, so that
// podman, Docker and containerd can use it in place of runc.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	capsart "github.com/capsa-project/capsa/runtime"
)

// version is set by the Makefile.
var version = "dev"

// globalOptions are runc's global flags.
type globalOptions struct {
	root          string
	log           string
	logFormat     string
	debug         bool
	systemdCgroup bool
}

// command is one subcommand: its flags and what it does with the
// positional arguments left after them.
type command struct {
	usage string
	// interspersed allows flags after positional arguments; exec turns it
	// off so the container command's own flags stay untouched.
	interspersed bool
	flags        func(fs *flag.FlagSet) func(g *globalOptions, args []string) error
}

var commands = map[string]command{}

// exitError carries an exit status that is not a failure of the runtime
// itself (the container's, for `run` and `exec`).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	// The front ran this with GOMAXPROCS=1 (cmd/capsa-runtime/front): the
	// runtime has read it; hooks and other children must not inherit it.
	if os.Getenv("_CAPSA_GOMAXPROCS") != "" {
		os.Unsetenv("GOMAXPROCS")
		os.Unsetenv("_CAPSA_GOMAXPROCS")
	}
	if capsart.IsInit() {
		capsart.Init() // never returns
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	g := &globalOptions{}
	fs := flag.NewFlagSet("capsa-runtime", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&g.root, "root", defaultRoot(), "root directory for storage of container state")
	fs.StringVar(&g.log, "log", "", "log file (default stderr)")
	fs.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&g.debug, "debug", false, "debug logging")
	fs.BoolVar(&g.systemdCgroup, "systemd-cgroup", false, "use systemd for cgroups")
	var showVersion bool
	fs.BoolVar(&showVersion, "version", false, "print the version")
	fs.BoolVar(&showVersion, "v", false, "print the version")
	var rootless, criu string
	fs.StringVar(&rootless, "rootless", "auto", "ignored: rootless mode is detected")
	fs.StringVar(&criu, "criu", "", "ignored: checkpointing is not supported")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintln(os.Stderr, "capsa-runtime:", err)
		return 2
	}
	if showVersion {
		fmt.Printf("capsa-runtime version %s\nspec: %s\n", version, specVersion())
		return 0
	}
	rest := fs.Args()
	if len(rest) == 0 || rest[0] == "help" || rest[0] == "--help" || rest[0] == "-h" {
		printUsage(os.Stdout)
		return 0
	}
	logger, err := openLog(g)
	if err != nil {
		fmt.Fprintln(os.Stderr, "capsa-runtime:", err)
		return 1
	}
	capsart.Warnf = func(format string, a ...any) { logger.log("warning", fmt.Sprintf(format, a...)) }
	if g.debug {
		capsart.Debugf = func(format string, a ...any) { logger.log("debug", fmt.Sprintf(format, a...)) }
	}
	name, cmdArgs := rest[0], rest[1:]
	cmd, ok := commands[name]
	if !ok {
		logger.log("error", fmt.Sprintf("unknown command %q", name))
		return 1
	}
	cfs := flag.NewFlagSet(name, flag.ContinueOnError)
	cfs.SetOutput(io.Discard)
	action := cmd.flags(cfs)
	positional, err := parseFlags(cfs, cmdArgs, cmd.interspersed)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Printf("usage: capsa-runtime %s %s\n", name, cmd.usage)
		cfs.SetOutput(os.Stdout)
		cfs.PrintDefaults()
		return 0
	}
	if err == nil {
		err = action(g, positional)
	}
	if err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			return ee.code
		}
		logger.log("error", err.Error())
		return 1
	}
	return 0
}

// parseFlags parses flags anywhere among the arguments (runc's CLI library
// accepts `delete ID --force`), or only before the first positional one.
func parseFlags(fs *flag.FlagSet, args []string, interspersed bool) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		if !interspersed {
			return append(positional, args...), nil
		}
		positional = append(positional, args[0])
		args = args[1:]
		if len(args) > 0 && args[0] == "--" {
			return append(positional, args[1:]...), nil
		}
	}
}

func defaultRoot() string {
	if os.Geteuid() != 0 {
		if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
			return d + "/capsa-runtime"
		}
	}
	return "/run/capsa-runtime"
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: capsa-runtime [global options] COMMAND [options] [args]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].usage)
	}
	fmt.Fprintln(w, "\nGlobal options: --root DIR, --log FILE, --log-format text|json, --debug, --systemd-cgroup, --version")
}

// logger writes runc-style log lines: containerd and podman read the error
// of a failed command from the --log file in JSON.
type logger struct {
	w      io.Writer
	json   bool
	stderr bool
}

func openLog(g *globalOptions) (*logger, error) {
	l := &logger{w: os.Stderr, stderr: true}
	switch g.logFormat {
	case "text":
	case "json":
		l.json = true
	default:
		return nil, fmt.Errorf("unknown --log-format %q (want text or json)", g.logFormat)
	}
	if g.log != "" {
		f, err := os.OpenFile(g.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_SYNC, 0o644)
		if err != nil {
			return nil, fmt.Errorf("open log %s: %w", g.log, err)
		}
		l.w, l.stderr = f, false
	}
	return l, nil
}

func (l *logger) log(level, msg string) {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	if l.json {
		line, _ := json.Marshal(map[string]string{"level": level, "msg": msg, "time": now})
		fmt.Fprintf(l.w, "%s\n", line)
	} else {
		fmt.Fprintf(l.w, "time=%q level=%s msg=%q\n", now, level, msg)
	}
	// An error logged to a file is also shown to a person at a terminal.
	if !l.stderr && level == "error" {
		fmt.Fprintln(os.Stderr, "capsa-runtime:", msg)
	}
}

// needArgs checks the count of positional arguments.
func needArgs(args []string, min, max int, what string) error {
	if len(args) < min || (max >= 0 && len(args) > max) {
		return fmt.Errorf("usage: %s", what)
	}
	return nil
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }
