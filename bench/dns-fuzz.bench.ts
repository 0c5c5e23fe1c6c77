/**
 * Fuzzing run of the offline DNS parser: 1 M seeded mutants of the DNS vectors' messages (UDP
 * and TCP framing, lying lengths, cut, grown, pointers aimed anywhere). Prints messages/s and the
 * verdicts; exits 1 if an exception escaped the parser or a message got no verdict.
 * `FUZZ_INPUTS` and `FUZZ_SEED` override the run. The machine is shared, so the rate is noisy.
 */
import { DNS_MALFORMED_REASONS } from '../src/capture/dns/dns-parser.ts';
import { fuzzDnsParser } from '../test/capture/dns/dns-fuzz-corpus.ts';

const inputs = Number(process.env.FUZZ_INPUTS ?? 1_000_000);
const seed = Number(process.env.FUZZ_SEED ?? 0x5eed);

const started = process.hrtime.bigint();
let verdicts: Float64Array;
try {
  verdicts = fuzzDnsParser(inputs, seed).verdicts;
} catch (err) {
  console.log(`dns fuzz (seed ${seed}): FAILED: ${err instanceof Error ? (err.stack ?? err.message) : err}`);
  process.exit(1);
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
let counted = 0;
for (const n of verdicts) counted += n;
const lines = DNS_MALFORMED_REASONS.map(
  (name, i) => `${i === 0 ? 'parsed' : name} ${verdicts[i]} (${((verdicts[i] / inputs) * 100).toFixed(1)}%)`,
);
console.log(
  `dns fuzz (seed ${seed}): ${inputs} messages in ${seconds.toFixed(1)} s, ${Math.round(inputs / seconds)} messages/s; ` +
    `verdicts: ${lines.join(', ')}; uncounted ${inputs - counted}, exceptions 0 (ratio 0 to the target 0)`,
);
if (counted !== inputs) process.exit(1);
