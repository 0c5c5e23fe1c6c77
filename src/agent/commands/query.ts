/**
 * `flowtap query QUESTION` and `flowtap query sql "SELECT ..."`: answers from the flow store the
 * agent keeps, while it runs (from a snapshot) or from a stopped agent's or copied file. Output is
 * a table on a terminal, JSON lines when piped, or CSV (`--output`).
 */
import type { Command } from 'commander';
import { ConfigError } from '../../errors.ts';
import { parseIp } from '../../model/ip.ts';
import {
  QUESTIONS,
  type Question,
  questionSql,
  RESULT_FORMATS,
  type ResultFormat,
  TIMELINE_KEYS,
  type TimelineKey,
} from '../../store/questions.ts';
import { defaultStoreDirectory, storeFile } from '../../store/store-path.ts';
import { parseAgeMs } from '../duration.ts';
import { parseTimePoint, TIME_POINT_ACCEPTED } from '../time-point.ts';
import { positiveIntOption } from './option-parsers.ts';

/** Flags shared by the commands that read the store. */
export interface StoreReadFlags {
  since?: string;
  until?: string;
  storePath?: string;
}

/** The store file the reading commands open: --store-path, else STORE_PATH, else the default. */
export function readStoreFile(flags: StoreReadFlags): string {
  return storeFile(flags.storePath ?? (process.env.STORE_PATH || defaultStoreDirectory(process.env)));
}

/** `--since`/`--until` as Unix milliseconds. */
export function readTimeWindow(
  flags: StoreReadFlags,
  nowMs = Date.now(),
): { sinceMs?: number; untilMs?: number } {
  const point = (flag: string, text: string | undefined) => {
    if (text === undefined) return undefined;
    const ms = parseTimePoint(text, nowMs);
    if (ms === undefined) throw new ConfigError(flag, text, TIME_POINT_ACCEPTED);
    return ms;
  };
  return { sinceMs: point('--since', flags.since), untilMs: point('--until', flags.until) };
}

interface QueryFlags extends StoreReadFlags {
  store?: string;
  host?: string;
  port?: number;
  by: string;
  step: string;
  limit: number;
  output?: string;
}

/** The question the words name, or the SQL after `sql`. */
function parseQuestion(words: readonly string[]): { question: Question } | { sql: string } {
  if (words[0]?.toLowerCase() === 'sql') {
    const sql = words.slice(1).join(' ').trim();
    if (sql === '')
      throw new ConfigError(
        'sql',
        '',
        'a SQL statement, e.g. flowtap query sql "SELECT count(*) FROM flows"',
      );
    return { sql };
  }
  const text = words.join(' ').toLowerCase().replace(/\s+/g, ' ').trim();
  const question = QUESTIONS.find((q) => q === text);
  if (!question)
    throw new ConfigError('question', text, `one of: ${QUESTIONS.join(', ')}, or sql "SELECT ..."`);
  return { question };
}

/** The ClickHouse store `--store` names (the client is loaded only when one is asked). */
async function clickhouseTarget(url: string) {
  const { isClickHouseUrl, parseClickHouseUrl } = await import('../../store/clickhouse-store.ts');
  if (!isClickHouseUrl(url)) {
    throw new ConfigError(
      '--store',
      url,
      'clickhouse://host[:port]/database (a DuckDB store is --store-path)',
    );
  }
  return parseClickHouseUrl('--store', url);
}

/** Registers `flowtap query`. */
export function registerQueryCommand(program: Command): void {
  program
    .command('query')
    .description(
      'answer questions from the flow store: top talkers, top ports, top conversations, flows, timeline, or sql',
    )
    .argument('<question...>', `${QUESTIONS.join(' | ')} | sql "SELECT ... FROM flows"`)
    .option('--since <time>', `flows that ended at or after this: ${TIME_POINT_ACCEPTED}`)
    .option('--until <time>', 'flows that ended before this (same forms as --since)')
    .option('--host <ip>', 'only flows from or to this address')
    .option('--port <n>', 'only flows from or to this port', positiveIntOption('--port'))
    .option('--by <key>', `timeline series: ${TIMELINE_KEYS.join(', ')}`, 'total')
    .option('--step <duration>', 'timeline step (e.g. 10s, 1m, 1h)', '1m')
    .option('--limit <n>', 'rows of the top lists and of flows', positiveIntOption('--limit'), 20)
    .option('--output <format>', `${RESULT_FORMATS.join(', ')} [table on a terminal, else json]`)
    .option('--store-path <path>', "directory or .duckdb file of the store [STORE_PATH; the agent's default]")
    .option(
      '--store <url>',
      'ask ClickHouse instead of the DuckDB store: clickhouse://[user[:password]@]host[:port]/database (as flowtap collect --to writes it)',
    )
    .addHelpText(
      'after',
      '\nThe store is read while the agent writes it (from a private snapshot copy), or from a stopped\n' +
        'agent\'s or copied file. SQL sees the view `flows`; see README "History" for its columns.\n' +
        'Examples:\n  flowtap query top talkers --since 1h\n  flowtap query flows --host 10.0.3.7 --since yesterday\n' +
        '  flowtap query timeline --by protocol --step 1m --since 30m\n  flowtap query sql "SELECT count(*) FROM flows"',
    )
    .action(async (words: string[], flags: QueryFlags) => {
      const asked = parseQuestion(words);
      const format = (flags.output ?? (process.stdout.isTTY ? 'table' : 'json')).toLowerCase();
      if (!(RESULT_FORMATS as readonly string[]).includes(format)) {
        throw new ConfigError('--output', flags.output ?? '', RESULT_FORMATS.join(', '));
      }
      const clickhouse = flags.store === undefined ? undefined : await clickhouseTarget(flags.store);
      let sql: string;
      if ('sql' in asked) {
        sql = asked.sql;
      } else {
        if (!(TIMELINE_KEYS as readonly string[]).includes(flags.by)) {
          throw new ConfigError('--by', flags.by, TIMELINE_KEYS.join(', '));
        }
        const stepMs = parseAgeMs(flags.step);
        if (stepMs === undefined || stepMs < 1)
          throw new ConfigError('--step', flags.step, 'a duration such as 10s or 1m');
        let host: Uint8Array | undefined;
        if (flags.host !== undefined) {
          host = parseIp(flags.host);
          if (!host) throw new ConfigError('--host', flags.host, 'an IPv4 or IPv6 address');
        }
        sql = questionSql(
          asked.question,
          {
            ...readTimeWindow(flags),
            limit: flags.limit,
            host,
            port: flags.port,
            by: flags.by as TimelineKey,
            stepMs,
          },
          clickhouse && (await import('../../store/clickhouse-store.ts')).dialectOf(clickhouse),
        );
      }
      if (clickhouse) {
        const { ClickHouseStore } = await import('../../store/clickhouse-store.ts');
        const { writeClickHouseResult } = await import('../../store/clickhouse-query.ts');
        const store = new ClickHouseStore(clickhouse);
        try {
          await writeClickHouseResult(store, sql, process.stdout, format as ResultFormat);
        } finally {
          await store.close();
        }
        return;
      }
      const file = readStoreFile(flags);
      // DuckDB is loaded only by the commands that use the store.
      const { openStoreReader } = await import('../../store/store-reader.ts');
      const { writeQueryResult } = await import('../../store/run-query.ts');
      const reader = await openStoreReader(file);
      try {
        await writeQueryResult(reader, file, sql, process.stdout, format as ResultFormat);
      } finally {
        reader.close();
      }
    });
}
