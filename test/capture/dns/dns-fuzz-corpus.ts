/**
 * Mutated DNS messages for the parser's fuzz test and benchmark: the vectors' messages (UDP and
 * TCP framing) with bytes flipped, counts and label lengths rewritten, compression pointers
 * aimed anywhere, cut at random lengths or grown with junk, from a seeded generator so a failure
 * repeats exactly.
 */
import {
  DNS_MALFORMED_REASONS,
  DnsMessage,
  parseDnsPayload,
  TCP_LENGTH_PREFIX_BYTES,
} from '../../../src/capture/dns/dns-parser.ts';
import { seededRandom } from '../../helpers/flows.ts';
import { DNS_VECTORS } from '../../vectors/dns.ts';

const SEEDS = DNS_VECTORS.map((v) => Buffer.from(v.message, 'hex'));
const HEADER_BYTES = 12;

/** One mutation of a random seed message. */
export function mutateDnsMessage(random: () => number): Buffer {
  const seed = SEEDS[Math.floor(random() * SEEDS.length)];
  let out = Buffer.from(seed);
  const mutations = 1 + Math.floor(random() * 4);
  for (let m = 0; m < mutations; m++) {
    const at = Math.floor(random() * Math.max(out.length, 1));
    switch (Math.floor(random() * 7)) {
      case 0: // flip a byte
        if (out.length > 0) out[at] = Math.floor(random() * 256);
        break;
      case 1: // rewrite a count
        if (out.length >= HEADER_BYTES)
          out.writeUInt16BE(Math.floor(random() * 8), 4 + 2 * Math.floor(random() * 4));
        break;
      case 2: // a compression pointer anywhere
        if (out.length >= 2) {
          const target = Math.floor(random() * (out.length + 16));
          out[at] = 0xc0 | ((target >>> 8) & 0x3f);
          out[Math.min(at + 1, out.length - 1)] = target & 0xff;
        }
        break;
      case 3: // cut
        out = out.subarray(0, at);
        break;
      case 4: // grow with junk
        out = Buffer.concat([
          out,
          Buffer.from(
            Array.from({ length: 1 + Math.floor(random() * 40) }, () => Math.floor(random() * 256)),
          ),
        ]);
        break;
      case 5: // a label length of any size
        if (out.length > HEADER_BYTES)
          out[HEADER_BYTES + Math.floor(random() * (out.length - HEADER_BYTES))] = Math.floor(random() * 64);
        break;
      default: // label type bits 01 or 10
        if (out.length > 0) out[at] = (random() < 0.5 ? 0x40 : 0x80) | Math.floor(random() * 64);
    }
  }
  return out;
}

/** What a fuzz run saw: messages parsed, and verdicts by DNS_OK or malformed reason. */
export interface DnsFuzzResult {
  messages: number;
  /** Index 0: parsed; index r: malformed for reason r (DNS_MALFORMED_REASONS). */
  verdicts: Float64Array;
}

/**
 * Parses `count` mutated messages (a quarter framed for TCP, with a length prefix that may lie)
 * and counts their verdicts. An exception escaping the parser fails the run by propagating.
 */
export function fuzzDnsParser(count: number, seed: number): DnsFuzzResult {
  const random = seededRandom(seed);
  const out = new DnsMessage();
  const verdicts = new Float64Array(DNS_MALFORMED_REASONS.length);
  for (let i = 0; i < count; i++) {
    let message = mutateDnsMessage(random);
    const tcp = random() < 0.25;
    if (tcp) {
      const prefix = Buffer.alloc(TCP_LENGTH_PREFIX_BYTES);
      prefix.writeUInt16BE(random() < 0.8 ? message.length : Math.floor(random() * 0x10000));
      message = Buffer.concat([prefix, message]);
    }
    // The declared length may exceed the bytes there (a snapped capture, a lying header).
    const declared = random() < 0.9 ? message.length : Math.floor(random() * 600);
    verdicts[parseDnsPayload(message, 0, message.length, declared, tcp, out)]++;
  }
  return { messages: count, verdicts };
}
