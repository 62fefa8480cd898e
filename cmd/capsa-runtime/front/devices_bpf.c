/*
 * The cgroup v2 device filter: runtime/cgroups/devices_bpf.go's program,
 * instruction for instruction, loaded and attached with bpf(2).
 */
#define _GNU_SOURCE
#include "devices_bpf.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/bpf.h>

#define MAX_INSNS 4096

struct prog {
	struct bpf_insn insns[MAX_INSNS];
	size_t n;
	int err;
};

static void emit(struct prog *p, uint8_t code, uint8_t dst, uint8_t src, int16_t off, int32_t imm)
{
	if (p->n == MAX_INSNS) {
		p->err = 1;
		return;
	}
	p->insns[p->n++] = (struct bpf_insn){.code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm};
}

static int access_bits(const char *access)
{
	int b = 0;
	if (strchr(access, 'm'))
		b |= BPF_DEVCG_ACC_MKNOD;
	if (strchr(access, 'r'))
		b |= BPF_DEVCG_ACC_READ;
	if (strchr(access, 'w'))
		b |= BPF_DEVCG_ACC_WRITE;
	return b;
}

/* build is deviceFilterProgram: rules tested from the last, each block's
 * failed conditions jumping past it. */
static void build(struct prog *p, const struct dev_rule *rules, size_t n)
{
	/* struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; } */
	emit(p, BPF_LDX | BPF_MEM | BPF_W, BPF_REG_2, BPF_REG_1, 0, 0);
	emit(p, BPF_ALU | BPF_MOV | BPF_X, BPF_REG_3, BPF_REG_2, 0, 0);
	emit(p, BPF_ALU | BPF_RSH | BPF_K, BPF_REG_3, 0, 0, 16);     /* r3 = access */
	emit(p, BPF_ALU | BPF_AND | BPF_K, BPF_REG_2, 0, 0, 0xffff); /* r2 = type */
	emit(p, BPF_LDX | BPF_MEM | BPF_W, BPF_REG_4, BPF_REG_1, 4, 0);
	emit(p, BPF_LDX | BPF_MEM | BPF_W, BPF_REG_5, BPF_REG_1, 8, 0);
	for (size_t i = n; i-- > 0;) {
		const struct dev_rule *r = &rules[i];
		size_t start = p->n;
		/* Jumps hold their target as -1 until the block's end is known. */
		if (r->typ == 'b')
			emit(p, BPF_JMP | BPF_JNE | BPF_K, BPF_REG_2, 0, -1, BPF_DEVCG_DEV_BLOCK);
		else if (r->typ == 'c')
			emit(p, BPF_JMP | BPF_JNE | BPF_K, BPF_REG_2, 0, -1, BPF_DEVCG_DEV_CHAR);
		int bits = access_bits(r->access);
		if (bits != 7) {
			emit(p, BPF_ALU | BPF_MOV | BPF_X, BPF_REG_6, BPF_REG_3, 0, 0);
			emit(p, BPF_ALU | BPF_AND | BPF_K, BPF_REG_6, 0, 0, bits);
			if (r->allow) /* every requested bit granted */
				emit(p, BPF_JMP | BPF_JNE | BPF_X, BPF_REG_6, BPF_REG_3, -1, 0);
			else /* any requested bit named */
				emit(p, BPF_JMP | BPF_JEQ | BPF_K, BPF_REG_6, 0, -1, 0);
		}
		if (r->major >= 0)
			emit(p, BPF_JMP | BPF_JNE | BPF_K, BPF_REG_4, 0, -1, (int32_t)r->major);
		if (r->minor >= 0)
			emit(p, BPF_JMP | BPF_JNE | BPF_K, BPF_REG_5, 0, -1, (int32_t)r->minor);
		int unconditional = p->n == start;
		emit(p, BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, r->allow ? 1 : 0);
		emit(p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
		if (p->err)
			return;
		if (unconditional)
			return; /* the rules before it can never decide */
		size_t next = p->n;
		for (size_t k = start; k < next; k++)
			if (BPF_CLASS(p->insns[k].code) == BPF_JMP && BPF_OP(p->insns[k].code) != BPF_EXIT)
				p->insns[k].off = (int16_t)(next - k - 1);
		emit(p, BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0);
	}
	emit(p, BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0);
	emit(p, BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
}

static long bpf(int cmd, union bpf_attr *attr)
{
	return syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

int attach_device_filter(const char *dir, const struct dev_rule *rules, size_t n)
{
	struct prog *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return -1;
	build(p, rules, n);
	if (p->err) {
		free(p);
		return -1;
	}
	static const char license[] = "Apache-2.0";
	union bpf_attr attr;
	memset(&attr, 0, sizeof(attr));
	attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	attr.insn_cnt = (uint32_t)p->n;
	attr.insns = (uint64_t)(uintptr_t)p->insns;
	attr.license = (uint64_t)(uintptr_t)license;
	int prog = (int)bpf(BPF_PROG_LOAD, &attr);
	free(p);
	if (prog < 0)
		return -1;
	int fd = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		close(prog);
		return -1;
	}
	/* A new cgroup has no device program: one there means the cgroup
	 * existed, and replacing programs is the Go runtime's job. */
	uint32_t ids[1];
	memset(&attr, 0, sizeof(attr));
	attr.query.target_fd = (uint32_t)fd;
	attr.query.attach_type = BPF_CGROUP_DEVICE;
	attr.query.prog_ids = (uint64_t)(uintptr_t)ids;
	attr.query.prog_cnt = 1;
	int r = -1;
	if (bpf(BPF_PROG_QUERY, &attr) == 0 && attr.query.prog_cnt == 0) {
		memset(&attr, 0, sizeof(attr));
		attr.target_fd = (uint32_t)fd;
		attr.attach_bpf_fd = (uint32_t)prog;
		attr.attach_type = BPF_CGROUP_DEVICE;
		attr.attach_flags = BPF_F_ALLOW_MULTI;
		r = bpf(BPF_PROG_ATTACH, &attr) == 0 ? 0 : -1;
	}
	close(fd);
	close(prog);
	return r;
}
