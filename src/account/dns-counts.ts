/**
 * DNS figures of the flows leaving accounting, for /metrics: the counts of their DNS sections,
 * the response codes of the flows whose latest message is a response, and a histogram of the
 * latency each flow's section measured. Counted per record, as netobserv's flowlogs-pipeline
 * counts its `dns_latency_seconds` histogram.
 */
import type { RecordBatch } from '../codec/record-batch.ts';
import { DnsFlag, V2, V2_RECORD_BYTES } from '../codec/v2-layout.ts';
import { TWO_POW_32 } from '../model/u64.ts';

/** Upper bounds (seconds) of the DNS latency histogram's buckets; +Inf follows. */
export const DNS_LATENCY_BUCKETS_S: readonly number[] = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];

/** Response codes a flags word holds (its low 4 bits). */
const RCODES = 16;
const QR_BIT = 0x8000;
const NS_PER_S = 1e9;

/** What the DNS sections of evicted flows held, summed. */
export class DnsCounts {
  /** Records with a DNS section. */
  flows = 0;
  queries = 0;
  answers = 0;
  unanswered = 0;
  malformed = 0;
  /** Records whose latest DNS message is a response, by its response code. */
  readonly responsesByRcode = new Float64Array(RCODES);
  /** Latency observations per bucket of DNS_LATENCY_BUCKETS_S (not cumulative), +Inf last. */
  readonly latencyBuckets = new Float64Array(DNS_LATENCY_BUCKETS_S.length + 1);
  latencySumSeconds = 0;
  latencyCount = 0;

  /** Adds the DNS sections of `batch`'s rows. */
  count(batch: RecordBatch): void {
    const b = batch.bytes;
    for (let i = 0, o = 0; i < batch.count; i++, o += V2_RECORD_BYTES) {
      const flags = b[o + V2.DNS_RECORD_FLAGS];
      const queries = b.readUInt32LE(o + V2.DNS_QUERIES);
      const answers = b.readUInt32LE(o + V2.DNS_ANSWERS);
      const unanswered = b.readUInt32LE(o + V2.DNS_UNANSWERED);
      const malformed = b.readUInt32LE(o + V2.DNS_MALFORMED);
      if ((flags | queries | answers | unanswered | malformed | b[o + V2.DNS_ERRNO]) === 0) continue;
      this.flows++;
      this.queries += queries;
      this.answers += answers;
      this.unanswered += unanswered;
      this.malformed += malformed;
      const dnsFlags = b.readUInt16LE(o + V2.DNS_FLAGS);
      if ((flags & DnsFlag.HEADER) !== 0 && (dnsFlags & QR_BIT) !== 0)
        this.responsesByRcode[dnsFlags & 0xf]++;
      if ((flags & DnsFlag.LATENCY) !== 0) {
        const seconds =
          (b.readUInt32LE(o + V2.DNS_LATENCY_NS) + b.readUInt32LE(o + V2.DNS_LATENCY_NS + 4) * TWO_POW_32) /
          NS_PER_S;
        let bucket = 0;
        while (bucket < DNS_LATENCY_BUCKETS_S.length && seconds > DNS_LATENCY_BUCKETS_S[bucket]) bucket++;
        this.latencyBuckets[bucket]++;
        this.latencySumSeconds += seconds;
        this.latencyCount++;
      }
    }
  }
}
