#!/usr/bin/env node
/**
 * The only entry point: parses the command line and runs one command. Expected failures print
 * their message (no stack trace) and exit with the error's code: 2 for bad settings, 1 otherwise.
 */
import { Command, CommanderError } from 'commander';
import { epilogueOf } from './agent/commands/error-epilogue.ts';
import { registerCommands } from './agent/commands/index.ts';
import { createLogger } from './agent/logger.ts';
import { watchProcessStdout } from './agent/stdout.ts';
import { FlowtapError } from './errors.ts';
import { unhandledRejections } from './unhandled-rejections.ts';
import { VERSION } from './version.ts';

const program = new Command('flowtap')
  .description('Network flow monitoring agent: eBPF capture, pcap reading, flow accounting and export')
  .version(VERSION, '-V, --version')
  .showHelpAfterError()
  .exitOverride();

// A library's stray promise rejection (kafkajs has known ones) must not end an agent that is
// counting traffic, nor pass unseen: it is counted by origin (/metrics) and logged once per origin.
// Commands hand the tracker their configured logger; until then it logs at info.
unhandledRejections.useLogger(createLogger('info'));
process.on('unhandledRejection', (reason) => unhandledRejections.record(reason));

// A reader of stdout that goes away (`flowtap read x.pcap | head -1`) ends the command quietly.
watchProcessStdout();
registerCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.exitCode = exitCodeOf(err);
}

function exitCodeOf(err: unknown): number {
  if (err instanceof CommanderError) {
    // commander already printed help, version or the usage error.
    if (err.exitCode === 0) return 0;
    return 2;
  }
  if (err instanceof FlowtapError) {
    process.stderr.write(`flowtap: ${err.message}\n${epilogueOf(err)}`);
    return err.exitCode;
  }
  process.stderr.write(
    `flowtap: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n${epilogueOf(err)}`,
  );
  return 1;
}
