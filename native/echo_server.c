// SPDX-License-Identifier: Apache-2.0
/*
 * echo_server: the lab's built-in workload (like Kubernetes' agnhost netexec, but tiny and fast).
 *
 *   echo_server --name POD [--tcp PORT]... [--udp PORT]... [--http PORT]...
 *
 * Every port listens on 0.0.0.0 with SO_REUSEADDR. One thread, one epoll loop, non-blocking
 * sockets, a per-connection output buffer for partial writes. SIGTERM or SIGINT exits 0.
 *
 * Protocols (a "message" below is what one read returns; a client sends it with one write and
 * waits for the answer before sending more, which is how request/response clients behave):
 *   TCP   every byte received is echoed back unchanged (ping-pong latency loops), except the
 *         messages `whoami\n` (or `hostname\n`), answered `<name>\n`, and `clientip\n`,
 *         answered `<ip>:<port>\n` of the peer as the server sees it.
 *   UDP   a datagram `whoami` or `hostname` (optionally ending in \n) is answered `<name>`,
 *         `clientip` is answered `<ip>:<port>`, anything else is echoed back unchanged.
 *   HTTP  HTTP/1.1 with keep-alive and pipelining. GET /hostname answers `<name>` and
 *         /clientip answers `<ip>:<port>` (both like agnhost); any other request answers
 *         200 with body `<name>\n`. HTTP/1.0 and `Connection: close` close after the response.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_PORTS 64
#define READ_SIZE 65536
#define OUT_HIGH_WATER (1 << 20) /* stop reading a connection while this much is unsent */
#define HTTP_MAX_HEADER 16384

enum kind { K_TCP_LISTEN, K_HTTP_LISTEN, K_UDP, K_TCP, K_HTTP, K_SIGNAL };

struct conn {
	enum kind kind;
	int fd;
	char peer[64];      /* "ip:port", answered to clientip */
	char *out;          /* bytes accepted for sending but not yet written */
	size_t out_len, out_cap;
	char *in;           /* HTTP only: bytes received but not yet parsed */
	size_t in_len, in_cap;
	size_t body_skip;   /* HTTP only: request body bytes still to discard */
	int close_after;    /* close once `out` is drained */
	int reading;        /* EPOLLIN is armed */
};

static const char *name = "echo";
static size_t name_len = 4;
static int ep;
static char buf[READ_SIZE];

static void die(const char *what) {
	perror(what);
	exit(1);
}

static void *xrealloc(void *p, size_t n) {
	p = realloc(p, n);
	if (!p)
		die("realloc");
	return p;
}

static void format_peer(const struct sockaddr_in *sa, char *dst, size_t len) {
	char ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &sa->sin_addr, ip, sizeof(ip));
	snprintf(dst, len, "%s:%u", ip, ntohs(sa->sin_port));
}

static struct conn *conn_new(enum kind kind, int fd) {
	struct conn *c = calloc(1, sizeof(*c));
	if (!c)
		die("calloc");
	c->kind = kind;
	c->fd = fd;
	return c;
}

static void arm(struct conn *c, unsigned events, int op) {
	struct epoll_event ev = { .events = events, .data.ptr = c };
	if (epoll_ctl(ep, op, c->fd, &ev) < 0)
		die("epoll_ctl");
}

static void conn_close(struct conn *c) {
	close(c->fd); /* also removes it from the epoll set */
	free(c->out);
	free(c->in);
	free(c);
}

/* Re-arms epoll: read unless too much output is pending, wait for writability while it is. */
static void conn_update(struct conn *c) {
	int reading = !c->close_after && c->out_len < OUT_HIGH_WATER;
	unsigned events = (reading ? EPOLLIN : 0) | (c->out_len ? EPOLLOUT : 0);
	c->reading = reading;
	arm(c, events, EPOLL_CTL_MOD);
}

/* Writes what is pending; returns -1 when the connection failed and was closed. */
static int conn_flush(struct conn *c) {
	size_t done = 0;
	while (done < c->out_len) {
		ssize_t n = send(c->fd, c->out + done, c->out_len - done, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			conn_close(c);
			return -1;
		}
		done += (size_t)n;
	}
	memmove(c->out, c->out + done, c->out_len - done);
	c->out_len -= done;
	if (c->out_len == 0 && c->close_after) {
		conn_close(c);
		return -1;
	}
	return 0;
}

/* Queues bytes behind what is already pending (order is kept); conn_flush sends them. */
static void conn_queue(struct conn *c, const char *data, size_t len) {
	if (c->out_len + len > c->out_cap) {
		c->out_cap = (c->out_len + len) * 2;
		c->out = xrealloc(c->out, c->out_cap);
	}
	memcpy(c->out + c->out_len, data, len);
	c->out_len += len;
}

/* The TCP and UDP control messages: returns the answer's length in `ans`, or 0 for "echo". */
static size_t control_answer(const char *msg, size_t len, const char *peer, char *ans, size_t cap,
			     int newline) {
	if (len > 0 && msg[len - 1] == '\n')
		len--;
	if (len > 0 && msg[len - 1] == '\r')
		len--;
	const char *text;
	if ((len == 6 && memcmp(msg, "whoami", 6) == 0) || (len == 8 && memcmp(msg, "hostname", 8) == 0))
		text = name;
	else if (len == 8 && memcmp(msg, "clientip", 8) == 0)
		text = peer;
	else
		return 0;
	int n = snprintf(ans, cap, newline ? "%s\n" : "%s", text);
	return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

static void tcp_data(struct conn *c, const char *data, size_t len) {
	char ans[512];
	/* A control message arrives as one short read ending in \n; never hold bytes back. */
	size_t n = 0;
	if (len <= 10 && data[len - 1] == '\n')
		n = control_answer(data, len, c->peer, ans, sizeof(ans), 1);
	if (n)
		conn_queue(c, ans, n);
	else
		conn_queue(c, data, len);
}

/* Case-insensitive search for a header's value inside the header block; NULL when absent. */
static const char *header_value(const char *head, const char *end, const char *field, size_t *vlen) {
	size_t flen = strlen(field);
	for (const char *line = memchr(head, '\n', (size_t)(end - head)); line && line + 1 < end;
	     line = memchr(line + 1, '\n', (size_t)(end - line - 1))) {
		const char *p = line + 1;
		if ((size_t)(end - p) > flen && strncasecmp(p, field, flen) == 0 && p[flen] == ':') {
			p += flen + 1;
			while (p < end && (*p == ' ' || *p == '\t'))
				p++;
			const char *e = p;
			while (e < end && *e != '\r' && *e != '\n')
				e++;
			*vlen = (size_t)(e - p);
			return p;
		}
	}
	return NULL;
}

static void http_respond(struct conn *c, int status, const char *body, int head_only) {
	char hdr[512];
	const char *reason = status == 200 ? "OK" : status == 501 ? "Not Implemented" : "Bad Request";
	int n = snprintf(hdr, sizeof(hdr),
			 "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n%s\r\n",
			 status, reason, strlen(body), c->close_after ? "Connection: close\r\n" : "");
	conn_queue(c, hdr, (size_t)n);
	if (!head_only)
		conn_queue(c, body, strlen(body));
}

/* Parses every complete request in the input buffer and queues one response for each. */
static void http_data(struct conn *c, const char *data, size_t len) {
	if (c->body_skip) { /* the rest of a request body: discard it */
		size_t skip = len < c->body_skip ? len : c->body_skip;
		c->body_skip -= skip;
		data += skip;
		len -= skip;
	}
	if (c->in_len + len > c->in_cap) {
		c->in_cap = (c->in_len + len) * 2;
		c->in = xrealloc(c->in, c->in_cap);
	}
	memcpy(c->in + c->in_len, data, len);
	c->in_len += len;

	size_t used = 0;
	while (!c->close_after && !c->body_skip) {
		char *req = c->in + used;
		size_t avail = c->in_len - used;
		char *end = memmem(req, avail, "\r\n\r\n", 4);
		if (!end) {
			if (avail > HTTP_MAX_HEADER) {
				c->close_after = 1;
				http_respond(c, 400, "request header too large\n", 0);
			}
			break;
		}
		end += 4;
		/* Request line: METHOD SP PATH SP VERSION */
		char *sp1 = memchr(req, ' ', (size_t)(end - req));
		char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1)) : NULL;
		if (!sp2) {
			c->close_after = 1;
			http_respond(c, 400, "bad request line\n", 0);
			break;
		}
		int head_only = sp1 - req == 4 && memcmp(req, "HEAD", 4) == 0;
		int http10 = end - sp2 > 8 && memcmp(sp2 + 1, "HTTP/1.0", 8) == 0;
		size_t vlen = 0;
		const char *conn_hdr = header_value(req, end, "Connection", &vlen);
		if (conn_hdr && vlen == 5 && strncasecmp(conn_hdr, "close", 5) == 0)
			c->close_after = 1;
		else if (http10 && !(conn_hdr && vlen == 10 && strncasecmp(conn_hdr, "keep-alive", 10) == 0))
			c->close_after = 1;
		const char *te = header_value(req, end, "Transfer-Encoding", &vlen);
		const char *cl = header_value(req, end, "Content-Length", &vlen);
		used = (size_t)(end - c->in);

		size_t path_len = (size_t)(sp2 - sp1 - 1);
		char body[512];
		int status = 200;
		if (te) { /* chunked request bodies are out of scope for a test server */
			c->close_after = 1;
			status = 501;
			snprintf(body, sizeof(body), "chunked request bodies are not supported\n");
		} else if (path_len == 9 && memcmp(sp1 + 1, "/hostname", 9) == 0) {
			snprintf(body, sizeof(body), "%s", name);
		} else if (path_len == 9 && memcmp(sp1 + 1, "/clientip", 9) == 0) {
			snprintf(body, sizeof(body), "%s", c->peer);
		} else {
			snprintf(body, sizeof(body), "%s\n", name);
		}
		http_respond(c, status, body, head_only);
		if (cl && !te) { /* skip the request body, possibly beyond this read */
			size_t want = strtoul(cl, NULL, 10), have = c->in_len - used;
			size_t skip = want < have ? want : have;
			used += skip;
			c->body_skip = want - skip;
		}
	}
	memmove(c->in, c->in + used, c->in_len - used);
	c->in_len -= used;
}

static void on_accept(struct conn *l) {
	for (;;) {
		struct sockaddr_in peer;
		socklen_t plen = sizeof(peer);
		int fd = accept4(l->fd, (struct sockaddr *)&peer, &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				perror("accept4"); /* e.g. EMFILE: the next wakeup retries */
			return;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct conn *c = conn_new(l->kind == K_HTTP_LISTEN ? K_HTTP : K_TCP, fd);
		format_peer(&peer, c->peer, sizeof(c->peer));
		c->reading = 1;
		arm(c, EPOLLIN, EPOLL_CTL_ADD);
	}
}

static void on_conn(struct conn *c, unsigned events) {
	if (events & EPOLLOUT && conn_flush(c) < 0)
		return;
	if (c->reading && events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		/* Read until EAGAIN, but stop early when the output backs up (the peer reads slowly). */
		while (!c->close_after && c->out_len < OUT_HIGH_WATER) {
			ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				break;
			if (n <= 0) { /* EOF or error: flush what is pending, then close */
				c->close_after = 1;
				break;
			}
			if (c->kind == K_TCP)
				tcp_data(c, buf, (size_t)n);
			else
				http_data(c, buf, (size_t)n);
		}
		if (events & EPOLLERR)
			c->out_len = 0;
	}
	if (conn_flush(c) < 0)
		return;
	conn_update(c);
}

static void on_udp(struct conn *u) {
	char ans[512];
	for (;;) {
		struct sockaddr_in peer;
		socklen_t plen = sizeof(peer);
		ssize_t n = recvfrom(u->fd, buf, sizeof(buf), 0, (struct sockaddr *)&peer, &plen);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return; /* EAGAIN, or a transient error: nothing more to read now */
		}
		format_peer(&peer, u->peer, sizeof(u->peer));
		size_t alen = control_answer(buf, (size_t)n, u->peer, ans, sizeof(ans), 0);
		/* A reply that cannot be sent right now is dropped, as UDP allows. */
		if (alen)
			sendto(u->fd, ans, alen, 0, (struct sockaddr *)&peer, plen);
		else
			sendto(u->fd, buf, (size_t)n, 0, (struct sockaddr *)&peer, plen);
	}
}

static void listen_on(enum kind kind, const char *arg) {
	char *end;
	long port = strtol(arg, &end, 10);
	if (*end || port < 1 || port > 65535) {
		fprintf(stderr, "echo_server: bad port '%s'\n", arg);
		exit(2);
	}
	int udp = kind == K_UDP;
	int fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket");
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_ANY) };
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "echo_server: bind %s port %ld: %s\n", udp ? "udp" : "tcp", port,
			strerror(errno));
		exit(1);
	}
	if (!udp && listen(fd, SOMAXCONN) < 0)
		die("listen");
	arm(conn_new(kind, fd), EPOLLIN, EPOLL_CTL_ADD);
}

static void usage(void) {
	fprintf(stderr, "usage: echo_server --name POD [--tcp PORT]... [--udp PORT]... [--http PORT]...\n");
	exit(2);
}

int main(int argc, char **argv) {
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1");

	/* Many concurrent connections: raise the open-file limit as far as allowed. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	/* SIGTERM and SIGINT arrive through a signalfd in the same loop: exit 0. */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0)
		die("signalfd");
	arm(conn_new(K_SIGNAL, sfd), EPOLLIN, EPOLL_CTL_ADD);

	int ports = 0;
	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i];
		if (i + 1 >= argc)
			usage();
		const char *val = argv[++i];
		if (strcmp(opt, "--name") == 0) {
			name = val;
			name_len = strlen(val);
			if (name_len == 0 || name_len > 253)
				usage();
			continue;
		}
		enum kind kind;
		if (strcmp(opt, "--tcp") == 0)
			kind = K_TCP_LISTEN;
		else if (strcmp(opt, "--udp") == 0)
			kind = K_UDP;
		else if (strcmp(opt, "--http") == 0)
			kind = K_HTTP_LISTEN;
		else
			usage();
		if (++ports > MAX_PORTS)
			usage();
		listen_on(kind, val);
	}
	if (ports == 0)
		usage();
	fprintf(stderr, "echo_server %s: listening on %d port(s)\n", name, ports);

	struct epoll_event events[256];
	for (;;) {
		int n = epoll_wait(ep, events, 256, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("epoll_wait");
		for (int i = 0; i < n; i++) {
			struct conn *c = events[i].data.ptr;
			switch (c->kind) {
			case K_SIGNAL:
				fprintf(stderr, "echo_server %s: terminating\n", name);
				return 0;
			case K_TCP_LISTEN:
			case K_HTTP_LISTEN:
				on_accept(c);
				break;
			case K_UDP:
				on_udp(c);
				break;
			case K_TCP:
			case K_HTTP:
				on_conn(c, events[i].events);
				break;
			}
		}
	}
}
