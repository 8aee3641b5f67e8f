/* Bob Jenkins' lookup3 hash of three 32-bit words, as the kernel's jhash_3words (and Cilium's
 * bpf/lib/jhash.h). Used where a hash must be identical on every node and reproducible in user
 * space (src/datapath/maglev.ts mirrors it): no seed from the kernel, no per-boot randomness. */
#ifndef SLUICE_JHASH_H
#define SLUICE_JHASH_H

#include "common.h"

#define JHASH_INITVAL 0xdeadbeef

static __always_inline __u32 jhash_rol32(__u32 word, unsigned int shift)
{
	return (word << shift) | (word >> ((-shift) & 31));
}

static __always_inline __u32 jhash_3words(__u32 a, __u32 b, __u32 c, __u32 initval)
{
	initval += JHASH_INITVAL + (3 << 2);
	a += initval;
	b += initval;
	c += initval;
	/* __jhash_final */
	c ^= b; c -= jhash_rol32(b, 14);
	a ^= c; a -= jhash_rol32(c, 11);
	b ^= a; b -= jhash_rol32(a, 25);
	c ^= b; c -= jhash_rol32(b, 16);
	a ^= c; a -= jhash_rol32(c, 4);
	b ^= a; b -= jhash_rol32(a, 14);
	c ^= b; c -= jhash_rol32(b, 24);
	return c;
}

#endif
