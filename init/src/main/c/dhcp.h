/*
 * jkrun guest init: a DHCPv4 client (RFC 2131) for one interface — DISCOVER, OFFER, REQUEST, ACK — and the parser
 * of the server's replies. It speaks over an AF_PACKET socket (IP packets, the kernel adding the Ethernet header),
 * so it works before the interface has an address, and TSI (which takes AF_INET and AF_UNIX sockets) never sees it.
 */
#ifndef JKRUN_INIT_DHCP_H
#define JKRUN_INIT_DHCP_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#define DHCP_MAX_DNS 3

struct dhcp_lease {
    struct in_addr addr;
    int prefix;                 /* from option 1, 24 when the server sent none */
    struct in_addr router;      /* option 3's first address */
    int has_router;
    struct in_addr dns[DHCP_MAX_DNS];
    int n_dns;
    int mtu;                    /* option 26, 576..65535; 0 when the server sent none */
    struct in_addr server;      /* option 54 */
};

/* DHCP message types (option 53). */
enum { DHCP_DISCOVER = 1, DHCP_OFFER = 2, DHCP_REQUEST = 3, DHCP_ACK = 5, DHCP_NAK = 6 };

/* Whether a is an address a host may use: not 0/8, 127/8, multicast, class E or the broadcast address. */
int dhcp_unicast(struct in_addr a);

/*
 * Parses one received IPv4 packet pkt[0..n) as a DHCP reply to transaction xid for hardware address mac: returns its
 * message type and fills *out (yiaddr, mask, router, DNS, server id), or -1 when it is not one (any length, any
 * content: every field is bounds-checked). An OFFER or ACK must carry a unicast yiaddr; a mask of 0 is ignored
 * (prefix 24), and routers and resolvers that are not unicast addresses are left out.
 */
int dhcp_parse_reply(const uint8_t *pkt, size_t n, uint32_t xid, const uint8_t mac[6], struct dhcp_lease *out);

/*
 * Builds a BOOTREQUEST of type (DISCOVER or REQUEST; REQUEST names requested and server) as an IPv4/UDP packet from
 * 0.0.0.0:68 to 255.255.255.255:67 into buf (at least 600 bytes); returns its length.
 */
size_t dhcp_build_request(uint8_t *buf, int type, uint32_t xid, const uint8_t mac[6], struct in_addr requested,
                          struct in_addr server);

/*
 * Gets a lease on interface ifname (which must be up) within timeout_ms: 0 and *out, or -1 with why[] saying what
 * was missing ("no DHCP offer within 15 s", a socket error...).
 */
int dhcp_lease(const char *ifname, int timeout_ms, struct dhcp_lease *out, char *why, size_t why_len);

#endif
