/**
 * A writer process for the store's multi-process tests: appends `batches` batches of
 * `flowsPerBatch` flows to the store at argv[2], committing each and printing `committed N` (flows
 * so far), then waits to be killed. It stands in for a running agent without needing the kernel.
 */
import { recordBatchOf } from '../../src/codec/record-batch.ts';
import { FlowStore } from '../../src/store/flow-store.ts';
import { makeFlow } from '../helpers/flows.ts';

const [file, batchesText, flowsText] = process.argv.slice(2);
const batches = Number(batchesText);
const flowsPerBatch = Number(flowsText);
const store = await FlowStore.open(file);
const endNs = BigInt(Date.now()) * 1_000_000n;
const batch = recordBatchOf(
  Array.from({ length: flowsPerBatch }, (_, i) =>
    makeFlow({ srcPort: i % 65_536, bytes: 100 + i, timeFlowStartNs: endNs, timeFlowEndNs: endNs }),
  ),
);
let committed = 0;
for (let i = 0; i < batches; i++) {
  await store.append(batch);
  await store.commit();
  committed += batch.count;
  process.stdout.write(`committed ${committed}\n`);
  // Give readers a chance to copy between commits, as an agent between evictions does.
  await new Promise((resolve) => setImmediate(resolve));
}
process.stdout.write('done\n');
setInterval(() => {}, 1000);
