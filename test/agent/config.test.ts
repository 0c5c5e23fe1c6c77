import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { type CommandLineValues, DEFAULT_HEALTH, loadConfig } from '../../src/agent/config.ts';
import { ConfigError } from '../../src/errors.ts';

function load(flags: CommandLineValues = {}, env: Record<string, string> = {}, stdoutIsTty = false) {
  return loadConfig({ flags, env, stdoutIsTty });
}

function configFile(t: TestContext, name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** Asserts `fn` throws a ConfigError whose message names `setting`, the value and `accepted`. */
function assertConfigError(fn: () => unknown, setting: string, value: string, accepted: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `a ConfigError, got ${String(err)}`);
    assert.equal(err.exitCode, 2);
    assert.equal(err.setting, setting);
    assert.equal(err.value, value);
    assert.match(err.message, accepted);
    return true;
  });
}

test('defaults are the reference values and json lines on a pipe', () => {
  const c = load();
  assert.deepEqual(
    {
      interfaces: c.interfaces,
      exclude: c.excludeInterfaces,
      cacheMaxFlows: c.cacheMaxFlows,
      timeout: c.cacheActiveTimeoutMs,
      buffers: c.buffersLength,
      listen: c.listenInterfaces,
      poll: c.listenPollPeriodMs,
      direction: c.direction,
      export: c.export,
      output: c.output,
      metrics: c.metrics,
      level: c.logLevel,
      sampling: c.sampling,
    },
    {
      interfaces: [],
      exclude: ['lo'],
      cacheMaxFlows: 131_072,
      timeout: 5000,
      buffers: 50,
      listen: 'watch',
      poll: 10_000,
      direction: 'both',
      export: ['json'],
      output: 'json',
      metrics: undefined,
      level: 'info',
      sampling: 1,
    },
  );
});

test('the output defaults to a table when stdout is a terminal', () => {
  assert.equal(load({}, {}, true).output, 'table');
});

test('the config is frozen', () => {
  const c = load();
  assert.ok(Object.isFrozen(c));
  assert.ok(Object.isFrozen(c.excludeInterfaces));
});

test('flags win over the environment, which wins over the file', (t) => {
  const file = configFile(t, 'a.yaml', 'CACHE_MAX_FLOWS: 10\ncacheActiveTimeout: 2s\nbuffersLength: 7\n');
  const c = load(
    { config: file, cacheMaxFlows: '30' },
    { CACHE_MAX_FLOWS: '20', CACHE_ACTIVE_TIMEOUT: '3s' },
  );
  assert.equal(c.cacheMaxFlows, 30);
  assert.equal(c.cacheActiveTimeoutMs, 3000);
  assert.equal(c.buffersLength, 7);
});

test('a JSON config file is read with camelCase keys and lists', (t) => {
  const file = configFile(
    t,
    'a.json',
    '{"interfaces": ["veth0", "/^br/"], "direction": "INGRESS", "sampling": 0}',
  );
  const c = load({ config: file });
  assert.deepEqual(c.interfaces, ['veth0', '/^br/']);
  assert.equal(c.direction, 'ingress');
  assert.equal(c.sampling, 1, 'sampling 0 means every packet, as in the reference');
});

test('interface lists are split on commas', () => {
  const c = load({ interfaces: 'eth1, /^veth/' }, { EXCLUDE_INTERFACES: 'lo,docker0' });
  assert.deepEqual(c.interfaces, ['eth1', '/^veth/']);
  assert.deepEqual(c.excludeInterfaces, ['lo', 'docker0']);
});

test('TARGET_HOST and TARGET_PORT are preferred over the older FLOWS_TARGET_ names', () => {
  const c = load(
    { export: 'grpc' },
    { TARGET_HOST: 'new', FLOWS_TARGET_HOST: 'old', FLOWS_TARGET_PORT: '9999', TARGET_PORT: '1234' },
  );
  assert.deepEqual(c.target, { host: 'new', port: 1234 });
});

test('the older FLOWS_TARGET_HOST and FLOWS_TARGET_PORT are still read', () => {
  const c = load({ export: 'grpc' }, { FLOWS_TARGET_HOST: '10.0.0.9', FLOWS_TARGET_PORT: '9999' });
  assert.deepEqual(c.target, { host: '10.0.0.9', port: 9999 });
});

test('--target host:port overrides TARGET_HOST and accepts IPv6 in brackets', () => {
  const c = load({ target: '[fd00::1]:4739' }, { TARGET_HOST: 'x', TARGET_PORT: '1' });
  assert.deepEqual(c.target, { host: 'fd00::1', port: 4739 });
});

test('EXPORT takes several kinds and drops repeats', () => {
  const c = load({ export: 'json,ipfix+udp,json', target: 'c:4739' });
  assert.deepEqual(c.export, ['json', 'ipfix+udp']);
});

test('--metrics alone listens on loopback at the default port', () => {
  assert.deepEqual(load({ metrics: true }).metrics, { host: '127.0.0.1', port: 9400 });
});

test('a bare metrics port listens on loopback', () => {
  assert.deepEqual(load({}, { METRICS: '9555' }).metrics, { host: '127.0.0.1', port: 9555 });
});

test('LOG_LEVEL panic, a reference level, is read as fatal', () => {
  assert.equal(load({}, { LOG_LEVEL: 'panic' }).logLevel, 'fatal');
});

test('a wrong integer names the flag, the value and the range', () => {
  assertConfigError(() => load({ cacheMaxFlows: 'lots' }), '--cache-max-flows', 'lots', /integer from 1/);
});

test('KERNEL_MEMORY_MAX takes a byte size with a unit, and the map kind defaults to auto', () => {
  assert.equal(load().kernelMemoryMaxBytes, 256 * 2 ** 20);
  assert.equal(load().kernelMapKind, 'auto');
  assert.equal(load({}, { KERNEL_MEMORY_MAX: '512MiB' }).kernelMemoryMaxBytes, 512 * 2 ** 20);
  assert.equal(load({ kernelMemoryMax: '2 GiB' }).kernelMemoryMaxBytes, 2 * 2 ** 30);
  assert.equal(load({ kernelMemoryMax: '300MB' }).kernelMemoryMaxBytes, 300e6);
  assert.equal(load({ kernelMemoryMax: '16777216' }).kernelMemoryMaxBytes, 16 * 2 ** 20);
  assert.equal(load({}, { KERNEL_MAP_KIND: 'shared' }).kernelMapKind, 'shared');
});

test('a kernel memory budget without a known unit is refused with the accepted units', () => {
  assertConfigError(
    () => load({ kernelMemoryMax: '512 potatoes' }),
    '--kernel-memory-max',
    '512 potatoes',
    /byte size such as 512MiB/,
  );
});

test('a wrong duration names the environment variable and gives an example', () => {
  assertConfigError(
    () => load({}, { CACHE_ACTIVE_TIMEOUT: '5' }),
    'CACHE_ACTIVE_TIMEOUT',
    '5',
    /Go duration/,
  );
});

test('a wrong choice lists the accepted values', () => {
  assertConfigError(
    () => load({ direction: 'sideways' }),
    '--direction',
    'sideways',
    /ingress, egress, both/,
  );
});

test('an unknown export kind lists the accepted kinds', () => {
  assertConfigError(() => load({}, { EXPORT: 'csv' }), 'EXPORT', 'csv', /json, grpc, kafka, ipfix\+udp/);
});

test('a bad regex in an interface list is refused', () => {
  assertConfigError(() => load({ interfaces: '/[/' }), '--interfaces', '/[/', /regex/);
});

test('grpc without a target says which settings are missing', () => {
  assertConfigError(() => load({ export: 'grpc' }), '--target', '', /TARGET_HOST and TARGET_PORT/);
});

test('a wrong value in the config file names the key and the file', (t) => {
  const file = configFile(t, 'bad.yaml', 'listenInterfaces: sometimes\n');
  assertConfigError(() => load({ config: file }), `LISTEN_INTERFACES in ${file}`, 'sometimes', /watch, poll/);
});

test('a config file that does not exist is a settings error (exit 2) naming the path', () => {
  const path = join(tmpdir(), 'flowtap-no-such-config.yaml');
  assertConfigError(() => load({ config: path }), '--config', path, /readable YAML or JSON file \(ENOENT/);
  assert.equal(new ConfigError('--config', path, '').exitCode, 2);
});

test('an unknown key in the config file is refused', (t) => {
  const file = configFile(t, 'typo.yaml', 'cacheMaxFlow: 5\n');
  assertConfigError(() => load({ config: file }), `cacheMaxFlow in ${file}`, '5', /setting name/);
});

test('KAFKA_ settings from the file and the environment are kept for the Kafka exporter', (t) => {
  const file = configFile(t, 'k.yaml', 'kafkaBrokers: a:9092\nKAFKA_TOPIC: flows\n');
  const c = load({ config: file }, { KAFKA_TOPIC: 'override' });
  assert.deepEqual(c.kafkaSettings, { KAFKA_BROKERS: 'a:9092', KAFKA_TOPIC: 'override' });
});

test('the grpc export is in clear unless TLS is asked for', () => {
  assert.equal(load({ export: 'grpc', target: 'c:1' }).targetTls, undefined);
});

test('TARGET_TLS_* paths turn TLS on for the grpc export, each named as the user gave it', (t) => {
  const file = configFile(t, 'tls.yaml', 'targetTlsCaCertPath: /etc/ca.pem\n');
  const c = load(
    { config: file, targetTlsCert: '/etc/agent.pem' },
    { TARGET_TLS_USER_KEY_PATH: '/etc/agent.key', TARGET_TLS_INSECURE_SKIP_VERIFY: 'true' },
  );
  assert.deepEqual(c.targetTls, {
    ca: { setting: `TARGET_TLS_CA_CERT_PATH in ${file}`, path: '/etc/ca.pem' },
    keyPair: {
      cert: { setting: '--target-tls-cert', path: '/etc/agent.pem' },
      key: { setting: 'TARGET_TLS_USER_KEY_PATH', path: '/etc/agent.key' },
    },
    insecureSkipVerify: true,
  });
  assert.ok(Object.isFrozen(c.targetTls));
});

test('--target-tls alone trusts the system roots and presents no client certificate', () => {
  assert.deepEqual(load({ targetTls: true }).targetTls, {
    ca: undefined,
    keyPair: undefined,
    insecureSkipVerify: false,
  });
});

test('TARGET_ENABLE_TLS=false keeps the grpc export in clear and ignores the TLS paths', () => {
  const c = load({}, { TARGET_ENABLE_TLS: 'false', TARGET_TLS_CA_CERT_PATH: '/nonexistent/ca.pem' });
  assert.equal(c.targetTls, undefined);
});

test('a client certificate without its key names the missing setting', () => {
  assertConfigError(
    () => load({ targetTlsCert: '/etc/agent.pem' }),
    'TARGET_TLS_USER_KEY_PATH',
    '',
    /private key \(--target-tls-key\) of the certificate --target-tls-cert=\/etc\/agent.pem/,
  );
});

test('TARGET_ENABLE_TLS takes true or false', () => {
  assertConfigError(
    () => load({}, { TARGET_ENABLE_TLS: 'maybe' }),
    'TARGET_ENABLE_TLS',
    'maybe',
    /true or false/,
  );
});

test('reverse DNS names are off unless --resolve or RESOLVE asks for them', () => {
  assert.equal(load().resolve, false);
  assert.equal(load({ resolve: true }).resolve, true);
  assert.equal(load({}, { RESOLVE: 'true' }).resolve, true);
});

test('DNS tracking is off by default on the reference port 53; ENABLE_DNS_TRACKING and DNS_TRACKING_PORT set it', () => {
  const off = load();
  assert.equal(off.dnsTracking, false);
  assert.deepEqual(off.dnsTrackingPorts, [53]);
  const on = load({}, { ENABLE_DNS_TRACKING: 'true', DNS_TRACKING_PORT: '5353' });
  assert.equal(on.dnsTracking, true);
  assert.deepEqual(on.dnsTrackingPorts, [5353]);
  assert.deepEqual(load({ dnsTracking: true, dnsTrackingPort: '53, 5353,53' }).dnsTrackingPorts, [53, 5353]);
});

test('DNS_TRACKING_PORT in a config file may be a number or a list', (t) => {
  const path = configFile(t, 'dns.yaml', 'enableDnsTracking: true\ndnsTrackingPort: [53, 5353]\n');
  assert.deepEqual(load({ config: path }).dnsTrackingPorts, [53, 5353]);
  const one = configFile(t, 'one.yaml', 'DNS_TRACKING_PORT: 5300\n');
  assert.deepEqual(load({ config: one }).dnsTrackingPorts, [5300]);
});

test('a DNS_TRACKING_PORT outside 1..65535 names the setting and what is accepted', () => {
  assertConfigError(
    () => load({}, { DNS_TRACKING_PORT: '53,70000' }),
    'DNS_TRACKING_PORT',
    '53,70000',
    /port from 1 to 65535/,
  );
  assertConfigError(() => load({ dnsTrackingPort: 'dns' }), '--dns-tracking-port', 'dns', /53,5353/);
});

test('TCP health defaults: retransmissions and drops on, RTT off, hooks chosen automatically', () => {
  assert.deepEqual(load().health, DEFAULT_HEALTH);
  assert.deepEqual(DEFAULT_HEALTH, { rtt: false, retrans: true, drops: true, hooks: 'auto' });
});

test('TCP health settings come from the reference names, flags winning over the environment', () => {
  const env = {
    ENABLE_RTT: 'true',
    ENABLE_PKT_DROPS: 'false',
    ENABLE_TCP_RETRANS: '0',
    HEALTH_HOOKS: 'tracepoint',
  };
  assert.deepEqual(load({}, env).health, { rtt: true, retrans: false, drops: false, hooks: 'tracepoint' });
  assert.deepEqual(load({ rtt: false, pktDrops: true, tcpRetrans: true, healthHooks: 'auto' }, env).health, {
    rtt: false,
    retrans: true,
    drops: true,
    hooks: 'auto',
  });
});

test('a HEALTH_HOOKS value other than auto or tracepoint is refused, naming both', () => {
  assertConfigError(() => load({}, { HEALTH_HOOKS: 'kprobe' }), 'HEALTH_HOOKS', 'kprobe', /auto, tracepoint/);
});
