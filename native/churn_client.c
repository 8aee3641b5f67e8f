// SPDX-License-Identifier: Apache-2.0
/* Request client of the `churn` scenario of sluice bench: for a fixed time, each of C concurrent
 * workers repeatedly connects to ADDRESS:PORT, sends `whoami\n`, reads the answer line, and
 * closes, while the bench changes the service's endpoints. Every exchange ends in exactly one
 * of:
 *   ok             the answer is one of the NAMES given (a backend of the service);
 *   connect-error  connect() failed (refused, unreachable);
 *   reset          the connection failed or closed after connecting, before a whole answer;
 *   timeout        no whole answer within TIMEOUT_MS of starting the exchange;
 *   wrong-answer   an answer line that is not one of NAMES.
 * At the deadline no new exchange starts and those in flight are waited for (each until its own
 * timeout), so an exchange that began before a backend left the service and completed is counted
 * ok, and one that hangs is counted a timeout, never dropped. Single-threaded, non-blocking
 * sockets and epoll, as connect_bench.c.
 *
 * usage: churn_client ADDRESS PORT SECONDS CONCURRENCY TIMEOUT_MS NAME[,NAME...]
 * prints one JSON object:
 *   {"requests":N,"ok":N,"connect_errors":N,"resets":N,"timeouts":N,"wrong_answers":N}
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 256
#define MAX_NAMES 64
#define ANSWER_MAX 128

enum outcome { OK, CONNECT_ERROR, RESET, TIMEOUT, WRONG_ANSWER, OUTCOMES };

struct worker {
	int fd;
	uint64_t started_ns;
	int sent;
	size_t got;
	char answer[ANSWER_MAX];
};

static struct sockaddr_in target;
static uint64_t counts[OUTCOMES];
static char *names[MAX_NAMES];
static int nnames;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void finish(int ep, struct worker *w, enum outcome o)
{
	counts[o]++;
	epoll_ctl(ep, EPOLL_CTL_DEL, w->fd, NULL);
	close(w->fd);
	w->fd = -1;
}

static void start(int ep, struct worker *w)
{
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = w };

	w->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (w->fd < 0) {
		perror("socket");
		exit(1);
	}
	w->started_ns = now_ns();
	w->sent = 0;
	w->got = 0;
	if (connect(w->fd, (struct sockaddr *)&target, sizeof(target)) < 0 && errno != EINPROGRESS) {
		counts[CONNECT_ERROR]++;
		close(w->fd);
		w->fd = -1;
		return;
	}
	if (epoll_ctl(ep, EPOLL_CTL_ADD, w->fd, &ev) < 0) {
		perror("epoll_ctl");
		exit(1);
	}
}

static enum outcome judge(const char *line, size_t len)
{
	for (int i = 0; i < nnames; i++)
		if (strlen(names[i]) == len && memcmp(names[i], line, len) == 0)
			return OK;
	return WRONG_ANSWER;
}

static void step(int ep, struct worker *w, uint32_t events)
{
	if (!w->sent) {
		int err = 0;
		socklen_t len = sizeof(err);
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = w };

		getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			finish(ep, w, CONNECT_ERROR);
			return;
		}
		if (events & (EPOLLERR | EPOLLHUP)) {
			finish(ep, w, RESET);
			return;
		}
		if (write(w->fd, "whoami\n", 7) != 7) {
			finish(ep, w, RESET);
			return;
		}
		w->sent = 1;
		epoll_ctl(ep, EPOLL_CTL_MOD, w->fd, &ev);
		return;
	}
	ssize_t n = read(w->fd, w->answer + w->got, sizeof(w->answer) - 1 - w->got);
	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		finish(ep, w, RESET);
		return;
	}
	w->got += (size_t)n;
	char *nl = memchr(w->answer, '\n', w->got);
	if (nl)
		finish(ep, w, judge(w->answer, (size_t)(nl - w->answer)));
	else if (w->got == sizeof(w->answer) - 1)
		finish(ep, w, WRONG_ANSWER);
}

int main(int argc, char **argv)
{
	if (argc != 7) {
		fprintf(stderr,
			"usage: %s ADDRESS PORT SECONDS CONCURRENCY TIMEOUT_MS NAME[,NAME...]\n",
			argv[0]);
		return 2;
	}
	double seconds = atof(argv[3]);
	int concurrency = atoi(argv[4]);
	uint64_t timeout_ns = (uint64_t)atoi(argv[5]) * 1000000ull;
	if (concurrency < 1 || concurrency > MAX_WORKERS || seconds <= 0 || timeout_ns == 0) {
		fprintf(stderr, "churn_client: SECONDS > 0, TIMEOUT_MS > 0, 1 <= CONCURRENCY <= %d\n",
			MAX_WORKERS);
		return 2;
	}
	for (char *s = strtok(argv[6], ","); s && nnames < MAX_NAMES; s = strtok(NULL, ","))
		names[nnames++] = s;
	target.sin_family = AF_INET;
	target.sin_port = htons((uint16_t)atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &target.sin_addr) != 1) {
		fprintf(stderr, "churn_client: bad address %s\n", argv[1]);
		return 2;
	}
	int ep = epoll_create1(0);
	struct worker workers[MAX_WORKERS];
	struct epoll_event events[MAX_WORKERS];
	uint64_t deadline = now_ns() + (uint64_t)(seconds * 1e9);

	for (int i = 0; i < concurrency; i++)
		start(ep, &workers[i]);
	for (;;) {
		int busy = 0;
		int n = epoll_wait(ep, events, MAX_WORKERS, 10);
		for (int i = 0; i < n; i++)
			step(ep, events[i].data.ptr, events[i].events);
		uint64_t now = now_ns();
		for (int i = 0; i < concurrency; i++) {
			struct worker *w = &workers[i];
			if (w->fd >= 0 && now - w->started_ns > timeout_ns)
				finish(ep, w, TIMEOUT);
			if (w->fd < 0 && now < deadline)
				start(ep, w);
			busy |= w->fd >= 0;
		}
		if (now >= deadline && !busy)
			break;
	}
	uint64_t total = 0;
	for (int o = 0; o < OUTCOMES; o++)
		total += counts[o];
	printf("{\"requests\":%llu,\"ok\":%llu,\"connect_errors\":%llu,\"resets\":%llu,"
	       "\"timeouts\":%llu,\"wrong_answers\":%llu}\n",
	       (unsigned long long)total, (unsigned long long)counts[OK],
	       (unsigned long long)counts[CONNECT_ERROR], (unsigned long long)counts[RESET],
	       (unsigned long long)counts[TIMEOUT], (unsigned long long)counts[WRONG_ANSWER]);
	return 0;
}
