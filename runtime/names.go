package runtime

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ValidateID checks a container id the way runc does: letters, digits and
// "_+-." only, and never "." or "..", so that an id can never name a path
// outside the state root.
func ValidateID(id string) error {
	if id == "" {
		return fmt.Errorf("container id cannot be empty")
	}
	if len(id) > 1024 {
		return fmt.Errorf("invalid container id %.32q…: longer than 1024 bytes", id)
	}
	if !validIDChars(id) || id == "." || id == ".." {
		return fmt.Errorf("invalid container id %q: only letters, digits and _+-. are allowed", id)
	}
	return nil
}

// validIDChars is the regexp ^[\w+\-.]+$ (letters, digits, "_+-."), as a
// loop: regexp would be linked into the runtime for this alone.
func validIDChars(id string) bool {
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return id != ""
}

var signalNames = map[string]unix.Signal{
	"ABRT": unix.SIGABRT, "ALRM": unix.SIGALRM, "BUS": unix.SIGBUS, "CHLD": unix.SIGCHLD,
	"CLD": unix.SIGCHLD, "CONT": unix.SIGCONT, "FPE": unix.SIGFPE, "HUP": unix.SIGHUP,
	"ILL": unix.SIGILL, "INT": unix.SIGINT, "IO": unix.SIGIO, "IOT": unix.SIGIOT,
	"KILL": unix.SIGKILL, "PIPE": unix.SIGPIPE, "POLL": unix.SIGPOLL, "PROF": unix.SIGPROF,
	"PWR": unix.SIGPWR, "QUIT": unix.SIGQUIT, "SEGV": unix.SIGSEGV, "STKFLT": unix.SIGSTKFLT,
	"STOP": unix.SIGSTOP, "SYS": unix.SIGSYS, "TERM": unix.SIGTERM, "TRAP": unix.SIGTRAP,
	"TSTP": unix.SIGTSTP, "TTIN": unix.SIGTTIN, "TTOU": unix.SIGTTOU, "URG": unix.SIGURG,
	"USR1": unix.SIGUSR1, "USR2": unix.SIGUSR2, "VTALRM": unix.SIGVTALRM, "WINCH": unix.SIGWINCH,
	"XCPU": unix.SIGXCPU, "XFSZ": unix.SIGXFSZ,
}

// ParseSignal accepts "KILL", "SIGKILL", "9" and real-time names such as
// "RTMIN+3", like runc's kill.
func ParseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("invalid signal number %d", n)
		}
		return unix.Signal(n), nil
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if sig, ok := signalNames[name]; ok {
		return sig, nil
	}
	const rtmin, rtmax = 34, 64
	if rest, ok := strings.CutPrefix(name, "RTMIN"); ok {
		off := 0
		if rest != "" {
			var err error
			if off, err = strconv.Atoi(rest); err != nil || off < 0 {
				return 0, fmt.Errorf("unknown signal %q", s)
			}
		}
		if rtmin+off <= rtmax {
			return unix.Signal(rtmin + off), nil
		}
	}
	if rest, ok := strings.CutPrefix(name, "RTMAX"); ok {
		off := 0
		if rest != "" {
			var err error
			if off, err = strconv.Atoi(rest); err != nil || off > 0 {
				return 0, fmt.Errorf("unknown signal %q", s)
			}
		}
		if rtmax+off >= rtmin {
			return unix.Signal(rtmax + off), nil
		}
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

// capNames maps capability names to their numbers (linux/capability.h).
var capNames = map[string]int{
	"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3,
	"CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
	"CAP_LINUX_IMMUTABLE": 9, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11,
	"CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15,
	"CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19,
	"CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
	"CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27,
	"CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31,
	"CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35,
	"CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37, "CAP_PERFMON": 38, "CAP_BPF": 39,
	"CAP_CHECKPOINT_RESTORE": 40,
}

// CapabilityNames lists every capability name capsa knows, in number order.
func CapabilityNames() []string {
	out := make([]string, len(capNames))
	for name, n := range capNames {
		out[n] = name
	}
	return out
}

// ParseCapability returns the number of a capability name ("CAP_KILL" or
// "kill").
func ParseCapability(name string) (int, error) {
	n := strings.ToUpper(name)
	if !strings.HasPrefix(n, "CAP_") {
		n = "CAP_" + n
	}
	c, ok := capNames[n]
	if !ok {
		return 0, fmt.Errorf("unknown capability %q", name)
	}
	return c, nil
}

// rlimitNames maps the spec's rlimit types to resource numbers.
var rlimitNames = map[string]int{
	"RLIMIT_CPU": unix.RLIMIT_CPU, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_DATA": unix.RLIMIT_DATA,
	"RLIMIT_STACK": unix.RLIMIT_STACK, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK,
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
}
