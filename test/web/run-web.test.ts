/**
 * `flowtap run --web` end to end: the real CLI captures with eBPF on a veth pair (fta70*, this
 * suite's own number in the agent tests' helper) and its web view streams the traffic and the
 * agent's health. Needs root and a kernel with BTF; the pair is removed in t.after.
 */
import assert from 'node:assert/strict';
import { get } from 'node:http';
import { test } from 'node:test';
import type { WebSnapshot } from '../../src/web/snapshot.ts';
import { ftaPair, sendUdp, startFlowtap } from '../agent/live.ts';
import { skipUnlessKernel } from '../helpers/privileges.ts';

const WAIT_MS = 20_000;

/** Reads `/events` at `url` until a snapshot satisfies `check`; fails after WAIT_MS. */
function untilEvent(url: string, check: (s: WebSnapshot) => boolean): Promise<WebSnapshot> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`no snapshot from ${url} matched in ${WAIT_MS} ms`));
    }, WAIT_MS);
    const req = get(url, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => {
        text += chunk;
        let end = text.indexOf('\n\n');
        while (end >= 0) {
          const event = text.slice(0, end);
          text = text.slice(end + 2);
          end = text.indexOf('\n\n');
          if (!event.startsWith('data: ')) continue;
          const snapshot = JSON.parse(event.slice(6)) as WebSnapshot;
          if (check(snapshot)) {
            clearTimeout(timer);
            req.destroy();
            resolve(snapshot);
            return;
          }
        }
      });
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

test('run --web streams live flows and the attached interfaces, and SIGTERM closes it', {
  skip: skipUnlessKernel('capture with eBPF on a veth'),
}, async (t) => {
  const pair = await ftaPair(t, 70);
  const flowtap = startFlowtap(t, [
    '-i',
    pair.hostIf,
    '--cache-active-timeout',
    '300ms',
    '--output',
    'json',
    '--web',
    '127.0.0.1:0',
  ]);
  await flowtap.untilLog('attached', pair.hostIf);
  await flowtap.until(() => flowtap.logs.some((l) => /web view at http/.test(l.msg)), 'the web view URL');
  const url = /web view at (http:\/\/\S+)/.exec(flowtap.logs.find((l) => /web view at/.test(l.msg))!.msg)![1];

  const srcPort = await sendUdp(pair.nsAddr, 9, 20, 100);
  const snapshot = await untilEvent(`${url}events?q=${srcPort}&proto=udp`, (s) =>
    s.flows.some((f) => f.srcPort === srcPort && f.packets >= 20),
  );
  assert.equal(snapshot.timeline, 'wall');
  const flow = snapshot.flows.find((f) => f.srcPort === srcPort)!;
  assert.deepEqual(
    [flow.interface, flow.direction, flow.dst, flow.dstPort],
    [pair.hostIf, 'EGRESS', pair.nsAddr, 9],
  );
  assert.deepEqual(snapshot.health?.attachedInterfaces, [pair.hostIf]);
  assert.ok(snapshot.chart.some((s) => s.interface === pair.hostIf && s.direction === 'EGRESS'));

  flowtap.child.kill('SIGTERM');
  assert.equal(await flowtap.exited, 0);
});
