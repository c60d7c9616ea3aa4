/* jkrun guest init: the DHCPv4 client; see dhcp.h. */
#include "dhcp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define IP_HLEN 20
#define UDP_HLEN 8
#define BOOTP_FIXED 236 /* op..file, before the magic cookie */
#define MAGIC 0x63825363u
#define OPT_PAD 0
#define OPT_MASK 1
#define OPT_ROUTER 3
#define OPT_DNS 6
#define OPT_MTU 26
#define OPT_REQUESTED 50
#define OPT_TYPE 53
#define OPT_SERVER 54
#define OPT_PARAMS 55
#define OPT_END 255

static uint16_t ip_checksum(const uint8_t *p, size_t n)
{
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    if (n & 1)
        sum += (uint32_t)p[n - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    return (uint16_t)~sum;
}

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { put16(p, (uint16_t)(v >> 16)); put16(p + 2, (uint16_t)v); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)get16(p) << 16 | get16(p + 2); }

size_t dhcp_build_request(uint8_t *buf, int type, uint32_t xid, const uint8_t mac[6], struct in_addr requested,
                          struct in_addr server)
{
    uint8_t *b = buf + IP_HLEN + UDP_HLEN;
    memset(buf, 0, IP_HLEN + UDP_HLEN + 300);
    b[0] = 1;        /* BOOTREQUEST */
    b[1] = 1;        /* Ethernet */
    b[2] = 6;
    put32(b + 4, xid);
    put16(b + 10, 0x8000); /* broadcast: this interface has no address to receive a unicast reply on */
    memcpy(b + 28, mac, 6);
    put32(b + BOOTP_FIXED, MAGIC);
    uint8_t *o = b + BOOTP_FIXED + 4;
    *o++ = OPT_TYPE; *o++ = 1; *o++ = (uint8_t)type;
    *o++ = OPT_PARAMS; *o++ = 4; *o++ = OPT_MASK; *o++ = OPT_ROUTER; *o++ = OPT_DNS; *o++ = OPT_MTU;
    if (type == DHCP_REQUEST) {
        *o++ = OPT_REQUESTED; *o++ = 4; memcpy(o, &requested.s_addr, 4); o += 4;
        *o++ = OPT_SERVER; *o++ = 4; memcpy(o, &server.s_addr, 4); o += 4;
    }
    *o++ = OPT_END;
    size_t bootp = (size_t)(o - b);
    if (bootp < 300)
        bootp = 300; /* RFC 1542: some servers want the BOOTP minimum */
    uint8_t *udp = buf + IP_HLEN;
    put16(udp, 68);
    put16(udp + 2, 67);
    put16(udp + 4, (uint16_t)(UDP_HLEN + bootp)); /* checksum 0: none (IPv4) */
    buf[0] = 0x45;
    put16(buf + 2, (uint16_t)(IP_HLEN + UDP_HLEN + bootp));
    buf[8] = 64;
    buf[9] = 17;
    put32(buf + 16, 0xFFFFFFFFu);
    put16(buf + 10, ip_checksum(buf, IP_HLEN));
    return IP_HLEN + UDP_HLEN + bootp;
}

int dhcp_unicast(struct in_addr a)
{
    uint32_t h = ntohl(a.s_addr);
    uint8_t first = (uint8_t)(h >> 24);
    return first != 0 && first != 127 && first < 224; /* not "this network", loopback, multicast, class E, broadcast */
}

int dhcp_parse_reply(const uint8_t *pkt, size_t n, uint32_t xid, const uint8_t mac[6], struct dhcp_lease *out)
{
    if (n < IP_HLEN || (pkt[0] >> 4) != 4)
        return -1;
    size_t ihl = (size_t)(pkt[0] & 0xF) * 4, total = get16(pkt + 2);
    if (ihl < IP_HLEN || total > n || total < ihl + UDP_HLEN || pkt[9] != 17 || (get16(pkt + 6) & 0x3FFF) != 0)
        return -1; /* not UDP, or a fragment */
    const uint8_t *udp = pkt + ihl;
    size_t ulen = get16(udp + 4);
    if (get16(udp + 2) != 68 || ulen < UDP_HLEN || ulen > total - ihl)
        return -1;
    const uint8_t *b = udp + UDP_HLEN;
    size_t blen = ulen - UDP_HLEN;
    if (blen < BOOTP_FIXED + 4 || b[0] != 2 || get32(b + 4) != xid || memcmp(b + 28, mac, 6) != 0
        || get32(b + BOOTP_FIXED) != MAGIC)
        return -1;
    memset(out, 0, sizeof *out);
    memcpy(&out->addr.s_addr, b + 16, 4);
    out->prefix = 24;
    int type = -1;
    for (size_t i = BOOTP_FIXED + 4; i < blen;) {
        uint8_t code = b[i];
        if (code == OPT_END)
            break;
        if (code == OPT_PAD) {
            i++;
            continue;
        }
        if (i + 2 > blen || i + 2 + b[i + 1] > blen)
            return -1; /* an option running past the message */
        uint8_t len = b[i + 1];
        const uint8_t *v = b + i + 2;
        if (code == OPT_TYPE && len == 1) {
            type = v[0];
        } else if (code == OPT_MASK && len == 4) {
            uint32_t m = get32(v);
            int p = 0;
            while (p < 32 && (m & (0x80000000u >> p)))
                p++;
            if (p > 0 && (p == 32 || (m << p) == 0)) /* contiguous and not 0.0.0.0, which would make everything on-link */
                out->prefix = p;
        } else if (code == OPT_ROUTER && len >= 4) {
            struct in_addr r;
            memcpy(&r.s_addr, v, 4);
            if (dhcp_unicast(r)) {
                out->router = r;
                out->has_router = 1;
            }
        } else if (code == OPT_DNS && len >= 4) {
            for (int k = 0; k < len / 4 && out->n_dns < DHCP_MAX_DNS; k++) {
                struct in_addr d;
                memcpy(&d.s_addr, v + 4 * k, 4);
                if (dhcp_unicast(d)) /* a lease's 127.0.0.1 or 0.0.0.0 would point the resolver at the guest itself */
                    out->dns[out->n_dns++] = d;
            }
        } else if (code == OPT_SERVER && len == 4) {
            memcpy(&out->server.s_addr, v, 4);
        } else if (code == OPT_MTU && len == 2 && get16(v) >= 576) {
            out->mtu = get16(v); /* passt offers 65520: frames its socket protocol takes whole */
        }
        i += 2 + (size_t)len;
    }
    if ((type == DHCP_OFFER || type == DHCP_ACK) && !dhcp_unicast(out->addr))
        return -1; /* an address no host may take */
    return type;
}

static long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

int dhcp_lease(const char *ifname, int timeout_ms, struct dhcp_lease *out, char *why, size_t why_len)
{
    int s = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_IP));
    if (s < 0) {
        snprintf(why, why_len, "packet socket: %s", strerror(errno));
        return -1;
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
    uint8_t mac[6];
    if (ioctl(s, SIOCGIFINDEX, &ifr) != 0) {
        snprintf(why, why_len, "no interface %s: %s", ifname, strerror(errno));
        close(s);
        return -1;
    }
    int ifindex = ifr.ifr_ifindex;
    if (ioctl(s, SIOCGIFHWADDR, &ifr) != 0) {
        snprintf(why, why_len, "%s: no hardware address: %s", ifname, strerror(errno));
        close(s);
        return -1;
    }
    memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
    struct sockaddr_ll at = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_IP), .sll_ifindex = ifindex};
    if (bind(s, (struct sockaddr *)&at, sizeof at) != 0) {
        snprintf(why, why_len, "bind to %s: %s", ifname, strerror(errno));
        close(s);
        return -1;
    }
    struct sockaddr_ll to = at;
    to.sll_halen = 6;
    memset(to.sll_addr, 0xFF, 6);
    uint32_t xid = 0;
    if (getrandom(&xid, sizeof xid, GRND_NONBLOCK) != (ssize_t)sizeof xid)
        xid = (uint32_t)now_ms() ^ (uint32_t)(mac[2] << 24 | mac[3] << 16 | mac[4] << 8 | mac[5]);

    long deadline = now_ms() + timeout_ms, interval = 1000;
    int type = DHCP_DISCOVER, offers = 0;
    struct dhcp_lease offer;
    memset(&offer, 0, sizeof offer);
    uint8_t pkt[1500], req[600];
    while (now_ms() < deadline) {
        size_t n = dhcp_build_request(req, type, xid, mac, offer.addr, offer.server);
        if (sendto(s, req, n, 0, (struct sockaddr *)&to, sizeof to) < 0 && errno != ENOBUFS) {
            snprintf(why, why_len, "send on %s: %s", ifname, strerror(errno));
            close(s);
            return -1;
        }
        long resend = now_ms() + interval;
        interval = interval < 4000 ? interval * 2 : 4000;
        int restart = 0;
        while (!restart && now_ms() < resend && now_ms() < deadline) {
            long wait = (resend < deadline ? resend : deadline) - now_ms();
            struct pollfd p = {.fd = s, .events = POLLIN};
            int r = poll(&p, 1, wait > 0 ? (int)wait : 0);
            if (r <= 0)
                continue;
            ssize_t got = recv(s, pkt, sizeof pkt, 0);
            if (got <= 0)
                continue;
            struct dhcp_lease reply;
            int t = dhcp_parse_reply(pkt, (size_t)got, xid, mac, &reply);
            if (type == DHCP_DISCOVER && t == DHCP_OFFER && reply.addr.s_addr != 0) {
                offer = reply;
                offers++;
                type = DHCP_REQUEST;
                restart = 1; /* send the REQUEST now */
                interval = 1000;
            } else if (type == DHCP_REQUEST && t == DHCP_ACK && reply.addr.s_addr == offer.addr.s_addr
                       && (reply.server.s_addr == 0 || offer.server.s_addr == 0 || reply.server.s_addr == offer.server.s_addr)) {
                *out = reply;
                if (out->server.s_addr == 0)
                    out->server = offer.server;
                close(s);
                return 0;
            } else if (type == DHCP_REQUEST && t == DHCP_NAK) {
                type = DHCP_DISCOVER;
                restart = 1;
                interval = 1000;
            }
        }
    }
    close(s);
    snprintf(why, why_len, offers ? "no DHCP acknowledgement on %s within %d s" : "no DHCP offer on %s within %d s",
             ifname, timeout_ms / 1000);
    return -1;
}
