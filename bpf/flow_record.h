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
/* Interfaces a flow's record lists as crossed (struct flow_metrics.crossed_*). */
#define FLOWTAP_MAX_CROSSED 6

/* struct flow_metrics.tunnel_type: the encapsulation the key's (inner) packet arrived in. */
#define FLOWTAP_TUNNEL_NONE 0
#define FLOWTAP_TUNNEL_VXLAN 1
#define FLOWTAP_TUNNEL_GENEVE 2
#define FLOWTAP_TUNNEL_GRE 3     /* GRE and GRETAP */
#define FLOWTAP_TUNNEL_IPIP 4    /* IPv4 or IPv6 inside IPv4 or IPv6; the family is the addresses' */

/* struct flow_health.health_flags: which parts of the health section were measured */
#define FLOWTAP_HEALTH_RTT 1        /* rtt_* hold smoothed-RTT samples of the flow's socket */
#define FLOWTAP_HEALTH_HANDSHAKE 2  /* handshake_rtt_ns holds a SYN -> SYN-ACK or SYN-ACK -> ACK time */

/* struct flow_user.record_flags */
#define FLOWTAP_RECORD_BIFLOW 1  /* a bidirectional record: the rev_* fields are meaningful */

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
    __u16 vlan_outer;                 /* 58: VLAN id (12 bits) of the outer 802.1Q/802.1ad tag in the frame, 0 when none */
    __u16 vlan_inner;                 /* 60: VLAN id of the inner tag, 0 when none */
    __u8 key_pad[2];                  /* 62: zero */
} __attribute__((aligned(8)));

/* What is counted for a flow: the hash-map value in the kernel (120 bytes). */
struct flow_metrics {
    __u64 bytes;                      /* 64 (in a record): sum of frame lengths (skb->len) */
    __u64 packets;                    /* 72 */
    __u64 first_seen_ns;              /* 80: kernel: CLOCK_MONOTONIC; user space: Unix epoch */
    __u64 last_seen_ns;               /* 88 */
    __u16 tcp_flags;                  /* 96: OR of every packet's TCP flags (9 bits incl. NS) */
    __u8 dscp;                        /* 98: DSCP of the last packet (6 bits) */
    __u8 tunnel_type;                 /* 99: FLOWTAP_TUNNEL_*, of the latest packet that had one */
    __u32 tunnel_id;                  /* 100: VXLAN/Geneve VNI or GRE key, 0 when none */
    __u8 tunnel_src[FLOWTAP_IP_LEN];  /* 104: outer source address, IPv4-mapped; zero without tunnel */
    __u8 tunnel_dst[FLOWTAP_IP_LEN];  /* 120 */
    __u32 crossed_if_index[FLOWTAP_MAX_CROSSED]; /* 136: interfaces crossed, first-seen order; [0] counts */
    __u8 crossed_direction[FLOWTAP_MAX_CROSSED]; /* 160: direction on each */
    __u8 crossed_count;               /* 166: entries used */
    __u8 metrics_pad0;                /* 167: zero */
    /*
     * 168, 174: in the kernel's dedup mode the map key's MACs, if_index and direction are zero;
     * these keep the MACs of the flow's first packet. The map drain moves them (and crossed[0])
     * into the key and zeroes them: in user space they are always zero.
     */
    __u8 dedup_src_mac[FLOWTAP_MAC_LEN];
    __u8 dedup_dst_mac[FLOWTAP_MAC_LEN];
    __u8 metrics_pad[4];              /* 180: zero */
} __attribute__((aligned(8)));

/* Written in user space only, after the kernel (56 bytes); zero in every kernel event. */
struct flow_user {
    __u8 agent_ip[FLOWTAP_IP_LEN];    /* 184: address of the agent that observed the flow, IPv4-mapped */
    __u64 rev_bytes;                  /* 200: bidirectional records (RFC 5103): the reverse direction's */
    __u64 rev_packets;                /* 208 */
    __u64 rev_first_seen_ns;          /* 216: Unix epoch */
    __u64 rev_last_seen_ns;           /* 224 */
    __u16 rev_tcp_flags;              /* 232 */
    __u8 rev_dscp;                    /* 234 */
    __u8 record_flags;                /* 235: FLOWTAP_RECORD_* */
    __u8 user_pad[4];                 /* 236: zero */
} __attribute__((aligned(8)));

/*
 * TCP health of a flow (88 bytes): written by the health programs into their own kernel map
 * (keyed by struct flow_key, so the TC map value does not grow) and by `read` from a capture;
 * joined into the row after accounting. Zero when nothing was measured.
 */
struct flow_health {
    __u64 rtt_min_ns;                 /* 240: smallest smoothed RTT (tcp_sock srtt) sampled */
    __u64 rtt_max_ns;                 /* 248: largest */
    __u64 rtt_last_ns;                /* 256: latest */
    __u64 handshake_rtt_ns;           /* 264: SYN -> SYN-ACK (client) or SYN-ACK -> ACK (server) */
    __u64 drop_bytes;                 /* 272: bytes of the flow's packets the kernel dropped */
    __u64 drop_packets;               /* 280 */
    __u64 retrans_bytes;              /* 288: bytes of retransmitted TCP segments */
    __u64 retrans_packets;            /* 296: retransmitted TCP segments */
    __u64 drop_latest_ns;             /* 304: time of the latest drop, the clock of first_seen_ns */
    __u32 drop_latest_cause;          /* 312: enum skb_drop_reason of the latest drop */
    __u16 drop_latest_flags;          /* 316: TCP flags of the latest dropped packet */
    __u8 drop_latest_state;           /* 318: TCP state of its socket (TCP_ESTABLISHED = 1 ...), 0 unknown */
    __u8 health_flags;                /* 319: FLOWTAP_HEALTH_* */
    __u32 rtt_samples;                /* 320: RTT samples taken */
    __u8 health_pad[4];               /* 324: zero */
} __attribute__((aligned(8)));

/* What the kernel hands out: a ring-buffer fallback event, a map entry drained (184 bytes). */
struct flow_event {
    struct flow_key key;
    struct flow_metrics metrics;
};

/* One flow as a user-space batch row (328 bytes): the kernel's event, the user section, health. */
struct flow_record {
    struct flow_key key;
    struct flow_metrics metrics;
    struct flow_user user;
    struct flow_health health;
};

#endif /* FLOWTAP_FLOW_RECORD_H */
