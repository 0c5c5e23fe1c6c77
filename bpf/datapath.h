/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the TC pair (flows.bpf.c) and the health programs (health.bpf.c) share: the counters map,
 * the directions, and the health map with the one way an entry is found or made. Each object
 * declares these maps identically; user space creates the health map and hands the same map fds
 * to every object (bpf_map__reuse_fd), so all programs write the same maps.
 */
#ifndef FLOWTAP_DATAPATH_H
#define FLOWTAP_DATAPATH_H

#include "flow_record.h"

#define DIRECTION_INGRESS 0
#define DIRECTION_EGRESS 1

#define EEXIST_ 17

/* Indexes of the per-CPU counters array; keep in step with src/ebpf/object.ts. */
enum flowtap_counter {
    COUNTER_RINGBUF_FALLBACK = 0, /* packets sent to user space through the ring buffer */
    COUNTER_MAP_UPDATE_FAILED = 1, /* flow-map inserts that failed (map full or other error) */
    COUNTER_RINGBUF_LOST = 2,     /* fallbacks that found the ring buffer full: really lost */
    COUNTER_PARSE_ERROR = 3,      /* packets whose headers are truncated or invalid */
    COUNTER_SAMPLED_OUT = 4,      /* packets skipped by 1/N sampling (global or a rule's) */
    COUNTER_FILTER_ACCEPTED = 5,  /* packets a filter accepted (only while one is installed) */
    COUNTER_FILTER_REJECTED = 6,  /* packets a filter rejected: parsed, tested, not counted */
    COUNTER_CROSSED_OVERFLOW = 7, /* packets met on an interface a full crossed list could not take */
    COUNTER_HEALTH_MAP_FULL = 8,  /* health events (RTT, drop, retransmission, handshake) lost: health map full */
    COUNTER_HEALTH_UNKEYED = 9,   /* drops of packets without an IP header a flow key can be built from */
    COUNTER_DNS_MAP_FULL = 10,    /* DNS messages lost: their flow had no section and the DNS map was full */
    COUNTER_DNS_PENDING_FULL = 11, /* queries never timed: the pending-query map was full */
    COUNTER_DNS_MALFORMED = 12,   /* 12..17: malformed DNS messages by reason (enum dns_status 1..6) */
    COUNTER_MAX = 18,
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, COUNTER_MAX);
    __type(key, __u32);
    __type(value, __u64);
} flowtap_counters SEC(".maps");

static __always_inline void count(__u32 index)
{
    __u64 *value = bpf_map_lookup_elem(&flowtap_counters, &index);
    if (value)
        *value += 1; /* per-CPU slot: no other CPU writes it */
}

/*
 * The health map: struct flow_key -> struct flow_health, one shared hash (not per CPU: health
 * events of one flow come from any CPU, and are rare next to packets), reached through a
 * one-slot array of maps so user space swaps in an empty map and drains the old one as it does
 * the flow map. Entries are allocated on first use (BPF_F_NO_PREALLOC): most flows never have
 * one. The inner map declared here is only the template for when user space gives no health map
 * (all health features off); its shape must match the maps src/ebpf/health-maps.ts creates.
 */
struct flowtap_health_inner {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 1);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __uint(key_size, sizeof(struct flow_key));
    __uint(value_size, sizeof(struct flow_health));
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
    __uint(max_entries, 1);
    __type(key, __u32);
    __array(values, struct flowtap_health_inner);
} flowtap_health SEC(".maps");

/* The value a new health entry starts from (in .bss: zero, never written). */
struct flow_health flowtap_health_zero;

/*
 * The health entry of `key`, made (zero) if there is none; NULL when the map is full, counted
 * as COUNTER_HEALTH_MAP_FULL: the event is lost, the flow itself is still counted.
 */
static __always_inline struct flow_health *health_entry(const struct flow_key *key)
{
    struct flow_health *h;
    __u32 zero = 0;
    void *map;
    long err;

    map = bpf_map_lookup_elem(&flowtap_health, &zero);
    if (!map)
        return NULL;
    h = bpf_map_lookup_elem(map, key);
    if (h)
        return h;
    err = bpf_map_update_elem(map, key, &flowtap_health_zero, BPF_NOEXIST);
    if (err != 0 && err != -EEXIST_) {
        count(COUNTER_HEALTH_MAP_FULL);
        return NULL;
    }
    return bpf_map_lookup_elem(map, key);
}

/*
 * Sets FLOWTAP_HEALTH_* bits: health_flags is the top byte of the 32-bit word that starts at
 * drop_latest_flags, so one atomic OR sets them without losing another CPU's bit.
 */
static __always_inline void set_health_flags(struct flow_health *h, __u8 flags)
{
    if ((h->health_flags & flags) != flags)
        __sync_fetch_and_or((__u32 *)&h->drop_latest_flags, (__u32)flags << 24);
}

#endif /* FLOWTAP_DATAPATH_H */
