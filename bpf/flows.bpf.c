/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * flowtap's TC datapath: one program per direction counts every packet into a per-flow entry of
 * a kernel hash map (struct flow_key -> struct flow_metrics, bpf/flow_record.h). What a flow key
 * is, and what counts as a parse error, is specified in docs/flow-key.md; change both together.
 *
 * The flow hash map is reached through a one-slot array of maps so user space can swap in an
 * empty map and drain the old one: the swap waits for an RCU grace period, after which no
 * program still writes the old map, so a drain never races a counter update and nothing counted
 * is lost. When the map is full (or an update fails) the packet goes to user space as one
 * struct flow_event through the ring buffer instead.
 *
 * Build: scripts/build-bpf.sh (npm run build:bpf). The compiled object is committed.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "datapath.h"

/* Set by user space before load (the object's .rodata); keep in step with src/ebpf/object.ts. */
struct flowtap_config {
    __u32 sampling;      /* count 1 packet in `sampling` (1 = every packet) */
    __u32 shared_map;    /* 1: the flow map is one shared hash (atomic adds); 0: per-CPU hash */
    __u32 dedup;         /* 1: one entry per packet across interfaces (DEDUPER=firstCome) */
    __u32 tunnels;       /* 1: a tunnelled packet is keyed by the packet inside (ENABLE_TUNNELS) */
    __u32 cpus;          /* possible CPUs: the slots of a per-CPU entry */
    __u32 handshake;     /* 1: time TCP handshakes into the health map (ENABLE_RTT) */
    __u32 dns;           /* 1: track DNS messages into the DNS map (ENABLE_DNS_TRACKING; bpf/dns.h) */
    __u32 dns_ports[2048]; /* DNS_TRACKING_PORT: bit (port & 31) of word port >> 5 set */
};

volatile const struct flowtap_config flowtap_config = {
    .sampling = 1, .shared_map = 0, .dedup = 1, .tunnels = 0, .cpus = 1, .handshake = 0, .dns = 0};

/* One slot holding the flow hash map in use; user space creates and swaps the inner maps. */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
    __uint(max_entries, 1);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, sizeof(__u32));
} flowtap_flows SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 24); /* user space sets the size before load */
} flowtap_events SEC(".maps");

/*
 * Filter (pcap-filter expressions and FLOW_FILTER_RULES, compiled in user space by
 * src/filter/compile.ts; layouts mirrored in src/filter/program.ts).
 * What it hooks: nothing new; the TC programs run it after parsing a packet and before the
 * flow-map lookup, so a rejected packet costs its parse, a few tests and no map update.
 * Form: a decision program of at most FILTER_MAX_INSNS tests over the parsed flow key, the
 * packet's TCP flags and its outer VLAN id; each test jumps forward to another test or ends in a
 * verdict (reject, or accept with a per-rule 1-in-N sampling rate). A test of one prefix
 * compares the address with a prefix kept in the program; a test of a set of several prefixes
 * looks the address up in an LPM trie keyed by (set id, address). Cost per packet: two array
 * lookups plus one step per test met (a trie lookup for a set test).
 * Replacing it while running: user space writes the new program into the inactive slot of
 * flowtap_filter_programs (and its prefixes under that slot's set ids), then flips
 * flowtap_filter_active; a packet reads the slot once, so it sees one whole program.
 * When a map is full: user space refuses a program larger than the maps before writing anything.
 */
#define FILTER_MAX_INSNS 64 /* a power of two: the program counter is masked to it */
#define FILTER_MAX_SETS 64
#define FILTER_MAX_PREFIXES 512
#define FILTER_TARGET_ACCEPT 0x8000 /* jump targets from here: accept, low bits = sampling */
#define FILTER_TARGET_REJECT 0xffff
#define FILTER_NONE 0 /* no filter installed */
#define FILTER_ANY_VLAN 0xffffffff
#define NO_VLAN 0xffffffff

enum filter_op {
    FILTER_OP_ETHERTYPE = 1, /* key.eth_protocol == a */
    FILTER_OP_PROTO = 2,     /* key.transport_protocol == a */
    FILTER_OP_ADDR = 3,      /* address on side arg (0 src, 1 dst) in prefix set a */
    FILTER_OP_PORT = 4,      /* a <= port on side arg <= b */
    FILTER_OP_VLAN = 5,      /* tagged, and outer VLAN id == a unless a is FILTER_ANY_VLAN */
    FILTER_OP_ICMP_TYPE = 6, /* key.icmp_type == a */
    FILTER_OP_ICMP_CODE = 7, /* key.icmp_code == a */
    FILTER_OP_TCP_FLAGS = 8, /* (tcp_flags & a) == b */
    FILTER_OP_DIRECTION = 9, /* key.direction == a */
    FILTER_OP_PREFIX = 10,   /* address on side arg in inline prefix a: four masked compares */
};

struct filter_insn {
    __u8 op;
    __u8 arg;
    __u16 on_true;  /* next test, or a verdict (>= FILTER_TARGET_ACCEPT) */
    __u16 on_false;
    __u16 pad;
    __u32 a;
    __u32 b;
};

/* A set of one prefix, kept in the program: address and mask as network-order words. */
struct filter_prefix {
    __u32 addr[4];
    __u32 mask[4];
};

struct filter_program {
    __u32 insn_count;
    __u32 pad;
    struct filter_insn insns[FILTER_MAX_INSNS];
    struct filter_prefix prefixes[FILTER_MAX_INSNS];
};

struct filter_prefix_key {
    __u32 prefixlen; /* 8 (the set id) + prefix bits over the 16-byte address */
    __u8 set;        /* slot * FILTER_MAX_SETS + set index */
    __u8 addr[FLOWTAP_IP_LEN];
} __attribute__((packed));

/* Two slots: the program in use and the one user space writes next. */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, struct filter_program);
} flowtap_filter_programs SEC(".maps");

/* 0: no filter; 1 + slot: the program in that slot is in use. */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u32);
} flowtap_filter_active SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, 2 * FILTER_MAX_PREFIXES);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct filter_prefix_key);
    __type(value, __u8);
} flowtap_filter_prefixes SEC(".maps");

#define ETH_P_8021Q_ 0x8100
#define ETH_P_8021AD_ 0x88A8
#define ETH_P_TEB_ 0x6558 /* transparent Ethernet bridging: an Ethernet frame follows */
#define MAX_VLAN_TAGS 2
#define MAX_IPV6_EXT_HEADERS 8

#define IPPROTO_HOPOPTS_ 0
#define IPPROTO_IPIP_ 4
#define IPPROTO_ROUTING_ 43
#define IPPROTO_FRAGMENT_ 44
#define IPPROTO_IPV6_ 41
#define IPPROTO_GRE_ 47
#define IPPROTO_AH_ 51
#define IPPROTO_DSTOPTS_ 60
#define IPPROTO_ICMPV6_ 58
#define IPPROTO_SCTP_ 132

#define VXLAN_PORT 4789
#define GENEVE_PORT 6081
#define VXLAN_FLAG_VNI 0x08
#define GRE_FLAG_CSUM 0x80
#define GRE_FLAG_ROUTING 0x40
#define GRE_FLAG_KEY 0x20
#define GRE_FLAG_SEQ 0x10

/*
 * Where the network header of one layer (the packet, or a tunnel's inner packet) is, and what
 * parsing it left for the next step.
 */
struct layer {
    __u32 off;        /* network header; after parse_ip: the transport header */
    __u16 eth_proto;  /* Ethernet type of the network header */
    __u8 fragment;    /* the IP packet is a fragment (any: first, middle or last) */
    __u8 no_transport; /* a later fragment: no transport header to read */
};

/*
 * Reads up to two VLAN tags at `l->off` (after the Ethernet type `l->eth_proto`) into the key's
 * VLAN ids: the first tag is the outer one unless `offloaded` (the driver took the outer tag out
 * of the frame), in which case it is the inner. 0 when fine, -1 when a tag is truncated.
 */
static __always_inline int parse_vlans(struct __sk_buff *skb, struct layer *l, struct flow_key *key,
                                       int offloaded)
{
    __u8 vlan[4];

#pragma unroll
    for (int i = 0; i < MAX_VLAN_TAGS; i++) {
        __u16 id;

        if (l->eth_proto != ETH_P_8021Q_ && l->eth_proto != ETH_P_8021AD_)
            break;
        if (bpf_skb_load_bytes(skb, l->off, vlan, 4) < 0)
            return -1;
        id = (((__u16)vlan[0] << 8) | vlan[1]) & 0x0fff;
        if (i == 0 && !offloaded)
            key->vlan_outer = id;
        else if (key->vlan_inner == 0)
            key->vlan_inner = id;
        l->eth_proto = ((__u16)vlan[2] << 8) | vlan[3];
        l->off += 4;
    }
    return 0;
}

/* Reads the Ethernet header at `l->off` (MACs into the key) and its VLAN tags. */
static __always_inline int parse_ethernet(struct __sk_buff *skb, struct layer *l, struct flow_key *key,
                                          int offloaded)
{
    struct ethhdr eth;

    if (bpf_skb_load_bytes(skb, l->off, &eth, sizeof(eth)) < 0)
        return -1;
    __builtin_memcpy(key->src_mac, eth.h_source, ETH_ALEN);
    __builtin_memcpy(key->dst_mac, eth.h_dest, ETH_ALEN);
    l->eth_proto = bpf_ntohs(eth.h_proto);
    l->off += ETH_HLEN;
    return parse_vlans(skb, l, key, offloaded);
}

/* Reads the L4 ports / ICMP type and code at `off`; 0 when fine, -1 when truncated. */
static __always_inline int parse_transport(struct __sk_buff *skb, __u32 off, struct flow_key *key,
                                           __u16 *tcp_flags)
{
    __u8 l4[14];

    switch (key->transport_protocol) {
    case IPPROTO_TCP:
        /* ports (4), seq (4), ack (4), data offset + NS (1), flags (1) */
        if (bpf_skb_load_bytes(skb, off, l4, 14) < 0)
            return -1;
        if ((l4[12] >> 4) < 5)
            return -1;
        *tcp_flags = ((__u16)(l4[12] & 1) << 8) | l4[13];
        break;
    case IPPROTO_UDP:
        if (bpf_skb_load_bytes(skb, off, l4, 8) < 0)
            return -1;
        break;
    case IPPROTO_SCTP_:
        /* common header: ports (4), verification tag (4), checksum (4) */
        if (bpf_skb_load_bytes(skb, off, l4, 12) < 0)
            return -1;
        break;
    case IPPROTO_ICMP:
    case IPPROTO_ICMPV6_:
        /* type, code, checksum */
        if (bpf_skb_load_bytes(skb, off, l4, 4) < 0)
            return -1;
        key->icmp_type = l4[0];
        key->icmp_code = l4[1];
        return 0;
    default:
        return 0;
    }
    key->src_port = ((__u16)l4[0] << 8) | l4[1];
    key->dst_port = ((__u16)l4[2] << 8) | l4[3];
    return 0;
}

/* Fills the IPv4 part of the key and moves `l->off` to the transport header; -1 on a parse error. */
static __always_inline int parse_ipv4(struct __sk_buff *skb, struct layer *l, struct flow_key *key, __u8 *dscp)
{
    struct iphdr ip;

    if (bpf_skb_load_bytes(skb, l->off, &ip, sizeof(ip)) < 0)
        return -1;
    if (ip.version != 4 || ip.ihl < 5)
        return -1;
    key->transport_protocol = ip.protocol;
    *dscp = ip.tos >> 2;
    key->src_addr[10] = 0xff;
    key->src_addr[11] = 0xff;
    __builtin_memcpy(&key->src_addr[12], &ip.saddr, 4);
    key->dst_addr[10] = 0xff;
    key->dst_addr[11] = 0xff;
    __builtin_memcpy(&key->dst_addr[12], &ip.daddr, 4);
    /* more-fragments or an offset: a fragment; only the first carries the transport header */
    l->fragment = (ip.frag_off & bpf_htons(0x3fff)) != 0;
    l->no_transport = (ip.frag_off & bpf_htons(0x1fff)) != 0;
    l->off += ip.ihl * 4;
    return 0;
}

/*
 * Fills the IPv6 part of the key, skipping extension headers, and moves `l->off` to the
 * transport header; -1 on a parse error.
 */
static __always_inline int parse_ipv6(struct __sk_buff *skb, struct layer *l, struct flow_key *key, __u8 *dscp)
{
    struct ipv6hdr ip;
    __u32 off = l->off;
    __u8 ext[4];
    __u8 next;

    if (bpf_skb_load_bytes(skb, off, &ip, sizeof(ip)) < 0)
        return -1;
    if (ip.version != 6)
        return -1;
    *dscp = ((ip.priority << 4) | (ip.flow_lbl[0] >> 4)) >> 2;
    __builtin_memcpy(key->src_addr, &ip.saddr, 16);
    __builtin_memcpy(key->dst_addr, &ip.daddr, 16);
    next = ip.nexthdr;
    off += sizeof(ip);

#pragma unroll
    for (int i = 0; i < MAX_IPV6_EXT_HEADERS; i++) {
        if (next != IPPROTO_HOPOPTS_ && next != IPPROTO_ROUTING_ && next != IPPROTO_DSTOPTS_ &&
            next != IPPROTO_FRAGMENT_ && next != IPPROTO_AH_)
            break;
        /* next header (1), length (1), then for a fragment header the offset (2) */
        if (bpf_skb_load_bytes(skb, off, ext, 4) < 0)
            return -1;
        if (next == IPPROTO_FRAGMENT_) {
            next = ext[0];
            l->fragment = 1;
            /* A later fragment has no transport header: count it under the protocol, no ports. */
            if (((((__u16)ext[2] << 8) | ext[3]) & 0xfff8) != 0) {
                l->no_transport = 1;
                break;
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
    l->off = off;
    return 0;
}

/* Parses the IP header of layer `l` when it has one; other Ethernet types have no addresses. */
static __always_inline int parse_ip(struct __sk_buff *skb, struct layer *l, struct flow_key *key, __u8 *dscp)
{
    key->eth_protocol = l->eth_proto;
    if (l->eth_proto == ETH_P_IP)
        return parse_ipv4(skb, l, key, dscp);
    if (l->eth_proto == ETH_P_IPV6)
        return parse_ipv6(skb, l, key, dscp);
    l->no_transport = 1;
    return 0;
}

/* What follows a tunnel header: an Ethernet frame, or an IP packet of this Ethernet type. */
#define INNER_ETHERNET 0

/*
 * Whether the packet of layer `outer` (parsed up to its transport header) is a tunnel flowtap
 * opens (docs/flow-key.md, "Tunnels"): sets `inner` to the encapsulated packet, `*inner_type`
 * to INNER_ETHERNET or its Ethernet type, `*id` to the VNI or GRE key and returns the
 * FLOWTAP_TUNNEL_* type; FLOWTAP_TUNNEL_NONE when it is none; -1 when a header is truncated.
 */
static __always_inline int find_tunnel(struct __sk_buff *skb, const struct layer *outer, __u8 proto,
                                       struct layer *inner, __u16 *inner_type, __u32 *id)
{
    __u8 h[8];
    __u32 off = outer->off;

    if (outer->fragment)
        return FLOWTAP_TUNNEL_NONE; /* only the first fragment holds the inner headers */
    switch (proto) {
    case IPPROTO_IPIP_:
    case IPPROTO_IPV6_:
        inner->off = off;
        *inner_type = proto == IPPROTO_IPIP_ ? ETH_P_IP : ETH_P_IPV6;
        return FLOWTAP_TUNNEL_IPIP;
    case IPPROTO_GRE_: {
        __u32 hdr = 4;

        /* flags and version (2), protocol (2), then checksum+reserved, key, sequence if flagged */
        if (bpf_skb_load_bytes(skb, off, h, 4) < 0)
            return -1;
        if ((h[1] & 7) != 0 || (h[0] & GRE_FLAG_ROUTING))
            return FLOWTAP_TUNNEL_NONE; /* PPTP's enhanced GRE, or RFC 1701 source routing */
        *inner_type = ((__u16)h[2] << 8) | h[3];
        if (*inner_type != ETH_P_TEB_ && *inner_type != ETH_P_IP && *inner_type != ETH_P_IPV6)
            return FLOWTAP_TUNNEL_NONE;
        if (*inner_type == ETH_P_TEB_)
            *inner_type = INNER_ETHERNET;
        if (h[0] & GRE_FLAG_CSUM)
            hdr += 4;
        if (h[0] & GRE_FLAG_KEY) {
            if (bpf_skb_load_bytes(skb, off + hdr, h + 4, 4) < 0)
                return -1;
            *id = ((__u32)h[4] << 24) | ((__u32)h[5] << 16) | ((__u32)h[6] << 8) | h[7];
            hdr += 4;
        }
        if (h[0] & GRE_FLAG_SEQ)
            hdr += 4;
        inner->off = off + hdr;
        return FLOWTAP_TUNNEL_GRE;
    }
    case IPPROTO_UDP: {
        __u16 port;

        if (bpf_skb_load_bytes(skb, off, h, 8) < 0)
            return -1;
        port = ((__u16)h[2] << 8) | h[3];
        if (port != VXLAN_PORT && port != GENEVE_PORT)
            return FLOWTAP_TUNNEL_NONE;
        /* VXLAN: flags (1), reserved (3), VNI (3), reserved (1). Geneve: version and option
         * length (1), flags (1), protocol (2), VNI (3), reserved (1), options. */
        if (bpf_skb_load_bytes(skb, off + 8, h, 8) < 0)
            return -1;
        *id = ((__u32)h[4] << 16) | ((__u32)h[5] << 8) | h[6];
        if (port == VXLAN_PORT) {
            if (!(h[0] & VXLAN_FLAG_VNI))
                return FLOWTAP_TUNNEL_NONE;
            *inner_type = INNER_ETHERNET;
            inner->off = off + 16;
            return FLOWTAP_TUNNEL_VXLAN;
        }
        if ((h[0] >> 6) != 0)
            return FLOWTAP_TUNNEL_NONE; /* a Geneve version this parser does not know */
        *inner_type = ((__u16)h[2] << 8) | h[3];
        if (*inner_type != ETH_P_TEB_ && *inner_type != ETH_P_IP && *inner_type != ETH_P_IPV6)
            return FLOWTAP_TUNNEL_NONE;
        if (*inner_type == ETH_P_TEB_)
            *inner_type = INNER_ETHERNET;
        inner->off = off + 16 + (__u32)(h[0] & 0x3f) * 4;
        return FLOWTAP_TUNNEL_GENEVE;
    }
    default:
        return FLOWTAP_TUNNEL_NONE;
    }
}

/*
 * Parses a packet into its flow key (MACs, VLAN ids, addresses, protocol, ports) and the
 * packet's TCP flags, DSCP and tunnel fields (into `m`); with tunnels on, a tunnelled packet
 * gives the key of the packet inside. `*filter_vlan` is the outer VLAN id the filter tests;
 * `*l4_off` where the transport header is (unchanged without one). 0 when fine, -1 on a parse error.
 */
static __always_inline int parse_packet(struct __sk_buff *skb, struct flow_key *key, struct flow_metrics *m,
                                        __u32 *filter_vlan, __u32 *l4_off)
{
    struct layer l = {};
    struct layer inner = {};
    __u16 inner_type = INNER_ETHERNET;
    __u32 tunnel_id = 0;
    int offloaded = skb->vlan_present;
    int tunnel;

    if (offloaded)
        key->vlan_outer = skb->vlan_tci & 0x0fff;
    if (parse_ethernet(skb, &l, key, offloaded) < 0)
        return -1;
    /* a priority tag (id 0) is a tag too: the filter's `vlan` matches it */
    *filter_vlan = offloaded || l.off > ETH_HLEN ? key->vlan_outer : NO_VLAN;
    if (parse_ip(skb, &l, key, &m->dscp) < 0)
        return -1;
    if (!flowtap_config.tunnels || l.no_transport)
        goto transport;
    tunnel = find_tunnel(skb, &l, key->transport_protocol, &inner, &inner_type, &tunnel_id);
    if (tunnel < 0)
        return -1;
    if (tunnel == FLOWTAP_TUNNEL_NONE)
        goto transport;

    m->tunnel_type = tunnel;
    m->tunnel_id = tunnel_id;
    __builtin_memcpy(m->tunnel_src, key->src_addr, FLOWTAP_IP_LEN);
    __builtin_memcpy(m->tunnel_dst, key->dst_addr, FLOWTAP_IP_LEN);
    __builtin_memset(key->src_addr, 0, FLOWTAP_IP_LEN);
    __builtin_memset(key->dst_addr, 0, FLOWTAP_IP_LEN);
    key->transport_protocol = 0;
    if (inner_type == INNER_ETHERNET) {
        /* The key's MACs and VLAN ids are those of the frame inside. */
        key->vlan_outer = 0;
        key->vlan_inner = 0;
        if (parse_ethernet(skb, &inner, key, 0) < 0)
            return -1;
    } else {
        inner.eth_proto = inner_type;
    }
    if (parse_ip(skb, &inner, key, &m->dscp) < 0)
        return -1;
    l = inner;

transport:
    if (l.no_transport)
        return 0;
    *l4_off = l.off;
    return parse_transport(skb, l.off, key, &m->tcp_flags);
}

/* Whether the address at `addr` is in prefix set `set` of program slot `slot`. */
static __always_inline int filter_in_set(__u32 slot, __u32 set, const __u8 *addr)
{
    struct filter_prefix_key k;

    k.prefixlen = 8 + 8 * FLOWTAP_IP_LEN;
    k.set = (__u8)(slot * FILTER_MAX_SETS + set);
    __builtin_memcpy(k.addr, addr, FLOWTAP_IP_LEN);
    return bpf_map_lookup_elem(&flowtap_filter_prefixes, &k) != NULL;
}

/*
 * Runs the installed filter program on a parsed packet: FILTER_NONE when none is installed, else
 * FILTER_TARGET_REJECT or FILTER_TARGET_ACCEPT + sampling. src/filter/evaluate.ts is the same
 * interpreter in TypeScript; test/vectors/filters.ts holds the cases both must pass.
 */
static __always_inline __u32 filter_packet(const struct flow_key *key, __u16 tcp_flags, __u32 vlan_id)
{
    struct filter_program *prog;
    __u32 zero = 0;
    __u32 *active;
    __u32 slot;
    __u32 pc = 0;

    active = bpf_map_lookup_elem(&flowtap_filter_active, &zero);
    if (!active || *active == 0)
        return FILTER_NONE;
    slot = *active - 1;
    prog = bpf_map_lookup_elem(&flowtap_filter_programs, &slot);
    if (!prog)
        return FILTER_NONE;

    for (int step = 0; step < FILTER_MAX_INSNS; step++) {
        const struct filter_insn *insn = &prog->insns[pc & (FILTER_MAX_INSNS - 1)];
        __u32 a = insn->a;
        __u32 value;
        int result;

        switch (insn->op) {
        case FILTER_OP_ETHERTYPE:
            result = key->eth_protocol == a;
            break;
        case FILTER_OP_PROTO:
            result = key->transport_protocol == a;
            break;
        case FILTER_OP_ADDR:
            result = filter_in_set(slot, a, insn->arg ? key->dst_addr : key->src_addr);
            break;
        case FILTER_OP_PORT:
            value = insn->arg ? key->dst_port : key->src_port;
            result = value >= a && value <= insn->b;
            break;
        case FILTER_OP_VLAN:
            result = vlan_id != NO_VLAN && (a == FILTER_ANY_VLAN || vlan_id == a);
            break;
        case FILTER_OP_ICMP_TYPE:
            result = key->icmp_type == a;
            break;
        case FILTER_OP_ICMP_CODE:
            result = key->icmp_code == a;
            break;
        case FILTER_OP_TCP_FLAGS:
            result = (tcp_flags & a) == insn->b;
            break;
        case FILTER_OP_DIRECTION:
            result = key->direction == a;
            break;
        case FILTER_OP_PREFIX: {
            const struct filter_prefix *p = &prog->prefixes[a & (FILTER_MAX_INSNS - 1)];
            const __u32 *addr = (const __u32 *)(insn->arg ? key->dst_addr : key->src_addr);

            result = (addr[0] & p->mask[0]) == p->addr[0] && (addr[1] & p->mask[1]) == p->addr[1] &&
                     (addr[2] & p->mask[2]) == p->addr[2] && (addr[3] & p->mask[3]) == p->addr[3];
            break;
        }
        default:
            result = 0;
        }
        pc = result ? insn->on_true : insn->on_false;
        if (pc >= FILTER_TARGET_ACCEPT)
            return pc;
    }
    /* Programs only jump forward, so only a damaged one gets here. */
    return FILTER_TARGET_REJECT;
}

/* Sends one packet to user space as a record; used when the flow map cannot take it. */
static __always_inline void fallback_to_ringbuf(const struct flow_key *key, const struct flow_metrics *m)
{
    struct flow_event *rec;

    count(COUNTER_RINGBUF_FALLBACK);
    rec = bpf_ringbuf_reserve(&flowtap_events, sizeof(*rec), 0);
    if (!rec) {
        count(COUNTER_RINGBUF_LOST);
        return;
    }
    __builtin_memcpy(&rec->key, key, sizeof(*key));
    __builtin_memcpy(&rec->metrics, m, sizeof(*m));
    /* User space consumes on its drain timer, so waking a reader per record would be wasted. */
    bpf_ringbuf_submit(rec, BPF_RB_NO_WAKEUP);
}

/* Bounded so the verifier sees an end; each lost race means a later time was stored meanwhile. */
#define MAX_LAST_SEEN_RETRIES 4

/* The packet being counted, beside the new entry it would create (`struct flow_metrics`). */
struct packet_info {
    __u64 len;
    __u64 now;
    __u32 if_index;
    __u8 direction;
};

static __always_inline void add_to_flow(struct flow_metrics *m, const struct flow_metrics *pkt,
                                        const struct packet_info *p)
{
    if (flowtap_config.shared_map) {
        __u64 last;

        __sync_fetch_and_add(&m->bytes, p->len);
        __sync_fetch_and_add(&m->packets, 1);
        if (pkt->tcp_flags && (m->tcp_flags & pkt->tcp_flags) != pkt->tcp_flags)
            __sync_fetch_and_or((__u32 *)&m->tcp_flags, (__u32)pkt->tcp_flags);
        /*
         * Every CPU writes this one entry: a plain "if older then store" could let an earlier
         * packet's time overwrite a later one. Compare-and-swap keeps last_seen the latest time,
         * and the DSCP is stored by the packet that set it (the latest packet's, per flow_record.h).
         * first_seen was set when the entry was created.
         */
        last = m->last_seen_ns;
        for (int i = 0; i < MAX_LAST_SEEN_RETRIES; i++) {
            __u64 seen;

            if (last > p->now)
                return;
            seen = __sync_val_compare_and_swap(&m->last_seen_ns, last, p->now);
            if (seen == last) {
                m->dscp = pkt->dscp;
                return;
            }
            last = seen;
        }
        return;
    }
    m->bytes += p->len;
    m->packets += 1;
    m->tcp_flags |= pkt->tcp_flags;
    /* A per-CPU entry starts zeroed on every CPU but the one that created it. */
    if (m->first_seen_ns == 0)
        m->first_seen_ns = p->now;
    /* One CPU's packets arrive in order; the drain keeps the latest CPU's time and DSCP. */
    if (m->last_seen_ns < p->now)
        m->last_seen_ns = p->now;
    m->dscp = pkt->dscp;
}

/*
 * Interfaces crossed (DEDUPER=firstCome; docs/flow-key.md, "One packet, several interfaces").
 * What it hooks: nothing new; the TC programs look a packet's flow up by a key whose MACs,
 * interface and direction are zero, so the same packet met on every interface of its path finds
 * one entry. The entry's crossed_if_index[0]/crossed_direction[0] is the interface (and
 * direction) that saw the flow's first packet: only a packet met there is counted; any other
 * interface is only added to the crossed list. Cost per packet: the one lookup there was
 * anyway, one compare, and on a non-counting interface a scan of at most FLOWTAP_MAX_CROSSED
 * entries. How a per-CPU entry learns its counting interface: a CPU that finds its slot of the
 * entry empty (another CPU created it) copies entry 0 from the first CPU slot that has one
 * (bpf_map_lookup_percpu_elem, once per flow and CPU), so every CPU counts at the same
 * interface and a packet whose hops run on different CPUs is still counted once. When the
 * list is full: the interface is not listed and crossedOverflow counts the packet.
 */
struct owner_scan {
    struct flow_key key;
    __u32 if_index;
    __u8 direction;
    __u8 found;
    __u8 src_mac[FLOWTAP_MAC_LEN];
    __u8 dst_mac[FLOWTAP_MAC_LEN];
};

static long scan_cpu_for_owner(__u32 cpu, void *ctx)
{
    struct owner_scan *scan = ctx;
    struct flow_metrics *other;
    __u32 zero = 0;
    void *flows;

    flows = bpf_map_lookup_elem(&flowtap_flows, &zero);
    if (!flows)
        return 1;
    other = bpf_map_lookup_percpu_elem(flows, &scan->key, cpu);
    if (!other || other->crossed_count == 0)
        return 0;
    scan->if_index = other->crossed_if_index[0];
    scan->direction = other->crossed_direction[0];
    __builtin_memcpy(scan->src_mac, other->dedup_src_mac, FLOWTAP_MAC_LEN);
    __builtin_memcpy(scan->dst_mac, other->dedup_dst_mac, FLOWTAP_MAC_LEN);
    scan->found = 1;
    return 1;
}

/*
 * Fills this CPU's empty slot `m` of the entry `key` with the flow's counting interface. Not
 * inlined: it runs once per flow and CPU, and its scan state would otherwise take stack that the
 * DNS tracker's calls need (the verifier allows 512 bytes for a whole call chain).
 */
static __noinline void learn_owner(struct flow_metrics *m, const struct flow_key *key,
                                        const struct flow_metrics *pkt)
{
    struct owner_scan scan = {};

    __builtin_memcpy(&scan.key, key, sizeof(*key));
    bpf_loop(flowtap_config.cpus, scan_cpu_for_owner, &scan, 0);
    if (scan.found) {
        m->crossed_if_index[0] = scan.if_index;
        m->crossed_direction[0] = scan.direction;
        __builtin_memcpy(m->dedup_src_mac, scan.src_mac, FLOWTAP_MAC_LEN);
        __builtin_memcpy(m->dedup_dst_mac, scan.dst_mac, FLOWTAP_MAC_LEN);
    } else {
        /* Never expected (the creating CPU's slot holds it); this packet's interface counts. */
        m->crossed_if_index[0] = pkt->crossed_if_index[0];
        m->crossed_direction[0] = pkt->crossed_direction[0];
        __builtin_memcpy(m->dedup_src_mac, pkt->dedup_src_mac, FLOWTAP_MAC_LEN);
        __builtin_memcpy(m->dedup_dst_mac, pkt->dedup_dst_mac, FLOWTAP_MAC_LEN);
    }
    m->crossed_count = 1;
}

/* Adds (interface, direction) to the crossed list of a per-CPU slot unless it is there. */
static __always_inline void note_crossed_percpu(struct flow_metrics *m, const struct packet_info *p)
{
    __u8 n = m->crossed_count;

#pragma unroll
    for (int i = 1; i < FLOWTAP_MAX_CROSSED; i++) {
        if (i < n && m->crossed_if_index[i] == p->if_index && m->crossed_direction[i] == p->direction)
            return;
    }
    if (n >= FLOWTAP_MAX_CROSSED) {
        count(COUNTER_CROSSED_OVERFLOW);
        return;
    }
    m->crossed_if_index[n] = p->if_index;
    m->crossed_direction[n] = p->direction;
    m->crossed_count = n + 1;
}

/*
 * The same for the shared entry every CPU writes: a slot is claimed by swapping its interface
 * index from 0 (no interface has index 0), so two CPUs never take the same one; the count is
 * raised after. Two CPUs adding the same interface at once may list it twice: the drain
 * removes repeats.
 */
static __always_inline void note_crossed_shared(struct flow_metrics *m, const struct packet_info *p)
{
#pragma unroll
    for (int i = 1; i < FLOWTAP_MAX_CROSSED; i++) {
        if (m->crossed_if_index[i] == p->if_index && m->crossed_direction[i] == p->direction)
            return;
    }
#pragma unroll
    for (int i = 1; i < FLOWTAP_MAX_CROSSED; i++) {
        if (__sync_val_compare_and_swap(&m->crossed_if_index[i], 0, p->if_index) == 0) {
            m->crossed_direction[i] = p->direction;
            if (m->crossed_count <= i)
                m->crossed_count = i + 1;
            return;
        }
    }
    count(COUNTER_CROSSED_OVERFLOW);
}

/*
 * Handshake RTT (ENABLE_RTT; docs/flow-key.md, "Health"), timed by the TC programs themselves so
 * flows the host only forwards get one too.
 * What it hooks: nothing new; with the feature off (flowtap_config.handshake = 0, a constant at
 * load) the verifier removes it. Cost per packet: none for a packet that is not TCP (one compare
 * of the protocol); for TCP, a lookup of the pending map on a SYN, a SYN-ACK, and an ACK of a
 * flow whose entry has counted at most HANDSHAKE_YOUNG_PACKETS packets (the ACK that ends a
 * handshake is a young flow's); other segments cost a compare.
 * How it measures: the first sighting of a SYN is remembered under the SYN's key (the flow
 * client -> server). A SYN that left through an interface (egress) makes this host the client
 * side: the handshake time is from the SYN to the first SYN-ACK. A SYN that arrived (ingress)
 * makes it the server side: from the first SYN-ACK to the client's ACK. A SYN or SYN-ACK seen
 * again on the same interface and direction is a retransmission and restarts the timing (Karn).
 * How it finds its flow: the time is written to the health entry of the SYN's flow, under the
 * same key as the flow map's (with DEDUPER=firstCome without MACs, interface and direction).
 * When a map is full: the pending map is an LRU, so the oldest unfinished handshake makes room
 * (its time is never measured); a full health map loses the time, counted as
 * COUNTER_HEALTH_MAP_FULL.
 */
#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10
#define HANDSHAKE_PENDING_ENTRIES 4096 /* keep in step with src/ebpf/kernel-memory.ts */
#define HANDSHAKE_YOUNG_PACKETS 4

struct handshake_pending {
    __u64 syn_ns;       /* first sighting of the SYN (a retransmitted SYN restarts it) */
    __u64 synack_ns;    /* server side: first sighting of the SYN-ACK; 0 until seen */
    __u32 syn_if_index; /* where the SYN was first seen */
    __u32 synack_if_index;
    __u8 syn_direction;
    __u8 synack_direction;
    __u8 server_side;   /* the SYN arrived: time SYN-ACK -> ACK */
    __u8 pad[5];
};

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, HANDSHAKE_PENDING_ENTRIES);
    __type(key, struct flow_key);
    __type(value, struct handshake_pending);
} flowtap_handshakes SEC(".maps");

/* Writes a handshake time to the health entry of the flow `key` (the SYN's), unless it has one. */
static __always_inline void record_handshake(const struct flow_key *key, __u64 rtt_ns)
{
    struct flow_health *h = health_entry(key);

    if (!h || (h->health_flags & FLOWTAP_HEALTH_HANDSHAKE))
        return;
    h->handshake_rtt_ns = rtt_ns;
    set_health_flags(h, FLOWTAP_HEALTH_HANDSHAKE);
}

/* The key of the packets going the other way on the same interface (a SYN-ACK's -> its SYN's). */
static __always_inline void reverse_key(struct flow_key *r, const struct flow_key *key)
{
    __builtin_memcpy(r, key, sizeof(*r));
    __builtin_memcpy(r->src_addr, key->dst_addr, FLOWTAP_IP_LEN);
    __builtin_memcpy(r->dst_addr, key->src_addr, FLOWTAP_IP_LEN);
    __builtin_memcpy(r->src_mac, key->dst_mac, FLOWTAP_MAC_LEN);
    __builtin_memcpy(r->dst_mac, key->src_mac, FLOWTAP_MAC_LEN);
    r->src_port = key->dst_port;
    r->dst_port = key->src_port;
    if (!flowtap_config.dedup)
        r->direction = key->direction ^ 1;
}

/*
 * Whether a TCP segment can take part in a handshake: a SYN or SYN-ACK, or a plain ACK (no SYN,
 * no RST) of a flow `young` enough for it to be the one that ends a handshake. Inline, so that
 * every other segment costs these compares and no call.
 */
static __always_inline int handshake_candidate(__u16 tcp_flags, int young)
{
    return (tcp_flags & TCP_FLAG_SYN) || (young && (tcp_flags & (TCP_FLAG_ACK | TCP_FLAG_RST)) == TCP_FLAG_ACK);
}

/* One TCP segment's part in timing its connection's handshake (a handshake_candidate). */
static __noinline void time_handshake(const struct flow_key *key, __u16 tcp_flags, const struct packet_info *p)
{
    struct handshake_pending *pending;
    struct flow_key syn_key;
    __u32 if_index = p->if_index;
    __u8 direction = p->direction;
    __u64 now = p->now;

    if ((tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN) {
        struct handshake_pending fresh = {
            .syn_ns = now,
            .syn_if_index = if_index,
            .syn_direction = direction,
            .server_side = direction == DIRECTION_INGRESS,
        };

        /* Looked up first: a failed insert into an LRU costs it a node taken and given back. */
        pending = bpf_map_lookup_elem(&flowtap_handshakes, key);
        if (!pending) {
            bpf_map_update_elem(&flowtap_handshakes, key, &fresh, BPF_NOEXIST);
        } else if (pending->syn_if_index == if_index && pending->syn_direction == direction) {
            pending->syn_ns = now; /* a retransmitted SYN */
            pending->synack_ns = 0;
        }
        return;
    }
    if ((tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == (TCP_FLAG_SYN | TCP_FLAG_ACK)) {
        reverse_key(&syn_key, key);
        pending = bpf_map_lookup_elem(&flowtap_handshakes, &syn_key);
        if (!pending)
            return;
        if (!pending->server_side) {
            record_handshake(&syn_key, now - pending->syn_ns);
            bpf_map_delete_elem(&flowtap_handshakes, &syn_key);
        } else if (pending->synack_ns == 0 ||
                   (pending->synack_if_index == if_index && pending->synack_direction == direction)) {
            pending->synack_ns = now;
            pending->synack_if_index = if_index;
            pending->synack_direction = direction;
        }
        return;
    }
    /* A plain ACK of a young flow (handshake_candidate let it through). */
    pending = bpf_map_lookup_elem(&flowtap_handshakes, key);
    if (!pending || !pending->server_side || pending->synack_ns == 0)
        return;
    record_handshake(key, now - pending->synack_ns);
    bpf_map_delete_elem(&flowtap_handshakes, key);
}

/*
 * Whether entry slot `m` (before this packet is counted) is young enough for a plain ACK to end
 * a handshake: few packets counted, and not a per-CPU slot that only lists interfaces (those
 * never count, so every packet would look the pending map up).
 */
static __always_inline int young_flow(const struct flow_metrics *m)
{
    return m->packets <= HANDSHAKE_YOUNG_PACKETS && !(m->packets == 0 && m->crossed_count != 0);
}

/*
 * Counts the packet into the existing entry `m`, or only lists its interface (dedup mode): 1 when
 * it was counted, 0 when it was only listed.
 */
static __always_inline int account(struct flow_metrics *m, const struct flow_key *key,
                                   const struct flow_metrics *pkt, const struct packet_info *p)
{
    /* The tunnel fields are those of the latest packet that came through a tunnel. */
    if (pkt->tunnel_type && (m->tunnel_type != pkt->tunnel_type || m->tunnel_id != pkt->tunnel_id)) {
        m->tunnel_type = pkt->tunnel_type;
        m->tunnel_id = pkt->tunnel_id;
        __builtin_memcpy(m->tunnel_src, pkt->tunnel_src, FLOWTAP_IP_LEN);
        __builtin_memcpy(m->tunnel_dst, pkt->tunnel_dst, FLOWTAP_IP_LEN);
    }
    if (!flowtap_config.dedup) {
        if (m->crossed_count == 0) {
            m->crossed_if_index[0] = p->if_index;
            m->crossed_direction[0] = p->direction;
            m->crossed_count = 1;
        }
        add_to_flow(m, pkt, p);
        return 1;
    }
    if (!flowtap_config.shared_map && m->crossed_count == 0)
        learn_owner(m, key, pkt);
    if (m->crossed_if_index[0] == p->if_index && m->crossed_direction[0] == p->direction) {
        add_to_flow(m, pkt, p);
        return 1;
    }
    if (flowtap_config.shared_map)
        note_crossed_shared(m, p);
    else
        note_crossed_percpu(m, p);
    return 0;
}

/* DNS tracking (bpf/dns.h): after the TCP flag names, the config and count(). */
#include "dns.h"

/* Whether a packet's DNS tracking is to run: on, UDP or TCP, a DNS_TRACKING_PORT on either side. */
static __always_inline int dns_candidate(const struct flow_key *key)
{
    return flowtap_config.dns &&
           (key->transport_protocol == IPPROTO_UDP || key->transport_protocol == IPPROTO_TCP) &&
           (dns_port(key->src_port) || dns_port(key->dst_port));
}

static __always_inline int count_packet(struct __sk_buff *skb, __u8 direction)
{
    struct flow_key key;
    struct flow_metrics pkt;
    struct flow_metrics *m;
    struct packet_info p;
    __u32 zero = 0;
    __u32 vlan_id;
    __u32 verdict;
    struct dns_packet dns = {};
    void *flows;
    int timed;
    int err;

    if (flowtap_config.sampling > 1 && bpf_get_prandom_u32() % flowtap_config.sampling != 0) {
        count(COUNTER_SAMPLED_OUT);
        return TC_ACT_UNSPEC;
    }

    __builtin_memset(&key, 0, sizeof(key));
    __builtin_memset(&pkt, 0, sizeof(pkt));
    if (parse_packet(skb, &key, &pkt, &vlan_id, &dns.l4_off) < 0) {
        count(COUNTER_PARSE_ERROR);
        return TC_ACT_UNSPEC;
    }
    key.direction = direction;
    key.if_index = skb->ifindex;

    verdict = filter_packet(&key, pkt.tcp_flags, vlan_id);
    if (verdict != FILTER_NONE) {
        if (verdict == FILTER_TARGET_REJECT) {
            count(COUNTER_FILTER_REJECTED);
            return TC_ACT_UNSPEC;
        }
        count(COUNTER_FILTER_ACCEPTED);
        verdict -= FILTER_TARGET_ACCEPT;
        if (verdict > 1 && bpf_get_prandom_u32() % verdict != 0) {
            count(COUNTER_SAMPLED_OUT);
            return TC_ACT_UNSPEC;
        }
    }

    p.len = skb->len;
    p.now = bpf_ktime_get_ns();
    p.if_index = skb->ifindex;
    p.direction = direction;
    pkt.bytes = p.len;
    pkt.packets = 1;
    pkt.first_seen_ns = p.now;
    pkt.last_seen_ns = p.now;
    pkt.crossed_if_index[0] = p.if_index;
    pkt.crossed_direction[0] = direction;
    pkt.crossed_count = 1;
    if (flowtap_config.dedup) {
        /*
         * The lookup key of "this packet anywhere on the host"; the drain puts them back. A frame
         * without addresses (ARP, LLDP) keeps its MACs: they are all that tells a request from its
         * reply, and a bridge forwards it with them unchanged.
         */
        __builtin_memcpy(pkt.dedup_src_mac, key.src_mac, FLOWTAP_MAC_LEN);
        __builtin_memcpy(pkt.dedup_dst_mac, key.dst_mac, FLOWTAP_MAC_LEN);
        if (key.eth_protocol == ETH_P_IP || key.eth_protocol == ETH_P_IPV6) {
            __builtin_memset(key.src_mac, 0, FLOWTAP_MAC_LEN);
            __builtin_memset(key.dst_mac, 0, FLOWTAP_MAC_LEN);
        }
        key.if_index = 0;
        key.direction = 0;
    }

    timed = flowtap_config.handshake && key.transport_protocol == IPPROTO_TCP;
    flows = bpf_map_lookup_elem(&flowtap_flows, &zero);
    if (flows) {
        m = bpf_map_lookup_elem(flows, &key);
        if (m) {
            if (timed && handshake_candidate(pkt.tcp_flags, young_flow(m)))
                time_handshake(&key, pkt.tcp_flags, &p);
            if (account(m, &key, &pkt, &p) && dns_candidate(&key))
                goto dns;
            return TC_ACT_UNSPEC;
        }
        err = bpf_map_update_elem(flows, &key, &pkt, BPF_NOEXIST);
        if (err == 0) {
            if (timed && handshake_candidate(pkt.tcp_flags, 1))
                time_handshake(&key, pkt.tcp_flags, &p);
            if (dns_candidate(&key))
                goto dns;
            return TC_ACT_UNSPEC;
        }
        if (err == -EEXIST_ /* another CPU created it first */) {
            m = bpf_map_lookup_elem(flows, &key);
            if (m) {
                if (timed && handshake_candidate(pkt.tcp_flags, 1))
                    time_handshake(&key, pkt.tcp_flags, &p);
                if (account(m, &key, &pkt, &p) && dns_candidate(&key))
                    goto dns;
                return TC_ACT_UNSPEC;
            }
        }
    }
    count(COUNTER_MAP_UPDATE_FAILED);
    fallback_to_ringbuf(&key, &pkt);
    /* A packet the ring buffer carries is counted too: its DNS is still tracked. */
    if (!dns_candidate(&key))
        return TC_ACT_UNSPEC;
dns:
    dns.tcp_flags = pkt.tcp_flags;
    track_dns(skb, &key, &dns, p.now);
    return TC_ACT_UNSPEC;
}

SEC("tc")
int flowtap_ingress(struct __sk_buff *skb)
{
    return count_packet(skb, DIRECTION_INGRESS);
}

SEC("tc")
int flowtap_egress(struct __sk_buff *skb)
{
    return count_packet(skb, DIRECTION_EGRESS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
