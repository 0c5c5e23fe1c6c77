/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * flowtap's TCP health programs, beside the TC pair: per flow, the smoothed RTT of its socket,
 * its retransmitted segments and its dropped packets with the kernel's reason. They write
 * struct flow_health entries (bpf/flow_record.h) into the health map of bpf/datapath.h, which
 * user space drains with the flow map and joins into each flow's row after accounting.
 *
 * What it hooks (each feature is its own loaded copy of this object with one program; user space
 * picks the first hook of a feature's list that loads and attaches, src/ebpf/health-hooks.ts):
 *   RTT      fentry/tcp_rcv_established, else tp_btf/tcp_probe, else raw_tp/tcp_probe (the
 *            tcp_probe tracepoint fires at the start of tcp_rcv_established with the same
 *            (sk, skb), so all three see the same srtt); a sample is tcp_sock->srtt_us >> 3.
 *   retrans  tp_btf/tcp_retransmit_skb, else raw_tp/tcp_retransmit_skb: tcp_skb_pcount segments
 *            and skb->len payload bytes of each retransmission the stack handed to IP, sent or
 *            then dropped on the way out, as the socket's own total_retrans and bytes_retrans
 *            count them; not one it gave up before (err EBUSY, EAGAIN, ENOMEM, EINVAL,
 *            EHOSTUNREACH: see counted_retransmit). Kernels that pass err to the tracepoint (6.18 does)
 *            fire it for every attempt; the *_v1 programs are for earlier ones, whose tracepoint
 *            fires only for a retransmission sent (untested here: this kernel passes err).
 *   drops    tp_btf/kfree_skb, else raw_tp/kfree_skb (Linux 5.17+, which pass the reason):
 *            every drop but SKB_CONSUMED / SKB_NOT_DROPPED_YET, with the reason, the TCP flags
 *            of the packet and the TCP state of skb->sk.
 * The tp_btf and fentry programs read kernel structs directly (BTF-typed pointers); the raw_tp
 * ones through bpf_probe_read_kernel, for kernels that refuse the typed hooks.
 *
 * Cost: the RTT program runs on every TCP segment a socket receives in ESTABLISHED state. With
 * the typed hooks it keeps, in the socket's own storage (flowtap_rtt_seen), the srtt and time of
 * its last sample, and takes a new one only when the srtt changed or RTT_RESAMPLE_NS passed: a
 * segment that changes nothing (most segments of a bulk receiver) costs a socket-storage lookup
 * and a compare. A sample costs a few loads and one hash lookup (an insert for the first sample
 * of a flow in a drain period). Raw tracepoints have no socket storage: there every segment is
 * a sample. A retransmission or a drop costs about a sample; they are rare unless something is
 * wrong, so a drop flood is the worst case (bench/health.bench.ts).
 *
 * How events find their flow: by the struct flow_key the TC programs build for the packet
 * (docs/flow-key.md, "Health"): for a socket event the 4-tuple as the packet path sees it (an
 * RTT sample: the received segment, remote -> local, ingress; a retransmission: local -> remote,
 * egress); for a drop, the dropped packet's own headers. With DEDUPER=firstCome the MACs,
 * interface and direction are zero, as in the TC lookup key; with DEDUPER=none the interface and
 * direction are set (received segments: skb_iif; sent ones: the route's device; drops: skb->dev)
 * and the MACs stay zero: user space matches IP flows without their MACs. An event that matches
 * no TC flow still becomes its own record (src/account/health-join.ts).
 *
 * When the map is full: the event is lost and counted in COUNTER_HEALTH_MAP_FULL; the flow's
 * packets are counted by the TC programs as always.
 *
 * Build: scripts/build-bpf.sh (npm run build:bpf). The compiled object is committed. Kernel
 * structs are declared below with only the fields read, and relocated against the running
 * kernel's BTF by libbpf (CO-RE), so the object does not depend on one kernel's headers.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "datapath.h"

/* Set by user space before load (the object's .rodata); keep in step with src/ebpf/health-object.ts. */
struct flowtap_health_config {
    __u32 dedup; /* 1: keys without MACs, interface and direction (DEDUPER=firstCome) */
};

volatile const struct flowtap_health_config flowtap_health_config = {.dedup = 1};

#define AF_INET_ 2
#define AF_INET6_ 10
#define SKB_CONSUMED_ 1 /* enum skb_drop_reason: 0 SKB_NOT_DROPPED_YET, 1 SKB_CONSUMED */
#define HEADER_UNSET 0xffff /* skb->mac_header / network_header not set */
#define IPPROTO_HOPOPTS_ 0
#define IPPROTO_ROUTING_ 43
#define IPPROTO_FRAGMENT_ 44
#define IPPROTO_AH_ 51
#define IPPROTO_DSTOPTS_ 60
#define IPPROTO_ICMPV6_ 58
#define IPPROTO_SCTP_ 132
#define MAX_IPV6_EXT_HEADERS 8
#define NS_PER_US 1000
/* A socket whose srtt stays the same is sampled again after this long (10 ms). */
#define RTT_RESAMPLE_NS 10000000ULL

/* The kernel structs read, with only those fields (CO-RE finds them in the running kernel). */
struct sock_common {
    __be32 skc_daddr;
    __be32 skc_rcv_saddr;
    __be16 skc_dport;
    __u16 skc_num;
    unsigned short skc_family;
    volatile unsigned char skc_state;
    struct in6_addr skc_v6_daddr;
    struct in6_addr skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct net_device {
    int ifindex;
} __attribute__((preserve_access_index));

struct dst_entry {
    struct net_device *dev;
} __attribute__((preserve_access_index));

struct sock {
    struct sock_common __sk_common;
    struct dst_entry *sk_dst_cache;
} __attribute__((preserve_access_index));

struct tcp_sock {
    __u32 srtt_us;
} __attribute__((preserve_access_index));

struct sk_buff {
    struct net_device *dev;
    struct sock *sk;
    char cb[48];
    unsigned int len;
    unsigned int data_len;
    int skb_iif;
    __u32 vlan_all;
    __u16 vlan_tci;
    __be16 protocol;
    __u16 network_header;
    __u16 mac_header;
    unsigned char *head;
    unsigned char *data;
} __attribute__((preserve_access_index));

struct tcp_skb_cb {
    __u16 tcp_gso_segs;
} __attribute__((preserve_access_index));

/* The last sample taken of a socket: its srtt and when (the typed hooks only). */
struct rtt_seen {
    __u64 sampled_ns;
    __u32 srtt_us;
    __u32 pad;
};

struct {
    __uint(type, BPF_MAP_TYPE_SK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, struct rtt_seen);
} flowtap_rtt_seen SEC(".maps");

/*
 * READ(typed, dst, src): `dst = src` for the BTF-typed hooks (fentry, tp_btf), where the
 * verifier lets a program load kernel fields directly; a bpf_probe_read_kernel of `src` for
 * raw tracepoints. `typed` is a constant in every caller, so only one form is compiled in.
 */
#define READ(typed, dst, src)                                          \
    do {                                                               \
        if (typed)                                                     \
            (dst) = (typeof(dst))(src);                                \
        else                                                           \
            bpf_probe_read_kernel(&(dst), sizeof(dst), (const void *)&(src)); \
    } while (0)

static __always_inline void map_ipv4(__u8 *addr, __be32 v4)
{
    addr[10] = 0xff;
    addr[11] = 0xff;
    __builtin_memcpy(&addr[12], &v4, 4);
}

/* Whether a 16-byte address is IPv4-mapped (::ffff:a.b.c.d): the socket then sends IPv4. */
static __always_inline int is_ipv4_mapped(const __u8 *addr)
{
    const __u32 *w = (const __u32 *)addr;

    return w[0] == 0 && w[1] == 0 && w[2] == bpf_htonl(0xffff);
}

/*
 * The key of a TCP segment of socket `sk` as the packet path sees it: received (remote ->
 * local, ingress) or sent (local -> remote, egress). -1 for a family other than IPv4/IPv6.
 * The interface is left to the caller (0 in dedup mode).
 */
static __always_inline int socket_key(struct flow_key *key, struct sock *sk, __u8 direction, int typed)
{
    unsigned short family;
    __u8 *remote = direction == DIRECTION_INGRESS ? key->src_addr : key->dst_addr;
    __u8 *local = direction == DIRECTION_INGRESS ? key->dst_addr : key->src_addr;
    __be16 remote_port;
    __u16 local_port;

    __builtin_memset(key, 0, sizeof(*key));
    READ(typed, family, sk->__sk_common.skc_family);
    if (family == AF_INET_) {
        __be32 daddr, saddr;

        READ(typed, daddr, sk->__sk_common.skc_daddr);
        READ(typed, saddr, sk->__sk_common.skc_rcv_saddr);
        map_ipv4(remote, daddr);
        map_ipv4(local, saddr);
        key->eth_protocol = ETH_P_IP;
    } else if (family == AF_INET6_) {
        /* 16 bytes each, read as a whole: the same in every form */
        bpf_probe_read_kernel(remote, FLOWTAP_IP_LEN, &sk->__sk_common.skc_v6_daddr);
        bpf_probe_read_kernel(local, FLOWTAP_IP_LEN, &sk->__sk_common.skc_v6_rcv_saddr);
        /* an IPv6 socket talking to an IPv4 peer sends IPv4 packets, keyed IPv4-mapped */
        key->eth_protocol = is_ipv4_mapped(remote) ? ETH_P_IP : ETH_P_IPV6;
    } else {
        return -1;
    }
    READ(typed, remote_port, sk->__sk_common.skc_dport);
    READ(typed, local_port, sk->__sk_common.skc_num);
    key->transport_protocol = IPPROTO_TCP;
    key->src_port = direction == DIRECTION_INGRESS ? bpf_ntohs(remote_port) : local_port;
    key->dst_port = direction == DIRECTION_INGRESS ? local_port : bpf_ntohs(remote_port);
    key->direction = flowtap_health_config.dedup ? 0 : direction;
    return 0;
}

/* One smoothed-RTT sample of the socket receiving segment `skb`. */
static __always_inline int sample_rtt(struct sock *sk, const struct sk_buff *skb, int typed)
{
    struct flow_key key;
    struct flow_health *h;
    __u32 srtt_us;
    __u64 rtt_ns;

    if (typed) {
        /* the typed pointer is a struct sock: the helper checks it is a TCP socket's */
        struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
        struct rtt_seen *seen;
        __u64 now;

        if (!tp)
            return 0;
        srtt_us = tp->srtt_us;
        if (srtt_us == 0)
            return 0; /* no RTT measured on this socket yet */
        seen = bpf_sk_storage_get(&flowtap_rtt_seen, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
        if (seen) {
            now = bpf_ktime_get_ns();
            if (seen->srtt_us == srtt_us && now - seen->sampled_ns < RTT_RESAMPLE_NS)
                return 0; /* nothing new since the last sample */
            seen->srtt_us = srtt_us;
            seen->sampled_ns = now;
        }
    } else {
        bpf_probe_read_kernel(&srtt_us, sizeof(srtt_us), &((struct tcp_sock *)sk)->srtt_us);
    }
    if (srtt_us == 0)
        return 0; /* no RTT measured on this socket yet */
    if (socket_key(&key, sk, DIRECTION_INGRESS, typed) < 0)
        return 0;
    if (!flowtap_health_config.dedup) {
        int iif;

        READ(typed, iif, skb->skb_iif);
        key.if_index = iif;
    }
    h = health_entry(&key);
    if (!h)
        return 0;
    rtt_ns = (__u64)(srtt_us >> 3) * NS_PER_US;
    /* One socket's segments are processed under its lock: samples of a flow do not race. */
    if (!(h->health_flags & FLOWTAP_HEALTH_RTT)) {
        h->rtt_min_ns = rtt_ns;
        h->rtt_max_ns = rtt_ns;
        set_health_flags(h, FLOWTAP_HEALTH_RTT);
    } else {
        if (rtt_ns < h->rtt_min_ns)
            h->rtt_min_ns = rtt_ns;
        if (rtt_ns > h->rtt_max_ns)
            h->rtt_max_ns = rtt_ns;
    }
    h->rtt_last_ns = rtt_ns;
    h->rtt_samples += 1;
    return 0;
}

#define EBUSY_ 16
#define EAGAIN_ 11
#define ENOMEM_ 12
#define EINVAL_ 22
#define EHOSTUNREACH_ 113

/*
 * Whether a retransmission that ended with `err` is in the socket's total_retrans: the kernel
 * counts it once it hands the segment to IP (__tcp_retransmit_skb), whatever the transmit then
 * returns (a local drop: -EPERM, -ENOBUFS, NET_XMIT_DROP); these errors end it before that.
 */
static __always_inline int counted_retransmit(int err)
{
    return err != -EBUSY_ && err != -EAGAIN_ && err != -ENOMEM_ && err != -EINVAL_ && err != -EHOSTUNREACH_;
}

/* A retransmission of `skb` by socket `sk`, counted as the socket counts it. */
static __always_inline int count_retransmit(struct sock *sk, const struct sk_buff *skb, int typed)
{
    struct tcp_skb_cb *cb = (struct tcp_skb_cb *)&skb->cb[0];
    struct flow_key key;
    struct flow_health *h;
    unsigned int len;
    __u16 segs;

    if (socket_key(&key, sk, DIRECTION_EGRESS, typed) < 0)
        return 0;
    if (!flowtap_health_config.dedup) {
        struct dst_entry *dst;
        struct net_device *dev = NULL;
        int ifindex = 0;

        READ(typed, dst, sk->sk_dst_cache);
        if (dst)
            READ(typed, dev, dst->dev);
        if (dev)
            READ(typed, ifindex, dev->ifindex);
        key.if_index = ifindex;
    }
    READ(typed, len, skb->len);
    READ(typed, segs, cb->tcp_gso_segs);
    if (segs == 0)
        segs = 1; /* tcp_skb_pcount of a segment never split */
    h = health_entry(&key);
    if (!h)
        return 0;
    __sync_fetch_and_add(&h->retrans_packets, segs);
    __sync_fetch_and_add(&h->retrans_bytes, len);
    return 0;
}

/* What the key of a dropped packet needs from its transport header, read at `l4`. */
static __always_inline int read_transport(struct flow_key *key, const void *l4, __u32 room, __u16 *tcp_flags)
{
    __u8 h[14];

    switch (key->transport_protocol) {
    case IPPROTO_TCP:
        if (room < 14 || bpf_probe_read_kernel(h, 14, l4) < 0 || (h[12] >> 4) < 5)
            return -1;
        *tcp_flags = ((__u16)(h[12] & 1) << 8) | h[13];
        break;
    case IPPROTO_UDP:
        if (room < 8 || bpf_probe_read_kernel(h, 8, l4) < 0)
            return -1;
        break;
    case IPPROTO_SCTP_:
        if (room < 12 || bpf_probe_read_kernel(h, 12, l4) < 0)
            return -1;
        break;
    case IPPROTO_ICMP:
    case IPPROTO_ICMPV6_:
        if (room < 4 || bpf_probe_read_kernel(h, 4, l4) < 0)
            return -1;
        key->icmp_type = h[0];
        key->icmp_code = h[1];
        return 0;
    default:
        return 0;
    }
    key->src_port = ((__u16)h[0] << 8) | h[1];
    key->dst_port = ((__u16)h[2] << 8) | h[3];
    return 0;
}

/*
 * The key of the packet at network header `nh` (`room` bytes of it in the skb's linear data),
 * parsed as the TC programs parse it (docs/flow-key.md, steps 3 to 5); -1 when it cannot be.
 */
static __always_inline int packet_key(struct flow_key *key, __u16 eth_proto, const __u8 *nh, __u32 room,
                                      __u16 *tcp_flags)
{
    __u32 off;

    if (eth_proto == ETH_P_IP) {
        struct iphdr ip;

        if (room < sizeof(ip) || bpf_probe_read_kernel(&ip, sizeof(ip), nh) < 0)
            return -1;
        if (ip.version != 4 || ip.ihl < 5)
            return -1;
        key->eth_protocol = ETH_P_IP;
        key->transport_protocol = ip.protocol;
        map_ipv4(key->src_addr, ip.saddr);
        map_ipv4(key->dst_addr, ip.daddr);
        if ((ip.frag_off & bpf_htons(0x1fff)) != 0)
            return 0; /* a later fragment: no transport header */
        off = ip.ihl * 4;
    } else {
        struct ipv6hdr ip;
        __u8 ext[4];
        __u8 next;

        if (room < sizeof(ip) || bpf_probe_read_kernel(&ip, sizeof(ip), nh) < 0)
            return -1;
        if (ip.version != 6)
            return -1;
        key->eth_protocol = ETH_P_IPV6;
        __builtin_memcpy(key->src_addr, &ip.saddr, FLOWTAP_IP_LEN);
        __builtin_memcpy(key->dst_addr, &ip.daddr, FLOWTAP_IP_LEN);
        next = ip.nexthdr;
        off = sizeof(ip);
#pragma unroll
        for (int i = 0; i < MAX_IPV6_EXT_HEADERS; i++) {
            if (next != IPPROTO_HOPOPTS_ && next != IPPROTO_ROUTING_ && next != IPPROTO_DSTOPTS_ &&
                next != IPPROTO_FRAGMENT_ && next != IPPROTO_AH_)
                break;
            if (off + 4 > room || bpf_probe_read_kernel(ext, 4, nh + (off & 0xffff)) < 0)
                return -1;
            if (next == IPPROTO_FRAGMENT_) {
                next = ext[0];
                if (((((__u16)ext[2] << 8) | ext[3]) & 0xfff8) != 0) {
                    key->transport_protocol = next;
                    return 0; /* a later fragment: no transport header */
                }
                off += 8;
            } else if (next == IPPROTO_AH_) {
                next = ext[0];
                off += ((__u32)ext[1] + 2) * 4;
            } else {
                next = ext[0];
                off += ((__u32)ext[1] + 1) * 8;
            }
        }
        key->transport_protocol = next;
    }
    if (off > room)
        return -1;
    return read_transport(key, nh + (off & 0xffff), room - off, tcp_flags);
}

/* A packet the kernel dropped for `reason` (enum skb_drop_reason). */
static __always_inline int count_drop(struct sk_buff *skb, __u32 reason, int typed)
{
    struct flow_key key = {};
    struct flow_health *h;
    struct sock *sk;
    __u64 head, data;
    unsigned int len, data_len;
    __u16 network_header, mac_header, tcp_flags = 0;
    __be16 protocol;
    __u32 data_off, start, linear_end;
    __u64 bytes;
    __u8 state = 0;

    if (reason <= SKB_CONSUMED_)
        return 0;
    READ(typed, protocol, skb->protocol);
    READ(typed, head, skb->head);
    READ(typed, data, skb->data);
    READ(typed, len, skb->len);
    READ(typed, data_len, skb->data_len);
    READ(typed, network_header, skb->network_header);
    READ(typed, mac_header, skb->mac_header);
    data_off = data - head;
    linear_end = data_off + len - data_len;
    if ((protocol != bpf_htons(ETH_P_IP) && protocol != bpf_htons(ETH_P_IPV6)) ||
        network_header == HEADER_UNSET || network_header >= linear_end ||
        packet_key(&key, bpf_ntohs(protocol), (const __u8 *)(head + network_header), linear_end - network_header,
                   &tcp_flags) < 0) {
        count(COUNTER_HEALTH_UNKEYED);
        return 0;
    }
    if (bpf_core_field_exists(skb->vlan_all)) {
        __u32 vlan_all;

        READ(typed, vlan_all, skb->vlan_all);
        if (vlan_all != 0) {
            __u16 tci;

            READ(typed, tci, skb->vlan_tci);
            key.vlan_outer = tci & 0x0fff;
        }
    }
    if (!flowtap_health_config.dedup) {
        struct net_device *dev;
        int ifindex = 0, iif;

        READ(typed, dev, skb->dev);
        if (dev)
            READ(typed, ifindex, dev->ifindex);
        READ(typed, iif, skb->skb_iif);
        key.if_index = ifindex;
        key.direction = ifindex != 0 && iif == ifindex ? DIRECTION_INGRESS : DIRECTION_EGRESS;
    }
    /* The frame's length as TC counts it: from the link-layer header while the packet has one. */
    start = data_off;
    if (mac_header != HEADER_UNSET && mac_header <= data_off)
        start = mac_header;
    else if (network_header <= data_off)
        start = network_header;
    bytes = (__u64)len + data_off - start;
    if (key.transport_protocol == IPPROTO_TCP) {
        READ(typed, sk, skb->sk);
        if (sk)
            READ(typed, state, sk->__sk_common.skc_state);
    }
    h = health_entry(&key);
    if (!h)
        return 0;
    __sync_fetch_and_add(&h->drop_packets, 1);
    __sync_fetch_and_add(&h->drop_bytes, bytes);
    /* The latest drop: two CPUs dropping at once each store a whole latest drop, or nearly. */
    h->drop_latest_ns = bpf_ktime_get_ns();
    h->drop_latest_cause = reason;
    h->drop_latest_flags = tcp_flags;
    h->drop_latest_state = state;
    return 0;
}

SEC("fentry/tcp_rcv_established")
int BPF_PROG(flowtap_rtt_fentry, struct sock *sk, struct sk_buff *skb)
{
    return sample_rtt(sk, skb, 1);
}

SEC("tp_btf/tcp_probe")
int BPF_PROG(flowtap_rtt_tp, struct sock *sk, struct sk_buff *skb)
{
    return sample_rtt(sk, skb, 1);
}

SEC("raw_tp/tcp_probe")
int BPF_PROG(flowtap_rtt_raw, struct sock *sk, struct sk_buff *skb)
{
    return sample_rtt(sk, skb, 0);
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(flowtap_retrans_tp, struct sock *sk, struct sk_buff *skb, int err)
{
    return counted_retransmit(err) ? count_retransmit(sk, skb, 1) : 0;
}

SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(flowtap_retrans_tp_v1, struct sock *sk, struct sk_buff *skb)
{
    return count_retransmit(sk, skb, 1);
}

SEC("raw_tp/tcp_retransmit_skb")
int BPF_PROG(flowtap_retrans_raw, struct sock *sk, struct sk_buff *skb, int err)
{
    return counted_retransmit(err) ? count_retransmit(sk, skb, 0) : 0;
}

SEC("raw_tp/tcp_retransmit_skb")
int BPF_PROG(flowtap_retrans_raw_v1, struct sock *sk, struct sk_buff *skb)
{
    return count_retransmit(sk, skb, 0);
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(flowtap_drop_tp, struct sk_buff *skb, void *location, int reason)
{
    return count_drop(skb, (__u32)reason, 1);
}

SEC("raw_tp/kfree_skb")
int BPF_PROG(flowtap_drop_raw, struct sk_buff *skb, void *location, int reason)
{
    return count_drop(skb, (__u32)reason, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
