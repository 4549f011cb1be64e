/*
 * dhcp-blast: the load generator of `make bench` (test/bench/dhcp-bench.ts compiles it with cc).
 *
 *   dhcp-blast IFACE SRC_PORT DST_IP DST_PORT RATE SECONDS TEMPLATE_HEX [XID_BASE [MACS]]
 *
 * Sends RATE copies per second of the DHCP message TEMPLATE_HEX for SECONDS, each with its own
 * xid and MAC (chaddr bytes 2-5 = sequence number, or that modulo MACS when MACS is given: a
 * known set of machines, as a --decide-url cache sees them), from 0.0.0.0:SRC_PORT bound to IFACE, and
 * matches replies by xid. Prints one JSON line: sent, replies, elapsed seconds, latency p50/p99/max
 * in microseconds. Latency is kernel receive time (SO_TIMESTAMPNS) minus the time just before
 * sendto, so the sender's own wake-up delay does not count.
 *
 * Node's dgram cannot pace tens of thousands of packets a second with microsecond timestamps; a
 * tight C loop can, at a fraction of a core, which leaves the CPU to the server being measured.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define XID_OFFSET 4
#define CHADDR_OFFSET 28
#define GRACE_NS 500000000LL /* replies still counted this long after the last send */

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static int die(const char *what) {
  fprintf(stderr, "dhcp-blast: %s: %s\n", what, strerror(errno));
  return 2;
}

static size_t parse_hex(const char *hex, uint8_t *out, size_t max) {
  size_t n = 0;
  while (hex[0] && hex[1] && n < max) {
    unsigned v;
    if (sscanf(hex, "%2x", &v) != 1) break;
    out[n++] = (uint8_t)v;
    hex += 2;
  }
  return n;
}

int main(int argc, char **argv) {
  if (argc < 8) {
    fprintf(stderr, "usage: dhcp-blast IFACE SRC_PORT DST_IP DST_PORT RATE SECONDS TEMPLATE_HEX [XID_BASE [MACS]]\n");
    return 2;
  }
  const char *iface = argv[1];
  int src_port = atoi(argv[2]);
  const char *dst_ip = argv[3];
  int dst_port = atoi(argv[4]);
  double rate = atof(argv[5]);
  double seconds = atof(argv[6]);
  uint8_t pkt[1500];
  size_t len = parse_hex(argv[7], pkt, sizeof pkt);
  uint32_t xid_base = argc > 8 ? (uint32_t)strtoul(argv[8], NULL, 0) : (uint32_t)getpid() << 16;
  uint32_t macs = argc > 9 ? (uint32_t)strtoul(argv[9], NULL, 0) : 0;
  if (len < 240 || rate <= 0 || seconds <= 0) {
    fprintf(stderr, "dhcp-blast: bad template, rate or duration\n");
    return 2;
  }
  size_t total = (size_t)(rate * seconds);
  int64_t *sent_at = calloc(total, sizeof *sent_at);
  int64_t *lat = calloc(total, sizeof *lat);
  if (!sent_at || !lat) return die("calloc");

  /* Timer slack defaults to 50 us, which would blur pacing at tens of thousands per second. */
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return die("socket");
  int one = 1, rcvbuf = 8 << 20;
  setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, iface, strlen(iface)) < 0) return die("SO_BINDTODEVICE");
  struct sockaddr_in local = {.sin_family = AF_INET, .sin_port = htons(src_port), .sin_addr.s_addr = INADDR_ANY};
  if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0) return die("bind");
  struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons(dst_port)};
  if (inet_pton(AF_INET, dst_ip, &dst.sin_addr) != 1) return die("destination address");

  size_t sent = 0, replies = 0, dups = 0, send_errors = 0;
  uint8_t buf[2048];
  char ctrl[256];
  int64_t start = now_ns() + 1000000LL;
  int64_t interval = (int64_t)(1e9 / rate);
  int64_t end = start + (int64_t)total * interval;
  for (;;) {
    int64_t now = now_ns();
    if (now >= end + GRACE_NS || (sent == total && replies + dups >= total)) break;
    while (sent < total && start + (int64_t)sent * interval <= now) {
      uint32_t seq = (uint32_t)sent;
      uint32_t xid = htonl(xid_base + seq);
      memcpy(pkt + XID_OFFSET, &xid, 4);
      uint32_t mac_low = htonl(macs ? seq % macs : seq);
      memcpy(pkt + CHADDR_OFFSET + 2, &mac_low, 4);
      sent_at[sent] = now_ns();
      if (sendto(fd, pkt, len, 0, (struct sockaddr *)&dst, sizeof dst) < 0) send_errors++;
      sent++;
      now = now_ns();
    }
    int64_t next = sent < total ? start + (int64_t)sent * interval : end + GRACE_NS;
    int64_t wait = next - now_ns();
    if (wait < 0) wait = 0;
    struct timespec ts = {.tv_sec = wait / 1000000000LL, .tv_nsec = wait % 1000000000LL};
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (ppoll(&pfd, 1, &ts, NULL) <= 0) continue;
    for (;;) {
      struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
      struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl, .msg_controllen = sizeof ctrl};
      ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);
      if (n < 0) break;
      if (n < 240 || buf[0] != 2) continue;
      int64_t rx = now_ns();
      for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
          struct timespec t;
          memcpy(&t, CMSG_DATA(c), sizeof t);
          rx = (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
        }
      }
      uint32_t xid;
      memcpy(&xid, buf + XID_OFFSET, 4);
      uint32_t seq = ntohl(xid) - xid_base;
      if (seq >= sent) continue; /* not ours: an earlier run's late reply */
      if (sent_at[seq] < 0) {
        dups++;
        continue;
      }
      lat[replies++] = rx - sent_at[seq];
      sent_at[seq] = -1;
    }
  }
  double elapsed = (double)(end - start) / 1e9;
  qsort(lat, replies, sizeof *lat, cmp_i64);
  int64_t p50 = replies ? lat[replies / 2] : -1;
  int64_t p99 = replies ? lat[(size_t)((double)replies * 0.99)] : -1;
  int64_t max = replies ? lat[replies - 1] : -1;
  printf("{\"sent\":%zu,\"replies\":%zu,\"duplicates\":%zu,\"sendErrors\":%zu,\"seconds\":%.3f,"
         "\"p50us\":%.1f,\"p99us\":%.1f,\"maxUs\":%.1f}\n",
         sent, replies, dups, send_errors, elapsed, p50 / 1e3, p99 / 1e3, max / 1e3);
  close(fd);
  return 0;
}
