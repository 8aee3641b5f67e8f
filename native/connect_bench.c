// SPDX-License-Identifier: Apache-2.0
/* New-connection benchmark client (the `connect` scenario of sluice bench): for a fixed time,
 * each of C concurrent workers repeatedly connects to ADDRESS:PORT, sends `whoami\n`, reads the
 * answer line, and closes. Latency is the whole exchange (connect + request + response + close),
 * as a client of a service sees it. Single-threaded with non-blocking sockets and epoll, so the
 * client costs as little CPU as possible.
 *
 * usage: connect_bench ADDRESS PORT SECONDS CONCURRENCY
 * prints one JSON object: {"connections":N,"errors":N,"rate":..,"p50_us":..,"p99_us":..}
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 256
#define MAX_SAMPLES (1 << 22)

struct worker {
	int fd;
	uint64_t started_ns;
	int sent;
};

static struct sockaddr_in target;
static uint32_t *samples; /* latencies in microseconds */
static size_t nsamples;
static uint64_t errors;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* Starts a new exchange for w: a non-blocking connect, watched for writability. */
static void start(int ep, struct worker *w)
{
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = w };

	w->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (w->fd < 0) {
		perror("socket");
		exit(1);
	}
	/* The client closes first, so its side keeps TIME_WAIT; the bench sets tcp_tw_reuse and a
	 * wide ip_local_port_range in the client's namespace so ports do not run out. */
	w->started_ns = now_ns();
	w->sent = 0;
	if (connect(w->fd, (struct sockaddr *)&target, sizeof(target)) < 0 && errno != EINPROGRESS) {
		errors++;
		close(w->fd);
		w->fd = -1;
		return;
	}
	if (epoll_ctl(ep, EPOLL_CTL_ADD, w->fd, &ev) < 0) {
		perror("epoll_ctl");
		exit(1);
	}
}

static void finish(int ep, struct worker *w, int ok)
{
	if (ok && nsamples < MAX_SAMPLES)
		samples[nsamples++] = (uint32_t)((now_ns() - w->started_ns) / 1000);
	if (!ok)
		errors++;
	epoll_ctl(ep, EPOLL_CTL_DEL, w->fd, NULL);
	close(w->fd);
	w->fd = -1;
}

/* One readiness event: send the request once connected, finish on the answer line. */
static void step(int ep, struct worker *w, uint32_t events)
{
	char buf[256];

	if (events & (EPOLLERR | EPOLLHUP) && !(events & EPOLLIN)) {
		finish(ep, w, 0);
		return;
	}
	if (!w->sent) {
		int err = 0;
		socklen_t len = sizeof(err);
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = w };

		getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err || write(w->fd, "whoami\n", 7) != 7) {
			finish(ep, w, 0);
			return;
		}
		w->sent = 1;
		epoll_ctl(ep, EPOLL_CTL_MOD, w->fd, &ev);
		return;
	}
	ssize_t n = read(w->fd, buf, sizeof(buf));
	if (n < 0 && errno == EAGAIN)
		return;
	finish(ep, w, n > 0 && memchr(buf, '\n', (size_t)n) != NULL);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: %s ADDRESS PORT SECONDS CONCURRENCY\n", argv[0]);
		return 2;
	}
	double seconds = atof(argv[3]);
	int concurrency = atoi(argv[4]);
	if (concurrency < 1 || concurrency > MAX_WORKERS || seconds <= 0) {
		fprintf(stderr, "connect_bench: SECONDS > 0 and 1 <= CONCURRENCY <= %d\n", MAX_WORKERS);
		return 2;
	}
	target.sin_family = AF_INET;
	target.sin_port = htons((uint16_t)atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &target.sin_addr) != 1) {
		fprintf(stderr, "connect_bench: bad address %s\n", argv[1]);
		return 2;
	}
	samples = malloc(sizeof(*samples) * MAX_SAMPLES);
	int ep = epoll_create1(0);
	struct worker workers[MAX_WORKERS];
	struct epoll_event events[MAX_WORKERS];
	uint64_t deadline = now_ns() + (uint64_t)(seconds * 1e9);
	uint64_t begin = now_ns();

	for (int i = 0; i < concurrency; i++)
		start(ep, &workers[i]);
	while (now_ns() < deadline) {
		int n = epoll_wait(ep, events, MAX_WORKERS, 100);
		for (int i = 0; i < n; i++) {
			struct worker *w = events[i].data.ptr;
			step(ep, w, events[i].events);
		}
		for (int i = 0; i < concurrency; i++)
			if (workers[i].fd < 0 && now_ns() < deadline)
				start(ep, &workers[i]);
	}
	double elapsed = (now_ns() - begin) / 1e9;
	qsort(samples, nsamples, sizeof(*samples), cmp_u32);
	uint32_t p50 = nsamples ? samples[nsamples / 2] : 0;
	uint32_t p99 = nsamples ? samples[(size_t)(nsamples * 0.99)] : 0;
	printf("{\"connections\":%zu,\"errors\":%llu,\"rate\":%.0f,\"p50_us\":%u,\"p99_us\":%u}\n",
	       nsamples, (unsigned long long)errors, nsamples / elapsed, p50, p99);
	return 0;
}
