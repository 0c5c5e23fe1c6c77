/**
 * The fleet end to end, all real: two `flowtap run` agents, each on one bridge port of a routed
 * bridge between two namespaces (test/net/bridge.ts), export to Kafka (librdkafka's mock cluster)
 * and print JSON; two `flowtap collect --from kafka` in one consumer group store into Debian's
 * clickhouse-server; UDP goes both ways between the namespaces. Once the agents stopped and every
 * flow they printed is stored, `flowtap query top talkers --store clickhouse://...` must equal
 * the totals of what the agents printed, and the duplicates (none expected without a crash) are
 * counted and reported.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Flowtap, type JsonFlow, startFlowtap } from '../agent/live.ts';
import { runCli } from '../helpers/cli.ts';
import { clickhouseAvailable, startClickHouse } from '../helpers/clickhouse.ts';
import { startMockCluster } from '../helpers/kafka-mock-cluster.ts';
import { skipUnlessKernel } from '../helpers/privileges.ts';
import { createRoutedBridge } from '../net/bridge.ts';
import { trafficCommand } from '../net/traffic.ts';
import { type CollectorProcess, startCollectorProcess } from './collector-process.ts';

const PREFIX = 'ftfl';
const SUBNET = 237;
const TOPIC = 'fleet-e2e';
const PARTITIONS = 6;
const DATAGRAMS_PER_FLOW = 20;
const FLOWS_PER_SIDE = 4;
const WAIT_TIMEOUT_MS = 90_000;
const POLL_MS = 100;

const skip =
  skipUnlessKernel('attach agents to bridge ports in network namespaces') ||
  (!clickhouseAvailable() && 'clickhouse-server is not installed');

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + WAIT_TIMEOUT_MS;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function lastAssignment(collector: CollectorProcess): number[] {
  const joins = collector.logs.filter((l) => Array.isArray(l.partitions));
  return (joins.at(-1)?.partitions as number[] | undefined) ?? [];
}

/** Talker totals as `query top talkers --output json` prints them, from the agents' own JSON. */
function talkers(flows: readonly JsonFlow[]) {
  const bySource = new Map<string, { address: string; bytes: number; packets: number; flows: number }>();
  for (const f of flows) {
    const address = f.Network.SrcAddr;
    const row = bySource.get(address) ?? { address, bytes: 0, packets: 0, flows: 0 };
    row.bytes += f.Bytes;
    row.packets += f.Packets;
    row.flows += 1;
    bySource.set(address, row);
  }
  return [...bySource.values()].sort((a, b) => b.bytes - a.bytes || a.address.localeCompare(b.address));
}

test('agents on two veths -> Kafka -> two collectors in one group -> ClickHouse: query top talkers equals what the agents exported', {
  skip,
}, async (t) => {
  const topo = await createRoutedBridge(PREFIX, SUBNET);
  t.after(() => topo.cleanup());
  const server = await startClickHouse(t);
  const cluster = await startMockCluster(t, { [TOPIC]: PARTITIONS });
  const kafka = { KAFKA_BROKERS: cluster.brokers.join(','), KAFKA_TOPIC: TOPIC };
  const url = server.storeUrl('fleet_e2e');

  // A session long enough that a loaded machine's late heartbeat does not rebalance the group
  // mid-test: a rebalance redelivers uncommitted flows, which this test (no crash) counts as wrong.
  const collectorArgs = ['--from', 'kafka', '--to', url, '--kafka-session-timeout', '10s'];
  const collectors = [0, 1].map(() =>
    startCollectorProcess(t, collectorArgs, { ...kafka, KAFKA_GROUP_ID: 'fleet-e2e' }),
  );
  await waitFor('both collectors to share the partitions', () => {
    const [a, b] = collectors.map(lastAssignment);
    return a.length > 0 && b.length > 0 && a.length + b.length === PARTITIONS ? true : undefined;
  });

  // Neighbours resolved first, so each agent starts on a quiet port.
  await topo.execIn('a', 'ping', ['-c', '1', '-W', '2', topo.addrB]);
  const agents: Flowtap[] = [topo.portA, topo.portB].map((port) =>
    startFlowtap(t, ['-i', port, '-e', 'kafka,json', '--cache-active-timeout', '500ms'], {
      ...kafka,
      AGENT_IP: '',
    }),
  );
  await agents[0].untilLog('attached', topo.portA);
  await agents[1].untilLog('attached', topo.portB);

  const send = async (side: 'a' | 'b', host: string) => {
    const plan = {
      kind: 'udp',
      host,
      port: 9,
      count: DATAGRAMS_PER_FLOW,
      payloadBytes: 300,
      flows: FLOWS_PER_SIDE,
    };
    const [cmd, ...args] = trafficCommand(plan as Parameters<typeof trafficCommand>[0]);
    return JSON.parse(await topo.execIn(side, cmd, args)) as { srcPorts: number[] };
  };
  const fromA = await send('a', topo.addrB);
  const fromB = await send('b', topo.addrA);
  // Each agent sees every datagram each way: wait until both printed every sending port.
  for (const agent of agents) {
    await agent.until(
      () =>
        [...fromA.srcPorts, ...fromB.srcPorts].every((port) =>
          agent.flows.some((f) => f.Transport.SrcPort === port && f.Transport.DstPort === 9),
        ),
      'the flows of every sending port',
    );
  }
  for (const agent of agents) {
    agent.child.kill('SIGTERM');
    assert.equal(await agent.exited, 0);
  }
  const exported = agents.flatMap((a) => a.flows);
  const exportedBytes = exported.reduce((n, f) => n + f.Bytes, 0);

  const stored = await waitFor('every exported flow stored', async () => {
    const [rows, bytes] = (await server.query('SELECT count(), sum(bytes) FROM fleet_e2e.flows'))
      .trim()
      .split('\t')
      .map(Number);
    return rows >= exported.length && bytes >= exportedBytes ? { rows, bytes } : undefined;
  });
  const duplicates = stored.rows - exported.length;
  t.diagnostic(
    `agents exported ${exported.length} flows (${agents.map((a) => a.flows.length).join(' + ')}), ` +
      `ClickHouse holds ${stored.rows} rows: ${duplicates} duplicates`,
  );
  assert.equal(duplicates, 0, 'no collector crashed, so nothing is stored twice');

  const r = await runCli(['query', 'top talkers', '--store', url, '--output', 'json', '--limit', '100']);
  assert.equal(r.code, 0, r.stderr);
  const answered = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(answered, talkers(exported));
  assert.ok(
    answered.some((row) => row.address === topo.addrA) && answered.some((row) => row.address === topo.addrB),
  );

  for (const collector of collectors) {
    collector.child.kill('SIGTERM');
    assert.equal(await collector.exited(), 0);
  }
});
