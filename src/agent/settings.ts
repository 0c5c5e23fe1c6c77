/**
 * Value parsers of the agent's settings, one zod schema each. A setting arrives as text (flag or
 * environment variable) or as a YAML/JSON value (config file); each parser accepts both and says in
 * `accepted` what it takes, for the ConfigError that names a wrong value.
 *
 * Schemas are built on a parser's first use, and zod is loaded then: a command given no setting
 * (`flowtap read FILE`) never loads it, and zod holds about 12 MB.
 */
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import type { z as Zod } from 'zod';
import { parseAgeMs, parseDurationMs } from './duration.ts';

/** zod's `z` namespace. */
type ZodApi = typeof Zod;
/** Builds a schema from zod's `z`, when the first value is parsed. */
type SchemaBuilder<T, In = unknown> = (z: ZodApi) => Zod.ZodType<T, In>;

let zodApi: ZodApi | undefined;

function loadZod(): ZodApi {
  zodApi ??= (createRequire(import.meta.url)('zod') as { z: ZodApi }).z;
  return zodApi;
}

/** A raw setting value as a flag, an environment variable or a config file gives it. */
export type RawValue = string | number | boolean | readonly unknown[];

/** Turns a raw value into a typed one, or reports what would have been accepted. */
export interface SettingParser<T> {
  /** What the setting accepts, in words, for error messages and `--help`. */
  readonly accepted: string;
  /** The typed value, or undefined when `raw` is not acceptable. */
  parse(raw: RawValue): T | undefined;
}

function fromSchema<T>(accepted: string, build: SchemaBuilder<T>): SettingParser<T> {
  let schema: Zod.ZodType<T> | undefined;
  return {
    accepted,
    parse(raw) {
      schema ??= build(loadZod());
      const result = schema.safeParse(raw);
      return result.success ? result.data : undefined;
    },
  };
}

function decimalText(z: ZodApi) {
  return z
    .string()
    .trim()
    .regex(/^\d+$/)
    .transform((s) => Number(s));
}

/** A whole number from `min` to `max`, as text or a number. */
export function integerSetting(min: number, max: number): SettingParser<number> {
  return fromSchema(`an integer from ${min} to ${max}`, (z) =>
    z.union([z.number(), decimalText(z)]).pipe(z.number().int().min(min).max(max)),
  );
}

/** One of `choices`, case-insensitive. */
export function choiceSetting<const C extends readonly [string, ...string[]]>(
  choices: C,
): SettingParser<C[number]> {
  return fromSchema(
    choices.join(', '),
    (z) => z.string().trim().toLowerCase().pipe(z.enum(choices)) as unknown as Zod.ZodType<C[number]>,
  );
}

/** A Go duration (`500ms`, `5s`, `1m30s`) from `minMs` to `maxMs`, as milliseconds. */
export function durationSetting(minMs: number, maxMs: number, example: string): SettingParser<number> {
  return fromSchema(`a Go duration such as ${example}, from ${minMs}ms to ${maxMs / 1000}s`, (z) =>
    z
      .string()
      .transform((s, ctx) => {
        const ms = parseDurationMs(s);
        if (ms === undefined) {
          ctx.addIssue({ code: 'custom', message: 'not a duration' });
          return z.NEVER;
        }
        return ms;
      })
      .pipe(z.number().min(minMs).max(maxMs)),
  );
}

const BYTE_UNITS: Readonly<Record<string, number>> = {
  b: 1,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
};

/** A byte size from `min` to `max`: a number of bytes, or with a unit (`512MiB`, `2GiB`, `300MB`). */
export function byteSizeSetting(min: number, max: number): SettingParser<number> {
  const sizeText = (z: ZodApi) =>
    z
      .string()
      .trim()
      .transform((s, ctx) => {
        const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(s);
        const unit = m ? BYTE_UNITS[m[2] === '' ? 'b' : m[2].toLowerCase()] : undefined;
        if (!m || unit === undefined) {
          ctx.addIssue({ code: 'custom', message: 'not a byte size' });
          return z.NEVER;
        }
        return Math.floor(Number(m[1]) * unit);
      });
  return fromSchema(
    `a byte size such as 512MiB or 2GiB (units B, KiB, MiB, GiB, TiB, KB, MB, GB, TB) from ${min} to ${max} bytes`,
    (z) => z.union([z.number(), sizeText(z)]).pipe(z.number().int().min(min).max(max)),
  );
}

/** A comma-separated list (or a file's array) of non-empty strings; empty text is an empty list. */
export function listSetting(
  accepted: string,
  item: SchemaBuilder<string, string> = (z) => z.string(),
): SettingParser<string[]> {
  return fromSchema(accepted, (z) => {
    const items = z.array(z.string().trim().min(1).pipe(item(z)));
    return z.union([
      z
        .string()
        .transform((s) =>
          s
            .split(',')
            .map((part) => part.trim())
            .filter((part) => part !== ''),
        )
        .pipe(items),
      items,
    ]);
  });
}

/**
 * Ports from 1 to 65535: one (a number or text), a comma-separated list, or a file's list; each
 * once, in the order given.
 */
export const portListSetting: SettingParser<number[]> = fromSchema(
  'a port from 1 to 65535, or a comma-separated list of them (53,5353)',
  (z) => {
    const port = z.union([z.number(), decimalText(z)]).pipe(z.number().int().min(1).max(65_535));
    const ports = z.array(port).min(1);
    return z
      .union([
        z.number().transform((n) => [n]),
        z.string().transform((s) => s.split(',').map((part) => part.trim())),
        z.array(z.union([z.number(), z.string()])),
      ])
      .pipe(ports)
      .transform((list) => [...new Set(list)]);
  },
);

/** An interface name or a `/regex/` that compiles. */
export const interfacePatternItem: SchemaBuilder<string, string> = (z) =>
  z.string().refine((entry) => {
    if (entry.length < 2 || !entry.startsWith('/') || !entry.endsWith('/')) return entry.length <= 15;
    try {
      new RegExp(entry.slice(1, -1));
      return true;
    } catch {
      return false;
    }
  });

/** A host name or IP address (no port). */
export const hostSetting: SettingParser<string> = fromSchema('a host name or IP address', (z) =>
  z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9._:-]+$/),
);

/** An IPv4 or IPv6 address (no host name: the value is written into flows as it is). */
export const ipAddressSetting: SettingParser<string> = fromSchema('an IPv4 or IPv6 address', (z) =>
  z
    .string()
    .trim()
    .refine((s) => isIP(s) !== 0),
);

/** `host:port`, `[ipv6]:port`, `:port` (any host) or a bare port; `defaultHost` fills a missing host. */
export function hostPortSetting(
  defaultHost: string,
  minPort = 1,
): SettingParser<{ host: string; port: number }> {
  const port = integerSetting(minPort, 65_535);
  return {
    accepted: `host:port (or [ipv6]:port, or a port alone) with a port from ${minPort} to 65535`,
    parse(raw) {
      if (typeof raw !== 'string' && typeof raw !== 'number') return undefined;
      const text = String(raw).trim();
      const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._-]*)):(\d+)$/.exec(text) ?? /^()()(\d+)$/.exec(text);
      if (!m) return undefined;
      const p = port.parse(m[3]);
      if (p === undefined) return undefined;
      return { host: m[1] || m[2] || defaultHost, port: p };
    },
  };
}

/** `true`/`false` (also `1`/`0`), as text or a YAML boolean; a flag given alone reads as true. */
export const booleanSetting: SettingParser<boolean> = fromSchema('true or false', (z) =>
  z.union([
    z.boolean(),
    z
      .string()
      .trim()
      .toLowerCase()
      .pipe(z.enum(['true', 'false', '1', '0']))
      .transform((s) => s === 'true' || s === '1'),
  ]),
);

/** An age such as `7d` or `36h` (Go duration, plus `d` and `w`) as milliseconds; `0` allowed. */
export const ageSetting: SettingParser<number> = fromSchema(
  'an age such as 7d, 36h or 2w (0: keep forever)',
  (z) =>
    z.string().transform((s, ctx) => {
      const ms = parseAgeMs(s);
      if (ms !== undefined) return ms;
      ctx.addIssue({ code: 'custom', message: 'not an age' });
      return z.NEVER;
    }),
);

/** A file path (not checked here: the module that reads the file names the setting when it cannot). */
export const pathSetting: SettingParser<string> = fromSchema('a file path', (z) => z.string().trim().min(1));
