/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flowtap record layout "v2": the one binary form of a flow shared by the kernel program, the
 * ring-buffer fallback, the map drain and every user-space batch. src/codec/v2.ts reads it and
 * test/codec/v2-header.test.ts proves the two agree byte for byte.
 *
 * All integers are little-endian host order (the machines flowtap runs on). Addresses are always
 * 16 bytes: IPv4 is stored IPv4-mapped (::ffff:a.b.c.d) so one key shape covers both families.
 * Every padding byte is zero, so a key can be hashed and compared as plain bytes.
 */
#ifndef FLOWTAP_FLOW_RECORD_H
#define FLOWTAP_FLOW_RECORD_H

#ifndef __u8
#include <linux/types.h>
#endif

#define FLOWTAP_MAC_LEN 6
#define FLOWTAP_IP_LEN 16

/* Identifies a flow: the hash-map key in the kernel (64 bytes). */
struct flow_key {
    __u16 eth_protocol;               /* 0: Ethernet type, e.g. 0x0800, 0x86DD */
    __u8 direction;                   /* 2: 0 ingress, 1 egress (IPFIX IE 61) */
    __u8 transport_protocol;          /* 3: IANA protocol number, 0 when not IP */
    __u8 src_mac[FLOWTAP_MAC_LEN];    /* 4: wire order */
    __u8 dst_mac[FLOWTAP_MAC_LEN];    /* 10 */
    __u8 src_addr[FLOWTAP_IP_LEN];    /* 16: network order; IPv4 as ::ffff:a.b.c.d */
    __u8 dst_addr[FLOWTAP_IP_LEN];    /* 32 */
    __u16 src_port;                   /* 48: host order; 0 for ICMP */
    __u16 dst_port;                   /* 50 */
    __u32 if_index;                   /* 52: interface index (pcap: interface id) */
    __u8 icmp_type;                   /* 56: ICMP/ICMPv6 type, 0 otherwise */
    __u8 icmp_code;                   /* 57 */
    __u8 key_pad[6];                  /* 58: zero */
} __attribute__((aligned(8)));

/* What is counted for a flow: the hash-map value in the kernel (40 bytes). */
struct flow_metrics {
    __u64 bytes;                      /* 64 (in a record): sum of frame lengths (skb->len) */
    __u64 packets;                    /* 72 */
    __u64 first_seen_ns;              /* 80: kernel: CLOCK_MONOTONIC; user space: Unix epoch */
    __u64 last_seen_ns;               /* 88 */
    __u16 tcp_flags;                  /* 96: OR of every packet's TCP flags (9 bits incl. NS) */
    __u8 dscp;                        /* 98: DSCP of the last packet (6 bits) */
    __u8 metrics_pad[5];              /* 99: zero */
} __attribute__((aligned(8)));

/* One flow as a record: a ring-buffer fallback event, a map entry drained, a batch row (104 bytes). */
struct flow_record {
    struct flow_key key;
    struct flow_metrics metrics;
};

#endif /* FLOWTAP_FLOW_RECORD_H */
