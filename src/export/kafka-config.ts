/**
 * The KAFKA_* settings of the Kafka exporter, under the reference's names, parsed once from the
 * plain name → text record the agent's config layer collects (environment over config file) into
 * a typed, frozen {@link KafkaSettings}. TLS material and SASL credentials are read here, from
 * files only (a secret on the command line or in the environment shows in `ps` and
 * /proc/PID/environ), so a missing or unreadable file is a ConfigError before anything connects.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../errors.ts';

/** Default topic, as in the reference. */
export const DEFAULT_KAFKA_TOPIC = 'network-flows';
/** Default largest number of messages per produce call. */
export const DEFAULT_KAFKA_BATCH_MESSAGES = 1000;
/** Default largest payload (keys + values) per produce call: 1 MiB, Kafka's default message.max.bytes. */
export const DEFAULT_KAFKA_BATCH_BYTES = 1_048_576;
/** Upper bound of KAFKA_BATCH_MESSAGES, so one produce call cannot hold an unbounded array. */
const MAX_KAFKA_BATCH_MESSAGES = 1_000_000;
/** Upper bound of KAFKA_BATCH_SIZE: 1 GiB, far beyond any broker's message.max.bytes. */
const MAX_KAFKA_BATCH_BYTES = 1_073_741_824;

/** Compression codecs KAFKA_COMPRESSION names. */
export const KAFKA_COMPRESSIONS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const;
/** A compression codec of produced record batches. */
export type KafkaCompression = Exclude<(typeof KAFKA_COMPRESSIONS)[number], 'zstd'>;
/** The codecs this build can produce with (zstd is named by the reference but not available). */
export const SUPPORTED_KAFKA_COMPRESSIONS: readonly KafkaCompression[] = ['none', 'gzip', 'snappy', 'lz4'];

/** SASL mechanisms KAFKA_SASL_TYPE accepts (kafkajs's names). */
export const KAFKA_SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;
/** A SASL mechanism. */
export type KafkaSaslMechanism = (typeof KAFKA_SASL_MECHANISMS)[number];

/** TLS to the brokers (KAFKA_ENABLE_TLS). */
export interface KafkaTlsSettings {
  /** PEM of the CA that signed the brokers' certificates; undefined = the system's CAs. */
  readonly ca: string | undefined;
  /** PEM of the client certificate, with `key`, for mutual TLS. */
  readonly cert: string | undefined;
  /** PEM of the client key. */
  readonly key: string | undefined;
  /** Accept any broker certificate (KAFKA_TLS_INSECURE_SKIP_VERIFY): for tests only. */
  readonly insecureSkipVerify: boolean;
}

/** SASL authentication (KAFKA_ENABLE_SASL), credentials read from files. */
export interface KafkaSaslSettings {
  readonly mechanism: KafkaSaslMechanism;
  /** Content of KAFKA_SASL_CLIENT_ID_PATH, surrounding whitespace removed. */
  readonly username: string;
  /** Content of KAFKA_SASL_CLIENT_SECRET_PATH, surrounding whitespace removed. */
  readonly password: string;
}

/** Every Kafka setting, validated. */
export interface KafkaSettings {
  /** Bootstrap brokers as `host:port`. */
  readonly brokers: readonly string[];
  /** Topic flows are produced to. */
  readonly topic: string;
  /** Messages per produce call at most (KAFKA_BATCH_MESSAGES). */
  readonly batchMessages: number;
  /** Key and value bytes per produce call at most (KAFKA_BATCH_SIZE). */
  readonly batchBytes: number;
  /** Codec of the produced record batches. */
  readonly compression: KafkaCompression;
  /** TLS settings; undefined = plaintext. */
  readonly tls: KafkaTlsSettings | undefined;
  /** SASL settings; undefined = no authentication. */
  readonly sasl: KafkaSaslSettings | undefined;
}

/** Every setting name this parser knows; any other KAFKA_* name is a ConfigError (a typo would be ignored otherwise). */
export const KAFKA_SETTING_NAMES = [
  'KAFKA_BROKERS',
  'KAFKA_TOPIC',
  'KAFKA_BATCH_MESSAGES',
  'KAFKA_BATCH_SIZE',
  'KAFKA_COMPRESSION',
  'KAFKA_ENABLE_TLS',
  'KAFKA_TLS_CA_CERT_PATH',
  'KAFKA_TLS_USER_CERT_PATH',
  'KAFKA_TLS_USER_KEY_PATH',
  'KAFKA_TLS_INSECURE_SKIP_VERIFY',
  'KAFKA_ENABLE_SASL',
  'KAFKA_SASL_TYPE',
  'KAFKA_SASL_CLIENT_ID_PATH',
  'KAFKA_SASL_CLIENT_SECRET_PATH',
] as const;

/** One setting's schema and what it accepts, for the ConfigError of a wrong value. */
interface SettingSchema<T> {
  readonly accepted: string;
  readonly schema: z.ZodType<T, string>;
}

const HOST_PORT = /^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/;

const brokersSetting: SettingSchema<string[]> = {
  accepted: 'a comma-separated list of host:port (e.g. kafka-1:9092,kafka-2:9092)',
  schema: z
    .string()
    .transform((s) => s.split(',').map((b) => b.trim()))
    .pipe(
      z
        .array(
          z
            .string()
            .regex(HOST_PORT)
            .refine((b) => {
              const port = Number(HOST_PORT.exec(b)?.[1]);
              return port >= 1 && port <= 65_535;
            }),
        )
        .min(1),
    ),
};

const topicSetting: SettingSchema<string> = {
  accepted: 'a Kafka topic name: 1 to 249 of a-z A-Z 0-9 . _ -',
  schema: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9._-]{1,249}$/)
    .refine((t) => t !== '.' && t !== '..'),
};

function integerSetting(min: number, max: number): SettingSchema<number> {
  return {
    accepted: `an integer from ${min} to ${max}`,
    schema: z.string().trim().regex(/^\d+$/).transform(Number).pipe(z.number().int().min(min).max(max)),
  };
}

const booleanSetting: SettingSchema<boolean> = {
  accepted: 'true or false',
  schema: z
    .string()
    .trim()
    .toLowerCase()
    .pipe(z.enum(['true', 'false', '1', '0']))
    .transform((s) => s === 'true' || s === '1'),
};

const compressionSetting: SettingSchema<(typeof KAFKA_COMPRESSIONS)[number]> = {
  accepted: KAFKA_COMPRESSIONS.join(', '),
  schema: z.string().trim().toLowerCase().pipe(z.enum(KAFKA_COMPRESSIONS)),
};

const saslTypeSetting: SettingSchema<KafkaSaslMechanism> = {
  accepted: KAFKA_SASL_MECHANISMS.join(', '),
  schema: z.string().trim().toLowerCase().pipe(z.enum(KAFKA_SASL_MECHANISMS)),
};

/** Reads and validates the raw settings; names are those of {@link KAFKA_SETTING_NAMES}. */
class KafkaSettingReader {
  constructor(private readonly raw: Readonly<Record<string, string>>) {
    const known = new Set<string>(KAFKA_SETTING_NAMES);
    for (const [name, value] of Object.entries(raw)) {
      if (!known.has(name)) {
        throw new ConfigError(name, value, `a known Kafka setting: ${KAFKA_SETTING_NAMES.join(', ')}`);
      }
    }
  }

  /** The value of `name`, or undefined when it is not set (empty counts as not set, as in Go's envconfig). */
  text(name: (typeof KAFKA_SETTING_NAMES)[number]): string | undefined {
    const value = this.raw[name];
    return value === undefined || value.trim() === '' ? undefined : value;
  }

  get<T>(name: (typeof KAFKA_SETTING_NAMES)[number], setting: SettingSchema<T>, fallback: T): T {
    const value = this.text(name);
    if (value === undefined) return fallback;
    const result = setting.schema.safeParse(value);
    if (!result.success) throw new ConfigError(name, value, setting.accepted);
    return result.data;
  }

  /** The content of the file `name` points to, or undefined when `name` is not set. */
  file(name: (typeof KAFKA_SETTING_NAMES)[number], what: string): string | undefined {
    const path = this.text(name);
    if (path === undefined) return undefined;
    try {
      return readFileSync(path.trim(), 'utf8');
    } catch (err) {
      throw new ConfigError(name, path, `a readable file holding ${what} (${(err as Error).message})`);
    }
  }
}

function tlsSettings(reader: KafkaSettingReader): KafkaTlsSettings | undefined {
  if (!reader.get('KAFKA_ENABLE_TLS', booleanSetting, false)) return undefined;
  const cert = reader.file('KAFKA_TLS_USER_CERT_PATH', 'the client certificate (PEM)');
  const key = reader.file('KAFKA_TLS_USER_KEY_PATH', 'the client key (PEM)');
  if ((cert === undefined) !== (key === undefined)) {
    const missing = cert === undefined ? 'KAFKA_TLS_USER_CERT_PATH' : 'KAFKA_TLS_USER_KEY_PATH';
    throw new ConfigError(
      missing,
      '',
      'a file path: mutual TLS needs both the client certificate and its key',
    );
  }
  return Object.freeze({
    ca: reader.file('KAFKA_TLS_CA_CERT_PATH', 'the CA certificate (PEM)'),
    cert,
    key,
    insecureSkipVerify: reader.get('KAFKA_TLS_INSECURE_SKIP_VERIFY', booleanSetting, false),
  });
}

function credential(
  reader: KafkaSettingReader,
  name: 'KAFKA_SASL_CLIENT_ID_PATH' | 'KAFKA_SASL_CLIENT_SECRET_PATH',
) {
  const what = name === 'KAFKA_SASL_CLIENT_ID_PATH' ? 'the SASL user name' : 'the SASL password';
  const content = reader.file(name, what)?.trim();
  if (content === undefined || content === '') {
    throw new ConfigError(name, reader.text(name) ?? '', `the path of a non-empty file holding ${what}`);
  }
  return content;
}

function saslSettings(reader: KafkaSettingReader): KafkaSaslSettings | undefined {
  if (!reader.get('KAFKA_ENABLE_SASL', booleanSetting, false)) return undefined;
  return Object.freeze({
    mechanism: reader.get('KAFKA_SASL_TYPE', saslTypeSetting, 'plain'),
    username: credential(reader, 'KAFKA_SASL_CLIENT_ID_PATH'),
    password: credential(reader, 'KAFKA_SASL_CLIENT_SECRET_PATH'),
  });
}

/**
 * Parses the KAFKA_* settings (name → text, as the agent's config layer collects them) into
 * frozen {@link KafkaSettings}; throws ConfigError naming the setting, the value and what is
 * accepted.
 */
export function parseKafkaSettings(raw: Readonly<Record<string, string>>): KafkaSettings {
  const reader = new KafkaSettingReader(raw);
  const brokersText = reader.text('KAFKA_BROKERS');
  if (brokersText === undefined) {
    throw new ConfigError('KAFKA_BROKERS', '', `${brokersSetting.accepted}; EXPORT=kafka needs it`);
  }
  const compression = reader.get('KAFKA_COMPRESSION', compressionSetting, 'none');
  if (compression === 'zstd') {
    throw new ConfigError(
      'KAFKA_COMPRESSION',
      reader.text('KAFKA_COMPRESSION') ?? '',
      `one of ${SUPPORTED_KAFKA_COMPRESSIONS.join(', ')}: every zstd compressor for Node.js is a native ` +
        'module compiled or downloaded by an install script, which flowtap does not depend on ' +
        '(flowtap collect reads zstd-compressed topics all the same)',
    );
  }
  return Object.freeze({
    brokers: Object.freeze(reader.get('KAFKA_BROKERS', brokersSetting, [])),
    topic: reader.get('KAFKA_TOPIC', topicSetting, DEFAULT_KAFKA_TOPIC),
    batchMessages: reader.get(
      'KAFKA_BATCH_MESSAGES',
      integerSetting(1, MAX_KAFKA_BATCH_MESSAGES),
      DEFAULT_KAFKA_BATCH_MESSAGES,
    ),
    batchBytes: reader.get(
      'KAFKA_BATCH_SIZE',
      integerSetting(1, MAX_KAFKA_BATCH_BYTES),
      DEFAULT_KAFKA_BATCH_BYTES,
    ),
    compression,
    tls: tlsSettings(reader),
    sasl: saslSettings(reader),
  });
}
