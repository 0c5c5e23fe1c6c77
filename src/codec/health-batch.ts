/**
 * TCP health collected from the kernel's health map, as batch rows: each row holds a flow key and
 * a health section (first and last seen are the time it was collected; the counters are zero).
 * Not flows: the live pipeline never accounts them, it joins each into the evicted flow of the
 * same key after accounting (src/account/health-join.ts), and a row no flow claims becomes a
 * record of its own.
 */
import { RecordBatch } from './record-batch.ts';

/** Rows of health collected at one drain; see the module comment. */
export class HealthBatch extends RecordBatch {}
