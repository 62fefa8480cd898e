/*
 * int80: a static i386 program without libc for the seccomp tests. It
 * calls getppid (i386 syscall 64) through int $0x80, so the kernel reports
 * AUDIT_ARCH_I386, and exits with the errno it got (0 on success).
 * Built by the test: gcc -m32 -static -nostdlib -fno-pic -o int80 int80.c
 */
static long sys1(long nr, long a)
{
	long r;
	__asm__ volatile("int $0x80" : "=a"(r) : "a"(nr), "b"(a) : "memory");
	return r;
}

void _start(void)
{
	long r = sys1(64, 0); /* getppid */
	sys1(1, r < 0 ? -r : 0); /* exit */
	for (;;)
		;
}
