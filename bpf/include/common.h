/* Every sluice BPF object starts here: kernel types from BTF, libbpf's helpers. */
#ifndef SLUICE_COMMON_H
#define SLUICE_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD

/* uapi #defines, which BTF (and so vmlinux.h) cannot carry. */
#define IPPROTO_ICMPV6 58

#define TC_ACT_OK 0
#define TC_ACT_SHOT 2

/* Emits a type's BTF even when only locals use it (ring buffer events), so user space can
 * check its codec against the object. Costs one pointer in .bss. */
#define BTF_EXPORT(type, name) type *__btf_export_##name __attribute__((unused))

#endif
