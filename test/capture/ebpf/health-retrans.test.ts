import assert from 'node:assert/strict';
import { test } from 'node:test';
import { skipUnlessKernel } from '../../helpers/privileges.ts';
import { createVethPair } from '../../net/netns.ts';
import {
  closeTcp,
  connectTcp,
  dropReason,
  exchange,
  nftCounter,
  nftInNs,
  openHealthPipeline,
  startPeer,
  tcpInfo,
} from './health-helpers.ts';
import { flowOf } from './helpers.ts';

const skip = skipUnlessKernel(
  'hook TCP health programs and drop packets with nftables in network namespaces',
);

const EGRESS = 1;
const TCP = 6;
const TRANSFER_BYTES = 512 * 1024;
const ETH_HEADER_BYTES = 14;
const TABLE = 'fthealth';
const TCP_ACK = 0x10;
const TCP_ESTABLISHED = 1;

for (const hooks of ['auto', 'tracepoint'] as const) {
  test(`retransmissions under random loss equal the socket's own count exactly, and each packet nftables dropped is a netfilter drop (HEALTH_HOOKS=${hooks})`, {
    skip,
  }, async (t) => {
    const pair = await createVethPair(hooks === 'auto' ? 'ftht1' : 'ftht2');
    t.after(() => pair.cleanup());
    const port = await startPeer(t, pair, TRANSFER_BYTES);
    const live = await openHealthPipeline(t, { rtt: false, retrans: true, drops: true, hooks });
    await live.capture.attach(pair.hostIf);
    const socket = await connectTcp(t, pair.nsAddr4, port);
    const localPort = socket.localPort ?? 0;

    // One segment in five dropped at random where the peer receives them, the handshake spared.
    await nftInNs(pair, 'add', 'table', 'inet', TABLE);
    await nftInNs(pair, 'add', 'chain', 'inet', TABLE, 'input', '{ type filter hook input priority 0 ; }');
    await nftInNs(
      pair,
      'add',
      'rule',
      'inet',
      TABLE,
      'input',
      'tcp',
      'dport',
      String(port),
      'numgen',
      'random',
      'mod',
      '5',
      '0',
      'counter',
      'drop',
    );
    await exchange(socket, TRANSFER_BYTES);
    const kernel = await tcpInfo(localPort);
    const dropped = await nftCounter(pair, TABLE);
    await nftInNs(pair, 'delete', 'table', 'inet', TABLE);
    await closeTcp(socket);
    const flows = await live.finish();

    const sent = flows.filter(flowOf(EGRESS, TCP, pair.hostAddr4, pair.nsAddr4, localPort, port));
    assert.equal(sent.length, 1);
    const health = sent[0].health;
    assert.ok(kernel.totalRetrans > 0, 'the loss made the socket retransmit');
    assert.ok(health, 'the flow has health');
    t.diagnostic(
      `retransmitted ${health.retransPackets} segments (ss ${kernel.totalRetrans}), dropped ${health.dropPackets} (nft ${dropped.packets})`,
    );
    assert.equal(health.retransPackets, kernel.totalRetrans);
    assert.equal(health.retransBytes, kernel.bytesRetrans);
    assert.equal(health.dropPackets, dropped.packets);
    // nft counts IP packets; a drop is counted from the frame's Ethernet header, as TC counts.
    assert.equal(health.dropBytes, dropped.bytes + dropped.packets * ETH_HEADER_BYTES);
    assert.equal(health.latestDrop?.cause, await dropReason('NETFILTER_DROP'));
    // A data segment of an established connection: ACK set, and the peer's socket ESTABLISHED (1).
    assert.equal((health.latestDrop?.tcpFlags ?? 0) & TCP_ACK, TCP_ACK);
    assert.equal(health.latestDrop?.tcpState, TCP_ESTABLISHED);
  });
}
