/**
 * The tamper-evident audit log. Every record is one JSON line carrying `seq` and `prev`, the
 * SHA-256 (hex) of the previous line as written; every `checkpointEvery` records, and on
 * shutdown, a checkpoint record is signed with the node's ML-DSA-65 identity. Editing,
 * deleting or reordering any record or checkpoint breaks the chain; `verifyAuditFiles` (and
 * `ssc audit verify`) finds the first broken record across rotated, gzipped files.
 *
 * The file is written by this module, not by pino, so that the hash covers every byte of the
 * line. Rotation is by size and day; rolled files are gzipped and the newest `keep` are kept.
 */
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';

/** What the checkpoint signature covers: a domain tag, the sequence number and the chain head. */
export function checkpointMessage(seq: number, head: string): Uint8Array {
  return new TextEncoder().encode(`ssc-audit-checkpoint-v1\n${seq}\n${head}`);
}

export const GENESIS = '0'.repeat(64);

const sha256hex = (text: string) => new Bun.CryptoHasher('sha256').update(text).digest('hex');

export interface AuditLogOptions {
  /** Path of the live file, e.g. `logs/audit.log`. */
  file: string;
  /** Signs a checkpoint message with the node identity. */
  sign(message: Uint8Array): Uint8Array;
  /** Fingerprint of the signing identity (written in checkpoints). */
  signer: string;
  checkpointEvery: number;
  /** Rotate past this many bytes (0 = never by size). */
  maxBytes: number;
  /** Rotate when the UTC day changes. */
  daily: boolean;
  /** Rolled files kept. */
  keep: number;
  compress: boolean;
  /** Node name written in every record. */
  node?: string;
  now?: () => Date;
  onError?(error: unknown): void;
}

export interface AuditRecord {
  seq: number;
  ts: string;
  event: string;
  [field: string]: unknown;
}

const rolledPattern = /^(.*)\.(\d{8}T\d{6}Z)-(\d+)\.log(\.gz)?$/;

function readLines(path: string): string[] {
  const raw = readFileSync(path);
  const text = path.endsWith('.gz') ? gunzipSync(raw).toString('utf8') : raw.toString('utf8');
  return text.split('\n').filter((line) => line.length > 0);
}

/** The audit files of a live file's directory (rolled ones and the live one). */
export function auditFilesOf(file: string): string[] {
  const dir = dirname(file);
  if (!existsSync(dir)) return [];
  const stem = basename(file).replace(/\.log$/, '');
  const out = readdirSync(dir)
    .filter((name) => {
      const match = rolledPattern.exec(name);
      return match?.[1] === stem;
    })
    .map((name) => join(dir, name));
  if (existsSync(file)) out.push(file);
  return out;
}

/** Opens (or continues) the chain in `options.file`. */
export function createAuditLog(options: AuditLogOptions) {
  const now = options.now ?? (() => new Date());
  mkdirSync(dirname(options.file), { recursive: true });
  // Continue the chain from the newest record on disk.
  let seq = 0;
  let head = GENESIS;
  const existing = auditFilesOf(options.file)
    .map((path) => ({ path, lines: readLines(path) }))
    .filter((f) => f.lines.length > 0);
  for (const { lines } of existing) {
    const lastLine = lines[lines.length - 1]!;
    try {
      const record = JSON.parse(lastLine) as AuditRecord;
      if (record.seq >= seq) {
        seq = record.seq;
        head = sha256hex(lastLine);
      }
    } catch {
      // A damaged tail line: start after it; `verify` will report it.
    }
  }
  // Appending writer with a small buffer: flushed every 200 ms, at 64 KiB, on rotate and close.
  let fd = openSync(options.file, 'a', 0o640);
  let buffered: string[] = [];
  let bufferedBytes = 0;
  const flushSync = () => {
    if (buffered.length === 0) return;
    const text = buffered.join('');
    buffered = [];
    bufferedBytes = 0;
    try {
      writeSync(fd, text);
    } catch (error) {
      options.onError?.(error);
    }
  };
  let bytes = existsSync(options.file) ? statSync(options.file).size : 0;
  let day = now().toISOString().slice(0, 10);
  let sinceCheckpoint = 0;
  let closed = false;
  const flushTimer = setInterval(flushSync, 200);
  flushTimer.unref?.();

  function writeLine(record: Omit<AuditRecord, 'seq' | 'ts'> & { ts?: string }) {
    seq += 1;
    const line = JSON.stringify({ seq, ts: record.ts ?? now().toISOString(), node: options.node, ...record, prev: head });
    head = sha256hex(line);
    buffered.push(`${line}\n`);
    bufferedBytes += line.length + 1;
    bytes += line.length + 1;
    if (bufferedBytes >= 65_536) flushSync();
  }

  function checkpointRecord(reason: string) {
    const signature = options.sign(checkpointMessage(seq + 1, head));
    writeLine({
      event: 'audit.checkpoint',
      reason,
      signer: options.signer,
      signature: Buffer.from(signature).toString('base64'),
    });
    sinceCheckpoint = 0;
  }

  function rotate() {
    flushSync();
    closeSync(fd);
    const stamp = now().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
    const rolled = join(dirname(options.file), `${basename(options.file).replace(/\.log$/, '')}.${stamp}-${seq}.log`);
    renameSync(options.file, rolled);
    fd = openSync(options.file, 'a', 0o640);
    bytes = 0;
    if (options.compress) {
      const data = readFileSync(rolled);
      Bun.write(`${rolled}.gz`, Bun.gzipSync(data)).then(
        () => {
          unlinkSync(rolled);
          prune();
        },
        (error) => options.onError?.(error),
      );
    } else {
      prune();
    }
  }

  function prune() {
    const rolled = auditFilesOf(options.file)
      .filter((p) => p !== options.file)
      .map((p) => ({ p, seq: Number(rolledPattern.exec(basename(p))?.[3] ?? 0) }))
      .sort((a, b) => b.seq - a.seq);
    for (const { p } of rolled.slice(options.keep)) {
      try {
        unlinkSync(p);
      } catch (error) {
        options.onError?.(error);
      }
    }
  }

  return {
    /** Appends one record; returns its sequence number. */
    append(event: { event: string; [field: string]: unknown }): number {
      if (closed) return seq;
      const today = now().toISOString().slice(0, 10);
      if ((options.maxBytes > 0 && bytes >= options.maxBytes) || (options.daily && today !== day)) {
        // A checkpoint closes every file, so each rolled file ends signed.
        checkpointRecord('rotate');
        rotate();
        day = today;
      }
      const { seq: _s, prev: _p, ts: _t, ...fields } = event as AuditRecord & { prev?: unknown };
      writeLine(fields as AuditRecord);
      sinceCheckpoint += 1;
      if (sinceCheckpoint >= options.checkpointEvery) checkpointRecord('interval');
      return seq;
    },
    /** Writes a signed checkpoint now. */
    checkpoint(reason = 'manual') {
      if (!closed) checkpointRecord(reason);
    },
    get head() {
      return { seq, hash: head };
    },
    async flush() {
      flushSync();
    },
    /** Writes a final checkpoint and closes the file. */
    async close() {
      if (closed) return;
      checkpointRecord('shutdown');
      closed = true;
      clearInterval(flushTimer);
      flushSync();
      closeSync(fd);
    },
  };
}

export type AuditLog = ReturnType<typeof createAuditLog>;

export interface VerifyResult {
  ok: boolean;
  records: number;
  checkpoints: number;
  files: number;
  firstSeq?: number;
  lastSeq?: number;
  /** The chain began after genesis: older files were pruned by retention. */
  startsAfterGenesis: boolean;
  /** Records after the last checkpoint (not yet covered by a signature). */
  unsignedTail: number;
  broken?: { file: string; line: number; seq?: number; reason: string };
}

/**
 * Verifies the chain across files (any order; rolled files may be gzipped): every line parses,
 * sequence numbers are consecutive, every `prev` is the hash of the line before, and every
 * checkpoint's signature verifies with the given verifier.
 */
export function verifyAuditFiles(
  files: string[],
  verify: (signature: Uint8Array, message: Uint8Array, signer: string) => boolean,
): VerifyResult {
  type Line = { file: string; line: number; text: string; record?: AuditRecord };
  const loaded: { file: string; lines: Line[] }[] = [];
  for (const file of files) {
    const lines = readLines(file).map((text, index) => {
      let record: AuditRecord | undefined;
      try {
        record = JSON.parse(text);
      } catch {
        record = undefined;
      }
      return { file, line: index + 1, text, record };
    });
    loaded.push({ file, lines });
  }
  // Order files by their first sequence number; a file whose first line is unreadable sorts by name.
  loaded.sort((a, b) => (a.lines[0]?.record?.seq ?? Number.MAX_SAFE_INTEGER) - (b.lines[0]?.record?.seq ?? Number.MAX_SAFE_INTEGER));
  const all = loaded.flatMap((f) => f.lines);
  const result: VerifyResult = {
    ok: true,
    records: 0,
    checkpoints: 0,
    files: files.length,
    startsAfterGenesis: false,
    unsignedTail: 0,
  };
  const fail = (entry: Line, reason: string) => {
    result.ok = false;
    result.broken = { file: entry.file, line: entry.line, seq: entry.record?.seq, reason };
    return result;
  };
  let previousHash: string | undefined;
  let previousSeq: number | undefined;
  for (const entry of all) {
    const record = entry.record;
    if (!record || typeof record.seq !== 'number' || typeof record.prev !== 'string') {
      return fail(entry, 'not an audit record (unparseable or missing seq/prev)');
    }
    if (previousSeq === undefined) {
      result.firstSeq = record.seq;
      if (record.seq !== 1 || record.prev !== GENESIS) result.startsAfterGenesis = true;
      if (record.seq === 1 && record.prev !== GENESIS) return fail(entry, 'first record does not start at genesis');
    } else {
      if (record.seq !== previousSeq + 1) {
        return fail(entry, `sequence jumps from ${previousSeq} to ${record.seq} (records deleted or reordered)`);
      }
      if (record.prev !== previousHash) return fail(entry, 'prev does not match the hash of the previous record (edited or reordered)');
    }
    if (record.event === 'audit.checkpoint') {
      const signature = Buffer.from(String(record.signature ?? ''), 'base64');
      if (!verify(new Uint8Array(signature), checkpointMessage(record.seq, record.prev), String(record.signer ?? ''))) {
        return fail(entry, 'checkpoint signature does not verify');
      }
      result.checkpoints += 1;
      result.unsignedTail = 0;
    } else {
      result.unsignedTail += 1;
    }
    result.records += 1;
    previousSeq = record.seq;
    previousHash = sha256hex(entry.text);
    result.lastSeq = record.seq;
  }
  return result;
}

/**
 * Verifies the live audit file incrementally: each call reads only the complete lines appended
 * since the last call and checks their chain links and checkpoint signatures. A file that
 * shrank (rotation) is read again from its start. Cheap enough for a periodic health check.
 */
export function createAuditVerifier(
  file: string,
  verify: (signature: Uint8Array, message: Uint8Array, signer: string) => boolean,
) {
  let offset = 0;
  let lastHash: string | undefined;
  let lastSeq: number | undefined;
  let records = 0;
  let broken: string | undefined;
  return {
    check(): { ok: boolean; records: number; broken?: string } {
      if (broken) return { ok: false, records, broken };
      if (!existsSync(file)) return { ok: true, records };
      const size = statSync(file).size;
      if (size < offset) {
        offset = 0;
        lastHash = undefined;
        lastSeq = undefined;
      }
      if (size === offset) return { ok: true, records };
      const fd = openSync(file, 'r');
      try {
        const buffer = Buffer.alloc(size - offset);
        readSync(fd, buffer, 0, buffer.length, offset);
        const text = buffer.toString('utf8');
        const end = text.lastIndexOf('\n');
        if (end < 0) return { ok: true, records };
        for (const line of text.slice(0, end).split('\n')) {
          if (!line) continue;
          let record: AuditRecord & { prev?: string; signature?: string; signer?: string };
          try {
            record = JSON.parse(line);
          } catch {
            broken = `unparseable record after seq ${lastSeq ?? 0}`;
            return { ok: false, records, broken };
          }
          if (lastHash !== undefined && (record.prev !== lastHash || record.seq !== (lastSeq ?? 0) + 1)) {
            broken = `chain broken at seq ${record.seq}`;
            return { ok: false, records, broken };
          }
          if (
            record.event === 'audit.checkpoint' &&
            !verify(new Uint8Array(Buffer.from(String(record.signature ?? ''), 'base64')), checkpointMessage(record.seq, String(record.prev)), String(record.signer ?? ''))
          ) {
            broken = `checkpoint signature invalid at seq ${record.seq}`;
            return { ok: false, records, broken };
          }
          lastHash = sha256hex(line);
          lastSeq = record.seq;
          records += 1;
        }
        offset += Buffer.byteLength(text.slice(0, end + 1), 'utf8');
        return { ok: true, records };
      } finally {
        closeSync(fd);
      }
    },
  };
}
