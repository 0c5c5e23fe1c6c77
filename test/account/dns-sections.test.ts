/** DNS sections kept by flow beside the accounter's cache: absorbed from rows, joined back, bounded. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Accounter } from '../../src/account/accounter.ts';
import { DnsSections } from '../../src/account/dns-sections.ts';
import type { EventBatch } from '../../src/codec/event-batch.ts';
import { type RecordBatch, recordBatchOf } from '../../src/codec/record-batch.ts';
import { rowWords } from '../../src/codec/row-words.ts';
import type { FlowDns } from '../../src/model/flow.ts';
import { eventBatchOf } from '../helpers/events.ts';
import { makeFlow } from '../helpers/flows.ts';

const T = 1_700_000_000_000_000_000n;
const dns = (queries: number, atNs: bigint): FlowDns => ({
  queries,
  answers: 0,
  unanswered: 0,
  malformed: 0,
  latestNs: atNs,
  header: { id: queries, flags: 0x0100 },
  name: `q${queries}.example`,
});

async function* once<B extends RecordBatch | EventBatch>(batch: B): AsyncGenerator<B> {
  yield batch;
}

for (const form of ['rows', 'events'] as const) {
  test(`the accounter puts the merged DNS of a flow back on its evicted record, and only on it (${form})`, async () => {
    const sections = new DnsSections(16);
    const accounter = new Accounter({
      maxEntries: 16,
      evictBufferLen: 4,
      evictTimeoutMs: 60_000,
      activeTimeoutBy: 'record-time',
      dnsSections: sections,
    });
    const records = [
      makeFlow({ srcPort: 1, dns: dns(1, T) }),
      makeFlow({ srcPort: 2 }),
      makeFlow({ srcPort: 1, dns: dns(2, T + 5n), timeFlowEndNs: T + 5n }),
    ];
    // Events carry their DNS in section rows (a capture's packets), rows in their own sections.
    const input = form === 'rows' ? once(recordBatchOf(records)) : once(eventBatchOf(records));
    const flows = [];
    for await (const batch of accounter.account(input)) flows.push(...batch.flows());
    assert.deepEqual(
      flows.map((f) => [f.srcPort, f.packets, f.dns?.queries, f.dns?.name]),
      [
        [1, 2, 3, 'q2.example'],
        [2, 1, undefined, undefined],
      ],
    );
    assert.equal(sections.size, 0, 'every section left with its flow');
  });
}

test("a full table drops a new flow's section and counts it, and still merges into known ones", () => {
  const sections = new DnsSections(1);
  const rows = rowWords(
    recordBatchOf([
      makeFlow({ srcPort: 1, dns: dns(1, T) }),
      makeFlow({ srcPort: 2, dns: dns(1, T) }),
      makeFlow({ srcPort: 1, dns: dns(1, T) }),
    ]),
  );
  sections.absorb(rows, 0, 3);
  assert.equal(sections.size, 1);
  assert.equal(sections.dropped, 1);
});
