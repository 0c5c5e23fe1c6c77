/**
 * The agent IP: AGENT_IP wins, else the default route's source address of the AGENT_IP_TYPE
 * family. The kernel lookup is checked for real in a namespace (prefix ftid) whose default route
 * goes out a veth; needs root.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveAgentIp, type SourceAddressLookup } from '../../src/agent/agent-ip.ts';
import { loadConfig } from '../../src/agent/config.ts';
import { ConfigError } from '../../src/errors.ts';
import { formatIp } from '../../src/model/ip.ts';
import { createVethPair } from '../net/netns.ts';

const SOURCE = new URL('../../src/agent/agent-ip.ts', import.meta.url).pathname;

/** A route table with the given source addresses per family; records what was asked. */
function fakeRoutes(v4: string | undefined, v6: string | undefined) {
  const asked: number[] = [];
  const lookup: SourceAddressLookup = async (family) => {
    asked.push(family);
    return family === 4 ? v4 : v6;
  };
  return { lookup, asked };
}

const text = (ip: Uint8Array) => formatIp(ip, 0, 0);

test('AGENT_IP is used as given and no route is looked up', async () => {
  const routes = fakeRoutes('10.0.0.9', undefined);
  assert.equal(
    text(await resolveAgentIp({ address: '192.0.2.7', type: 'any' }, undefined, routes.lookup)),
    '192.0.2.7',
  );
  assert.equal(
    text(await resolveAgentIp({ address: '2001:db8::5', type: 'ipv4' }, undefined, routes.lookup)),
    '2001:db8::5',
  );
  assert.deepEqual(routes.asked, []);
});

test('type any takes the IPv4 route first and falls back to IPv6', async () => {
  assert.equal(
    text(
      await resolveAgentIp(
        { address: undefined, type: 'any' },
        undefined,
        fakeRoutes('10.1.2.3', 'fd00::1').lookup,
      ),
    ),
    '10.1.2.3',
  );
  assert.equal(
    text(
      await resolveAgentIp(
        { address: undefined, type: 'any' },
        undefined,
        fakeRoutes(undefined, 'fd00::1').lookup,
      ),
    ),
    'fd00::1',
  );
});

test('type ipv6 asks only for the IPv6 route', async () => {
  const routes = fakeRoutes('10.1.2.3', 'fd00::2');
  assert.equal(
    text(await resolveAgentIp({ address: undefined, type: 'ipv6' }, undefined, routes.lookup)),
    'fd00::2',
  );
  assert.deepEqual(routes.asked, [6]);
});

test('without a route the agent IP is the unspecified address and one warning says to set AGENT_IP', async () => {
  const warnings: string[] = [];
  const logger = { warn: (_: unknown, msg: string) => warnings.push(msg) } as never;
  const none = fakeRoutes(undefined, undefined).lookup;
  assert.equal(text(await resolveAgentIp({ address: undefined, type: 'ipv4' }, logger, none)), '0.0.0.0');
  assert.equal(
    formatIp(await resolveAgentIp({ address: undefined, type: 'ipv6' }, logger, none), 0, 0x86dd),
    '::',
  );
  assert.equal(warnings.length, 2);
  assert.match(warnings[0], /AGENT_IP/);
});

test('AGENT_IP must be an address and AGENT_IP_TYPE one of any, ipv4, ipv6', () => {
  const load = (env: Record<string, string>) => loadConfig({ flags: {}, env, stdoutIsTty: false });
  assert.deepEqual(load({}).agentIp, { address: undefined, type: 'any' });
  assert.deepEqual(load({ AGENT_IP: ' 10.9.8.7 ', AGENT_IP_TYPE: 'IPv6' }).agentIp, {
    address: '10.9.8.7',
    type: 'ipv6',
  });
  assert.throws(() => load({ AGENT_IP: 'agent.example' }), ConfigError);
  assert.throws(() => load({ AGENT_IP_TYPE: 'ipv5' }), ConfigError);
});

test('the kernel lookup gives the address of the default route in a namespace', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root for network namespaces');
  const pair = await createVethPair('ftid1');
  t.after(() => pair.cleanup());
  await pair.exec('ip', ['route', 'add', 'default', 'via', pair.hostAddr4]);
  const script =
    `import { kernelSourceAddress } from ${JSON.stringify(SOURCE)};` +
    `console.log(String(await kernelSourceAddress(4, '8.8.8.8')), String(await kernelSourceAddress(6, '2001:4860:4860::8888')));`;
  const out = await pair.exec(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script]);
  // IPv6 is off on the pair, so there is no IPv6 route: the lookup answers undefined, not an error.
  assert.equal(out.trim(), `${pair.nsAddr4} undefined`);
});
