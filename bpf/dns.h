/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * DNS tracking in the TC programs (ENABLE_DNS_TRACKING; bpf/flow_record.h, struct flow_dns, says
 * what a section holds; src/capture/dns/dns-tracker.ts is the specification this follows, and
 * test/vectors/dns.ts the cases both must get right).
 *
 * What it hooks: nothing new. count_packet() calls track_dns() for a packet it counted (not for
 * a sighting on another interface of a deduplicated flow) whose UDP or TCP source or destination
 * port is a DNS_TRACKING_PORT. With the feature off (flowtap_config.dns = 0, a constant at load)
 * the verifier removes every line of it.
 * Cost per packet: a packet that is not DNS costs a compare of the protocol and two bit tests of
 * the port bitmap (in .rodata: no map lookup). A DNS message costs two or three skb loads (its
 * header; for a question, the bytes of the header and name at most, one load), one step per byte
 * of its question name (bpf_loop; a pointer is one more), a lookup-or-insert of the flow's DNS
 * section and one pending-map operation (insert for a query, lookup and delete for a response);
 * over TCP also a lookup of its stream.
 * How a message finds its flow: its DNS section is kept under the same struct flow_key as the
 * flow map's (with DEDUPER=firstCome without MACs, interface and direction), in a map of its own
 * (flowtap_dns, swapped and drained by user space as the health map is) so the TC map value does
 * not grow; user space joins it into the flow's row after accounting. A query waits in
 * flowtap_dns_pending under (addresses, ports, id, protocol); its response looks it up under the
 * reversed key.
 * When a map is full: a message whose flow has no section and finds the DNS map full is lost
 * (COUNTER_DNS_MAP_FULL); a query that finds the pending map full is counted on its flow but never
 * timed (COUNTER_DNS_PENDING_FULL); the TCP stream map is an LRU (the oldest stream forgets where
 * its next message starts, and its next segment is taken as a message if it parses). User space
 * expires pending queries older than the query timeout into dns_unanswered, so no entry stays.
 * Races: a section is one shared entry; its counters are atomic adds, its latest message's id,
 * flags and name are plain stores (two CPUs writing one flow's message at once may mix them).
 */
#ifndef FLOWTAP_DNS_H
#define FLOWTAP_DNS_H

#include "datapath.h"

#define DNS_HEADER_BYTES 12
/* Pointers a first question's name can follow: their targets strictly decrease within the header. */
#define DNS_MAX_POINTERS DNS_HEADER_BYTES
#define DNS_MAX_NAME_WIRE_BYTES 255
#define DNS_QUESTION_FIXED_BYTES 4
#define DNS_MIN_QUESTION_BYTES 5
#define DNS_MIN_RECORD_BYTES 11
/* Label bytes one step of the name walk copies at most. */
#define DNS_LABEL_CHUNK 16
/* Bytes of a message the parser can read: the header, a name of 255 bytes (the last read is at 267). */
#define DNS_READ_BYTES (DNS_HEADER_BYTES + DNS_MAX_NAME_WIRE_BYTES + 1)
/* The scratch copy of a message: a power of two above DNS_READ_BYTES, so an index can be masked. */
#define DNS_SCRATCH_BYTES 512
#define DNS_TCP_PREFIX_BYTES 2
/* Messages of one TCP segment parsed (pipelined queries); the rest are skipped. */
#define DNS_MAX_MESSAGES_PER_SEGMENT 4
#define DNS_QR 0x8000
#define DNS_LABEL_TYPE_MASK 0xc0
#define DNS_LABEL_POINTER 0xc0
#define DNS_MESSAGE_FLAGS (FLOWTAP_DNS_HEADER | FLOWTAP_DNS_NAME | FLOWTAP_DNS_NAME_TRUNCATED)
#define UDP_HEADER_BYTES 8

/* Why a message did not parse: src/capture/dns/dns-parser.ts's DnsMalformed, in the same order. */
enum dns_status {
    DNS_OK = 0,
    DNS_HEADER_TRUNCATED = 1,
    DNS_BAD_COUNTS = 2,
    DNS_QUESTION_TRUNCATED = 3,
    DNS_BAD_LABEL = 4,
    DNS_BAD_POINTER = 5,
    DNS_NAME_TOO_LONG = 6,
};

/*
 * The DNS section map: struct flow_key -> struct flow_dns, one shared hash reached through a
 * one-slot array of maps so user space swaps in an empty one and drains the old one (as the
 * health map). The inner map here is the template; user space creates the real ones
 * (src/ebpf/dns-maps.ts) when DNS tracking is on.
 */
struct flowtap_dns_inner {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __uint(key_size, sizeof(struct flow_key));
    __uint(value_size, sizeof(struct flow_dns));
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
    __uint(max_entries, 1);
    __type(key, __u32);
    __array(values, struct flowtap_dns_inner);
} flowtap_dns SEC(".maps");

/* Queries awaiting their response. Not an LRU: user space expires the old ones as unanswered. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, FLOWTAP_DNS_PENDING_MAX);
    __type(key, struct flow_dns_query_key);
    __type(value, struct flow_dns_pending);
} flowtap_dns_pending SEC(".maps");

/* Where the next DNS message of a TCP connection direction starts (sequence number), by its key with id 0. */
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, FLOWTAP_DNS_PENDING_MAX);
    __type(key, struct flow_dns_query_key);
    __type(value, __u32);
} flowtap_dns_tcp SEC(".maps");

/*
 * State of the walk over a question name, one byte per bpf_loop step. It lives in the per-CPU
 * scratch map, not on the stack: the verifier then knows none of its values, so the step
 * function is verified once for all its iterations instead of once per byte position.
 */
struct dns_name_walk {
    __u32 at;            /* offset in the message of the next byte */
    __u32 limit;         /* bytes of the message that may be read */
    __u32 segment_start; /* where the labels being read began: a pointer must point before it */
    __s32 after;         /* where the question continues after the name; -1 until known */
    __u32 wire;          /* wire bytes of the name so far */
    __u32 text;          /* bytes of dotted text written */
    __u32 in_label;      /* label bytes still to copy */
    __u8 truncated;
    __u8 status;         /* 0xff while walking, then a dns_status */
};

/* Per-CPU working memory of one message: too large for the stack. */
struct dns_scratch {
    __u8 msg[DNS_SCRATCH_BYTES];      /* the message's first bytes (header, question) */
    struct flow_dns message;          /* what the message says, as a section to merge */
    struct flow_dns_pending pending;  /* a query's pending entry */
    struct flow_dns_query_key query;  /* its key (or the reversed one of a response) */
    struct dns_name_walk walk;        /* the name being read */
    struct flow_dns_query_key stream; /* a TCP connection direction: its key with id 0 */
    __u8 l4[16];                      /* the UDP header, or the TCP header's first 13 bytes */
    __u8 prefix[DNS_TCP_PREFIX_BYTES];
    __u32 next_seq;                   /* where the stream's next message starts */
    __u16 qdcount;
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct dns_scratch);
} flowtap_dns_scratch SEC(".maps");

/* The value a new section starts from (in .bss: zero, never written). */
struct flow_dns flowtap_dns_zero;

/* Whether `port` is a DNS_TRACKING_PORT (the bitmap in the config). */
static __always_inline int dns_port(__u16 port)
{
    return (flowtap_config.dns_ports[port >> 5] >> (port & 31)) & 1;
}

#define DNS_WALKING 0xff

/* One byte of the name (src/capture/dns/dns-parser.ts, readName, is the same loop). */
static long dns_name_step(__u32 index, void *ctx)
{
    struct dns_scratch *s = *(struct dns_scratch **)ctx;
    struct dns_name_walk *w;
    __u32 at;
    __u8 byte;

    if (!s)
        return 1;
    w = &s->walk;
    at = w->at;
    if (at >= w->limit) {
        w->status = DNS_QUESTION_TRUNCATED;
        return 1;
    }
    if (w->in_label > 0) {
        /*
         * Label bytes, up to DNS_LABEL_CHUNK in one step (a step costs a call): the bytes run out
         * at `limit` at worst, which the next step reports as the offline parser's byte loop does.
         */
        for (int k = 0; k < DNS_LABEL_CHUNK; k++) {
            if (w->in_label == 0 || at >= w->limit)
                break;
            byte = s->msg[at & (DNS_SCRATCH_BYTES - 1)];
            if (w->text < FLOWTAP_DNS_NAME_MAX) {
                if (byte >= 'A' && byte <= 'Z')
                    byte |= 0x20;
                s->message.dns_name[w->text & (FLOWTAP_DNS_NAME_MAX - 1)] = byte;
                w->text++;
            } else {
                w->truncated = 1;
            }
            w->in_label--;
            at++;
        }
        w->at = at;
        return 0;
    }
    byte = s->msg[at & (DNS_SCRATCH_BYTES - 1)];
    if ((byte & DNS_LABEL_TYPE_MASK) == DNS_LABEL_POINTER) {
        __u32 target;

        if (at + 1 >= w->limit) {
            w->status = DNS_QUESTION_TRUNCATED;
            return 1;
        }
        target = ((__u32)(byte & ~DNS_LABEL_TYPE_MASK) << 8) | s->msg[(at + 1) & (DNS_SCRATCH_BYTES - 1)];
        if (target >= w->segment_start) {
            w->status = DNS_BAD_POINTER;
            return 1;
        }
        if (w->after < 0)
            w->after = at + 2;
        w->at = target;
        w->segment_start = target;
        return 0;
    }
    if ((byte & DNS_LABEL_TYPE_MASK) != 0) {
        w->status = DNS_BAD_LABEL;
        return 1;
    }
    w->wire += byte + 1;
    if (w->wire > DNS_MAX_NAME_WIRE_BYTES) {
        w->status = DNS_NAME_TOO_LONG;
        return 1;
    }
    if (byte == 0) {
        if (w->after < 0)
            w->after = at + 1;
        w->status = (__u32)w->after + DNS_QUESTION_FIXED_BYTES > w->limit ? DNS_QUESTION_TRUNCATED : DNS_OK;
        return 1;
    }
    if (w->wire > 1 + (__u32)byte) {
        /* not the first label: a dot before it */
        if (w->text < FLOWTAP_DNS_NAME_MAX) {
            s->message.dns_name[w->text & (FLOWTAP_DNS_NAME_MAX - 1)] = '.';
            w->text++;
        } else {
            w->truncated = 1;
        }
    }
    w->in_label = byte;
    w->at = at + 1;
    return 0;
}

/*
 * Parses the DNS message of `length` bytes at `off`, of which `avail` bytes are in the packet,
 * into s->message (id, flags, name and their FLOWTAP_DNS_* flags; counts zero) and s->qdcount.
 * Returns a dns_status.
 */
static __noinline int dns_parse(struct __sk_buff *skb, __u32 off, __u32 avail, __u32 length, struct dns_scratch *s)
{
    struct dns_name_walk *w = &s->walk;
    __u8 *h = s->msg;
    __u32 limit = avail < length ? avail : length;
    __u32 needed;
    __u32 copy;

    __builtin_memset(&s->message, 0, sizeof(s->message));
    s->qdcount = 0;
    if (length < DNS_HEADER_BYTES || limit < DNS_HEADER_BYTES)
        return DNS_HEADER_TRUNCATED;
    copy = limit < DNS_READ_BYTES ? limit : DNS_READ_BYTES;
    if (copy < DNS_HEADER_BYTES || copy > DNS_READ_BYTES) /* for the verifier: the bounds above */
        return DNS_HEADER_TRUNCATED;
    if (bpf_skb_load_bytes(skb, off, h, copy) < 0)
        return DNS_HEADER_TRUNCATED;
    s->message.dns_id = ((__u16)h[0] << 8) | h[1];
    s->message.dns_flags = ((__u16)h[2] << 8) | h[3];
    s->message.dns_record_flags = FLOWTAP_DNS_HEADER;
    s->qdcount = ((__u16)h[4] << 8) | h[5];
    needed = (__u32)s->qdcount * DNS_MIN_QUESTION_BYTES +
             ((__u32)(((__u16)h[6] << 8) | h[7]) + (((__u16)h[8] << 8) | h[9]) + (((__u16)h[10] << 8) | h[11])) *
                 DNS_MIN_RECORD_BYTES;
    if (needed > length - DNS_HEADER_BYTES)
        return DNS_BAD_COUNTS;
    if (s->qdcount == 0)
        return DNS_OK;

    __builtin_memset(w, 0, sizeof(*w));
    w->at = DNS_HEADER_BYTES;
    w->limit = limit;
    w->segment_start = DNS_HEADER_BYTES;
    w->after = -1;
    w->status = DNS_WALKING;
    bpf_loop(DNS_MAX_NAME_WIRE_BYTES + DNS_MAX_POINTERS + 1, dns_name_step, &s, 0);
    if (w->status == DNS_WALKING)
        return DNS_NAME_TOO_LONG; /* the bound: 255 wire bytes, plus one step per pointer */
    if (w->status != DNS_OK)
        return w->status;
    s->message.dns_name_len = w->text;
    s->message.dns_record_flags |= FLOWTAP_DNS_NAME | (w->truncated ? FLOWTAP_DNS_NAME_TRUNCATED : 0);
    return DNS_OK;
}

/* The section of flow `key` in the DNS map, made (zero) if there is none; NULL when the map is full. */
static __always_inline struct flow_dns *dns_entry(const struct flow_key *key)
{
    struct flow_dns *d;
    __u32 zero = 0;
    void *map;
    long err;

    map = bpf_map_lookup_elem(&flowtap_dns, &zero);
    if (!map)
        return NULL;
    d = bpf_map_lookup_elem(map, key);
    if (d)
        return d;
    err = bpf_map_update_elem(map, key, &flowtap_dns_zero, BPF_NOEXIST);
    if (err != 0 && err != -EEXIST_) {
        count(COUNTER_DNS_MAP_FULL);
        return NULL;
    }
    return bpf_map_lookup_elem(map, key);
}

/*
 * Merges s->message, a message seen now, into the section `d` (mergeFlowDns with the message the
 * later): counts add, the message's header and name replace the section's, its latency and
 * errno replace when it has them.
 */
static __always_inline void dns_merge(struct flow_dns *d, const struct flow_dns *m, __u64 now)
{
    __u8 flags = d->dns_record_flags;

    if (m->dns_queries)
        __sync_fetch_and_add(&d->dns_queries, 1);
    if (m->dns_answers)
        __sync_fetch_and_add(&d->dns_answers, 1);
    if (m->dns_malformed)
        __sync_fetch_and_add(&d->dns_malformed, 1);
    if (m->dns_record_flags & FLOWTAP_DNS_HEADER) {
        d->dns_id = m->dns_id;
        d->dns_flags = m->dns_flags;
        __builtin_memcpy(d->dns_name, m->dns_name, FLOWTAP_DNS_NAME_MAX);
        d->dns_name_len = m->dns_name_len;
        flags = (flags & ~DNS_MESSAGE_FLAGS) | (m->dns_record_flags & DNS_MESSAGE_FLAGS);
    }
    if (m->dns_record_flags & FLOWTAP_DNS_LATENCY) {
        d->dns_latency_ns = m->dns_latency_ns;
        flags |= FLOWTAP_DNS_LATENCY;
    }
    if (m->dns_errno)
        d->dns_errno = m->dns_errno;
    d->dns_record_flags = flags;
    d->dns_latest_ns = now;
}

/* The pending-map key of the message on flow `key`: the query's source first (`reversed` for a response). */
static __always_inline void dns_query_key(struct flow_dns_query_key *q, const struct flow_key *key, __u16 id,
                                          int reversed)
{
    if (reversed) {
        __builtin_memcpy(q->src_addr, key->dst_addr, FLOWTAP_IP_LEN);
        __builtin_memcpy(q->dst_addr, key->src_addr, FLOWTAP_IP_LEN);
        q->src_port = key->dst_port;
        q->dst_port = key->src_port;
    } else {
        __builtin_memcpy(q->src_addr, key->src_addr, FLOWTAP_IP_LEN);
        __builtin_memcpy(q->dst_addr, key->dst_addr, FLOWTAP_IP_LEN);
        q->src_port = key->src_port;
        q->dst_port = key->dst_port;
    }
    q->dns_id = id;
    q->transport_protocol = key->transport_protocol;
    q->key_pad = 0;
}

/* Records the message just parsed (status) on flow `key` (DnsTracker#record). */
static __noinline void dns_record(const struct flow_key *key, int status, __u64 now, struct dns_scratch *s)
{
    struct flow_dns *m = &s->message;
    struct flow_dns_pending *pending;
    struct flow_dns *d;
    __u64 query_ns;
    long err;

    if (status != DNS_OK) {
        /* Only the damage is recorded: the counters' per-reason slots follow COUNTER_DNS_MALFORMED. */
        if (status >= DNS_HEADER_TRUNCATED && status <= DNS_NAME_TOO_LONG)
            count(COUNTER_DNS_MALFORMED + status - 1);
        __builtin_memset(m, 0, sizeof(*m));
        m->dns_malformed = 1;
        m->dns_errno = status == DNS_HEADER_TRUNCATED ? FLOWTAP_DNS_EFAULT : FLOWTAP_DNS_EINVAL;
    } else if (!(m->dns_flags & DNS_QR)) {
        m->dns_queries = 1;
        dns_query_key(&s->query, key, m->dns_id, 0);
        /* A retransmission (the key waits already) keeps the first query's time. */
        if (!bpf_map_lookup_elem(&flowtap_dns_pending, &s->query)) {
            s->pending.query_ns = now;
            __builtin_memcpy(&s->pending.flow, key, sizeof(*key));
            __builtin_memcpy(&s->pending.query, m, sizeof(*m));
            s->pending.query.dns_queries = 0;
            s->pending.query.dns_latest_ns = now;
            err = bpf_map_update_elem(&flowtap_dns_pending, &s->query, &s->pending, BPF_NOEXIST);
            if (err != 0 && err != -EEXIST_)
                count(COUNTER_DNS_PENDING_FULL);
        }
    } else {
        dns_query_key(&s->query, key, m->dns_id, 1);
        pending = bpf_map_lookup_elem(&flowtap_dns_pending, &s->query);
        query_ns = pending ? pending->query_ns : 0;
        /* Of two CPUs (or user space expiring it) only the one whose delete succeeds takes the query. */
        if (pending && bpf_map_delete_elem(&flowtap_dns_pending, &s->query) == 0) {
            m->dns_answers = 1;
            m->dns_latency_ns = now > query_ns ? now - query_ns : 0;
            m->dns_record_flags |= FLOWTAP_DNS_LATENCY;
        } else {
            m->dns_errno = FLOWTAP_DNS_ENOENT;
        }
    }
    d = dns_entry(key);
    if (d)
        dns_merge(d, m, now);
}

/* Where a packet's DNS payload is: its transport header's offset; the rest is read here. */
struct dns_packet {
    __u32 l4_off;
    __u16 tcp_flags;
};

/*
 * One TCP segment of a DNS connection (DnsTracker#tcpSegment): a message starts where the
 * previous one ended, learnt from the SYN or the length prefix of the message before; a segment
 * in between is a continuation. Without a SYN seen, a segment is a message only if it parses.
 */
static __always_inline void dns_tcp_segment(struct __sk_buff *skb, const struct flow_key *key, const struct dns_packet *p,
                                            __u64 now, struct dns_scratch *s)
{
    struct flow_dns_query_key *stream = &s->stream;
    __u8 *tcp = s->l4;
    __u32 *known;
    __u32 next = 0;
    int synced;
    __u32 seq;
    __u32 at;
    __u32 end = skb->len;

    if (bpf_skb_load_bytes(skb, p->l4_off, tcp, 13) < 0)
        return;
    seq = ((__u32)tcp[4] << 24) | ((__u32)tcp[5] << 16) | ((__u32)tcp[6] << 8) | tcp[7];
    at = p->l4_off + (tcp[12] >> 4) * 4;
    dns_query_key(stream, key, 0, 0);
    known = bpf_map_lookup_elem(&flowtap_dns_tcp, stream);
    synced = known != NULL;
    if (known)
        next = *known;
    if (p->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST))
        bpf_map_delete_elem(&flowtap_dns_tcp, stream);
    if (p->tcp_flags & TCP_FLAG_SYN) {
        s->next_seq = seq + 1;
        bpf_map_update_elem(&flowtap_dns_tcp, stream, &s->next_seq, BPF_ANY);
        return;
    }
    if (at >= end)
        return; /* no payload: an ACK */
    if (synced && seq != next)
        return; /* a continuation of a message */

    for (int i = 0; i < DNS_MAX_MESSAGES_PER_SEGMENT; i++) {
        __u8 *prefix = s->prefix;
        __u32 length = 0;
        __u32 span;
        int status;

        if (at >= end)
            return;
        if (end - at < DNS_TCP_PREFIX_BYTES || bpf_skb_load_bytes(skb, at, prefix, DNS_TCP_PREFIX_BYTES) < 0) {
            status = DNS_HEADER_TRUNCATED;
        } else {
            length = ((__u32)prefix[0] << 8) | prefix[1];
            status = dns_parse(skb, at + DNS_TCP_PREFIX_BYTES, end - at - DNS_TCP_PREFIX_BYTES, length, s);
        }
        if (status != DNS_OK && !synced)
            return; /* a connection begun before we looked: not a message start */
        dns_record(key, status, now, s);
        if (end - at < DNS_TCP_PREFIX_BYTES)
            return;
        span = DNS_TCP_PREFIX_BYTES + length;
        seq += span;
        synced = 1;
        if (!(p->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST))) {
            s->next_seq = seq;
            bpf_map_update_elem(&flowtap_dns_tcp, stream, &s->next_seq, BPF_ANY);
        }
        at += span;
    }
}

/* The DNS part of a counted packet on a DNS port (flow `key`, the lookup key of the flow map). */
static __noinline void track_dns(struct __sk_buff *skb, const struct flow_key *key, const struct dns_packet *p, __u64 now)
{
    struct dns_scratch *s;
    __u32 zero = 0;
    __u8 *udp;
    __u32 udp_length;
    __u32 start;
    int status;

    s = bpf_map_lookup_elem(&flowtap_dns_scratch, &zero);
    if (!s)
        return;
    if (key->transport_protocol == IPPROTO_TCP) {
        dns_tcp_segment(skb, key, p, now, s);
        return;
    }
    udp = s->l4;
    if (bpf_skb_load_bytes(skb, p->l4_off, udp, UDP_HEADER_BYTES) < 0)
        return;
    udp_length = ((__u32)udp[4] << 8) | udp[5];
    start = p->l4_off + UDP_HEADER_BYTES;
    /* The UDP length leaves out an Ethernet frame's padding; the packet may hold fewer bytes. */
    status = dns_parse(skb, start, skb->len > start ? skb->len - start : 0,
                       udp_length > UDP_HEADER_BYTES ? udp_length - UDP_HEADER_BYTES : 0, s);
    dns_record(key, status, now, s);
}

#endif /* FLOWTAP_DNS_H */
