package runtime

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	jsonx "github.com/go-json-experiment/json"
	jsonv1 "github.com/go-json-experiment/json/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// maxConfigSize caps config.json: a bundle is user input, and a runaway
// file should fail clearly rather than exhaust memory.
const maxConfigSize = 16 << 20

// Config is a bundle's config.json, read and validated once.
type Config struct {
	// Spec is the config without linux.seccomp, which only create needs,
	// compiled (see compiledSeccomp).
	Spec *specs.Spec
	raw  []byte // the file's bytes, which create hands to the init as they are
	// seccomp is the linux.seccomp section as it is in the file.
	seccomp json.RawMessage
}

// ociConfig decodes a config but keeps its seccomp section as
// bytes: Docker's profile is most of a config, and decoding its hundreds
// of rules costs more than the rest; the runtime compiles it (or finds it
// compiled) and the init loads the program. The shallower Linux field
// hides the embedded one from encoding/json.
type ociConfig struct {
	specs.Spec
	Linux *ociLinux `json:"linux,omitempty"`
}

type ociLinux struct {
	specs.Linux
	Seccomp json.RawMessage `json:"seccomp,omitempty"`
}

// withoutSection returns config bytes with the JSON value section (a
// json.RawMessage decoded from them, so an exact substring) replaced by
// null, without decoding anything. The first occurrence is replaced: an
// identical object earlier in the file can only be another field's value
// (inside a string its quotes would be escaped), and the init never reads
// the seccomp section anyway, so the result is correct either way.
func withoutSection(config, section []byte) []byte {
	if len(section) == 0 {
		return config
	}
	i := bytes.Index(config, section)
	if i < 0 {
		return config
	}
	out := make([]byte, 0, len(config)-len(section)+4)
	out = append(out, config[:i]...)
	out = append(out, "null"...)
	return append(out, config[i+len(section):]...)
}

// DecodeJSON is json.Unmarshal as encoding/json does it (case-insensitive
// names, duplicate names, invalid UTF-8 allowed), done by encoding/json v2
// (the go-json-experiment module) in v1 mode: the same result in half the
// CPU time in a cold process, which is what every runtime command is, and
// decoding the config or state is the biggest part of it.
func DecodeJSON(data []byte, v any) error {
	return jsonx.Unmarshal(data, v, jsonv1.DefaultOptionsV1())
}

// decodeSpec decodes a config; the seccomp section is returned as bytes
// (nil when absent or null).
func decodeSpec(data []byte) (*specs.Spec, json.RawMessage, error) {
	var d ociConfig
	if err := DecodeJSON(data, &d); err != nil {
		return nil, nil, err
	}
	var raw json.RawMessage
	if d.Linux != nil {
		d.Spec.Linux = &d.Linux.Linux
		if s := strings.TrimSpace(string(d.Linux.Seccomp)); s != "" && s != "null" {
			raw = d.Linux.Seccomp
		}
	}
	return &d.Spec, raw, nil
}

// LoadConfig reads and validates bundle/config.json; Create takes the
// result (CreateOptions.Config) so that a caller that needs to look at the
// config first does not make create read and decode it again.
func LoadConfig(bundle string) (*Config, error) {
	spec, raw, sc, err := loadSpec(bundle)
	if err != nil {
		return nil, err
	}
	return &Config{Spec: spec, raw: raw, seccomp: sc}, nil
}

// loadSpec reads, decodes and validates bundle/config.json and returns its
// bytes and its seccomp section's bytes too.
func loadSpec(bundle string) (*specs.Spec, []byte, json.RawMessage, error) {
	path := filepath.Join(bundle, "config.json")
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, nil, fmt.Errorf("bundle %s has no config.json", bundle)
		}
		return nil, nil, nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxConfigSize+1))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxConfigSize {
		return nil, nil, nil, fmt.Errorf("%s is larger than %d bytes", path, maxConfigSize)
	}
	spec, sc, err := decodeSpec(data)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("parse %s: %w", path, err)
	}
	if err := ValidateSpec(spec, bundle); err != nil {
		return nil, nil, nil, fmt.Errorf("invalid %s: %w", path, err)
	}
	return spec, data, sc, nil
}

// nsTypes are the namespace types capsa knows, in the order a container
// joins them.
var nsTypes = []specs.LinuxNamespaceType{
	specs.UserNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.NetworkNamespace,
	specs.PIDNamespace, specs.CgroupNamespace, specs.TimeNamespace, specs.MountNamespace,
}

// RootfsPath resolves the spec's root.path against the bundle.
func RootfsPath(spec *specs.Spec, bundle string) string {
	p := spec.Root.Path
	if !filepath.IsAbs(p) {
		p = filepath.Join(bundle, p)
	}
	return filepath.Clean(p)
}

// ValidateSpec rejects configs that cannot be run, naming the field, before
// anything is created on the host.
func ValidateSpec(s *specs.Spec, bundle string) error {
	if s.Root == nil || s.Root.Path == "" {
		return fmt.Errorf("root.path is required")
	}
	rootfs := RootfsPath(s, bundle)
	if fi, err := os.Stat(rootfs); err != nil {
		return fmt.Errorf("root.path %q: %w", s.Root.Path, err)
	} else if !fi.IsDir() {
		return fmt.Errorf("root.path %q is not a directory", s.Root.Path)
	}
	if s.Process != nil {
		if err := ValidateProcess(s.Process); err != nil {
			return err
		}
	}
	if s.Linux == nil {
		return fmt.Errorf("linux section is required on Linux")
	}
	seen := map[specs.LinuxNamespaceType]bool{}
	for i, ns := range s.Linux.Namespaces {
		known := false
		for _, t := range nsTypes {
			if ns.Type == t {
				known = true
			}
		}
		if !known {
			return fmt.Errorf("linux.namespaces[%d]: unknown namespace type %q", i, ns.Type)
		}
		if seen[ns.Type] {
			return fmt.Errorf("linux.namespaces[%d]: namespace %q listed twice", i, ns.Type)
		}
		seen[ns.Type] = true
		if ns.Path != "" && !filepath.IsAbs(ns.Path) {
			return fmt.Errorf("linux.namespaces[%d]: path %q is not absolute", i, ns.Path)
		}
	}
	hasUserNS := seen[specs.UserNamespace]
	if (len(s.Linux.UIDMappings) > 0 || len(s.Linux.GIDMappings) > 0) && !hasUserNS {
		return fmt.Errorf("linux.uidMappings/gidMappings need a user namespace")
	}
	if hasUserNS && nsPath(s, specs.UserNamespace) == "" && (len(s.Linux.UIDMappings) == 0 || len(s.Linux.GIDMappings) == 0) {
		return fmt.Errorf("a new user namespace needs linux.uidMappings and linux.gidMappings")
	}
	for i, m := range s.Mounts {
		if !filepath.IsAbs(m.Destination) {
			return fmt.Errorf("mounts[%d]: destination %q is not absolute", i, m.Destination)
		}
	}
	for k := range s.Linux.Sysctl {
		if strings.Contains(k, "..") || strings.ContainsAny(k, "\x00") {
			return fmt.Errorf("linux.sysctl: invalid key %q", k)
		}
		if ns := sysctlNamespace(k); ns == "" || !hasNS(s, ns) || isHostNS(nsPath(s, ns), ns) {
			return fmt.Errorf("linux.sysctl: %s is not in a namespace of the container's own: it would change the host's", k)
		}
	}
	// Without a UTS namespace of its own the container's names would be
	// the host's (runc refuses this too).
	if (s.Hostname != "" || s.Domainname != "") && !hasNS(s, specs.UTSNamespace) {
		return fmt.Errorf("hostname and domainname need a UTS namespace: setting them would rename the host")
	}
	for clock := range s.Linux.TimeOffsets {
		if clock != "monotonic" && clock != "boottime" {
			return fmt.Errorf("linux.timeOffsets: unknown clock %q", clock)
		}
	}
	for i, d := range s.Linux.Devices {
		if !filepath.IsAbs(d.Path) {
			return fmt.Errorf("linux.devices[%d]: path %q is not absolute", i, d.Path)
		}
		switch d.Type {
		case "c", "u", "b", "p":
		default:
			return fmt.Errorf("linux.devices[%d]: unknown type %q", i, d.Type)
		}
	}
	if s.Hooks != nil {
		for kind, hooks := range map[string][]specs.Hook{
			//lint:ignore SA1019 prestart is deprecated, but configs still use it and runtimes must run it
			"prestart": s.Hooks.Prestart, "createRuntime": s.Hooks.CreateRuntime,
			"createContainer": s.Hooks.CreateContainer, "startContainer": s.Hooks.StartContainer,
			"poststart": s.Hooks.Poststart, "poststop": s.Hooks.Poststop,
		} {
			for i, h := range hooks {
				if !filepath.IsAbs(h.Path) {
					return fmt.Errorf("hooks.%s[%d]: path %q is not absolute", kind, i, h.Path)
				}
				if h.Timeout != nil && *h.Timeout <= 0 {
					return fmt.Errorf("hooks.%s[%d]: timeout must be positive", kind, i)
				}
			}
		}
	}
	return nil
}

// ValidateProcess checks the parts of a process that the init would
// otherwise fail on after the container was half set up.
func ValidateProcess(p *specs.Process) error {
	if len(p.Args) == 0 && p.CommandLine == "" {
		return fmt.Errorf("process.args must not be empty")
	}
	if p.Cwd == "" || !filepath.IsAbs(p.Cwd) {
		return fmt.Errorf("process.cwd %q must be an absolute path", p.Cwd)
	}
	if c := p.Capabilities; c != nil {
		for set, names := range map[string][]string{
			"bounding": c.Bounding, "effective": c.Effective, "inheritable": c.Inheritable,
			"permitted": c.Permitted, "ambient": c.Ambient,
		} {
			for _, n := range names {
				if _, err := ParseCapability(n); err != nil {
					return fmt.Errorf("process.capabilities.%s: %w", set, err)
				}
			}
		}
	}
	seen := map[string]bool{}
	for _, r := range p.Rlimits {
		if _, ok := rlimitNames[r.Type]; !ok {
			return fmt.Errorf("process.rlimits: unknown rlimit %q", r.Type)
		}
		if seen[r.Type] {
			return fmt.Errorf("process.rlimits: %s listed twice", r.Type)
		}
		if r.Soft > r.Hard {
			return fmt.Errorf("process.rlimits: %s soft limit %d is above its hard limit %d", r.Type, r.Soft, r.Hard)
		}
		seen[r.Type] = true
	}
	if p.IOPriority != nil {
		switch p.IOPriority.Class {
		case specs.IOPRIO_CLASS_RT, specs.IOPRIO_CLASS_BE, specs.IOPRIO_CLASS_IDLE:
		default:
			return fmt.Errorf("process.ioPriority: unknown class %q", p.IOPriority.Class)
		}
		if p.IOPriority.Priority < 0 || p.IOPriority.Priority > 7 {
			return fmt.Errorf("process.ioPriority: priority %d is outside 0..7", p.IOPriority.Priority)
		}
	}
	return nil
}

// ipcSysctls are the kernel.* sysctls that an IPC namespace holds.
var ipcSysctls = []string{
	"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
	"kernel.shmmni", "kernel.shm_rmid_forced",
}

// sysctlNamespace is the namespace that holds sysctl k ("": none, the
// host's), as runc's validator sorts them.
func sysctlNamespace(k string) specs.LinuxNamespaceType {
	// "net/ipv4/ip_forward" names the same sysctl as "net.ipv4.ip_forward".
	k = strings.ReplaceAll(k, "/", ".")
	switch {
	case slices.Contains(ipcSysctls, k) || strings.HasPrefix(k, "fs.mqueue."):
		return specs.IPCNamespace
	case strings.HasPrefix(k, "net."):
		return specs.NetworkNamespace
	case k == "kernel.hostname" || k == "kernel.domainname":
		return specs.UTSNamespace
	}
	return ""
}

// isHostNS reports whether path (a namespace to join, "" for a new one)
// is this process's own namespace of type t.
func isHostNS(path string, t specs.LinuxNamespaceType) bool {
	if path == "" {
		return false
	}
	var a, b unix.Stat_t
	if unix.Stat(path, &a) != nil || unix.Stat("/proc/self/ns/"+nsProcName[string(t)], &b) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

func nsPath(s *specs.Spec, t specs.LinuxNamespaceType) string {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t {
			return ns.Path
		}
	}
	return ""
}

func hasNS(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t {
			return true
		}
	}
	return false
}
