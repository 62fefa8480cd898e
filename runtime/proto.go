package runtime

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Environment variables through which the runtime tells its re-executed
// copy that it is a container init and where its channel to the parent is.
const (
	envInitPipe = "_CAPSA_INITPIPE"
)

// Init modes.
const (
	modeCreate = "create"
	modeExec   = "exec"
)

// initConfig is everything the init (or an exec'd process) needs, sent by
// the parent over the init pipe as one JSON value.
type initConfig struct {
	Mode   string `json:"mode"`
	ID     string `json:"id"`
	Bundle string `json:"bundle"`
	Rootfs string `json:"rootfs"`
	// SpecJSON is the config as JSON (for create, config.json's own bytes
	// with the seccomp section nulled), decoded into Spec by the init;
	// Process is the process to start when it is not the spec's own (exec).
	// SpecJSON and Seccomp travel as raw frames ahead of the JSON
	// (sendConfig): inside a JSON message, encoding/json would scan them
	// again on each side.
	SpecJSON []byte      `json:"-"`
	Spec     *specs.Spec `json:"-"`
	// Seccomp is the compiled linux.seccomp filter (seccomp.MarshalBinary);
	// the profile itself is not in SpecJSON.
	Seccomp []byte `json:"-"`
	// seccompNotify: the filter uses SCMP_ACT_NOTIFY (the Go init's).
	seccompNotify bool
	Process       *specs.Process `json:"process,omitempty"`
	NoPivot       bool           `json:"no_pivot,omitempty"`
	NoNewKeyring  bool           `json:"no_new_keyring,omitempty"`
	PreserveFds   int            `json:"preserve_fds,omitempty"`
	// ConsoleFd is the console socket the pty master goes to, or -1.
	ConsoleFd int `json:"console_fd"`
	// FifoFd is an O_PATH fd of exec.fifo (create mode), or -1.
	FifoFd int `json:"fifo_fd"`
	// MountNS is a mount namespace the init joins by path itself: the
	// parent cannot, as it must resolve the init's executable on the host.
	MountNS string `json:"mount_ns,omitempty"`
	// NewCgroupNS asks the init to unshare its cgroup namespace once the
	// parent has placed it in its cgroup.
	NewCgroupNS bool `json:"new_cgroup_ns,omitempty"`
	// NewTimeNS asks the init to unshare a time namespace and write the
	// spec's offsets before exec moves it in.
	NewTimeNS bool `json:"new_time_ns,omitempty"`
	// InitPid is the container's init, whose root an exec'd process enters.
	InitPid int `json:"init_pid,omitempty"`
	// Hooks says whether the parent has prestart/createRuntime hooks to run.
	Hooks bool `json:"hooks,omitempty"`
}

// syncMsg is one message between parent and init.
type syncMsg struct {
	Type  string `json:"type"`
	Error string `json:"error,omitempty"`
}

// Sync message types.
const (
	msgHooks     = "hooks"      // init → parent: run prestart/createRuntime now
	msgHooksDone = "hooks-done" // parent → init
	msgReady     = "ready"      // init → parent: waiting for start (or about to exec)
	msgError     = "error"      // init → parent
)

// syncPipe is a JSON message stream over one end of a socketpair.
type syncPipe struct {
	f      *os.File
	enc    *json.Encoder
	dec    *json.Decoder
	closed bool
}

func (p *syncPipe) close() {
	p.f.Close()
	p.closed = true
}

func newSyncPipe(f *os.File) *syncPipe {
	return &syncPipe{f: f, enc: json.NewEncoder(f), dec: json.NewDecoder(f)}
}

func (p *syncPipe) send(v any) error { return p.enc.Encode(v) }

// maxSeccompFrame bounds the compiled filter's frame (4096 instructions
// of 8 bytes, and the listener path and metadata).
const maxSeccompFrame = 1 << 20

// sendConfig sends the init its config: the spec's bytes and the compiled
// seccomp filter as frames of a little-endian u32 length and the bytes,
// then the rest of cfg as the first JSON message.
func (p *syncPipe) sendConfig(cfg *initConfig) error {
	for _, b := range [][]byte{cfg.SpecJSON, cfg.Seccomp} {
		if err := p.sendFrame(b); err != nil {
			return err
		}
	}
	return p.send(cfg)
}

// sendFrame writes b as a frame: its length (u32, little-endian), then b.
func (p *syncPipe) sendFrame(b []byte) error {
	_, err := p.f.Write(append(binary.LittleEndian.AppendUint32(nil, uint32(len(b))), b...))
	return err
}

// recvConfig is sendConfig's other side. The frames are read from the
// socket directly, before the JSON decoder reads (and buffers) anything.
func (p *syncPipe) recvConfig(cfg *initConfig) error {
	var err error
	if cfg.SpecJSON, err = p.recvFrame(maxConfigSize); err != nil {
		return err
	}
	if cfg.Seccomp, err = p.recvFrame(maxSeccompFrame); err != nil {
		return err
	}
	return p.recv(cfg)
}

func (p *syncPipe) recvFrame(max uint32) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(p.f, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if n > max {
		return nil, fmt.Errorf("init config frame of %d bytes is larger than %d", n, max)
	}
	if n == 0 {
		return nil, nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(p.f, b); err != nil {
		return nil, err
	}
	return b, nil
}

func (p *syncPipe) recv(v any) error { return p.dec.Decode(v) }

// expect reads one message and checks its type, turning an init's error
// report into an error.
func (p *syncPipe) expect(want string) error {
	var m syncMsg
	if err := p.recv(&m); err != nil {
		return err
	}
	if m.Type == msgError {
		return fmt.Errorf("%s", m.Error)
	}
	if m.Type != want {
		return fmt.Errorf("unexpected message %q from init (want %q)", m.Type, want)
	}
	return nil
}

func socketPair() (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "init-pipe-parent"), os.NewFile(uintptr(fds[1]), "init-pipe-child"), nil
}
