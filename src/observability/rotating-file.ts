/**
 * A rotating log file for pino: a destination stream (`write(line)`) that rolls the live file
 * when it passes a size or when the UTC day (or hour) changes, gzips rolled files off the main
 * thread (node:zlib) and keeps the newest `keep` rolled files per stream.
 *
 * Why not pino-roll: it rotates by size and frequency and keeps a count, but does not compress,
 * and its numbered files (`file.1.log`) are renamed under a running writer; compressing them
 * after the fact races with its own retention. Doing both in one small writer keeps the order
 * rename → gzip → delete plain → prune deterministic and testable.
 *
 * Files: `combined.log` (live), `combined.20240501T101010Z-7.log.gz` (rolled; the number grows
 * with every roll, so names sort by age even within one second). The naming matches
 * `src/security/audit-log.ts`, so `ssc audit verify logs/audit*` sees one family of files.
 *
 * Writes are buffered and flushed with `writeSync` every `flushIntervalMs`, at 64 KiB, before a
 * roll and on `flushSync()`/`close()`; a stream created with `flushIntervalMs: 0` writes every
 * line at once (used for the error stream, so an error line survives a crash right after it).
 */
import {
  closeSync,
  createReadStream,
  createWriteStream,
  existsSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';

export type RotationFrequency = 'daily' | 'hourly' | 'none';

export interface RotatingFileOptions {
  /** Path of the live file, e.g. `logs/combined.log`. */
  file: string;
  /** Roll when the live file would pass this many bytes; 0 disables size rotation. */
  maxBytes: number;
  /** Roll when the UTC day (`daily`) or hour (`hourly`) changes. */
  frequency: RotationFrequency;
  /** Rolled files kept (compressed or not); older ones are deleted. */
  keep: number;
  /** Gzip rolled files. */
  compress: boolean;
  /** Buffer lines this long before writing (ms); 0 writes each line at once. */
  flushIntervalMs?: number;
  /** Clock, for tests of daily rotation. */
  now?: () => Date;
  /** Called with any I/O error (the writer keeps going and retries on the next write). */
  onError?(error: Error): void;
  /** Called after a rolled file is in its final place (gzipped when `compress`) and pruning ran. */
  onRolled?(path: string): void;
}

/** Parses a size like `10m`, `512k`, `1g` or `4096` into bytes (binary multiples). */
export function parseSize(text: string): number {
  const match = /^(\d+)([kmg]?)$/i.exec(text.trim());
  if (!match) throw new Error(`not a size: ${text}`);
  const unit = match[2]!.toLowerCase();
  const factor = unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1;
  return Number(match[1]) * factor;
}

const rolledPattern = /^(.*)\.(\d{8}T\d{6}Z)-(\d+)\.log(\.gz)?(\.tmp)?$/;

/** The period a time falls in, for frequency rotation. */
function periodOf(date: Date, frequency: RotationFrequency): string {
  if (frequency === 'none') return '';
  const iso = date.toISOString();
  return frequency === 'daily' ? iso.slice(0, 10) : iso.slice(0, 13);
}

/** Rolled files of a live file, newest first (by roll number), with their paths. */
export function rolledFilesOf(file: string): { path: string; seq: number; compressed: boolean }[] {
  const dir = dirname(file);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return []; // missing or not a directory: nothing rolled to see
  }
  const stem = basename(file).replace(/\.log$/, '');
  const out: { path: string; seq: number; compressed: boolean }[] = [];
  for (const name of names) {
    const match = rolledPattern.exec(name);
    if (!match || match[1] !== stem || match[5]) continue;
    out.push({ path: join(dir, name), seq: Number(match[3]), compressed: Boolean(match[4]) });
  }
  return out.sort((a, b) => b.seq - a.seq);
}

/** A pino destination that rotates, compresses and prunes. See the module comment. */
export function createRotatingFile(options: RotatingFileOptions) {
  const { file, maxBytes, frequency, keep, compress, flushIntervalMs = 100, onError, onRolled } = options;
  const now = options.now ?? (() => new Date());
  const dir = dirname(file);
  const stem = basename(file).replace(/\.log$/, '');

  let fd: number | undefined;
  let bytes = 0;
  let period = periodOf(now(), frequency);
  let buffered: string[] = [];
  let bufferedBytes = 0;
  let closed = false;
  /** The last write error, cleared by the next successful write (read by the logging health check). */
  let lastError: Error | undefined;
  let seq = 0;
  /** Compressions run one at a time, in roll order. */
  let work: Promise<void> = Promise.resolve();

  const report = (error: unknown) => {
    lastError = error instanceof Error ? error : new Error(String(error));
    onError?.(lastError);
  };

  function open() {
    try {
      mkdirSync(dir, { recursive: true });
      fd = openSync(file, 'a', 0o640);
      lastError = undefined;
      const stat = statSync(file);
      bytes = stat.size;
      // A live file left from an earlier period rolls on the first write of this one.
      if (bytes > 0 && frequency !== 'none') period = periodOf(stat.mtime, frequency);
    } catch (error) {
      fd = undefined;
      report(error);
    }
  }

  // Continue the roll numbering across restarts; finish work a crash left behind (a partial
  // `.gz.tmp` is deleted, its plain source is still there and is compressed again below).
  try {
    mkdirSync(dir, { recursive: true });
    for (const name of readdirSync(dir)) {
      const match = rolledPattern.exec(name);
      if (match?.[1] !== stem) continue;
      seq = Math.max(seq, Number(match[3]));
      if (match[5]) unlinkSync(join(dir, name));
    }
  } catch (error) {
    report(error);
  }
  open();
  if (compress) for (const r of rolledFilesOf(file).filter((r) => !r.compressed)) enqueueCompression(r.path);
  else enqueuePrune();

  function writeOut(text: string) {
    if (fd === undefined) open();
    if (fd === undefined) return;
    try {
      writeSync(fd, text);
      lastError = undefined;
    } catch (error) {
      report(error);
      // The file may have been removed or the disk is full: reopen on the next write.
      try {
        closeSync(fd);
      } catch {}
      fd = undefined;
    }
  }

  function flushSync() {
    if (buffered.length === 0) return;
    const text = buffered.join('');
    buffered = [];
    bufferedBytes = 0;
    writeOut(text);
  }

  const timer = flushIntervalMs > 0 ? setInterval(flushSync, flushIntervalMs) : undefined;
  timer?.unref?.();

  function enqueueCompression(path: string) {
    work = work.then(async () => {
      const tmp = `${path}.gz.tmp`;
      try {
        await pipeline(createReadStream(path), createGzip(), createWriteStream(tmp, { mode: 0o640 }));
        renameSync(tmp, `${path}.gz`);
        unlinkSync(path);
      } catch (error) {
        report(error);
        try {
          if (existsSync(tmp)) unlinkSync(tmp);
        } catch {}
      }
      prune();
      onRolled?.(existsSync(`${path}.gz`) ? `${path}.gz` : path);
    });
  }

  function enqueuePrune() {
    work = work.then(() => prune());
  }

  function prune() {
    for (const old of rolledFilesOf(file).slice(keep)) {
      try {
        unlinkSync(old.path);
      } catch (error) {
        report(error);
      }
    }
  }

  function roll() {
    flushSync();
    if (fd !== undefined) {
      try {
        closeSync(fd);
      } catch {}
      fd = undefined;
    }
    seq += 1;
    const stamp = now().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
    const rolled = join(dir, `${stem}.${stamp}-${seq}.log`);
    try {
      renameSync(file, rolled);
      if (compress) enqueueCompression(rolled);
      else
        work = work.then(() => {
          prune();
          onRolled?.(rolled);
        });
    } catch (error) {
      report(error);
    }
    open();
    bytes = 0;
  }

  return {
    /** pino calls this with one serialised line (ending in a newline). */
    write(line: string): boolean {
      if (closed) return false;
      const length = Buffer.byteLength(line);
      const currentPeriod = periodOf(now(), frequency);
      if (currentPeriod !== period) {
        // An empty file is not rolled: there is nothing of the old period in it.
        if (bytes > 0) roll();
        period = currentPeriod;
      } else if (maxBytes > 0 && bytes > 0 && bytes + length > maxBytes) {
        roll();
      }
      bytes += length;
      if (flushIntervalMs === 0) {
        writeOut(line);
      } else {
        buffered.push(line);
        bufferedBytes += length;
        if (bufferedBytes >= 65_536) flushSync();
      }
      return true;
    },
    /**
     * Checks the live file is still the one on disk: when it was deleted or moved away (an
     * operator, a foreign logrotate), reopens it at its path. Returns what was found.
     */
    verify(): { ok: boolean; reason?: string } {
      if (closed) return { ok: false, reason: 'closed' };
      flushSync();
      let reason: string | undefined;
      try {
        if (fd === undefined) reason = lastError ? `not open: ${lastError.message}` : 'not open';
        else if (fstatSync(fd).nlink === 0 || !existsSync(file)) reason = 'live file was removed';
      } catch (error) {
        reason = (error as Error).message;
      }
      if (reason === undefined) return lastError ? { ok: false, reason: lastError.message } : { ok: true };
      if (fd !== undefined) {
        try {
          closeSync(fd);
        } catch {}
        fd = undefined;
      }
      open();
      return { ok: false, reason: fd === undefined ? `${reason}; reopen failed: ${lastError?.message}` : `${reason}; reopened` };
    },
    /** Writes buffered lines now (pino.multistream and `Logging.flush` call this). */
    flushSync,
    /** Resolves when pending compressions and pruning are done. */
    settled(): Promise<void> {
      return work;
    },
    /** The last write error, or undefined when the last write succeeded. */
    get lastError(): Error | undefined {
      return lastError;
    },
    /** True when the file is open (or can be opened) for appending. */
    get writable(): boolean {
      return fd !== undefined && lastError === undefined;
    },
    path: file,
    /** Flushes, waits for compressions and closes the file. */
    async close(): Promise<void> {
      if (closed) return;
      flushSync();
      closed = true;
      clearInterval(timer);
      await work;
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}

export type RotatingFile = ReturnType<typeof createRotatingFile>;
