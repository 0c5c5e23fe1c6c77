/** The KAFKA_* settings: defaults, every setting parsed, and a ConfigError for each kind of wrong value. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError } from '../../src/errors.ts';
import { parseKafkaSettings } from '../../src/export/kafka-config.ts';

function tempFiles(
  t: { after(fn: () => void): void },
  files: Record<string, string>,
): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), 'flowtap-kafka-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const paths: Record<string, string> = {};
  for (const [name, content] of Object.entries(files)) {
    paths[name] = join(dir, name);
    writeFileSync(paths[name], content);
  }
  return paths;
}

function assertConfigError(raw: Record<string, string>, setting: string, accepted: RegExp): void {
  assert.throws(
    () => parseKafkaSettings(raw),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, `a ConfigError, got ${err}`);
      assert.equal(err.setting, setting);
      assert.match(err.accepted, accepted);
      return true;
    },
  );
}

test('only KAFKA_BROKERS is needed; everything else has the reference defaults', () => {
  const settings = parseKafkaSettings({ KAFKA_BROKERS: 'kafka-1:9092, kafka-2:9093' });
  assert.deepEqual(settings, {
    brokers: ['kafka-1:9092', 'kafka-2:9093'],
    topic: 'network-flows',
    batchMessages: 1000,
    batchBytes: 1_048_576,
    compression: 'none',
    tls: undefined,
    sasl: undefined,
  });
  assert.ok(Object.isFrozen(settings));
});

test('every setting is parsed, with TLS material and SASL credentials read from files', (t) => {
  const files = tempFiles(t, {
    ca: 'CA PEM',
    cert: 'CERT PEM',
    key: 'KEY PEM',
    id: 'flowtap\n',
    secret: ' s3cret\n',
  });
  const settings = parseKafkaSettings({
    KAFKA_BROKERS: '[::1]:9092',
    KAFKA_TOPIC: 'flows.v1',
    KAFKA_BATCH_MESSAGES: '50',
    KAFKA_BATCH_SIZE: '65536',
    KAFKA_COMPRESSION: 'LZ4',
    KAFKA_ENABLE_TLS: 'true',
    KAFKA_TLS_CA_CERT_PATH: files.ca,
    KAFKA_TLS_USER_CERT_PATH: files.cert,
    KAFKA_TLS_USER_KEY_PATH: files.key,
    KAFKA_TLS_INSECURE_SKIP_VERIFY: 'true',
    KAFKA_ENABLE_SASL: 'true',
    KAFKA_SASL_TYPE: 'scram-sha-512',
    KAFKA_SASL_CLIENT_ID_PATH: files.id,
    KAFKA_SASL_CLIENT_SECRET_PATH: files.secret,
  });
  assert.deepEqual(settings, {
    brokers: ['[::1]:9092'],
    topic: 'flows.v1',
    batchMessages: 50,
    batchBytes: 65_536,
    compression: 'lz4',
    tls: { ca: 'CA PEM', cert: 'CERT PEM', key: 'KEY PEM', insecureSkipVerify: true },
    sasl: { mechanism: 'scram-sha-512', username: 'flowtap', password: 's3cret' },
  });
});

test('TLS and SASL paths are ignored while TLS and SASL are disabled', () => {
  const settings = parseKafkaSettings({
    KAFKA_BROKERS: 'k:9092',
    KAFKA_ENABLE_TLS: 'false',
    KAFKA_TLS_CA_CERT_PATH: '/nonexistent/ca.pem',
    KAFKA_SASL_CLIENT_ID_PATH: '/nonexistent/id',
  });
  assert.equal(settings.tls, undefined);
  assert.equal(settings.sasl, undefined);
});

test('a missing KAFKA_BROKERS is a ConfigError', () => {
  assertConfigError({}, 'KAFKA_BROKERS', /host:port.*EXPORT=kafka needs it/);
});

test('brokers that are not host:port are a ConfigError', () => {
  for (const brokers of ['kafka', 'kafka:', 'kafka:99999', 'a:9092,,b:9092', 'http://k:9092']) {
    assertConfigError({ KAFKA_BROKERS: brokers }, 'KAFKA_BROKERS', /host:port/);
  }
});

test('wrong values of the other settings are ConfigErrors saying what is accepted', () => {
  const cases: [string, string, RegExp][] = [
    ['KAFKA_TOPIC', 'flows/v1', /topic name/],
    ['KAFKA_TOPIC', '..', /topic name/],
    ['KAFKA_BATCH_MESSAGES', '0', /integer from 1/],
    ['KAFKA_BATCH_MESSAGES', '1e3', /integer from 1/],
    ['KAFKA_BATCH_SIZE', '-1', /integer from 1/],
    ['KAFKA_COMPRESSION', 'brotli', /none, gzip, snappy, lz4, zstd/],
    ['KAFKA_ENABLE_TLS', 'yes', /true or false/],
    ['KAFKA_ENABLE_SASL', 'on', /true or false/],
  ];
  for (const [setting, value, accepted] of cases) {
    assertConfigError({ KAFKA_BROKERS: 'k:9092', [setting]: value }, setting, accepted);
  }
});

test('zstd is refused with the codecs that work and why', () => {
  assertConfigError(
    { KAFKA_BROKERS: 'k:9092', KAFKA_COMPRESSION: 'zstd' },
    'KAFKA_COMPRESSION',
    /one of none, gzip, snappy, lz4: .*install script/,
  );
});

test('an unknown KAFKA_ setting is a ConfigError rather than silently ignored', () => {
  assertConfigError({ KAFKA_BROKERS: 'k:9092', KAFKA_TOPICS: 'x' }, 'KAFKA_TOPICS', /KAFKA_TOPIC,/);
});

test('an unreadable TLS file is a ConfigError naming the setting', () => {
  assertConfigError(
    { KAFKA_BROKERS: 'k:9092', KAFKA_ENABLE_TLS: 'true', KAFKA_TLS_CA_CERT_PATH: '/nonexistent/ca.pem' },
    'KAFKA_TLS_CA_CERT_PATH',
    /readable file holding the CA certificate/,
  );
});

test('a client certificate without its key is a ConfigError', (t) => {
  const files = tempFiles(t, { cert: 'CERT PEM' });
  assertConfigError(
    { KAFKA_BROKERS: 'k:9092', KAFKA_ENABLE_TLS: 'true', KAFKA_TLS_USER_CERT_PATH: files.cert },
    'KAFKA_TLS_USER_KEY_PATH',
    /both the client certificate and its key/,
  );
});

test('SASL without a credential file, or with an empty one, is a ConfigError', (t) => {
  const files = tempFiles(t, { id: 'flowtap', empty: '\n' });
  assertConfigError(
    { KAFKA_BROKERS: 'k:9092', KAFKA_ENABLE_SASL: 'true', KAFKA_SASL_CLIENT_ID_PATH: files.id },
    'KAFKA_SASL_CLIENT_SECRET_PATH',
    /non-empty file holding the SASL password/,
  );
  assertConfigError(
    {
      KAFKA_BROKERS: 'k:9092',
      KAFKA_ENABLE_SASL: 'true',
      KAFKA_SASL_CLIENT_ID_PATH: files.empty,
      KAFKA_SASL_CLIENT_SECRET_PATH: files.id,
    },
    'KAFKA_SASL_CLIENT_ID_PATH',
    /non-empty file holding the SASL user name/,
  );
});

test('an unknown SASL mechanism is a ConfigError listing the three', (t) => {
  const files = tempFiles(t, { id: 'flowtap', secret: 'pw' });
  assertConfigError(
    {
      KAFKA_BROKERS: 'k:9092',
      KAFKA_ENABLE_SASL: 'true',
      KAFKA_SASL_TYPE: 'gssapi',
      KAFKA_SASL_CLIENT_ID_PATH: files.id,
      KAFKA_SASL_CLIENT_SECRET_PATH: files.secret,
    },
    'KAFKA_SASL_TYPE',
    /plain, scram-sha-256, scram-sha-512/,
  );
});
