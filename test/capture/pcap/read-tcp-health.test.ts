/**
 * `flowtap read` with the TCP analysis: the JSON lines carry the handshake time and the
 * retransmissions of a built capture, timed from the side `--local-net` makes the client's host,
 * and the ENABLE_RTT / ENABLE_TCP_RETRANS settings (flags first) turn each part off.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runCli } from '../../helpers/cli.ts';
import { classicPcap } from './capture-files.ts';
import { TcpConversation, tcpFrame } from './tcp-segments.ts';

const T0 = 1_700_000_000;
const MS = 1_000_000;

/** A nanosecond pcap of a handshake (SYN-ACK after 30 ms, ACK 2 ms later), data, one segment sent again. */
function capture(): Buffer {
  const c = new TcpConversation()
    .handshake(30 * MS, 2 * MS)
    .data(true, 500)
    .data(true, 500);
  c.segmentAt(true, 1001, 500, 300 * MS);
  return classicPcap(
    c.segments.map((s) => ({
      frame: tcpFrame(s),
      seconds: T0 + Math.floor(s.atNs / 1e9),
      fraction: s.atNs % 1e9,
    })),
    { nanos: true },
  );
}

interface JsonFlow {
  Transport: { SrcPort: number; DstPort: number };
  TimeHandshakeRttNs?: number;
  PktRetransPackets?: number;
  PktRetransBytes?: number;
}

async function read(args: string[], env: NodeJS.ProcessEnv = {}): Promise<JsonFlow> {
  const { code, stdout, stderr } = await runCli(['read', '--output', 'json', ...args, '-'], {
    stdin: capture(),
    env,
  });
  assert.equal(code, 0, stderr);
  const flows = stdout
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as JsonFlow);
  const client = flows.find((f) => f.Transport.SrcPort === 40000);
  assert.ok(client, stdout);
  assert.equal(flows.find((f) => f.Transport.SrcPort === 80)?.TimeHandshakeRttNs, undefined);
  return client;
}

describe('flowtap read measures TCP health', () => {
  test('by default: the server-side handshake time and the retransmitted segment, on the client flow', async () => {
    const flow = await read([]);
    assert.equal(flow.TimeHandshakeRttNs, 2 * MS);
    assert.equal(flow.PktRetransPackets, 1);
    assert.equal(flow.PktRetransBytes, 500);
  });

  test('with the client local, as on its host: SYN → SYN-ACK', async () => {
    const flow = await read(['--local-net', '10.0.0.1/32']);
    assert.equal(flow.TimeHandshakeRttNs, 30 * MS);
  });

  test('--no-rtt and ENABLE_TCP_RETRANS=false turn each part off; a flag wins over the setting', async () => {
    const noRtt = await read(['--no-rtt']);
    assert.equal(noRtt.TimeHandshakeRttNs, undefined);
    assert.equal(noRtt.PktRetransPackets, 1);
    const noRetrans = await read([], { ENABLE_TCP_RETRANS: 'false' });
    assert.equal(noRetrans.PktRetransPackets, undefined);
    assert.equal(noRetrans.TimeHandshakeRttNs, 2 * MS);
    const flagWins = await read(['--tcp-retrans', '--rtt'], {
      ENABLE_TCP_RETRANS: 'false',
      ENABLE_RTT: 'false',
    });
    assert.equal(flagWins.PktRetransPackets, 1);
    assert.equal(flagWins.TimeHandshakeRttNs, 2 * MS);
  });
});
