/*
 * Fuzz target for init's DHCP reply parser (dhcp_parse_reply), the one parser in init that reads bytes from the
 * network rather than from the VMM. Two ways to build it:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -DLIBFUZZER -Isrc/main/c src/test/c/dhcp_fuzz.c src/main/c/dhcp.c
 *       libFuzzer drives LLVMFuzzerTestOneInput (coverage-guided; give it the seeds this file writes with -w DIR).
 *   gcc -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all -Isrc/main/c src/test/c/dhcp_fuzz.c src/main/c/dhcp.c
 *       a standalone driver (what DhcpParserFuzzTest runs): replays the files named on its command line, then
 *       mutates built-in seeds (OFFER, ACK, NAK, odd IP headers) for N iterations from a fixed PRNG seed.
 *
 * Every input is also checked for what the parser promises: a reply is accepted only for our xid and MAC, with a
 * prefix of 0..32 and at most DHCP_MAX_DNS resolvers; anything else aborts (a finding).
 */
#define _GNU_SOURCE
#include "dhcp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint32_t XID = 0x4a4b5255;
static const uint8_t MAC[6] = {0x5a, 0x94, 0xef, 0xe4, 0x0c, 0xee};

static long accepted;

static void check(const uint8_t *data, size_t size)
{
    struct dhcp_lease lease;
    memset(&lease, 0xA5, sizeof lease);
    int type = dhcp_parse_reply(data, size, XID, MAC, &lease);
    if (type < 0)
        return;
    accepted++;
    int bad_dns = 0;
    for (int i = 0; i < lease.n_dns && i < DHCP_MAX_DNS; i++)
        bad_dns |= !dhcp_unicast(lease.dns[i]);
    if (type > 255 || lease.prefix < 1 || lease.prefix > 32 || lease.n_dns < 0 || lease.n_dns > DHCP_MAX_DNS
        || (lease.has_router != 0 && lease.has_router != 1) || (lease.has_router && !dhcp_unicast(lease.router))
        || bad_dns || ((type == DHCP_OFFER || type == DHCP_ACK) && !dhcp_unicast(lease.addr))
        || (lease.mtu != 0 && (lease.mtu < 576 || lease.mtu > 65535))) {
        fprintf(stderr, "dhcp_fuzz: accepted reply broke the contract: type %d prefix %d dns %d router %d\n", type,
                lease.prefix, lease.n_dns, lease.has_router);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check(data, size);
    return 0;
}

#ifndef LIBFUZZER
/* A server's reply to us: IPv4 + UDP to port 68 + BOOTREPLY with our xid and chaddr, then the options given. */
static size_t seed(uint8_t *buf, const uint8_t *opts, size_t nopts)
{
    uint8_t *b = buf + 28;
    size_t blen = 240 + nopts;
    memset(buf, 0, 28 + blen);
    buf[0] = 0x45;
    buf[2] = (uint8_t)((28 + blen) >> 8);
    buf[3] = (uint8_t)(28 + blen);
    buf[9] = 17;
    buf[21] = 67;
    buf[23] = 68;
    buf[24] = (uint8_t)((8 + blen) >> 8);
    buf[25] = (uint8_t)(8 + blen);
    b[0] = 2;
    b[1] = 1;
    b[2] = 6;
    b[4] = (uint8_t)(XID >> 24); b[5] = (uint8_t)(XID >> 16); b[6] = (uint8_t)(XID >> 8); b[7] = (uint8_t)XID;
    b[16] = 10; b[17] = 0; b[18] = 2; b[19] = 15; /* yiaddr */
    memcpy(b + 28, MAC, 6);
    b[236] = 0x63; b[237] = 0x82; b[238] = 0x53; b[239] = 0x63;
    memcpy(b + 240, opts, nopts);
    return 28 + blen;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static size_t mutate(uint8_t *buf, size_t n, size_t cap)
{
    static const uint8_t interesting[] = {0, 1, 2, 3, 4, 5, 6, 0x7f, 0x80, 0xfe, 0xff, 53, 54, 255, 32, 33};
    int rounds = 1 + (int)(next() % 8);
    for (int r = 0; r < rounds; r++) {
        switch (next() % 7) {
        case 0: if (n) buf[next() % n] ^= (uint8_t)(1u << (next() % 8)); break;
        case 1: if (n) buf[next() % n] = interesting[next() % sizeof interesting]; break;
        case 2: if (n) n = next() % (n + 1); break;                                   /* truncate */
        case 3: if (n < cap) { size_t at = next() % (n + 1), k = 1 + next() % 16;      /* insert bytes */
                    if (k > cap - n) k = cap - n;
                    memmove(buf + at + k, buf + at, n - at);
                    for (size_t i = 0; i < k; i++) buf[at + i] = (uint8_t)next();
                    n += k; } break;
        case 4: if (n > 4) { size_t at = 20 + next() % 20; if (at + 2 <= n) {          /* IP/UDP lengths */
                    uint16_t v = (uint16_t)next(); buf[at] = (uint8_t)(v >> 8); buf[at + 1] = (uint8_t)v; } } break;
        case 5: if (n > 3) { uint16_t v = (uint16_t)(next() % 1200); buf[2] = (uint8_t)(v >> 8); buf[3] = (uint8_t)v; } break;
        case 6: if (n) buf[0] = (uint8_t)(0x40 | (next() % 16)); break;              /* IHL */
        }
    }
    return n;
}

int main(int argc, char **argv)
{
    long iterations = argc > 1 ? atol(argv[1]) : 100000;
    for (int i = 2; i < argc; i++) { /* replay files (libFuzzer findings, saved seeds) */
        FILE *f = fopen(argv[i], "rb");
        if (f == NULL) { perror(argv[i]); return 2; }
        static uint8_t in[1 << 16];
        size_t n = fread(in, 1, sizeof in, f);
        fclose(f);
        uint8_t *p = malloc(n ? n : 1); /* exact size: ASan sees a read past the file's bytes */
        memcpy(p, in, n);
        check(p, n);
        free(p);
    }
    static const uint8_t offer[] = {53, 1, 2, 1, 4, 255, 255, 255, 0, 3, 8, 10, 0, 2, 2, 10, 0, 2, 9,
                                    6, 16, 10, 0, 2, 3, 1, 1, 1, 1, 8, 8, 8, 8, 9, 9, 9, 9, 54, 4, 10, 0, 2, 2, 255};
    static const uint8_t ack[] = {0, 0, 53, 1, 5, 54, 4, 10, 0, 2, 2, 1, 4, 255, 255, 0, 0, 26, 2, 255, 240, 255};
    static const uint8_t nak[] = {53, 1, 6, 54, 4, 10, 0, 2, 2};                 /* no END: runs to the end */
    static const uint8_t odd[] = {1, 4, 255, 0, 255, 0, 53, 1, 2, 1, 4, 0, 0, 0, 0, 6, 0, 3, 0, 255};
    const uint8_t *opts[] = {offer, ack, nak, odd};
    size_t lens[] = {sizeof offer, sizeof ack, sizeof nak, sizeof odd};
    static uint8_t base[4][1500], buf[4096];
    size_t bn[4];
    for (int s = 0; s < 4; s++) {
        bn[s] = seed(base[s], opts[s], lens[s]);
        check(base[s], bn[s]);
    }
    /* a fifth: the OFFER behind 4 bytes of IP options (IHL 6), so the UDP header moves with them */
    static uint8_t withopts[1500];
    memcpy(withopts, base[0], 20);
    memset(withopts + 20, 1, 4); /* NOPs */
    memcpy(withopts + 24, base[0] + 20, bn[0] - 20);
    withopts[0] = 0x46;
    size_t wn = bn[0] + 4;
    withopts[2] = (uint8_t)(wn >> 8);
    withopts[3] = (uint8_t)wn;
    if (dhcp_parse_reply(withopts, wn, XID, MAC, &(struct dhcp_lease){0}) != DHCP_OFFER) {
        fprintf(stderr, "dhcp_fuzz: the OFFER with IP options is not parsed as one\n");
        return 1;
    }
    if (dhcp_parse_reply(base[0], bn[0], XID, MAC, &(struct dhcp_lease){0}) != DHCP_OFFER) {
        fprintf(stderr, "dhcp_fuzz: the OFFER seed is not parsed as one\n");
        return 1;
    }
    for (long it = 0; it < iterations; it++) {
        int s = (int)(next() % 5);
        const uint8_t *from = s < 4 ? base[s] : withopts;
        size_t fn = s < 4 ? bn[s] : wn;
        memcpy(buf, from, fn);
        size_t n = mutate(buf, fn, sizeof buf);
        /* exact-size heap copy: ASan sees a read one past the input */
        uint8_t *p = malloc(n ? n : 1);
        memcpy(p, buf, n);
        check(p, n);
        free(p);
    }
    printf("dhcp_fuzz: %ld inputs, %ld accepted as replies, no finding\n", iterations, accepted);
    return 0;
}
#endif
