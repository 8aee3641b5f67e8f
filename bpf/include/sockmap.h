/* Socket acceleration (bpf/sockops.c): which pods' sockets are put in the sockhash, what TCP
 * tuning each connection gets, and what user space reads back about every socket it saw.
 *
 *   sockmap_pods      pod address -> {netns cookie, flags, policy}: written by the agent for the
 *                     pods of this node it accelerates or tunes; the netns cookie is learnt by
 *                     sock_ops from the first established socket bound to the address (0 until
 *                     then), and from then on only sockets of that network namespace count.
 *   sockmap_tuning    (pod address, port) -> TCP options; port 0 means every port of the pod.
 *   sockmap_sockets   the sockhash: established TCP sockets of accelerated pods, keyed by their
 *                     own netns cookie and 4-tuple, so two namespaces using the same addresses
 *                     (127.0.0.1, or a pod address claimed twice) never find each other's sockets.
 *   sockmap_conns     socket cookie -> record: every connection sock_ops accelerated or tuned,
 *                     with the congestion control it ended up with (for `sluice sock list`).
 *   sockmap_socks     sockhash key -> the socket's struct sock address and SOCKMAP_SOCK_* flags:
 *                     how sk_msg sees how much its peer has queued and not read (backpressure).
 *   sockmap_stats     per-CPU counters indexed by enum sockmap_stat.
 *
 * Every struct has a BTF-checked codec in src/datapath/sock-redirect.ts. Explicit padding. */
#ifndef SLUICE_SOCKMAP_H
#define SLUICE_SOCKMAP_H

#include "common.h"

/* uapi values BTF cannot carry (linux/tcp.h, linux/socket.h). */
#define SOL_TCP 6
#define TCP_CONGESTION 13
#define TCP_BPF_IW 1001
#define TCP_CA_NAME_MAX 16
#define SOL_SOCKET 1
#define SO_KEEPALIVE 9
#define TCP_KEEPIDLE 4
#define TCP_KEEPINTVL 5
#define TCP_KEEPCNT 6

/* sockmap_pods flags. */
#define SOCKMAP_POD_ACCELERATE (1U << 0) /* put the pod's sockets in the sockhash */
#define SOCKMAP_POD_TUNE (1U << 1)	   /* look the pod's connections up in sockmap_tuning */

/* sockmap_tuning flags; the last two are applied by the agent as sysctls of the pod's network
 * namespace (no per-socket option exists), recorded here so each connection shows them. */
#define SOCKMAP_TUNE_CONGESTION (1U << 0)
#define SOCKMAP_TUNE_INITIAL_CWND (1U << 1)
#define SOCKMAP_TUNE_FAST_OPEN (1U << 2)
#define SOCKMAP_TUNE_NO_SLOW_START_AFTER_IDLE (1U << 3)

/* sockmap_conns flags. */
#define SOCKMAP_CONN_ACCELERATED (1U << 0) /* in the sockhash */
#define SOCKMAP_CONN_TUNED (1U << 1)	   /* a sockmap_tuning entry applied */
#define SOCKMAP_CONN_TUNE_FAILED (1U << 2) /* bpf_setsockopt refused a setting */
#define SOCKMAP_CONN_PASSIVE (1U << 3)	   /* accepted (the pod is the server) */

/* sockmap_socks flags. */
#define SOCKMAP_SOCK_FELL_BACK (1U << 0) /* its sends went back to the stack for good: its peer
					  * had queued too much (bpf/sockops.c, backpressure) */

/* Index into sockmap_stats. Never renumber: tools show them by name. */
enum sockmap_stat {
	SOCKMAP_STAT_ADDED = 0,		 /* sockets put in the sockhash */
	SOCKMAP_STAT_ADD_FAILED = 1,	 /* bpf_sock_hash_update refused (map full, ...) */
	SOCKMAP_STAT_REDIRECTED = 2,	 /* sendmsg calls redirected to the peer socket */
	SOCKMAP_STAT_REDIRECTED_BYTES = 3, /* bytes of those calls */
	SOCKMAP_STAT_PASSED = 4,	 /* sendmsg calls left to the stack (peer not local) */
	SOCKMAP_STAT_PASSED_BYTES = 5,
	SOCKMAP_STAT_TUNED = 6,		 /* connections with a tuning entry applied */
	SOCKMAP_STAT_TUNE_FAILED = 7,	 /* ... of which bpf_setsockopt refused a setting */
	SOCKMAP_STAT_NETNS_MISMATCH = 8, /* socket bound to a pod address from another netns */
	SOCKMAP_STAT_CLOSED = 9,	 /* recorded connections that closed */
	SOCKMAP_STAT_FELL_BACK = 10,	 /* sending sockets switched to the stack for good: their
					  * peer held more than backlog_max unread */
	SOCKMAP_STAT_FELL_BACK_TCP_MEM = 11, /* ... their peer held more than its sk_rcvbuf while
					  * TCP memory was above tcp_mem[0] */
	SOCKMAP_STAT_MAX,
};

struct sockmap_pod_key {
	__be32 address;
};

struct sockmap_pod {
	__u64 netns_cookie; /* 0: not learnt yet; written by sock_ops, kept by the agent */
	__u32 flags;	    /* SOCKMAP_POD_* */
	__u32 generation;   /* the agent's pod identity (hash of its uid): a new pod re-learns */
};

struct sockmap_tuning_key {
	__be32 address;
	__be16 port; /* the connection's server port (0: any) */
	__u16 pad;
};

struct sockmap_tuning {
	char congestion[TCP_CA_NAME_MAX]; /* NUL-terminated; empty: leave the default */
	__u32 initial_cwnd;		  /* segments; 0: leave the default */
	__u32 flags;			  /* SOCKMAP_TUNE_* */
};

/* The sockhash key: one socket, seen from its own side. */
struct sockmap_key {
	__u64 netns_cookie;
	__be32 local_address;
	__be32 remote_address;
	__be16 local_port;
	__be16 remote_port;
	__u32 pad;
};

struct sockmap_conn {
	struct sockmap_key key;
	char congestion[TCP_CA_NAME_MAX]; /* what the kernel reports after tuning */
	__u32 flags;			  /* SOCKMAP_CONN_* */
	__u32 tuning;			  /* the SOCKMAP_TUNE_* settings that applied */
};

/* A socket of the sockhash, for its peer's sk_msg: `sk` is its struct sock address as a
 * number (read back only through bpf_rdonly_cast, whose loads cannot fault: a socket freed
 * without its entry being dropped reads as garbage, never as a crash). */
struct sockmap_sock {
	__u64 sk;
	__u32 flags; /* SOCKMAP_SOCK_* */
	__u32 pad;
};

#ifndef SOCKMAP_SIZE
#define SOCKMAP_SIZE 65536
#endif

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct sockmap_pod_key);
	__type(value, struct sockmap_pod);
} sockmap_pods SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct sockmap_tuning_key);
	__type(value, struct sockmap_tuning);
} sockmap_tuning SEC(".maps");

/* Values are socket cookies when read from user space (value_size 8). */
struct {
	__uint(type, BPF_MAP_TYPE_SOCKHASH);
	__uint(max_entries, SOCKMAP_SIZE);
	__uint(key_size, sizeof(struct sockmap_key));
	__uint(value_size, sizeof(__u64));
} sockmap_sockets SEC(".maps");

/* LRU: a record whose close was missed (a socket freed without a state change) ages out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SOCKMAP_SIZE);
	__type(key, __u64);
	__type(value, struct sockmap_conn);
} sockmap_conns SEC(".maps");

/* LRU, like sockmap_conns: an entry whose close was missed ages out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, SOCKMAP_SIZE);
	__type(key, struct sockmap_key);
	__type(value, struct sockmap_sock);
} sockmap_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SOCKMAP_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} sockmap_stats SEC(".maps");

#endif
