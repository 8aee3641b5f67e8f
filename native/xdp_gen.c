// SPDX-License-Identifier: GPL-2.0
/*
 * The packet generator and packet counters of `sluice bench pps` (docs/pps.md).
 *
 *   xdp_gen send   --obj xdp_gen.bpf.o --dev eth0 ADDRESSING --flows new|steady|N --seconds S
 *                  [--cpu C]
 *       Sends 64-byte IPv4 UDP frames out of DEV for S seconds: BPF_PROG_RUN of bpf/xdp_gen.c
 *       with BPF_F_TEST_XDP_LIVE_FRAMES, which varies the source port (and address) and
 *       redirects each frame out of DEV. Pinned to CPU C, it prints
 *       {"packets":N,"seconds":S,"cpu":C,"flows":F}: the frames handed to DEV (a frame DEV's
 *       peer cannot take is dropped there; what arrives is counted at the receiver).
 *   xdp_gen frames --obj xdp_gen.bpf.o ADDRESSING --flows ... --count N [--dirty]
 *       Runs the program N times by BPF_PROG_RUN and prints the frames it made (tests).
 *   xdp_gen attach --obj FILE --prog NAME --dev DEV
 *       Attaches an XDP program (bpf_link, native mode) and prints {"attached":...}; then, for
 *       every line read on stdin, {"packets":N}: the sum over CPUs of its pkt_count map. At EOF
 *       (or when the process dies) the link goes and the program is detached.
 *       With --fwd-dev DEV2 --fwd-mac MAC (program xdp_gen_fwd of xdp_gen.bpf.o): IPv4 UDP
 *       frames for MAC are redirected out of DEV2 (the fabric's fast path, see bpf/xdp_gen.c).
 *       With --rodata NAME=HEX (repeatable): the .rodata variable NAME gets the bytes HEX, in
 *       memory order, exactly as many as the variable has (xdp_fwd of xdp_baseline.bpf.o).
 *   xdp_gen napi   --dev DEV
 *       Prints DEV's NAPI instances as {"napi":[{"id":N,"pid":P},...]}, P being the kernel
 *       thread of a threaded NAPI (0 when not threaded): the netdev generic netlink family's
 *       napi-get, so the bench can pin and time the node's own NAPI thread by its pid.
 *
 * ADDRESSING: --src-mac M --dst-mac M --src-ip A --dst-ip A --dport P [--saddr-count N]
 *             [--sport-base P] [--sport-count N]
 *
 * Run every command inside a lab namespace (ip netns exec): DEV is looked up there.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <sys/socket.h>

#include "../bpf/include/pktgen.h"

/* Program runs per BPF_PROG_RUN call. Each call costs two RCU grace periods whatever its length:
 * bpf_prog_test_run_xdp() swaps the program into the XDP dispatcher and out again
 * (bpf_prog_change_xdp), each swap with synchronize_rcu(), ~10-30 ms on this VM. With a fixed
 * 16,384 runs per call the generator slept in those waits for half of every run (its stack,
 * sampled from /proc/PID/stack: 22 of 40 samples in synchronize_rcu), and every mode's rate was
 * capped by that, not by the path. So the first call is short and each later one is sized to
 * take about CALL_SECONDS at the rate measured so far (never past the deadline): the waits are
 * a few percent of a run, and the deadline and a signal are still noticed within CALL_SECONDS. */
#define FIRST_RUNS (1u << 14)
#define MIN_RUNS (1u << 10)
#define MAX_RUNS (1u << 26)
#define CALL_SECONDS 0.5
/* Frames per batch of the live-frames loop (the kernel's default is 64, its maximum 256). */
#define BATCH_SIZE 64
/* Flows of the `steady` regime (issue 10: 10,000 flows repeated). */
#define STEADY_FLOWS 10000

struct addressing {
	uint8_t src_mac[6], dst_mac[6];
	struct in_addr src_ip, dst_ip;
	uint16_t dport;
	uint32_t saddr_count, sport_base, sport_count;
	uint32_t flows; /* 0: new */
};

struct gen_frame {
	uint8_t bytes[PKTGEN_FRAME_LEN];
	uint32_t ip_sum, udp_sum;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "xdp_gen: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

static void usage(const char *msg)
{
	fprintf(stderr, "xdp_gen: %s\n(see the comment at the top of native/xdp_gen.c)\n", msg);
	exit(2);
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned int b[6];

	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6)
		return -1;
	for (int i = 0; i < 6; i++) {
		if (b[i] > 255)
			return -1;
		mac[i] = b[i];
	}
	return 0;
}

/* --rodata NAME=HEX: up to MAX_RODATA of them, values up to 16 bytes (the largest xdp_fwd has is
 * 8). */
#define MAX_RODATA 16
#define MAX_RODATA_BYTES 16

struct rodata_arg {
	char name[64];
	uint8_t value[MAX_RODATA_BYTES];
	size_t size;
};

static int parse_rodata(const char *s, struct rodata_arg *r)
{
	const char *eq = strchr(s, '=');
	size_t hex;

	if (!eq || eq == s || (size_t)(eq - s) >= sizeof(r->name))
		return -1;
	memcpy(r->name, s, eq - s);
	r->name[eq - s] = 0;
	hex = strlen(eq + 1);
	if (!hex || hex % 2 || hex / 2 > MAX_RODATA_BYTES)
		return -1;
	r->size = hex / 2;
	for (size_t i = 0; i < r->size; i++) {
		unsigned int b;

		if (sscanf(eq + 1 + 2 * i, "%2x", &b) != 1)
			return -1;
		r->value[i] = b;
	}
	return 0;
}

static uint32_t parse_u32(const char *s, const char *what)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || v > UINT32_MAX) {
		fprintf(stderr, "xdp_gen: %s: not a number: %s\n", what, s);
		exit(2);
	}
	return v;
}

/* One's complement sum of 16-bit words as they sit in memory (the byte order does not matter
 * as long as the BPF program reads and writes words the same way, see bpf/include/csum.h). */
static uint32_t sum16(const void *p, size_t len, uint32_t acc)
{
	const uint8_t *b = p;

	for (size_t i = 0; i + 1 < len; i += 2) {
		uint16_t w;

		memcpy(&w, b + i, 2);
		acc += w;
	}
	return acc;
}

/*
 * The 64-byte template and the checksum sums over its fixed parts: source address, source
 * port and both checksums are zero here; the program fills them in per packet.
 */
static void build_frame(const struct addressing *a, struct gen_frame *f)
{
	uint8_t *p = f->bytes;
	uint8_t *ip = p + PKTGEN_ETH_LEN;
	uint8_t *udp = ip + PKTGEN_IP_LEN;
	uint16_t ip_len = PKTGEN_FRAME_LEN - PKTGEN_ETH_LEN;
	uint16_t udp_len = ip_len - PKTGEN_IP_LEN;
	uint16_t w;
	uint8_t pseudo[4];
	static const char payload[] = "sluice pps generator..";

	memset(p, 0, sizeof(f->bytes));
	memcpy(p, a->dst_mac, 6);
	memcpy(p + 6, a->src_mac, 6);
	p[12] = 0x08; /* ETH_P_IP */
	p[13] = 0x00;

	ip[0] = 0x45; /* IPv4, 20-byte header */
	w = htons(ip_len);
	memcpy(ip + 2, &w, 2);
	ip[6] = 0x40; /* DF: a benchmark frame is never fragmented */
	ip[8] = 64;   /* TTL */
	ip[9] = 17;   /* UDP */
	memcpy(ip + 16, &a->dst_ip, 4);

	w = htons(a->dport);
	memcpy(udp + 2, &w, 2);
	w = htons(udp_len);
	memcpy(udp + 4, &w, 2);
	memcpy(udp + PKTGEN_UDP_LEN, payload, PKTGEN_FRAME_LEN - PKTGEN_ETH_LEN - PKTGEN_IP_LEN - PKTGEN_UDP_LEN);

	f->ip_sum = sum16(ip, PKTGEN_IP_LEN, 0);
	/* Pseudo-header: source (per packet), destination, zero, protocol, UDP length. */
	pseudo[0] = 0;
	pseudo[1] = 17;
	memcpy(pseudo + 2, &w, 2);
	f->udp_sum = sum16(udp, udp_len, sum16(&a->dst_ip, 4, sum16(pseudo, 4, 0)));
}

static void print_hex(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		printf("%02x", b[i]);
}

static int set_rodata(struct bpf_object *obj, const char *name, const void *value, size_t value_size)
{
	struct btf *btf = bpf_object__btf(obj);
	struct bpf_map *map, *rodata = NULL;
	const struct btf_var_secinfo *vsi;
	const struct btf_type *sec;
	size_t size;
	int id;

	bpf_object__for_each_map(map, obj) {
		const char *n = bpf_map__name(map);
		size_t len = strlen(n);

		if (len >= 7 && !strcmp(n + len - 7, ".rodata"))
			rodata = map;
	}
	if (!btf || !rodata)
		return -ENOENT;
	id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
	if (id < 0)
		return id;
	sec = btf__type_by_id(btf, id);
	vsi = btf_var_secinfos(sec);
	for (int i = 0; i < btf_vlen(sec); i++, vsi++) {
		const struct btf_type *var = btf__type_by_id(btf, vsi->type);
		const void *initial = bpf_map__initial_value(rodata, &size);
		uint8_t *image;
		int err;

		if (strcmp(btf__name_by_offset(btf, var->name_off), name))
			continue;
		if (!initial || vsi->size != value_size || vsi->offset + value_size > size)
			return -EINVAL;
		image = malloc(size);
		if (!image)
			return -ENOMEM;
		memcpy(image, initial, size);
		memcpy(image + vsi->offset, value, value_size);
		err = bpf_map__set_initial_value(rodata, image, size);
		free(image);
		return err;
	}
	return -ENOENT;
}

static struct bpf_object *open_object(const char *path)
{
	struct bpf_object *obj = bpf_object__open_file(path, NULL);

	if (!obj)
		die(path, errno);
	return obj;
}

static void configure_gen(struct bpf_object *obj, const struct addressing *a, const struct gen_frame *f,
			  int ifindex)
{
	struct {
		const char *name;
		uint32_t value;
	} vars[] = {
		{ "gen_ifindex", ifindex },
		{ "gen_flows", a->flows },
		{ "gen_saddr", a->src_ip.s_addr },
		{ "gen_saddr_count", a->saddr_count },
		{ "gen_sport_base", a->sport_base },
		{ "gen_sport_count", a->sport_count },
		{ "gen_ip_sum", f->ip_sum },
		{ "gen_udp_sum", f->udp_sum },
	};

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
		int err = set_rodata(obj, vars[i].name, &vars[i].value, sizeof(vars[i].value));

		if (err)
			die(vars[i].name, err);
	}
	if (set_rodata(obj, "gen_template", f->bytes, sizeof(f->bytes)))
		die("gen_template", EINVAL);
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void pin_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die("sched_setaffinity", errno);
}

static const char *flows_name(uint32_t flows, char *buf, size_t len)
{
	if (flows == 0)
		return "new";
	if (flows == STEADY_FLOWS)
		return "steady";
	snprintf(buf, len, "%u", flows);
	return buf;
}

/* The runs of the next call: about CALL_SECONDS (or what is left, if less) at the rate of the
 * last call, which took `took` seconds for `runs`. */
static unsigned int next_runs(unsigned int runs, double took, double left)
{
	double budget = left < CALL_SECONDS ? left : CALL_SECONDS;
	double want = took > 0 ? runs / took * budget : (double)runs * 2;

	if (want < MIN_RUNS)
		return MIN_RUNS;
	if (want > MAX_RUNS)
		return MAX_RUNS;
	return (unsigned int)want;
}

static int cmd_send(const char *obj_path, const char *dev, const struct addressing *a, double seconds, int cpu)
{
	struct gen_frame f;
	struct bpf_object *obj;
	struct bpf_program *prog;
	unsigned long long packets = 0;
	unsigned int runs = FIRST_RUNS;
	double started, elapsed;
	char buf[16];
	int ifindex = if_nametoindex(dev), err;

	if (!ifindex)
		die(dev, errno);
	if (cpu >= 0)
		pin_cpu(cpu);
	build_frame(a, &f);
	obj = open_object(obj_path);
	configure_gen(obj, a, &f, ifindex);
	err = bpf_object__load(obj);
	if (err)
		die("bpf_object__load(xdp_gen)", err);
	prog = bpf_object__find_program_by_name(obj, "xdp_gen");
	if (!prog)
		die("program xdp_gen", ENOENT);

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	started = now_seconds();
	elapsed = 0;
	do {
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = f.bytes, .data_size_in = sizeof(f.bytes),
			    .repeat = runs, .flags = BPF_F_TEST_XDP_LIVE_FRAMES,
			    .batch_size = BATCH_SIZE);
		double call_started = started + elapsed;

		err = bpf_prog_test_run_opts(bpf_program__fd(prog), &opts);
		if (err)
			die("bpf_prog_test_run_opts(xdp_gen, BPF_F_TEST_XDP_LIVE_FRAMES)", err);
		packets += runs;
		elapsed = now_seconds() - started;
		runs = next_runs(runs, started + elapsed - call_started, seconds - elapsed);
	} while (elapsed < seconds && !stop);

	printf("{\"packets\":%llu,\"seconds\":%.6f,\"cpu\":%d,\"flows\":\"%s\"}\n", packets, elapsed,
	       cpu >= 0 ? cpu : sched_getcpu(), flows_name(a->flows, buf, sizeof(buf)));
	bpf_object__close(obj);
	return 0;
}

/*
 * Runs the program `count` times with BPF_PROG_RUN (not live: each output frame comes back to
 * us) and prints {"retval":[...],"frames":["hex",...]}. The input is the template, or with
 * --dirty a frame of 0xa5 bytes: a recycled live frame holds whatever the last hop left in it,
 * so the output must not depend on the input (the datapath test checks both).
 */
static int cmd_frames(const char *obj_path, const struct addressing *a, uint32_t count, int dirty)
{
	struct gen_frame f;
	struct bpf_object *obj;
	struct bpf_program *prog;
	uint8_t in[PKTGEN_FRAME_LEN], out[PKTGEN_FRAME_LEN + 64];
	int err;

	build_frame(a, &f);
	obj = open_object(obj_path);
	configure_gen(obj, a, &f, 1);
	err = bpf_object__load(obj);
	if (err)
		die("bpf_object__load(xdp_gen)", err);
	prog = bpf_object__find_program_by_name(obj, "xdp_gen");
	if (!prog)
		die("program xdp_gen", ENOENT);
	if (dirty)
		memset(in, 0xa5, sizeof(in));
	else
		memcpy(in, f.bytes, sizeof(in));
	printf("{\"frames\":[");
	for (uint32_t i = 0; i < count; i++) {
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = in, .data_size_in = sizeof(in), .data_out = out,
			    .data_size_out = sizeof(out), .repeat = 1);

		err = bpf_prog_test_run_opts(bpf_program__fd(prog), &opts);
		if (err)
			die("bpf_prog_test_run_opts(xdp_gen)", err);
		printf("%s{\"retval\":%u,\"data\":\"", i ? "," : "", opts.retval);
		print_hex(out, opts.data_size_out);
		printf("\"}");
	}
	printf("]}\n");
	bpf_object__close(obj);
	return 0;
}

static unsigned long long read_count(int map_fd, int ncpus)
{
	uint64_t values[ncpus];
	uint32_t key = 0;
	unsigned long long total = 0;

	if (bpf_map_lookup_elem(map_fd, &key, values))
		die("bpf_map_lookup_elem(pkt_count)", errno);
	for (int i = 0; i < ncpus; i++)
		total += values[i];
	return total;
}

static int cmd_attach(const char *obj_path, const char *prog_name, const char *dev, const char *fwd_dev,
		      const uint8_t fwd_mac[6], const struct rodata_arg *rodata, int nrodata)
{
	struct bpf_object *obj = open_object(obj_path);
	struct bpf_program *prog;
	struct bpf_link *link;
	struct bpf_map *map;
	int ifindex = if_nametoindex(dev), ncpus, err;
	char line[64];

	if (!ifindex)
		die(dev, errno);
	if (fwd_dev) {
		uint32_t fwd_ifindex = if_nametoindex(fwd_dev);
		uint64_t dmac = 0;

		if (!fwd_ifindex)
			die(fwd_dev, errno);
		memcpy(&dmac, fwd_mac, 6);
		if (set_rodata(obj, "fwd_ifindex", &fwd_ifindex, sizeof(fwd_ifindex)) ||
		    set_rodata(obj, "fwd_dmac", &dmac, sizeof(dmac)))
			die("fwd_ifindex/fwd_dmac", EINVAL);
	}
	for (int i = 0; i < nrodata; i++) {
		err = set_rodata(obj, rodata[i].name, rodata[i].value, rodata[i].size);
		if (err)
			die(rodata[i].name, -err);
	}
	err = bpf_object__load(obj);
	if (err)
		die("bpf_object__load", err);
	prog = bpf_object__find_program_by_name(obj, prog_name);
	if (!prog)
		die(prog_name, ENOENT);
	link = bpf_program__attach_xdp(prog, ifindex);
	if (!link)
		die("bpf_program__attach_xdp", errno);
	map = bpf_object__find_map_by_name(obj, "pkt_count");
	ncpus = libbpf_num_possible_cpus();
	if (ncpus < 0)
		die("libbpf_num_possible_cpus", ncpus);
	printf("{\"attached\":\"%s\",\"prog\":\"%s\"}\n", dev, prog_name);
	fflush(stdout);
	/* SIGTERM and SIGINT end the loop (fgets fails with EINTR) and the link is released. */
	struct sigaction sa = { .sa_handler = on_signal }; /* no SA_RESTART */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	while (!stop && fgets(line, sizeof(line), stdin)) {
		if (map)
			printf("{\"packets\":%llu}\n", read_count(bpf_map__fd(map), ncpus));
		else
			printf("{\"packets\":null}\n");
		fflush(stdout);
	}
	bpf_link__destroy(link);
	bpf_object__close(obj);
	return 0;
}


/* The netdev generic netlink family (include/uapi/linux/netdev.h, not in this distribution's
 * headers): command napi-get and the attributes of a NAPI instance. */
#define NETDEV_CMD_NAPI_GET 11
#define NETDEV_A_NAPI_IFINDEX 1
#define NETDEV_A_NAPI_ID 2
#define NETDEV_A_NAPI_PID 4

struct nl_req {
	struct nlmsghdr nh;
	struct genlmsghdr gh;
	char attrs[64];
};

static void nl_put_attr(struct nl_req *r, uint16_t type, const void *data, uint16_t len)
{
	struct nlattr *a = (struct nlattr *)((char *)r + NLMSG_ALIGN(r->nh.nlmsg_len));

	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + len;
	memcpy((char *)a + NLA_HDRLEN, data, len);
	r->nh.nlmsg_len = NLMSG_ALIGN(r->nh.nlmsg_len) + NLA_ALIGN(a->nla_len);
}

/* Sends one request and hands every reply message to fn until NLMSG_DONE or the ack. */
static int nl_talk(int fd, struct nl_req *r, void (*fn)(struct nlmsghdr *, void *), void *arg)
{
	static char buf[32768];

	if (send(fd, r, r->nh.nlmsg_len, 0) < 0)
		return -errno;
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h;

		if (n < 0)
			return -errno;
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR) {
				int err = ((struct nlmsgerr *)NLMSG_DATA(h))->error;

				if (err || !(r->nh.nlmsg_flags & NLM_F_DUMP))
					return err;
				continue;
			}
			fn(h, arg);
		}
		if (!(r->nh.nlmsg_flags & NLM_F_DUMP))
			return 0;
	}
}

#define GENL_ATTRS(h) ((struct nlattr *)((char *)NLMSG_DATA(h) + GENL_HDRLEN))
#define GENL_ATTRS_LEN(h) ((int)(h)->nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN))
#define FOR_EACH_ATTR(a, start, len) \
	for (int rem_ = (len); (a = (start), rem_ >= NLA_HDRLEN) && a->nla_len >= NLA_HDRLEN && a->nla_len <= rem_; \
	     rem_ -= NLA_ALIGN(a->nla_len), start = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len)))

static void on_family(struct nlmsghdr *h, void *arg)
{
	struct nlattr *start = GENL_ATTRS(h), *a;

	FOR_EACH_ATTR(a, start, GENL_ATTRS_LEN(h)) {
		if (a->nla_type == CTRL_ATTR_FAMILY_ID)
			memcpy(arg, (char *)a + NLA_HDRLEN, sizeof(uint16_t));
	}
}

struct napi_dump {
	int ifindex;
	int count;
};

static void on_napi(struct nlmsghdr *h, void *arg)
{
	struct napi_dump *d = arg;
	struct nlattr *start = GENL_ATTRS(h), *a;
	uint32_t ifindex = 0, id = 0, pid = 0;

	FOR_EACH_ATTR(a, start, GENL_ATTRS_LEN(h)) {
		uint32_t v;

		memcpy(&v, (char *)a + NLA_HDRLEN, sizeof(v));
		if (a->nla_type == NETDEV_A_NAPI_IFINDEX)
			ifindex = v;
		else if (a->nla_type == NETDEV_A_NAPI_ID)
			id = v;
		else if (a->nla_type == NETDEV_A_NAPI_PID)
			pid = v;
	}
	if ((int)ifindex != d->ifindex)
		return;
	printf("%s{\"id\":%u,\"pid\":%u}", d->count++ ? "," : "", id, pid);
}

static int cmd_napi(const char *dev)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	struct nl_req r = { 0 };
	struct napi_dump d = { .ifindex = if_nametoindex(dev) };
	uint16_t family = 0;
	uint32_t ifindex = d.ifindex;
	int fd, err;

	if (!d.ifindex)
		die(dev, errno);
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)))
		die("netlink socket", errno);

	r.nh.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	r.nh.nlmsg_type = GENL_ID_CTRL;
	r.nh.nlmsg_flags = NLM_F_REQUEST;
	r.gh.cmd = CTRL_CMD_GETFAMILY;
	r.gh.version = 1;
	nl_put_attr(&r, CTRL_ATTR_FAMILY_NAME, "netdev", 7);
	err = nl_talk(fd, &r, on_family, &family);
	if (err || !family)
		die("generic netlink family 'netdev'", err ? err : ENOENT);

	memset(&r, 0, sizeof(r));
	r.nh.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	r.nh.nlmsg_type = family;
	r.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	r.gh.cmd = NETDEV_CMD_NAPI_GET;
	r.gh.version = 1;
	nl_put_attr(&r, NETDEV_A_NAPI_IFINDEX, &ifindex, sizeof(ifindex));
	printf("{\"napi\":[");
	err = nl_talk(fd, &r, on_napi, &d);
	printf("]}\n");
	if (err)
		die("netdev napi-get", err);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	enum { O_OBJ = 1, O_DEV, O_PROG, O_SMAC, O_DMAC, O_SIP, O_DIP, O_DPORT, O_FLOWS, O_SECONDS,
	       O_CPU, O_SADDR_COUNT, O_SPORT_BASE, O_SPORT_COUNT, O_COUNT, O_DIRTY, O_FWD_DEV, O_FWD_MAC, O_RODATA };
	static const struct option options[] = {
		{ "obj", required_argument, NULL, O_OBJ },
		{ "dev", required_argument, NULL, O_DEV },
		{ "prog", required_argument, NULL, O_PROG },
		{ "src-mac", required_argument, NULL, O_SMAC },
		{ "dst-mac", required_argument, NULL, O_DMAC },
		{ "src-ip", required_argument, NULL, O_SIP },
		{ "dst-ip", required_argument, NULL, O_DIP },
		{ "dport", required_argument, NULL, O_DPORT },
		{ "flows", required_argument, NULL, O_FLOWS },
		{ "seconds", required_argument, NULL, O_SECONDS },
		{ "cpu", required_argument, NULL, O_CPU },
		{ "saddr-count", required_argument, NULL, O_SADDR_COUNT },
		{ "sport-base", required_argument, NULL, O_SPORT_BASE },
		{ "sport-count", required_argument, NULL, O_SPORT_COUNT },
		{ "count", required_argument, NULL, O_COUNT },
		{ "dirty", no_argument, NULL, O_DIRTY },
		{ "fwd-dev", required_argument, NULL, O_FWD_DEV },
		{ "fwd-mac", required_argument, NULL, O_FWD_MAC },
		{ "rodata", required_argument, NULL, O_RODATA },
		{ 0 },
	};
	struct addressing a = { .saddr_count = 1, .sport_base = 1024, .sport_count = 65536 - 1024 };
	const char *obj = NULL, *dev = NULL, *prog = NULL, *fwd_dev = NULL, *cmd;
	uint8_t fwd_mac[6] = { 0 };
	struct rodata_arg rodata[MAX_RODATA];
	int nrodata = 0;
	double seconds = 0;
	uint32_t count = 1;
	int cpu = -1, opt, have = 0, dirty = 0;

	if (argc < 2)
		usage("expected a command: send, frames, attach or napi");
	cmd = argv[1];
	optind = 2;
	while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (opt) {
		case O_OBJ: obj = optarg; break;
		case O_DEV: dev = optarg; break;
		case O_PROG: prog = optarg; break;
		case O_SMAC:
			if (parse_mac(optarg, a.src_mac))
				usage("--src-mac: expected aa:bb:cc:dd:ee:ff");
			have |= 1;
			break;
		case O_DMAC:
			if (parse_mac(optarg, a.dst_mac))
				usage("--dst-mac: expected aa:bb:cc:dd:ee:ff");
			have |= 2;
			break;
		case O_SIP:
			if (inet_pton(AF_INET, optarg, &a.src_ip) != 1)
				usage("--src-ip: expected an IPv4 address");
			have |= 4;
			break;
		case O_DIP:
			if (inet_pton(AF_INET, optarg, &a.dst_ip) != 1)
				usage("--dst-ip: expected an IPv4 address");
			have |= 8;
			break;
		case O_DPORT:
			if (parse_u32(optarg, "--dport") > 65535)
				usage("--dport: expected a port");
			a.dport = parse_u32(optarg, "--dport");
			have |= 16;
			break;
		case O_FLOWS:
			a.flows = !strcmp(optarg, "new") ? 0 :
				  !strcmp(optarg, "steady") ? STEADY_FLOWS : parse_u32(optarg, "--flows");
			have |= 32;
			break;
		case O_SECONDS: seconds = atof(optarg); break;
		case O_CPU: cpu = parse_u32(optarg, "--cpu"); break;
		case O_SADDR_COUNT: a.saddr_count = parse_u32(optarg, "--saddr-count"); break;
		case O_SPORT_BASE: a.sport_base = parse_u32(optarg, "--sport-base"); break;
		case O_SPORT_COUNT: a.sport_count = parse_u32(optarg, "--sport-count"); break;
		case O_COUNT: count = parse_u32(optarg, "--count"); break;
		case O_DIRTY: dirty = 1; break;
		case O_FWD_DEV: fwd_dev = optarg; break;
		case O_FWD_MAC:
			if (parse_mac(optarg, fwd_mac))
				usage("--fwd-mac: expected aa:bb:cc:dd:ee:ff");
			break;
		case O_RODATA:
			if (nrodata >= MAX_RODATA || parse_rodata(optarg, &rodata[nrodata++]))
				usage("--rodata: expected NAME=HEX (up to 16 of them, 16 bytes each)");
			break;
		default: usage("unknown option");
		}
	}
	if (!strcmp(cmd, "napi")) {
		if (!dev)
			usage("napi needs --dev");
		return cmd_napi(dev);
	}
	if (!strcmp(cmd, "attach")) {
		if (!obj || !prog || !dev)
			usage("attach needs --obj, --prog and --dev");
		return cmd_attach(obj, prog, dev, fwd_dev, fwd_mac, rodata, nrodata);
	}
	if (have != 63)
		usage("needs --src-mac, --dst-mac, --src-ip, --dst-ip, --dport and --flows");
	if (!a.saddr_count || !a.sport_count || a.sport_base + a.sport_count > 65536)
		usage("source ports must lie in 1..65535 and the counts be >= 1");
	if (!strcmp(cmd, "frames")) {
		if (!obj)
			usage("frames needs --obj");
		return cmd_frames(obj, &a, count, dirty);
	}
	if (!strcmp(cmd, "send")) {
		if (!obj || !dev || seconds <= 0)
			usage("send needs --obj, --dev and --seconds > 0");
		return cmd_send(obj, dev, &a, seconds, cpu);
	}
	usage("expected a command: send, frames, attach or napi");
	return 2;
}
