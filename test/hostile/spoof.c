/*
 * spoof: the hostile-LAN tests' packet forger (test/hostile/lan.ts compiles it with cc).
 *
 *   spoof SRC_IP SRC_PORT DST_IP DST_PORT COUNT INTERVAL_US HEX_PAYLOAD [PORT_STEP [ADDR_COUNT]]
 *
 * Sends COUNT UDP datagrams carrying HEX_PAYLOAD from SRC_IP:SRC_PORT (any address, port 0
 * included: what a real socket cannot send) to DST_IP:DST_PORT, INTERVAL_US apart, through a raw
 * socket that writes the IP header itself. Packet i comes from port SRC_PORT + i * PORT_STEP
 * (mod 65536) and from the i mod ADDR_COUNT'th address after SRC_IP. Prints the count sent.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int unhex(const char *hex, unsigned char *out, size_t max) {
  size_t n = strlen(hex);
  if (n % 2 || n / 2 > max) return -1;
  for (size_t i = 0; i < n / 2; i++) {
    unsigned int b;
    if (sscanf(hex + 2 * i, "%2x", &b) != 1) return -1;
    out[i] = (unsigned char)b;
  }
  return (int)(n / 2);
}

static uint16_t checksum(const void *data, size_t len) {
  const uint16_t *p = data;
  uint32_t sum = 0;
  for (; len > 1; len -= 2) sum += *p++;
  if (len) sum += *(const uint8_t *)p;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

int main(int argc, char **argv) {
  if (argc < 8) {
    fprintf(stderr, "usage: spoof SRC_IP SRC_PORT DST_IP DST_PORT COUNT INTERVAL_US HEX [PORT_STEP [ADDR_COUNT]]\n");
    return 2;
  }
  struct in_addr src, dst;
  if (!inet_aton(argv[1], &src) || !inet_aton(argv[3], &dst)) {
    fprintf(stderr, "spoof: bad address\n");
    return 2;
  }
  long src_port = atol(argv[2]), dst_port = atol(argv[4]), count = atol(argv[5]), interval = atol(argv[6]);
  long step = argc > 8 ? atol(argv[8]) : 0, addrs = argc > 9 ? atol(argv[9]) : 1;
  static unsigned char packet[65535];
  struct iphdr *ip = (struct iphdr *)packet;
  struct udphdr *udp = (struct udphdr *)(packet + sizeof *ip);
  unsigned char *payload = packet + sizeof *ip + sizeof *udp;
  int len = unhex(argv[7], payload, sizeof packet - sizeof *ip - sizeof *udp);
  if (len < 0) {
    fprintf(stderr, "spoof: bad hex payload\n");
    return 2;
  }
  int s = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
  if (s < 0) {
    perror("spoof: raw socket (needs root)");
    return 1;
  }
  int on = 1;
  setsockopt(s, SOL_SOCKET, SO_BROADCAST, &on, sizeof on);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_addr = dst};
  long sent = 0;
  for (long i = 0; i < count; i++) {
    size_t total = sizeof *ip + sizeof *udp + (size_t)len;
    memset(ip, 0, sizeof *ip);
    ip->version = 4;
    ip->ihl = 5;
    ip->ttl = 64;
    ip->protocol = IPPROTO_UDP;
    ip->tot_len = htons((uint16_t)total);
    ip->id = htons((uint16_t)i);
    ip->saddr = htonl(ntohl(src.s_addr) + (uint32_t)(i % (addrs > 0 ? addrs : 1)));
    ip->daddr = dst.s_addr;
    ip->check = checksum(ip, sizeof *ip);
    udp->source = htons((uint16_t)((src_port + i * step) & 0xffff));
    udp->dest = htons((uint16_t)dst_port);
    udp->len = htons((uint16_t)(sizeof *udp + (size_t)len));
    udp->check = 0; /* optional over IPv4 (RFC 768) */
    if (sendto(s, packet, total, 0, (struct sockaddr *)&to, sizeof to) == (ssize_t)total) sent++;
    if (interval > 0) {
      struct timespec ts = {.tv_sec = interval / 1000000, .tv_nsec = (interval % 1000000) * 1000};
      nanosleep(&ts, NULL);
    }
  }
  printf("%ld\n", sent);
  return 0;
}
