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

/* struct flow_dns.dns_record_flags: which parts of the DNS section hold a value */
#define FLOWTAP_DNS_HEADER 1          /* dns_id, dns_flags: the header of the section's latest message */
#define FLOWTAP_DNS_NAME 2            /* dns_name: that message's first question name (root: length 0) */
#define FLOWTAP_DNS_NAME_TRUNCATED 4  /* the name was longer than FLOWTAP_DNS_NAME_MAX: its start is kept */
#define FLOWTAP_DNS_LATENCY 8         /* dns_latency_ns: a query answered, response time - query time */

/* Bytes of a question name a DNS section keeps (dotted text, lower-cased). */
#define FLOWTAP_DNS_NAME_MAX 64
/* Queries awaiting their response at most (the pending-query map); the oldest beyond is unanswered. */
#define FLOWTAP_DNS_PENDING_MAX 4096

/* struct flow_dns.dns_errno: netobserv's dns_errno values */
#define FLOWTAP_DNS_ENOENT 2   /* a response that matched no pending query */
#define FLOWTAP_DNS_EFAULT 14  /* the DNS header ends past the packet (bpf_skb_load_bytes' error) */
#define FLOWTAP_DNS_EINVAL 22  /* a malformed message: bad counts, label, pointer or name */

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

/*
 * DNS of a flow (104 bytes): what the flow's DNS messages said, filled by the TC programs into a
 * map of their own keyed by struct flow_key (as the health map is: the TC map value does not
 * grow) and by `read` from a capture (src/capture/dns/); joined into the row after accounting.
 * Zero when the flow carried no DNS. How the kernel fills it (the offline tracker,
 * src/capture/dns/dns-tracker.ts, is the specification; test/vectors/dns.ts the vectors):
 *
 * - A UDP or TCP packet with a DNS_TRACKING_PORT as source or destination port is DNS: the message
 *   starts after the UDP header, or after the TCP header and the 2-byte length prefix. It is parsed
 *   as src/capture/dns/dns-parser.ts does (header, counts, first question name with compression
 *   pointers strictly backwards, so at most 12 of them, lower-cased, the first
 *   FLOWTAP_DNS_NAME_MAX bytes kept). A malformed one adds 1 to dns_malformed and sets
 *   dns_errno (FLOWTAP_DNS_EFAULT or FLOWTAP_DNS_EINVAL), plus a per-reason counter.
 * - A query (QR 0) adds 1 to dns_queries of its flow's section, writes its id, flags and name
 *   (FLOWTAP_DNS_HEADER, _NAME) and dns_latest_ns, and inserts struct flow_dns_pending under
 *   struct flow_dns_query_key (id, the query's addresses and ports) unless one is there (a
 *   retransmission keeps the first query's time). A full pending map counts the insert as lost.
 * - A response (QR 1) looks its query up under the reversed key. Found: the entry is deleted, and
 *   the response's flow section gets dns_answers + 1, dns_latency_ns = now - query_ns
 *   (FLOWTAP_DNS_LATENCY), the response's id, flags and name, dns_latest_ns. Not found: id, flags
 *   and name are written with dns_errno = FLOWTAP_DNS_ENOENT (netobserv's behaviour).
 * - User space expires pending entries older than the DNS query timeout (and, the map being full,
 *   the oldest): each adds 1 to dns_unanswered of the entry's query flow, carried by a row of that
 *   flow with 0 packets, so a query never answered is counted on its flow and no entry stays.
 * Two sections of one flow (per-CPU values, a biflow's two directions) merge by
 * mergeFlowDns (src/codec/merge-rule.ts).
 */
struct flow_dns {
    __u64 dns_latency_ns;             /* 328: latency of the latest answered query (FLOWTAP_DNS_LATENCY) */
    __u64 dns_latest_ns;              /* 336: time of the latest message recorded here, the clock of first_seen_ns */
    __u32 dns_queries;                /* 344: queries seen on this flow */
    __u32 dns_answers;                /* 348: responses on this flow that matched a pending query */
    __u32 dns_unanswered;             /* 352: queries of this flow that got no response in time */
    __u32 dns_malformed;              /* 356: DNS messages on this flow that did not parse */
    __u16 dns_id;                     /* 360: id of the latest message (FLOWTAP_DNS_HEADER) */
    __u16 dns_flags;                  /* 362: its flags word: QR, opcode, AA, TC, RD, RA, Z, AD, CD, rcode (low 4 bits) */
    __u8 dns_name_len;                /* 364: bytes used of dns_name */
    __u8 dns_errno;                   /* 365: FLOWTAP_DNS_E*, netobserv's dns_errno; 0 none */
    __u8 dns_record_flags;            /* 366: FLOWTAP_DNS_* */
    __u8 dns_pad;                     /* 367: zero */
    __u8 dns_name[FLOWTAP_DNS_NAME_MAX]; /* 368: first question name: dotted, lower-cased, no final dot */
} __attribute__((aligned(8)));

/* Key of a query awaiting its response (the kernel's pending-query map; 40 bytes). */
struct flow_dns_query_key {
    __u8 src_addr[FLOWTAP_IP_LEN];    /* the query's source (the client), IPv4-mapped */
    __u8 dst_addr[FLOWTAP_IP_LEN];    /* its destination (the server) */
    __u16 src_port;                   /* host order */
    __u16 dst_port;
    __u16 dns_id;
    __u8 transport_protocol;          /* 6 TCP, 17 UDP */
    __u8 key_pad;                     /* zero */
};

/* Value of a pending query (176 bytes): when it was seen, its flow, and that flow's section as the query left it. */
struct flow_dns_pending {
    __u64 query_ns;                   /* the clock of first_seen_ns */
    struct flow_key flow;             /* the query's flow: an unanswered query is counted on it */
    struct flow_dns query;            /* id, flags and name of the query (counts zero) */
};

/* What the kernel hands out: a ring-buffer fallback event, a map entry drained (184 bytes). */
struct flow_event {
    struct flow_key key;
    struct flow_metrics metrics;
};

/* One flow as a user-space batch row (432 bytes): the kernel's event, the user section, health, DNS. */
struct flow_record {
    struct flow_key key;
    struct flow_metrics metrics;
    struct flow_user user;
    struct flow_health health;
    struct flow_dns dns;
};

#endif /* FLOWTAP_FLOW_RECORD_H */
