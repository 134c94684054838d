import fs from 'node:fs';
import { errnoCode } from '../errors.js';

export type LogFormat = 'text' | 'json';
export type LogLevel = 'debug' | 'info' | 'warning' | 'error';

/**
 * The runtime's log, as runc writes it: with --log FILE each message is appended to FILE, one per
 * line, as logrus text (`time="..." level=error msg="..."`) or JSON (`{"level","msg","time"}`).
 * Without --log nothing is written to a file (errors still reach stderr through the CLI).
 */
export class Logger {
  /** Debug lines go to stderr when there is no --log (the CLI's logger only: runc does so). */
  private debugToStderr = false;

  constructor(
    private readonly file: string | undefined,
    private readonly format: LogFormat,
    private readonly debugEnabled: boolean,
    private readonly extra: Readonly<Record<string, string>> = {},
  ) {}

  /**
   * The CLI's logger, as runc opens its log: the --log file is created at once, even if nothing is
   * written to it (a file that cannot be opened fails the command); with --debug and no --log,
   * debug lines go to stderr. (The monitor's logger never writes to stderr: it is the container's.)
   */
  static forCli(file: string | undefined, format: LogFormat, debug: boolean, debugToStderr = debug): Logger {
    if (file !== undefined) {
      try {
        fs.closeSync(fs.openSync(file, 'a', 0o644));
      } catch (e) {
        throw new Error(`open ${file}: ${errnoCode(e) === 'ENOENT' ? 'no such file or directory' : e instanceof Error ? e.message : String(e)}`);
      }
    }
    const log = new Logger(file, format, debug);
    log.debugToStderr = debugToStderr && file === undefined;
    return log;
  }

  static fromEnv(env: NodeJS.ProcessEnv, extra: Readonly<Record<string, string>> = {}): Logger {
    const format = env['KATA_LOG_FORMAT'] === 'json' ? 'json' : 'text';
    return new Logger(env['KATA_LOG_FILE'] || undefined, format, env['KATA_DEBUG'] === '1', extra);
  }

  get isDebug(): boolean {
    return this.debugEnabled;
  }

  debug(msg: string): void {
    if (this.debugEnabled) this.write('debug', msg);
  }
  info(msg: string): void {
    this.write('info', msg);
  }
  warn(msg: string): void {
    this.write('warning', msg);
  }
  error(msg: string): void {
    this.write('error', msg);
  }

  write(level: LogLevel, msg: string): void {
    if (this.file === undefined) {
      // Like runc without --log: warnings go to stderr (errors are printed by the CLI itself).
      if (level === 'warning' || (level === 'debug' && this.debugToStderr)) process.stderr.write(formatLogLine('text', level, msg, new Date(), this.extra));
      return;
    }
    const line = formatLogLine(this.format, level, msg, new Date(), this.extra);
    try {
      fs.appendFileSync(this.file, line);
    } catch {
      // A log that cannot be written must not turn a success into a failure.
    }
  }
}

export function formatLogLine(
  format: LogFormat,
  level: LogLevel,
  msg: string,
  now: Date,
  extra: Readonly<Record<string, string>> = {},
): string {
  const time = rfc3339(now);
  if (format === 'json') return JSON.stringify({ level, msg, time, ...extra }) + '\n';
  const fields = Object.entries(extra)
    .map(([k, v]) => ` ${k}=${quoteText(v)}`)
    .join('');
  return `time=${quoteText(time)} level=${level} msg=${quoteText(msg)}${fields}\n`;
}

function quoteText(s: string): string {
  return JSON.stringify(s);
}

/** RFC 3339 with the local offset, as Go's time.RFC3339 prints it. */
export function rfc3339(d: Date): string {
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const abs = Math.abs(off);
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  const base = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  return off === 0 ? `${base}Z` : `${base}${sign}${p(Math.floor(abs / 60))}:${p(abs % 60)}`;
}

/** RFC 3339 with nanoseconds in UTC, as runc's `state` prints `created`. */
export function rfc3339Nano(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000000Z');
}
