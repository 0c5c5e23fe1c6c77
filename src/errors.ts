/**
 * Every error flowtap raises on purpose. Each has a stable `code` that scripts and tests can
 * match, and a message that says what went wrong and what to do about it. The CLI prints the
 * message (never a stack trace) and picks the exit code from the class.
 */

/** Base class: `code` is stable across releases, `message` is for people. */
export class FlowtapError extends Error {
  /** Stable machine-readable identifier, e.g. `FLOWTAP_TRUNCATED_RECORD`. */
  readonly code: string;
  /** Process exit code the CLI uses when this error ends a command. */
  readonly exitCode: number = 1;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/**
 * Exit code of `read` and `decode` when the input ends inside a record or packet: every whole one
 * before it was counted and exported, so the output is good but the input was cut short
 * (a capture still being written, a copy interrupted).
 */
export const TRUNCATED_INPUT_EXIT_CODE = 3;

/** Binary input ends in the middle of a record. */
export class TruncatedRecordError extends FlowtapError {
  override readonly exitCode = TRUNCATED_INPUT_EXIT_CODE;
  constructor(
    /** Byte offset where the incomplete record starts. */
    readonly offset: number,
    /** Bytes a whole record needs. */
    readonly recordBytes: number,
    /** Bytes that were available from `offset`. */
    readonly availableBytes: number,
    layout: string,
  ) {
    super(
      'FLOWTAP_TRUNCATED_RECORD',
      `truncated ${layout} record at byte offset ${offset}: ${availableBytes} of ${recordBytes} bytes present; ` +
        `check that the input is whole and that --layout matches how it was written`,
    );
  }
}

/** A record is complete but one of its fields holds a value the layout does not allow. */
export class MalformedRecordError extends FlowtapError {
  constructor(
    /** Byte offset of the offending field. */
    readonly offset: number,
    /** Name of the offending field. */
    readonly field: string,
    detail: string,
    layout: string,
  ) {
    super(
      'FLOWTAP_MALFORMED_RECORD',
      `malformed ${layout} record: field ${field} at byte offset ${offset} ${detail}; ` +
        `check that --layout matches how the input was written`,
    );
  }
}

/**
 * A packet capture (pcap/pcapng) is damaged where its framing can no longer be trusted (wrong
 * magic, impossible block or record length), so nothing after `offset` can be read.
 */
export class CaptureFormatError extends FlowtapError {
  constructor(
    /** Byte offset of the offending header or field in the capture. */
    readonly offset: number,
    /** `pcap`, `pcapng`, or `capture` before the format is known. */
    readonly format: string,
    detail: string,
  ) {
    super(
      'FLOWTAP_CAPTURE_FORMAT',
      // Before the format is known it is just "the capture", not "capture capture".
      `damaged ${format === 'capture' ? '' : `${format} `}capture at byte offset ${offset}: ${detail}; ` +
        `check that the input is a whole pcap or pcapng file (tcpdump -w, dumpcap, editcap)`,
    );
  }
}

/** A packet capture ends inside a packet record; the packets before it were all read. */
export class TruncatedCaptureError extends FlowtapError {
  override readonly exitCode = TRUNCATED_INPUT_EXIT_CODE;
  constructor(
    /** Byte offset where the incomplete packet record starts. */
    readonly offset: number,
    /** `pcap` or `pcapng`. */
    readonly format: string,
  ) {
    super(
      'FLOWTAP_TRUNCATED_CAPTURE',
      `the ${format} capture ends inside a packet record at byte offset ${offset}: every packet before it was counted; ` +
        'if the capture is still being written, read it again once it is closed',
    );
  }
}

/** A setting has a value flowtap cannot use. The CLI exits with 2 for these. */
export class ConfigError extends FlowtapError {
  override readonly exitCode = 2;
  constructor(
    /** Name of the setting as the user wrote it (flag, env var or file key). */
    readonly setting: string,
    /** The value given. */
    readonly value: string,
    /** What would have been accepted. */
    readonly accepted: string,
  ) {
    super('FLOWTAP_CONFIG', `invalid ${setting}=${JSON.stringify(value)}: expected ${accepted}`);
  }
}

/** A file or stream flowtap was told to read cannot be opened or read. */
export class InputError extends FlowtapError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FLOWTAP_INPUT', message, options);
  }
}

/** A kernel or system feature flowtap needs is missing; names the feature and what has it. */
export class NotSupportedError extends FlowtapError {
  constructor(
    /** The missing feature, e.g. `BTF`, `TCX links`. */
    readonly feature: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super('FLOWTAP_NOT_SUPPORTED', message, options);
  }
}

/** The process lacks a privilege (root, CAP_BPF, CAP_NET_ADMIN) for what it was asked to do. */
export class PermissionError extends FlowtapError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('FLOWTAP_PERMISSION', message, options);
  }
}

/** A network interface flowtap was told to use does not exist (or went away) or cannot be used. */
export class InterfaceError extends FlowtapError {
  constructor(
    /** The interface name as given. */
    readonly interfaceName: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super('FLOWTAP_INTERFACE', message, options);
  }
}

/**
 * A BTF blob (the kernel's type information, /sys/kernel/btf/vmlinux) is not BTF or is damaged
 * where it was read. flowtap reads BTF only for names (drop reasons, TCP states) and goes on
 * with numbers when it cannot.
 */
export class BtfFormatError extends FlowtapError {
  constructor(
    /** Byte offset in the blob of the header field or type where the problem was found. */
    readonly offset: number,
    detail: string,
  ) {
    super(
      'FLOWTAP_BTF_FORMAT',
      `unreadable BTF at byte offset ${offset}: ${detail}; check that the file is the kernel's own BTF (/sys/kernel/btf/vmlinux)`,
    );
  }
}

/** The kernel refused an eBPF operation for a reason that is not a missing privilege or feature. */
export class EbpfError extends FlowtapError {
  constructor(
    /** What was being attempted, e.g. `loading bpf/flows.bpf.o`. */
    readonly operation: string,
    /** The errno the kernel or libbpf returned. */
    readonly errno: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super('FLOWTAP_EBPF', message, options);
  }
}

/** A reader or other resource was used after `close()` released what it reads. */
export class ClosedError extends FlowtapError {
  constructor(
    /** What was closed, e.g. `ring buffer reader`. */
    readonly resource: string,
    /** What was attempted on it. */
    readonly operation: string,
  ) {
    super(
      'FLOWTAP_CLOSED',
      `${operation} on a closed ${resource}: it was released by close(); open a new one (this is a bug in the caller)`,
    );
  }
}

/** An exporter could not deliver a batch to its collector (refused, closed, or stopped while waiting). */
export class ExportError extends FlowtapError {
  constructor(
    /** Exporter name, e.g. `grpc`, `ipfix+tcp`. */
    readonly exporter: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super('FLOWTAP_EXPORT', `${exporter} export: ${message}`, options);
  }
}

/** A message received from the network (a pbflow request, an IPFIX message) cannot be decoded. */
export class MalformedMessageError extends FlowtapError {
  constructor(
    /** Wire protocol of the message, e.g. `pbflow`. */
    readonly protocol: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(
      'FLOWTAP_MALFORMED_MESSAGE',
      `malformed ${protocol} message: ${detail}; check that the sender speaks ${protocol}`,
      options,
    );
  }
}

/** A server (the pbflow collector) cannot listen on the address it was given. */
export class ListenError extends FlowtapError {
  constructor(
    /** `host:port` as it was to be bound. */
    readonly address: string,
    options?: { cause?: unknown },
  ) {
    super(
      'FLOWTAP_LISTEN',
      `cannot listen on ${address}: ${(options?.cause as Error | undefined)?.message ?? 'unknown error'}; ` +
        `pick another --port or --host`,
      options,
    );
  }
}

/** Why a TLS handshake with a collector failed, as far as the error tells. */
export type TlsHandshakeProblem =
  | 'client-certificate-required'
  | 'client-certificate-rejected'
  | 'server-certificate-untrusted'
  | 'server-name-mismatch'
  | 'not-tls';

/**
 * A TLS handshake with a collector failed: the message names the collector, what went wrong and
 * the setting that fixes it. Exporters retry after a backoff, since either side may be fixed.
 */
export class TlsHandshakeError extends FlowtapError {
  constructor(
    /** The collector as `host:port`. */
    readonly target: string,
    readonly problem: TlsHandshakeProblem,
    message: string,
    options?: { cause?: unknown },
  ) {
    super('FLOWTAP_TLS_HANDSHAKE', message, options);
  }
}

/**
 * The flow store (an embedded DuckDB file, or ClickHouse) cannot be opened, written or queried: in
 * use by another process, damaged, not a flowtap store, unreachable, or a query the engine refused
 * (its message is kept as is).
 */
export class StoreError extends FlowtapError {
  constructor(
    /** The database file, or the ClickHouse URL (password hidden). */
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super('FLOWTAP_STORE', message, options);
  }
}

/**
 * A filter expression (pcap-filter subset) or a filter rule cannot be used. `position` is the
 * 0-based character offset in the expression where the problem starts (-1 for rules); the CLI
 * exits with 2, before anything is attached, so a filter is never half-applied.
 */
export class FilterSyntaxError extends FlowtapError {
  override readonly exitCode = 2;
  constructor(
    /** The expression (or rule text) as given. */
    readonly expression: string,
    /** 0-based character offset of the problem; -1 when the problem has no single position. */
    readonly position: number,
    /** What is wrong and what is accepted instead. */
    readonly reason: string,
  ) {
    super(
      'FLOWTAP_FILTER',
      position < 0
        ? `invalid filter: ${reason}`
        : `invalid filter at position ${position + 1}: ${reason}\n  ${expression}\n  ${' '.repeat(position)}^`,
    );
  }
}
