import { toBinary } from '@bufbuild/protobuf';
import { encodePbRecord, encodePbRecordList, encodePbRecords } from '../src/export/pbflow/encode.ts';
import { RecordSchema } from '../src/export/pbflow/gen/flow_pb.ts';
import { pbRecordOf } from '../src/export/pbflow/record.ts';
import { recordBatchOf } from '../src/codec/record-batch.ts';
import { interfaceNames, variedFlow } from '../test/export/ipfix/flows.ts';
const batch = recordBatchOf(Array.from({ length: 1000 }, (_, i) => variedFlow(i % 250)), interfaceNames());
function run(name: string, fn: () => void, n: number) {
  for (let r = 0; r < 3; r++) fn();
  let best = Infinity;
  for (let r = 0; r < 10; r++) { const t0 = performance.now(); fn(); best = Math.min(best, performance.now() - t0); }
  console.log(name, (n / best / 1000).toFixed(2), 'M/s');
}
run('generic', () => { for (let i = 0; i < 1000; i++) toBinary(RecordSchema, pbRecordOf(batch, i)); }, 1000);
run('record', () => { for (let i = 0; i < 1000; i++) encodePbRecord(batch, i); }, 1000);
run('list', () => { encodePbRecordList(batch, 0, 1000); }, 1000);
run('records', () => { encodePbRecords(batch, 0, 1000); }, 1000);
