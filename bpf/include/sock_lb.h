/* Socket-level load balancing (bpf/sock_lb.c): what the cgroup sock_addr hooks remember about
 * the sockets they translated, so replies and getpeername() show the service address.
 *
 * Two memories, because connected and unconnected sockets differ:
 *   - a connected socket (TCP, connected UDP) talks to one backend for its whole life: connect4
 *     stores {frontend, backend} in the socket itself (BPF_MAP_TYPE_SK_STORAGE). The kernel frees
 *     it with the socket, and no other socket's churn can evict it (an LRU could, and a
 *     long-lived connection's getpeername() would then flip to the backend address).
 *   - an unconnected UDP socket may send to several services and backends: sendmsg4 stores one
 *     entry per (socket cookie, backend address, backend port) in an LRU hash, which recvmsg4
 *     looks up with the reply's source (Cilium's lb4_reverse_sk). Socket cookies are never
 *     reused within a boot, so an entry outliving its socket can never match another socket;
 *     the LRU ages it out.
 *
 * Every struct has a BTF-checked codec in src/datapath/sock-lb.ts. Explicit padding everywhere. */
#ifndef SLUICE_SOCK_LB_H
#define SLUICE_SOCK_LB_H

#include "common.h"

/* Return values of cgroup sock_addr programs. SYS_REJECT fails the syscall with EPERM unless
 * the program set another errno with bpf_set_retval (kernel >= 5.18). */
#define SYS_REJECT 0
#define SYS_PROCEED 1

/* uapi errno values (asm-generic/errno.h, the same on x86 and arm64); BTF cannot carry them. */
#define ENOMEM 12
#define ECONNREFUSED 111

/* sock_lb4_conns value: what connect4 did to one connected socket. */
struct sock_lb4_conn {
	__be32 frontend_address; /* the service address the application connected to */
	__be32 backend_address;  /* where the socket really points */
	__be16 frontend_port;
	__be16 backend_port;
	__u32 rev_nat_id; /* the frontend's lb4_reverse_nat entry: reverse only while it is there */
};

/* sock_lb4_rev key: one backend an unconnected UDP socket reached through a service. */
struct sock_lb4_rev_key {
	__u64 cookie; /* bpf_get_socket_cookie(): unique per socket for the whole boot */
	__be32 backend_address;
	__be16 backend_port;
	__u16 pad;
};

/* sock_lb4_rev value: the frontend to report as the source of that backend's replies. */
struct sock_lb4_frontend {
	__be32 address;
	__be16 port;
	__u16 pad;
	__u32 rev_nat_id;
};

#ifndef SOCK_LB_REV_SIZE
#define SOCK_LB_REV_SIZE 65536
#endif

/* Pinned next to the lb maps (the loader pins every map of the spec under the node's pin root):
 * a restarted agent reloads the programs, and sockets translated before keep reversing. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC); /* required for socket storage */
	__type(key, int);
	__type(value, struct sock_lb4_conn);
} sock_lb4_conns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SOCK_LB_REV_SIZE);
	__type(key, struct sock_lb4_rev_key);
	__type(value, struct sock_lb4_frontend);
} sock_lb4_rev SEC(".maps");

#endif
