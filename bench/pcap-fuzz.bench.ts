/**
 * Fuzzing run of the capture reader: 1 M seeded mutants of valid pcap/pcapng captures (every
 * format, byte order and link type flowtap reads), each fed in random chunks. Prints inputs/s
 * and how the inputs ended; exits 1 if any ended in an exception that is not a FlowtapError or
 * lost a packet (neither counted nor skipped). `FUZZ_INPUTS` and `FUZZ_SEED` override the run.
 * The machine is shared, so the rate is noisy.
 */
import { fuzzRun } from '../test/capture/pcap/fuzz-corpus.ts';

const inputs = Number(process.env.FUZZ_INPUTS ?? 1_000_000);
const seed = Number(process.env.FUZZ_SEED ?? 0x5eed1);

const started = process.hrtime.bigint();
let outcomes: Map<string, number>;
try {
  outcomes = fuzzRun(inputs, seed);
} catch (err) {
  console.log(`pcap fuzz (seed ${seed}): FAILED: ${err instanceof Error ? (err.stack ?? err.message) : err}`);
  process.exit(1);
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
const counts = [...outcomes].map(([outcome, n]) => `${outcome} ${n} (${((n / inputs) * 100).toFixed(1)}%)`);
console.log(
  `pcap fuzz (seed ${seed}): ${inputs} inputs in ${seconds.toFixed(1)} s, ${Math.round(inputs / seconds)} inputs/s; ` +
    `outcomes: ${counts.join(', ')}; unexpected exceptions 0 (ratio 0 to the target 0)`,
);
