/**
 * DNS collected from the kernel's DNS map (and its expired pending queries), as batch rows: each
 * row holds a flow key and a DNS section (first and last seen are the time it was collected; the
 * counters are zero). Not flows: the live pipeline joins each into the evicted flow of the same
 * key after accounting, as it joins health (src/account/health-join.ts), and a row no flow claims
 * becomes a record of its own.
 */
import { RecordBatch } from './record-batch.ts';

/** Rows of DNS collected at one drain; see the module comment. */
export class DnsBatch extends RecordBatch {}
