/* BLAKE2b-256 (RFC 7693): the front finds compiled seccomp filters in the
 * cache the Go runtime keeps, whose entries it names by this hash
 * (runtime/seccomp.go seccompCachePath). */
#ifndef CAPSA_BLAKE2B_H
#define CAPSA_BLAKE2B_H

#include <stddef.h>
#include <stdint.h>

struct blake2b {
	uint64_t h[8], t[2];
	unsigned char buf[128];
	size_t n;
};

void blake2b256_init(struct blake2b *s);
void blake2b_update(struct blake2b *s, const void *data, size_t len);
void blake2b256_final(struct blake2b *s, unsigned char out[32]);

#endif
