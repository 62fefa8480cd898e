package cgroups

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// deviceFilterInsns compiles device rules to a BPF_PROG_TYPE_CGROUP_DEVICE
// program. The spec's rules are ordered and the last matching rule wins, so
// the program tests them from last to first and returns at the first match;
// a request no rule matches is denied.
//
// An allow rule matches when it grants every access bit requested; a deny
// rule matches when it names any requested bit.
func deviceFilterInsns(devs []specs.LinuxDeviceCgroup) (asm.Instructions, error) {
	rules := make([]deviceRule, 0, len(devs))
	for _, d := range devs {
		r, err := parseDeviceRule(d)
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	// struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }
	// access_type = (access << 16) | type.
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word),
		asm.Mov.Reg32(asm.R3, asm.R2),
		asm.RSh.Imm32(asm.R3, 16),                // R3 = access
		asm.And.Imm32(asm.R2, 0xffff),            // R2 = type
		asm.LoadMem(asm.R4, asm.R1, 4, asm.Word), // R4 = major
		asm.LoadMem(asm.R5, asm.R1, 8, asm.Word), // R5 = minor
	}
	for i := len(rules) - 1; i >= 0; i-- {
		r := rules[i]
		next := fmt.Sprintf("rule%d", i)
		var block asm.Instructions
		switch r.typ {
		case 'b':
			block = append(block, asm.JNE.Imm(asm.R2, 1, next)) // BPF_DEVCG_DEV_BLOCK
		case 'c':
			block = append(block, asm.JNE.Imm(asm.R2, 2, next)) // BPF_DEVCG_DEV_CHAR
		}
		bits := accessBits(r.access)
		if bits != 7 {
			block = append(block, asm.Mov.Reg32(asm.R6, asm.R3), asm.And.Imm32(asm.R6, bits))
			if r.allow {
				// Every requested bit must be granted: (req & bits) == req.
				block = append(block, asm.JNE.Reg(asm.R6, asm.R3, next))
			} else {
				// Any requested bit named: (req & bits) != 0.
				block = append(block, asm.JEq.Imm(asm.R6, 0, next))
			}
		}
		if r.major >= 0 {
			block = append(block, asm.JNE.Imm(asm.R4, int32(r.major), next))
		}
		if r.minor >= 0 {
			block = append(block, asm.JNE.Imm(asm.R5, int32(r.minor), next))
		}
		ret := int32(0)
		if r.allow {
			ret = 1
		}
		unconditional := len(block) == 0
		block = append(block, asm.Mov.Imm(asm.R0, ret), asm.Return())
		insns = append(insns, block...)
		if unconditional {
			// Every request matches here: the rules before it in the
			// spec can never decide, and the verifier refuses code
			// that cannot be reached.
			return insns, nil
		}
		// The label marks the first instruction after this rule's block,
		// where its failed conditions jump.
		insns = append(insns, asm.Mov.Imm(asm.R0, 0).WithSymbol(next))
	}
	insns = append(insns, asm.Mov.Imm(asm.R0, 0), asm.Return())
	return insns, nil
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
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.CGroupDevice,
		Instructions: insns,
		License:      "Apache-2.0",
	})
	if err != nil {
		return fmt.Errorf("cgroups: load device filter: %w", err)
	}
	defer prog.Close()

	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("cgroups: open %s: %w", dir, err)
	}
	defer unix.Close(fd)

	old, err := link.QueryPrograms(link.QueryOptions{Target: fd, Attach: ebpf.AttachCGroupDevice})
	if err != nil {
		return fmt.Errorf("cgroups: query device filters of %s: %w", dir, err)
	}
	if err := link.RawAttachProgram(link.RawAttachProgramOptions{
		Target: fd, Program: prog, Attach: ebpf.AttachCGroupDevice, Flags: unix.BPF_F_ALLOW_MULTI,
	}); err != nil {
		return fmt.Errorf("cgroups: attach device filter to %s: %w", dir, err)
	}
	var errs []error
	for _, ap := range old.Programs {
		p, err := ebpf.NewProgramFromID(ap.ID)
		if err != nil {
			errs = append(errs, fmt.Errorf("open old device filter %d: %w", ap.ID, err))
			continue
		}
		if err := link.RawDetachProgram(link.RawDetachProgramOptions{
			Target: fd, Program: p, Attach: ebpf.AttachCGroupDevice,
		}); err != nil {
			errs = append(errs, fmt.Errorf("detach old device filter %d: %w", ap.ID, err))
		}
		p.Close()
	}
	if len(errs) > 0 {
		return fmt.Errorf("cgroups: %s: %w", dir, errors.Join(errs...))
	}
	return nil
}
