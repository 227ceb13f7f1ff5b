// floor.c — the least a loader can spend per request in the users shape:
// no runtime, no HTTP library, one epoll instance per thread, non-blocking
// sockets, a request written with one write and its answer read with one
// read. It is the floor pqrelay-loadtest's CPU per request is compared
// with in benchmarks/loadgen/README.md, not a tool.
//
//	cc -O2 -o floor floor.c -lpthread
//	./floor PORT USERS THINK_MS RAMP_S WARMUP_S DURATION_S [THREADS] [TICK_MS]
//
// THINK_MS 0 is a closed loop. Each user sends a 1 KiB POST, reads the
// whole answer (Content-Length bodies only), thinks THINK_MS and sends
// again; users start evenly over RAMP_S after every connection is open.
// Every user thinks the same time, so the users due next are always the
// oldest finished ones: a FIFO per thread is the timer queue. TICK_MS > 0
// wakes only every TICK_MS and sends everything due, so that one wake-up
// serves many users (0: wake for each due time, to the nanosecond).
//
// It prints the loader's CPU (user, system; getrusage) spent in the
// measured phase only, the requests completed in it, and the system calls
// and voluntary context switches per request.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define BODY 1024

struct user {
	int fd;
	int64_t sent;  // ns, 0 while thinking
	int64_t due;   // ns, next send
	int need;      // bytes of the answer still to read, -1: headers not parsed
};

struct thread {
	int id, epfd;
	struct user *users;
	int n;
	int *fifo; // user indexes in due order (ring)
	int head, tail, len;
	// counters of the measured phase
	long done, writes, reads, waits;
	long failed;
	pthread_t th;
};

static char request[BODY + 256];
static int reqlen;
static int64_t t_start, t_measure, t_end;
static int64_t think_ns, tick_ns;
static volatile int stop;

static int64_t now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void push(struct thread *t, int u) {
	t->fifo[t->tail] = u;
	t->tail = (t->tail + 1) % t->n;
	t->len++;
}

static int in_window(int64_t ns) { return ns >= t_measure && ns < t_end; }

static void send_req(struct thread *t, struct user *u, int64_t now) {
	u->sent = now;
	u->need = -1;
	ssize_t n = write(u->fd, request, reqlen);
	if (in_window(now)) t->writes++;
	if (n != reqlen) {
		fprintf(stderr, "short write %zd: %s\n", n, strerror(errno));
		exit(1);
	}
}

// on_readable reads what the socket has; true when the answer is complete.
static int on_readable(struct thread *t, struct user *u, char *buf, size_t cap, int64_t now) {
	for (;;) {
		ssize_t n = read(u->fd, buf, cap);
		if (in_window(now)) t->reads++;
		if (n < 0 && errno == EAGAIN) return 0;
		if (n <= 0) {
			fprintf(stderr, "read: %zd %s\n", n, strerror(errno));
			exit(1);
		}
		if (u->need < 0) {
			// The header block arrives in the first read on loopback;
			// anything else is not what this floor measures.
			char *end = memmem(buf, n, "\r\n\r\n", 4);
			char *cl = memmem(buf, n, "Content-Length:", 15);
			if (!end || !cl) {
				fprintf(stderr, "unparsed answer\n");
				exit(1);
			}
			u->need = atoi(cl + 15) - (int)(n - (end + 4 - buf));
		} else {
			u->need -= n;
		}
		if (u->need <= 0) return 1;
		if ((size_t)n < cap) return 0;
	}
}

static void *loop(void *arg) {
	struct thread *t = arg;
	static __thread char buf[64 << 10];
	struct epoll_event evs[256];
	for (;;) {
		int64_t now = now_ns();
		if (now >= t_end) return NULL;
		// send for every user due
		while (t->len > 0 && t->users[t->fifo[t->head]].due <= now) {
			struct user *u = &t->users[t->fifo[t->head]];
			t->head = (t->head + 1) % t->n;
			t->len--;
			send_req(t, u, now);
		}
		int64_t wait = t_end - now;
		if (t->len > 0) {
			int64_t d = t->users[t->fifo[t->head]].due - now;
			if (d < wait) wait = d;
		}
		if (tick_ns > 0 && wait > 0) {
			int64_t next = ((now - t_start) / tick_ns + 1) * tick_ns + t_start;
			if (next - now > wait) wait = next - now;
		}
		struct timespec ts = {wait / 1000000000, wait % 1000000000};
		int n = syscall(SYS_epoll_pwait2, t->epfd, evs, 256, &ts, NULL, 0);
		now = now_ns();
		if (in_window(now)) t->waits++;
		for (int i = 0; i < n; i++) {
			struct user *u = &t->users[evs[i].data.u32];
			if (u->sent == 0) continue; // spurious
			if (on_readable(t, u, buf, sizeof buf, now)) {
				if (in_window(u->sent)) t->done++;
				u->sent = 0;
				if (think_ns == 0) {
					send_req(t, u, now);
				} else {
					u->due = now + think_ns;
					push(t, evs[i].data.u32);
				}
			}
		}
	}
}

static int64_t cpu_ns(struct rusage *r, int sys) {
	struct timeval tv = sys ? r->ru_stime : r->ru_utime;
	return (int64_t)tv.tv_sec * 1000000000 + tv.tv_usec * 1000;
}

static void sleep_until(int64_t t) {
	int64_t d = t - now_ns();
	if (d <= 0) return;
	struct timespec ts = {d / 1000000000, d % 1000000000};
	nanosleep(&ts, NULL);
}

int main(int argc, char **argv) {
	if (argc < 7) {
		fprintf(stderr, "usage: floor PORT USERS THINK_MS RAMP_S WARMUP_S DURATION_S [THREADS] [TICK_MS]\n");
		return 2;
	}
	int port = atoi(argv[1]), users = atoi(argv[2]);
	think_ns = (int64_t)atoi(argv[3]) * 1000000;
	double ramp = atof(argv[4]), warmup = atof(argv[5]), duration = atof(argv[6]);
	int threads = argc > 7 ? atoi(argv[7]) : 1;
	tick_ns = argc > 8 ? (int64_t)atoi(argv[8]) * 1000000 : 0;

	char body[BODY];
	memset(body, 'x', BODY);
	reqlen = snprintf(request, sizeof request,
	                  "POST /api/echo HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/octet-stream\r\n"
	                  "Content-Length: %d\r\n\r\n",
	                  port, BODY);
	memcpy(request + reqlen, body, BODY);
	reqlen += BODY;

	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	struct thread *ts = calloc(threads, sizeof *ts);
	for (int k = 0; k < threads; k++) {
		struct thread *t = &ts[k];
		t->id = k;
		t->n = users / threads + (k < users % threads);
		t->users = calloc(t->n, sizeof *t->users);
		t->fifo = calloc(t->n, sizeof *t->fifo);
		t->epfd = epoll_create1(0);
		for (int i = 0; i < t->n; i++) {
			int fd = socket(AF_INET, SOCK_STREAM, 0);
			int one = 1;
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
				perror("connect");
				return 1;
			}
			fcntl(fd, F_SETFL, O_NONBLOCK);
			t->users[i].fd = fd;
			struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u32 = i};
			epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev);
		}
	}
	t_start = now_ns();
	t_measure = t_start + (int64_t)((ramp + warmup) * 1e9);
	t_end = t_measure + (int64_t)(duration * 1e9);
	// Users start evenly over the ramp, interleaved across threads as
	// the Go loader's are.
	for (int k = 0; k < threads; k++) {
		struct thread *t = &ts[k];
		for (int i = 0; i < t->n; i++) {
			int global = i * threads + k;
			t->users[i].due = t_start + (int64_t)(ramp * 1e9) * global / users;
			push(t, i);
		}
	}
	for (int k = 0; k < threads; k++) pthread_create(&ts[k].th, NULL, loop, &ts[k]);
	struct rusage r0, r1;
	sleep_until(t_measure);
	getrusage(RUSAGE_SELF, &r0);
	sleep_until(t_end);
	getrusage(RUSAGE_SELF, &r1);
	for (int k = 0; k < threads; k++) pthread_join(ts[k].th, NULL);
	long done = 0, writes = 0, reads = 0, waits = 0;
	for (int k = 0; k < threads; k++) {
		done += ts[k].done, writes += ts[k].writes, reads += ts[k].reads, waits += ts[k].waits;
	}
	int64_t usr = cpu_ns(&r1, 0) - cpu_ns(&r0, 0), sys = cpu_ns(&r1, 1) - cpu_ns(&r0, 1);
	long csw = r1.ru_nvcsw - r0.ru_nvcsw;
	printf("floor users=%d think_ms=%d threads=%d tick_ms=%d requests=%ld rps=%.0f user_us=%.2f sys_us=%.2f cpu_us=%.2f "
	       "writes=%.2f reads=%.2f epoll_waits=%.2f vol_csw=%.3f\n",
	       users, (int)(think_ns / 1000000), threads, (int)(tick_ns / 1000000), done, done / duration,
	       usr / 1e3 / done, sys / 1e3 / done, (usr + sys) / 1e3 / done, (double)writes / done,
	       (double)reads / done, (double)waits / done, (double)csw / done);
	return 0;
}
