package seccomp

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

// Features describes what Compile accepts, in the shape of the
// linux.seccomp section of `features` (runtime-spec features.md).
// SupportedFlags are the known flags the running kernel has.
func Features() *features.Seccomp {
	enabled := supportedArchs() != nil
	f := &features.Seccomp{
		Enabled: &enabled,
		Actions: []string{
			string(specs.ActAllow), string(specs.ActErrno), string(specs.ActKill),
			string(specs.ActKillProcess), string(specs.ActKillThread), string(specs.ActLog),
			string(specs.ActNotify), string(specs.ActTrace), string(specs.ActTrap),
		},
		Operators: []string{
			string(specs.OpEqualTo), string(specs.OpGreaterEqual), string(specs.OpGreaterThan),
			string(specs.OpLessEqual), string(specs.OpLessThan), string(specs.OpMaskedEqual),
			string(specs.OpNotEqual),
		},
		KnownFlags:     []string{},
		SupportedFlags: []string{},
	}
	for _, a := range knownArchs {
		f.Archs = append(f.Archs, string(a))
	}
	have := kernelFlags()
	for _, k := range knownFlags {
		f.KnownFlags = append(f.KnownFlags, string(k.name))
		if have&k.value != 0 {
			f.SupportedFlags = append(f.SupportedFlags, string(k.name))
		}
	}
	return f
}
