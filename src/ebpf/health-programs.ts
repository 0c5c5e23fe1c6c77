/**
 * Loading and attaching the TCP health programs of bpf/health.bpf.o. Each feature gets its own
 * copy of the object with one program loaded: the first hook of its list (health-hooks.ts) that
 * the kernel loads and attaches. A kernel that refuses one hook (this project's CI kernel refuses
 * fentry programs with EPERM) costs a try; one that refuses them all disables the feature, and
 * the reasons are kept for the one log line that says so. Every copy shares the health map and
 * the counters of the TC pair (bpf_map__reuse_fd). Owns its objects and links: `close()`
 * releases them all.
 */
import { InputError } from '../errors.ts';
import { packagePath } from '../package-files.ts';
import {
  HEALTH_FEATURE_SETTING,
  type HealthFeature,
  type HealthHook,
  type HealthHooksMode,
  hookCandidates,
} from './health-hooks.ts';
import { errnoName } from './kernel-error.ts';
import { lastErrno, libbpf, takeLibbpfLog } from './libbpf.ts';
import { type ProgramRunStats, programRunStats } from './object.ts';
import { HEALTH_MAP } from './section-maps.ts';

/** The committed compiled health programs. */
export const HEALTH_OBJECT_PATH = packagePath('bpf', 'health.bpf.o');

const COUNTERS_MAP = 'flowtap_counters';
const RODATA_MAP = '.rodata';
/** sizeof(struct flowtap_health_config): dedup (u32). */
const HEALTH_CONFIG_BYTES = 4;

/** What the kernel must offer each feature, for the message of a kernel that has none of its hooks. */
const FEATURE_NEEDS: Readonly<Record<HealthFeature, string>> = {
  rtt: 'fentry programs (Linux 5.5+ with BTF) or the tcp_probe tracepoint (Linux 4.16+)',
  retrans: 'the tcp_retransmit_skb tracepoint (Linux 4.15+)',
  drops: 'the kfree_skb tracepoint with drop reasons (Linux 5.17+)',
};

/** How one feature is hooked, or why it is not. */
export interface HealthHookChoice {
  readonly feature: HealthFeature;
  /** The hook in use; undefined when the kernel refused every one. */
  readonly hook: HealthHook | undefined;
  /** Each hook tried before, and why it was refused. */
  readonly refused: readonly string[];
}

/** The one line that says a feature is off because the kernel refused every hook. */
export function unavailableMessage(choice: HealthHookChoice): string {
  const setting = HEALTH_FEATURE_SETTING[choice.feature];
  return (
    `${setting} is on, but this kernel refused every hook for it (${choice.refused.join('; ')}): ` +
    `${choice.feature} is not measured, everything else runs; it needs ${FEATURE_NEEDS[choice.feature]}`
  );
}

/** What {@link HealthPrograms.load} needs. */
export interface HealthProgramsOptions {
  /** Features to hook. */
  features: readonly HealthFeature[];
  /** HEALTH_HOOKS. */
  mode: HealthHooksMode;
  /** Keys without MACs, interface and direction, as the TC pair's (DEDUPER=firstCome). */
  dedup: boolean;
  /** Fd of the health map slot (SectionMaps.outerFd). */
  healthMapFd: number;
  /** Fd of the TC pair's counters (FlowObject.countersFd). */
  countersFd: number;
  /** Compiled object to load; the committed one by default. */
  objectPath?: string;
}

interface AttachedHook {
  obj: bigint;
  link: bigint;
  progFd: number;
}

/** A loaded, attached copy of the object, or the reason it could not be had. */
type Attempt = { attached: AttachedHook } | { refused: string };

/** The health programs in use; `close()` detaches and releases them. */
export class HealthPrograms {
  #attached: AttachedHook[];

  private constructor(
    attached: AttachedHook[],
    /** How each requested feature is hooked, in the order asked. */
    readonly choices: readonly HealthHookChoice[],
  ) {
    this.#attached = attached;
  }

  /**
   * Hooks each feature of `opts.features` with the first hook that loads and attaches. Never
   * throws for a refused hook (the choice says why); throws InputError when the object itself
   * cannot be opened or does not match this flowtap.
   */
  static load(opts: HealthProgramsOptions): HealthPrograms {
    const attached: AttachedHook[] = [];
    const choices: HealthHookChoice[] = [];
    try {
      for (const feature of opts.features) {
        const refused: string[] = [];
        let chosen: HealthHook | undefined;
        for (const hook of hookCandidates(feature, opts.mode)) {
          const attempt = attachHook(hook, opts);
          if ('refused' in attempt) {
            refused.push(`${hook.hook}: ${attempt.refused}`);
            continue;
          }
          attached.push(attempt.attached);
          chosen = hook;
          break;
        }
        choices.push(Object.freeze({ feature, hook: chosen, refused: Object.freeze(refused) }));
      }
    } catch (err) {
      for (const hook of attached) release(hook);
      throw err;
    }
    return new HealthPrograms(attached, Object.freeze(choices));
  }

  /** Kernel time spent in the health programs while statistics were enabled (enableProgramStats). */
  runStats(): ProgramRunStats {
    let runTimeNs = 0;
    let runs = 0;
    for (const hook of this.#attached) {
      const stats = programRunStats(hook.progFd);
      runTimeNs += stats.runTimeNs;
      runs += stats.runs;
    }
    return { runTimeNs, runs };
  }

  /** Detaches every program and releases the objects; safe to call twice. */
  close(): void {
    for (const hook of this.#attached) release(hook);
    this.#attached = [];
  }
}

function release(hook: AttachedHook): void {
  const lib = libbpf();
  lib.linkDestroy(hook.link);
  lib.objectClose(hook.obj);
}

/** The last thing libbpf said, or the errno's name: why the kernel refused. */
function refusal(errno: number): string {
  const log = takeLibbpfLog();
  const said = log.find((line) => /load failed|failed to attach|failed to create/.test(line)) ?? log[0];
  return said?.replace(/^libbpf: /, '') ?? errnoName(Math.abs(errno));
}

/** Opens a copy of the object with only `hook.program` loadable, loads and attaches it. */
function attachHook(hook: HealthHook, opts: HealthProgramsOptions): Attempt {
  const lib = libbpf();
  const path = opts.objectPath ?? HEALTH_OBJECT_PATH;
  const obj: bigint | null = lib.objectOpenFile(path, null);
  if (!obj) {
    throw new InputError(
      `cannot open the eBPF object ${path} (${errnoName(lastErrno())}): reinstall flowtap or rebuild it with npm run build:bpf`,
    );
  }
  let keep = false;
  try {
    let found = false;
    for (
      let prog: bigint | null = lib.objectNextProgram(obj, null);
      prog;
      prog = lib.objectNextProgram(obj, prog)
    ) {
      const wanted = lib.programName(prog) === hook.program;
      found ||= wanted;
      lib.programSetAutoload(prog, wanted);
    }
    if (!found) {
      throw new InputError(
        `the eBPF object ${path} has no program ${hook.program}: it does not match this flowtap; rebuild with npm run build:bpf`,
      );
    }
    reuseMap(obj, HEALTH_MAP, opts.healthMapFd, path);
    reuseMap(obj, COUNTERS_MAP, opts.countersFd, path);
    const config = Buffer.alloc(HEALTH_CONFIG_BYTES);
    config.writeUInt32LE(opts.dedup ? 1 : 0, 0);
    if (lib.mapSetInitialValue(findMap(obj, RODATA_MAP, path), config, HEALTH_CONFIG_BYTES) < 0) {
      throw new InputError(
        `the eBPF object ${path} has another configuration layout: rebuild with npm run build:bpf`,
      );
    }
    takeLibbpfLog();
    const loaded: number = lib.objectLoad(obj);
    if (loaded < 0) return { refused: `not loaded, ${refusal(loaded)}` };
    const prog: bigint = lib.objectFindProgram(obj, hook.program);
    const link: bigint | null = lib.programAttach(prog);
    if (!link) return { refused: `not attached, ${refusal(-lastErrno())}` };
    keep = true;
    return { attached: { obj, link, progFd: lib.programFd(prog) } };
  } finally {
    if (!keep) lib.objectClose(obj);
  }
}

function findMap(obj: bigint, name: string, path: string): bigint {
  const map: bigint | null = libbpf().objectFindMap(obj, name);
  if (!map) {
    throw new InputError(
      `the eBPF object ${path} has no map ${name}: it does not match this flowtap; rebuild with npm run build:bpf`,
    );
  }
  return map;
}

function reuseMap(obj: bigint, name: string, fd: number, path: string): void {
  const result: number = libbpf().mapReuseFd(findMap(obj, name, path), fd);
  if (result < 0) {
    throw new InputError(
      `the eBPF object ${path} declares ${name} unlike the loaded datapath (${errnoName(-result)}): rebuild with npm run build:bpf`,
    );
  }
}
