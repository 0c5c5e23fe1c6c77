/**
 * The flow table's key hash, seeded per process so that nobody outside the process can build
 * keys that share one probe chain (hash flooding: IPv6 interface ids and ports are the sender's
 * choice). A multilinear hash over the prime field of p = 2^31 - 1: the 16 key words are cut into
 * 32 half-words, each multiplied by its own random multiplier drawn from the OS at module load.
 * For two different keys the hashes are equal with probability 1/p whatever the keys are, so a
 * set of keys colliding in one process is spread in every other. Exact in doubles: each product
 * is below 2^47 and their sum below 2^52.
 *
 * The tables probe linearly from the hash's low bits, and a multilinear hash keeps the structure
 * of its input: keys that step by a constant (an attacker's arithmetic progression) land on slots
 * stepping by a constant too, and for some seeds those runs merged into chains of 40–100 slots
 * (20 000 such keys, 1 seed in ~300 past 32 in a simulation). A fixed bijective finaliser
 * (MurmurHash3's fmix32) breaks the structure, so the slots fall as from a random function (the
 * longest chain of those keys at most 21 in the same simulation); its top 31 bits are kept.
 */
import { getRandomValues } from 'node:crypto';
import { V2_KEY_WORDS } from '../codec/v2-layout.ts';

/** The field's prime, 2^31 - 1: hashes lie in [0, KEY_HASH_PRIME). */
export const KEY_HASH_PRIME = 2_147_483_647;
const TWO_POW_31 = 2_147_483_648;

function randomMultipliers(count: number): Float64Array {
  const raw = getRandomValues(new Uint32Array(count));
  const multipliers = new Float64Array(count);
  for (let i = 0; i < count; i++) multipliers[i] = raw[i] % KEY_HASH_PRIME;
  return multipliers;
}

/** Two per key word: low half-word, high half-word. */
const MULTIPLIERS = randomMultipliers(V2_KEY_WORDS * 2);

/** Hash of the 16-word key of the row starting at word `r` of `words`, in [0, KEY_HASH_PRIME). */
export function hashKey(words: Int32Array, r: number): number {
  return hashWords(words, r, V2_KEY_WORDS);
}

/**
 * Hash of the `count` words (even, at most 16) starting at word `at` of `words`, in
 * [0, KEY_HASH_PRIME): {@link hashKey}'s seeded hash for keys other than a row's, such as a TCP
 * connection's (src/capture/pcap/tcp-connections.ts).
 */
export function hashWords(words: Int32Array, at: number, count: number): number {
  const m = MULTIPLIERS;
  // Four sums, two words a step, so the additions do not wait on each other (measured: a quarter
  // less time per hash than one sum). Each sum adds at most 8 products below 2^47: below 2^50.
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  for (let w = 0, k = 0; w < count; w += 2, k += 4) {
    const x = words[at + w];
    const y = words[at + w + 1];
    a += (x & 0xffff) * m[k];
    b += (x >>> 16) * m[k + 1];
    c += (y & 0xffff) * m[k + 2];
    d += (y >>> 16) * m[k + 3];
  }
  const sum = a + b + (c + d);
  // Reduce mod p with 2^31 ≡ 1: q * 2^31 + rest ≡ q + rest, and that is below 2p.
  const q = Math.floor(sum / TWO_POW_31);
  const r = sum - q * TWO_POW_31 + q;
  return finalise(r >= KEY_HASH_PRIME ? r - KEY_HASH_PRIME : r);
}

/** MurmurHash3's fmix32 of `h`, top 31 bits, in [0, KEY_HASH_PRIME) (2^31 - 1 folds to 0). */
function finalise(h: number): number {
  let x = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  x = (x ^ (x >>> 16)) >>> 1;
  return x === KEY_HASH_PRIME ? 0 : x;
}
