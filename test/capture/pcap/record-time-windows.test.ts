/**
 * `flowtap read` evicts on the packets' own clock: however far apart, or however close to the end
 * of the u64 nanosecond range, packets are, the windows advance in one step. A run that hangs is
 * killed by the bound and fails.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runCli } from '../../helpers/cli.ts';
import { PACKET_VECTORS } from '../../vectors/packets.ts';
import { PcapngWriter } from './capture-files.ts';

const TCP4 = Buffer.from(PACKET_VECTORS[0].frame, 'hex');
const HANG_BOUND_MS = 60_000;
const T0_US = 1_700_000_000n * 1_000_000n;

function flowsOf(stdout: string): Array<{ Packets: number; TimeFlowEnd: string }> {
  return stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
}

describe('flowtap read record-time windows', () => {
  test('a pcapng timestamp near 2^64 µs ends its own window', async () => {
    const capture = new PcapngWriter()
      .section()
      .iface({ linkType: 1 })
      .epb(0, T0_US, TCP4)
      .epb(0, 2n ** 64n - 2n, TCP4)
      .toBuffer();
    const { code, stdout, stderr } = await runCli(['read', '--cache-active-timeout', '10ms', '-'], {
      stdin: capture,
      timeoutMs: HANG_BOUND_MS,
    });
    assert.equal(code, 0, `exit ${code}: ${stderr}`);
    const flows = flowsOf(stdout);
    assert.deepEqual(
      flows.map((f) => f.Packets),
      [1, 1],
    );
    assert.equal(flows[0].TimeFlowEnd, '2023-11-14T22:13:20Z');
  });

  test('--cache-active-timeout 100ns windows packets a microsecond apart one by one', async () => {
    const capture = new PcapngWriter()
      .section()
      .iface({ linkType: 1 })
      .epb(0, T0_US, TCP4)
      .epb(0, T0_US, TCP4)
      .epb(0, T0_US + 1n, TCP4)
      .epb(0, T0_US + 3n, TCP4)
      .toBuffer();
    const { code, stdout, stderr } = await runCli(['read', '--cache-active-timeout', '100ns', '-'], {
      stdin: capture,
      timeoutMs: HANG_BOUND_MS,
    });
    assert.equal(code, 0, `exit ${code}: ${stderr}`);
    assert.deepEqual(
      flowsOf(stdout).map((f) => f.Packets),
      [2, 1, 1],
    );
  });

  test('an active timeout under 1ns is a settings error naming the flag, exit 2', async () => {
    const capture = new PcapngWriter().section().iface({ linkType: 1 }).epb(0, T0_US, TCP4).toBuffer();
    const { code, stderr } = await runCli(['read', '--cache-active-timeout', '0.1ns', '-'], {
      stdin: capture,
    });
    assert.equal(code, 2);
    assert.match(stderr, /--cache-active-timeout="0\.1ns": expected a Go duration of at least 1ns/);
  });
});
