import { afterAll, describe, expect, test } from 'bun:test';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { createRotatingFile, parseSize, rolledFilesOf } from '../../src/observability/rotating-file.ts';

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'ssc-rotate-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const line = (i: number) => `${JSON.stringify({ i, msg: `line ${i}`.padEnd(90, '.') })}\n`;
const readAny = (path: string) => (path.endsWith('.gz') ? gunzipSync(readFileSync(path)) : readFileSync(path)).toString('utf8');

describe('parseSize', () => {
  test('reads plain bytes and k/m/g binary multiples', () => {
    expect(parseSize('4096')).toBe(4096);
    expect(parseSize('2k')).toBe(2048);
    expect(parseSize('10M')).toBe(10 * 1024 * 1024);
    expect(parseSize('1g')).toBe(1024 ** 3);
    expect(() => parseSize('ten')).toThrow();
  });
});

describe('createRotatingFile', () => {
  test('size rotation gzips rolled files, loses no line and keeps only `keep` rolled files', async () => {
    const dir = tempDir();
    const file = join(dir, 'combined.log');
    const rolled: string[] = [];
    const stream = createRotatingFile({
      file,
      maxBytes: 1024,
      frequency: 'none',
      keep: 3,
      compress: true,
      onRolled: (path) => rolled.push(path),
    });
    // 100 lines of ~100 bytes: about ten rolls of ~1 KiB.
    for (let i = 0; i < 100; i++) stream.write(line(i));
    await stream.close();

    const files = rolledFilesOf(file);
    expect(files.length).toBe(3);
    for (const f of files) {
      expect(f.compressed).toBe(true);
      expect(f.path).toMatch(/combined\.\d{8}T\d{6}Z-\d+\.log\.gz$/);
      // A gzip stream, not a renamed text file.
      expect([...readFileSync(f.path).subarray(0, 2)]).toEqual([0x1f, 0x8b]);
      // No rolled file passes the size limit.
      expect(gunzipSync(readFileSync(f.path)).length).toBeLessThanOrEqual(1024);
    }
    expect(rolled.length).toBeGreaterThanOrEqual(9);
    // No plain rolled file or temporary is left behind.
    expect(readdirSync(dir).filter((n) => n !== 'combined.log' && !n.endsWith('.log.gz'))).toEqual([]);

    // The kept files and the live file hold the newest lines, in order, with none missing.
    const kept = [...files].reverse().map((f) => readAny(f.path)).join('') + readFileSync(file, 'utf8');
    const numbers = kept
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { i: number }).i);
    expect(numbers.at(-1)).toBe(99);
    expect(numbers).toEqual(Array.from({ length: numbers.length }, (_, k) => 100 - numbers.length + k));
  });

  test('daily rotation rolls when the UTC day changes, not before, and never rolls an empty file', async () => {
    const dir = tempDir();
    const file = join(dir, 'error.log');
    let now = new Date('2026-03-01T23:59:58Z');
    const stream = createRotatingFile({
      file,
      maxBytes: 0,
      frequency: 'daily',
      keep: 10,
      compress: true,
      flushIntervalMs: 0,
      now: () => now,
    });
    stream.write(line(1));
    now = new Date('2026-03-01T23:59:59Z');
    stream.write(line(2));
    expect(rolledFilesOf(file).length).toBe(0);
    now = new Date('2026-03-02T00:00:01Z');
    stream.write(line(3));
    await stream.settled();
    const rolled = rolledFilesOf(file);
    expect(rolled.length).toBe(1);
    expect(rolled[0]!.path).toContain('error.20260302T000001Z-');
    expect(readAny(rolled[0]!.path)).toBe(line(1) + line(2));
    expect(readFileSync(file, 'utf8')).toBe(line(3));
    // A day with nothing written rolls nothing.
    now = new Date('2026-03-04T00:00:01Z');
    await stream.close();
    expect(rolledFilesOf(file).length).toBe(1);
  });

  test('uncompressed mode keeps plain rolled files and still prunes', async () => {
    const dir = tempDir();
    const file = join(dir, 'audit.log');
    const stream = createRotatingFile({ file, maxBytes: 512, frequency: 'none', keep: 2, compress: false });
    for (let i = 0; i < 40; i++) stream.write(line(i));
    await stream.close();
    const files = rolledFilesOf(file);
    expect(files.length).toBe(2);
    expect(files.every((f) => !f.compressed && f.path.endsWith('.log'))).toBe(true);
  });

  test('after a crash: a partial .gz.tmp is removed, a plain rolled file is compressed, numbering continues', async () => {
    const dir = tempDir();
    const file = join(dir, 'combined.log');
    const plain = join(dir, 'combined.20260301T000000Z-4.log');
    writeFileSync(plain, line(1));
    writeFileSync(`${plain}.gz.tmp`, 'partial');
    writeFileSync(file, line(2));
    const stream = createRotatingFile({ file, maxBytes: 100, frequency: 'none', keep: 5, compress: true });
    await stream.settled();
    expect(existsSync(`${plain}.gz.tmp`)).toBe(false);
    expect(existsSync(plain)).toBe(false);
    expect(readAny(`${plain}.gz`)).toBe(line(1));
    // The live file already holds a line; the next one rolls it as number 5.
    stream.write(line(3));
    await stream.close();
    const newest = rolledFilesOf(file)[0]!;
    expect(newest.seq).toBe(5);
    expect(readAny(newest.path)).toBe(line(2));
  });

  test('verify() notices a removed live file and reopens it; writes continue there', async () => {
    const dir = tempDir();
    const file = join(dir, 'combined.log');
    const stream = createRotatingFile({ file, maxBytes: 0, frequency: 'none', keep: 1, compress: false, flushIntervalMs: 0 });
    stream.write(line(1));
    expect(stream.verify()).toEqual({ ok: true });
    unlinkSync(file);
    const found = stream.verify();
    expect(found.ok).toBe(false);
    expect(found.reason).toBe('live file was removed; reopened');
    stream.write(line(2));
    expect(readFileSync(file, 'utf8')).toBe(line(2));
    expect(stream.verify()).toEqual({ ok: true });
    await stream.close();
  });

  test('a directory that cannot be written reports the error instead of throwing', async () => {
    const dir = tempDir();
    const blocker = join(dir, 'not-a-dir');
    writeFileSync(blocker, '');
    const errors: Error[] = [];
    const stream = createRotatingFile({
      file: join(blocker, 'combined.log'),
      maxBytes: 0,
      frequency: 'none',
      keep: 1,
      compress: true,
      flushIntervalMs: 0,
      onError: (error) => errors.push(error),
    });
    expect(() => stream.write(line(1))).not.toThrow();
    expect(errors.length).toBeGreaterThan(0);
    expect(stream.writable).toBe(false);
    expect(stream.verify().ok).toBe(false);
    await stream.close();
  });
});
