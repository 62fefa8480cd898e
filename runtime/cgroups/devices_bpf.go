package cgroups

import (
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// deviceFilterInsns compiles device rules to a BPF_PROG_TYPE_CGROUP_DEVICE
// program. The spec's rules are ordered and the last matching rule wins, so
// the program tests them from last to first and returns at the first match;
// a request no rule matches is denied.
//
// An allow rule matches when it grants every access bit requested; a deny
// rule matches when it names any requested bit. The program is returned
// assembled (ebpf.go), ready for BPF_PROG_LOAD.
func deviceFilterInsns(devs []specs.LinuxDeviceCgroup) ([]bpfInsn, error) {
	rules := make([]deviceRule, 0, len(devs))
	for _, d := range devs {
		r, err := parseDeviceRule(d)
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	insns, err := assemble(deviceFilterProgram(rules))
	if err != nil {
		return nil, fmt.Errorf("cgroups: device filter: %w", err)
	}
	return insns, nil
}

func deviceFilterProgram(rules []deviceRule) []asmInsn {
	// struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
	// access_type = (access << 16) | type.
	insns := []asmInsn{
		ldxW(r2, r1, 0),
		mov32Reg(r3, r2),
		rsh32Imm(r3, 16),     // r3 = access
		and32Imm(r2, 0xffff), // r2 = type
		ldxW(r4, r1, 4),      // r4 = major
		ldxW(r5, r1, 8),      // r5 = minor
	}
	for i := len(rules) - 1; i >= 0; i-- {
		r := rules[i]
		next := fmt.Sprintf("rule%d", i)
		var block []asmInsn
		switch r.typ {
		case 'b':
			block = append(block, jneImm(r2, 1, next)) // BPF_DEVCG_DEV_BLOCK
		case 'c':
			block = append(block, jneImm(r2, 2, next)) // BPF_DEVCG_DEV_CHAR
		}
		bits := accessBits(r.access)
		if bits != 7 {
			block = append(block, mov32Reg(r6, r3), and32Imm(r6, bits))
			if r.allow {
				// Every requested bit must be granted: (req & bits) == req.
				block = append(block, jneReg(r6, r3, next))
			} else {
				// Any requested bit named: (req & bits) != 0.
				block = append(block, jeqImm(r6, 0, next))
			}
		}
		if r.major >= 0 {
			block = append(block, jneImm(r4, int32(r.major), next))
		}
		if r.minor >= 0 {
			block = append(block, jneImm(r5, int32(r.minor), next))
		}
		ret := int32(0)
		if r.allow {
			ret = 1
		}
		unconditional := len(block) == 0
		block = append(block, mov64Imm(r0, ret), exit())
		insns = append(insns, block...)
		if unconditional {
			// Every request matches here: the rules before it in the
			// spec can never decide, and the verifier refuses code
			// that cannot be reached.
			return insns
		}
		// The label marks the first instruction after this rule's block,
		// where its failed conditions jump.
		insns = append(insns, mov64Imm(r0, 0).withLabel(next))
	}
	return append(insns, mov64Imm(r0, 0), exit())
}

// setDevicesV2 compiles devs, attaches the program to the cgroup dir and
// then detaches the programs that were attached before, so that at no
// moment the cgroup runs without a filter. With BPF_F_ALLOW_MULTI every
// attached program must allow an access, so the new one restricts at once.
func setDevicesV2(dir string, devs []specs.LinuxDeviceCgroup) error {
	insns, err := deviceFilterInsns(devs)
	if err != nil {
		return err
	}
	prog, err := bpfProgLoad(unix.BPF_PROG_TYPE_CGROUP_DEVICE, insns, "Apache-2.0")
	if err != nil {
		return fmt.Errorf("cgroups: load device filter: %w", err)
	}
	defer unix.Close(prog)

	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("cgroups: open %s: %w", dir, err)
	}
	defer unix.Close(fd)

	old, err := bpfProgQuery(fd, unix.BPF_CGROUP_DEVICE)
	if err != nil {
		return fmt.Errorf("cgroups: query device filters of %s: %w", dir, err)
	}
	if err := bpfProgAttach(fd, prog, unix.BPF_CGROUP_DEVICE, unix.BPF_F_ALLOW_MULTI); err != nil {
		return fmt.Errorf("cgroups: attach device filter to %s: %w", dir, err)
	}
	var errs []error
	for _, id := range old {
		p, err := bpfProgGetFDByID(id)
		if err != nil {
			errs = append(errs, fmt.Errorf("open old device filter %d: %w", id, err))
			continue
		}
		if err := bpfProgDetach(fd, p, unix.BPF_CGROUP_DEVICE); err != nil {
			errs = append(errs, fmt.Errorf("detach old device filter %d: %w", id, err))
		}
		unix.Close(p)
	}
	if len(errs) > 0 {
		return fmt.Errorf("cgroups: %s: %w", dir, errors.Join(errs...))
	}
	return nil
}
