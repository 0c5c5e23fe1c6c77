/**
 * The system libbpf (libbpf.so.1, 1.1 or later) and the few libc calls flowtap needs, bound
 * through koffi. Only this module knows C signatures and option-struct layouts; everything else
 * calls the typed wrappers below. Pointers are `bigint` (koffi's form), file descriptors numbers.
 *
 * libbpf's own log lines are captured (never printed) so errors can quote the verifier's reason.
 */
import koffi, { type LibraryHandle } from 'koffi';
import { NotSupportedError } from '../errors.ts';

/** Kernel map types flowtap creates itself (enum bpf_map_type). */
export const BpfMapType = { HASH: 1, PERCPU_HASH: 5, ARRAY_OF_MAPS: 12, RINGBUF: 27 } as const;

/** Flag of `bpf_map_create`: entries are allocated when inserted, not all at creation. */
export const BPF_F_NO_PREALLOC = 1;

/** Kernel attach types of TCX links (enum bpf_attach_type, Linux 6.6+). */
export const BpfAttachType = { TCX_INGRESS: 46, TCX_EGRESS: 47 } as const;

/** Attach points of a clsact hook (enum bpf_tc_attach_point). */
export const TcAttachPoint = { INGRESS: 1, EGRESS: 2 } as const;

/** Flag of `bpf_tc_attach`: replace a filter with the same handle and priority. */
export const BPF_TC_F_REPLACE = 1;

const SIZE_OF_TC_HOOK = 24;
const SIZE_OF_TC_OPTS = 32;
const SIZE_OF_BATCH_OPTS = 24;
const SIZE_OF_MAP_CREATE_OPTS = 48;
/** Offsets in `bpf_map_create_opts` after `sz` and the four BTF ids. */
const MAP_CREATE_OPTS_INNER_MAP_FD = 24;
const MAP_CREATE_OPTS_MAP_FLAGS = 28;
const MAX_LOG_LINES = 64;
const LIBBPF_WARN = 0;

let bound: ReturnType<typeof bind> | undefined;
const logLines: string[] = [];

function bind() {
  let lib: LibraryHandle;
  try {
    lib = koffi.load('libbpf.so.1');
  } catch (cause) {
    throw new NotSupportedError(
      'libbpf',
      'live capture needs the system libbpf (libbpf.so.1, version 1.1 or later): install it ' +
        '(Debian/Ubuntu: apt-get install libbpf1), or use pcap mode: flowtap read FILE',
      { cause },
    );
  }
  const libc = koffi.load('libc.so.6');
  const testRunOpts = koffi.struct('bpf_test_run_opts', {
    sz: 'size_t',
    data_in: 'const void *',
    data_out: 'void *',
    data_size_in: 'uint32_t',
    data_size_out: 'uint32_t',
    ctx_in: 'const void *',
    ctx_out: 'void *',
    ctx_size_in: 'uint32_t',
    ctx_size_out: 'uint32_t',
    retval: 'uint32_t',
    repeat: 'int',
    duration: 'uint32_t',
    flags: 'uint32_t',
    cpu: 'uint32_t',
    batch_size: 'uint32_t',
  });
  // Registered by name for clock_gettime's signature below.
  koffi.struct('flowtap_timespec', { tv_sec: 'int64_t', tv_nsec: 'int64_t' });
  const printFn = koffi.proto('int flowtap_libbpf_print_fn(int level, const char *fmt, void *args)');
  const vsnprintf = libc.func('int vsnprintf(_Out_ uint8_t *buf, size_t size, const char *fmt, void *args)');
  const lineBuf = Buffer.alloc(1024);
  const printer = koffi.register((level: number, fmt: string, args: unknown) => {
    if (level !== LIBBPF_WARN) return 0; // info and debug lines are progress, not reasons
    const n = vsnprintf(lineBuf, lineBuf.length, fmt, args);
    const line = lineBuf.toString('utf8', 0, Math.min(Math.max(n, 0), lineBuf.length - 1)).trimEnd();
    if (line !== '') {
      logLines.push(line);
      if (logLines.length > MAX_LOG_LINES) logLines.shift();
    }
    return 0;
  }, koffi.pointer(printFn));
  lib.func('void *libbpf_set_print(void *fn)')(printer);

  return {
    testRunOptsType: testRunOpts,
    objectOpenFile: lib.func('void *bpf_object__open_file(const char *path, const void *opts)'),
    objectLoad: lib.func('int bpf_object__load(void *obj)'),
    objectClose: lib.func('void bpf_object__close(void *obj)'),
    objectFindMap: lib.func('void *bpf_object__find_map_by_name(void *obj, const char *name)'),
    objectFindProgram: lib.func('void *bpf_object__find_program_by_name(void *obj, const char *name)'),
    objectNextProgram: lib.func('void *bpf_object__next_program(const void *obj, void *prog)'),
    programName: lib.func('const char *bpf_program__name(const void *prog)'),
    mapFd: lib.func('int bpf_map__fd(void *map)'),
    mapSetMaxEntries: lib.func('int bpf_map__set_max_entries(void *map, uint32_t n)'),
    mapSetInnerMapFd: lib.func('int bpf_map__set_inner_map_fd(void *map, int fd)'),
    mapSetInitialValue: lib.func('int bpf_map__set_initial_value(void *map, const void *data, size_t size)'),
    mapReuseFd: lib.func('int bpf_map__reuse_fd(void *map, int fd)'),
    programFd: lib.func('int bpf_program__fd(void *prog)'),
    programSetAutoload: lib.func('int bpf_program__set_autoload(void *prog, bool autoload)'),
    programAttach: lib.func('void *bpf_program__attach(const void *prog)'),
    linkDestroy: lib.func('int bpf_link__destroy(void *link)'),
    mapCreate: lib.func(
      'int bpf_map_create(int type, const char *name, uint32_t key_size, uint32_t value_size, uint32_t max_entries, const void *opts)',
    ),
    mapUpdateElem: lib.func(
      'int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags)',
    ),
    mapLookupElem: lib.func('int bpf_map_lookup_elem(int fd, const void *key, void *value)'),
    mapDeleteElem: lib.func('int bpf_map_delete_elem(int fd, const void *key)'),
    mapLookupAndDeleteElem: lib.func(
      'int bpf_map_lookup_and_delete_elem(int fd, const void *key, void *value)',
    ),
    mapLookupBatch: lib.func(
      'int bpf_map_lookup_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values, void *count, const void *opts)',
    ),
    mapLookupAndDeleteBatch: lib.func(
      'int bpf_map_lookup_and_delete_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values, void *count, const void *opts)',
    ),
    linkCreate: lib.func(
      'int bpf_link_create(int prog_fd, int target_fd, int attach_type, const void *opts)',
    ),
    tcHookCreate: lib.func('int bpf_tc_hook_create(void *hook)'),
    tcHookDestroy: lib.func('int bpf_tc_hook_destroy(void *hook)'),
    tcAttach: lib.func('int bpf_tc_attach(const void *hook, void *opts)'),
    tcDetach: lib.func('int bpf_tc_detach(const void *hook, const void *opts)'),
    tcQuery: lib.func('int bpf_tc_query(const void *hook, void *opts)'),
    progTestRun: lib.func('int bpf_prog_test_run_opts(int prog_fd, _Inout_ bpf_test_run_opts *opts)'),
    progQuery: lib.func(
      'int bpf_prog_query(int target_fd, int type, uint32_t query_flags, void *attach_flags, void *prog_ids, void *prog_cnt)',
    ),
    progGetFdById: lib.func('int bpf_prog_get_fd_by_id(uint32_t id)'),
    objGetInfoByFd: lib.func('int bpf_obj_get_info_by_fd(int fd, void *info, void *len)'),
    enableStats: lib.func('int bpf_enable_stats(int type)'),
    probeMapType: lib.func('int libbpf_probe_bpf_map_type(int type, const void *opts)'),
    probeHelper: lib.func('int libbpf_probe_bpf_helper(int prog_type, int helper_id, const void *opts)'),
    numPossibleCpus: lib.func('int libbpf_num_possible_cpus(void)'),
    close: libc.func('int close(int fd)'),
    mmap: libc.func('void *mmap(void *addr, size_t len, int prot, int flags, int fd, intptr_t off)'),
    munmap: libc.func('int munmap(void *addr, size_t len)'),
    clockGettime: libc.func('int clock_gettime(int clock, _Out_ flowtap_timespec *ts)'),
    ifNameToIndex: libc.func('uint32_t if_nametoindex(const char *name)'),
    getpagesize: libc.func('int getpagesize(void)'),
  };
}

/** The bound functions; binds on first use so importing this module needs no libbpf. */
export function libbpf(): ReturnType<typeof bind> {
  bound ??= bind();
  return bound;
}

/** libbpf log lines since the last call (what the verifier or loader said), and forgets them. */
export function takeLibbpfLog(): string[] {
  return logLines.splice(0, logLines.length);
}

/** The errno koffi saved after the last call. */
export function lastErrno(): number {
  return koffi.errno();
}

/** Option struct `bpf_tc_hook` for `ifIndex` and the given attach points. */
export function tcHook(ifIndex: number, attachPoint: number): Buffer {
  const hook = Buffer.alloc(SIZE_OF_TC_HOOK);
  hook.writeBigUInt64LE(BigInt(SIZE_OF_TC_HOOK), 0);
  hook.writeInt32LE(ifIndex, 8);
  hook.writeUInt32LE(attachPoint, 12);
  return hook;
}

/** Option struct `bpf_tc_opts`. Read `prog_id` back with {@link tcOptsProgId}. */
export function tcOpts(fields: {
  progFd?: number;
  flags?: number;
  handle: number;
  priority: number;
}): Buffer {
  const opts = Buffer.alloc(SIZE_OF_TC_OPTS);
  opts.writeBigUInt64LE(BigInt(SIZE_OF_TC_OPTS), 0);
  opts.writeInt32LE(fields.progFd ?? 0, 8);
  opts.writeUInt32LE(fields.flags ?? 0, 12);
  opts.writeUInt32LE(fields.handle, 20);
  opts.writeUInt32LE(fields.priority, 24);
  return opts;
}

/** The `prog_id` field of a `bpf_tc_opts` filled by `bpf_tc_query`. */
export function tcOptsProgId(opts: Buffer): number {
  return opts.readUInt32LE(16);
}

/** Option struct `bpf_map_batch_opts` with no flags. */
export function batchOpts(): Buffer {
  const opts = Buffer.alloc(SIZE_OF_BATCH_OPTS);
  opts.writeBigUInt64LE(BigInt(SIZE_OF_BATCH_OPTS), 0);
  return opts;
}

/**
 * Option struct `bpf_map_create_opts`: the inner map of a map of maps (its template) and the
 * map flags, when given; no field is set otherwise.
 */
export function mapCreateOpts(fields: { innerMapFd?: number; mapFlags?: number } = {}): Buffer {
  const opts = Buffer.alloc(SIZE_OF_MAP_CREATE_OPTS);
  opts.writeBigUInt64LE(BigInt(SIZE_OF_MAP_CREATE_OPTS), 0);
  opts.writeUInt32LE(fields.innerMapFd ?? 0, MAP_CREATE_OPTS_INNER_MAP_FD);
  opts.writeUInt32LE(fields.mapFlags ?? 0, MAP_CREATE_OPTS_MAP_FLAGS);
  return opts;
}
