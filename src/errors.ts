/**
 * Typed errors with stable codes. Every failure that reaches the CLI is a KataError; the CLI maps
 * its code to an exit status in one place (exitCodeFor) and prints its message as one line.
 */
export const ERROR_CODES = [
  'E_NOT_FOUND', // unknown container id
  'E_EXISTS', // container id already in use
  'E_BAD_STATE', // operation not allowed in the container's current status
  'E_INVALID_ID', // id with characters outside [A-Za-z0-9_.+-]
  'E_INVALID_BUNDLE', // missing bundle dir, missing/unreadable/invalid config.json
  'E_UNSUPPORTED', // a config the runtime cannot honour
  'E_INVALID_ARGUMENT', // bad flag value, bad signal, ...
  'E_VM', // QEMU / virtiofsd failed to start or died
  'E_AGENT', // the guest agent failed, answered badly, or broke the protocol
  'E_PROTOCOL', // malformed bytes from the peer
  'E_TIMEOUT', // a wait ran past its deadline
  'E_MONITOR', // the monitor process failed or is unreachable
  'E_CONFIG', // bad runtime configuration
  'E_HOOK', // an OCI hook failed or timed out
  'E_NETWORK', // the container's network namespace could not be mirrored into the VM
  'E_IO', // the CLI's own stdout could not be written (read-only or invalid fd)
  'E_CGROUP', // the container's host cgroup could not be created, joined, limited or removed
  'E_INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class KataError extends Error {
  readonly code: ErrorCode;
  /** Errors met while undoing a failed operation, reported alongside the cause. */
  readonly cleanupErrors: readonly Error[];

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; cleanupErrors?: readonly Error[] }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KataError';
    this.code = code;
    this.cleanupErrors = options?.cleanupErrors ?? [];
  }

  /** The one line shown to the user: the message plus any cleanup failures. */
  oneLine(): string {
    const extra = this.cleanupErrors.map((e) => e.message).join('; ');
    const text = extra === '' ? this.message : `${this.message} (cleanup: ${extra})`;
    return text.replace(/\s*\n\s*/g, ' ');
  }
}

export function isKataError(e: unknown): e is KataError {
  return e instanceof KataError;
}

/** Wraps anything thrown into a KataError without losing a typed code that is already there. */
export function toKataError(e: unknown, fallback: ErrorCode = 'E_INTERNAL'): KataError {
  if (e instanceof KataError) return e;
  if (e instanceof Error) return new KataError(fallback, e.message, { cause: e });
  return new KataError(fallback, String(e));
}

/** Exit status for a failed command. runc exits 1 for every failure of its own. */
export function exitCodeFor(_code: ErrorCode): number {
  return 1;
}

/** Node's system errors carry a string errno code; this reads it without `any`. */
export function errnoCode(e: unknown): string | undefined {
  if (typeof e === 'object' && e !== null && 'code' in e) {
    const c = (e as { code: unknown }).code;
    return typeof c === 'string' ? c : undefined;
  }
  return undefined;
}
