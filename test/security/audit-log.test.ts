import { describe, expect, test } from 'bun:test';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';
import { auditFilesOf, createAuditLog, verifyAuditFiles } from '../../src/security/audit-log.ts';
import { generateNodeKeys } from '../../src/security/node-keys.ts';
import { repoRoot } from '../helpers/paths.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'ssc-audit-keys-'));
const keys = generateNodeKeys(dataDir);
const verifier = (signature: Uint8Array, message: Uint8Array, signer: string) =>
  signer === keys.identity.fingerprint && ml_dsa65.verify(signature, message, keys.identity.publicKey);

/** Writes `count` records with rotation into a fresh directory; returns the live file path. */
async function writeLog(count: number, options: { maxBytes?: number; every?: number } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'ssc-audit-'));
  const file = join(dir, 'audit.log');
  const log = createAuditLog({
    file,
    sign: (message) => ml_dsa65.sign(message, keys.identity.secretKey),
    signer: keys.identity.fingerprint,
    checkpointEvery: options.every ?? 25,
    maxBytes: options.maxBytes ?? 4_000,
    daily: true,
    keep: 100,
    compress: true,
  });
  for (let i = 0; i < count; i++) log.append({ event: 'handshake', result: i % 7 === 0 ? 'failure' : 'success', source: `10.0.0.${i % 250}` });
  await log.close();
  // Let pending gzip of the rolls finish: a roll still being compressed is there twice (`.log`
  // and `.log.gz`), and a test that removes one of them would still find its lines in the other.
  for (let i = 0; i < 250 && readdirSync(dir).some((n) => n.endsWith('Z-0.log') || /-\d+\.log$/.test(n)); i++) await Bun.sleep(20);
  return { dir, file };
}

const readAny = (path: string) =>
  (path.endsWith('.gz') ? gunzipSync(readFileSync(path)) : readFileSync(path)).toString('utf8').split('\n').filter(Boolean);
const writeAny = (path: string, lines: string[]) => {
  const text = `${lines.join('\n')}\n`;
  writeFileSync(path, path.endsWith('.gz') ? gzipSync(text) : text);
};

describe('audit log chain', () => {
  test('an intact rotated, gzipped log verifies, with checkpoints signed by the node identity', async () => {
    const { file } = await writeLog(200);
    const files = auditFilesOf(file);
    expect(files.filter((f) => f.endsWith('.gz')).length).toBeGreaterThan(2);
    const result = verifyAuditFiles(files, verifier);
    expect(result.broken).toBeUndefined();
    expect(result.ok).toBe(true);
    expect(result.records).toBeGreaterThan(200); // records plus checkpoints
    expect(result.checkpoints).toBeGreaterThanOrEqual(8);
    expect(result.unsignedTail).toBe(0); // the shutdown checkpoint covers the end
    expect(result.startsAfterGenesis).toBe(false);
  });

  test('the chain continues across a restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ssc-audit-'));
    const file = join(dir, 'audit.log');
    const open = () =>
      createAuditLog({
        file,
        sign: (m) => ml_dsa65.sign(m, keys.identity.secretKey),
        signer: keys.identity.fingerprint,
        checkpointEvery: 1000,
        maxBytes: 0,
        daily: false,
        keep: 5,
        compress: false,
      });
    const first = open();
    first.append({ event: 'a' });
    await first.close();
    const second = open();
    second.append({ event: 'b' });
    await second.close();
    const result = verifyAuditFiles([file], verifier);
    expect(result.ok).toBe(true);
    expect(result.records).toBe(4);
  });

  const tamperings: [string, (lines: string[]) => string[], RegExp][] = [
    ['editing a field of a record', (l) => l.map((x, i) => (i === 3 ? x.replace(/"result":"\w+"/, '"result":"forged"') : x)), /hash of the previous/],
    ['deleting a record', (l) => l.filter((_, i) => i !== 4), /sequence jumps/],
    ['reordering two records', (l) => [l[0]!, l[2]!, l[1]!, ...l.slice(3)], /sequence jumps/],
  ];
  for (const [name, tamper, reason] of tamperings) {
    test(`${name} in a rotated gzipped file is detected and the first broken record named`, async () => {
      const { file } = await writeLog(120);
      const rolled = auditFilesOf(file).filter((f) => f.endsWith('.gz')).sort()[1]!;
      const before = readAny(rolled);
      writeAny(rolled, tamper(before));
      const result = verifyAuditFiles(auditFilesOf(file), verifier);
      expect(result.ok).toBe(false);
      expect(result.broken?.file).toBe(rolled);
      expect(result.broken?.reason).toMatch(reason);
    });
  }

  test('a forged checkpoint signature is detected', async () => {
    const { file } = await writeLog(60);
    const files = auditFilesOf(file);
    const target = files.find((f) => readAny(f).some((l) => l.includes('audit.checkpoint')))!;
    const lines = readAny(target).map((l) => {
      if (!l.includes('audit.checkpoint')) return l;
      const record = JSON.parse(l);
      const signature = Buffer.from(record.signature, 'base64');
      signature[100] ^= 1;
      record.signature = signature.toString('base64');
      return JSON.stringify(record);
    });
    writeAny(target, lines);
    const result = verifyAuditFiles(files, verifier);
    expect(result.ok).toBe(false);
    // The first checkpoint in the chain fails its signature before the altered line hash is seen.
    expect(result.broken?.reason).toMatch(/signature does not verify|hash of the previous/);
  });

  test('deleting a whole rotated file in the middle is detected', async () => {
    const { file } = await writeLog(150);
    const files = auditFilesOf(file);
    const rolled = files.filter((f) => f.endsWith('.gz')).sort();
    const result = verifyAuditFiles(
      files.filter((f) => f !== rolled[1]),
      verifier,
    );
    expect(result.ok).toBe(false);
    expect(result.broken?.reason).toMatch(/sequence jumps/);
  });

  test('ssc audit verify reports intact and broken logs with exit codes', async () => {
    const { file } = await writeLog(80);
    const run = async (files: string[]) => {
      const proc = Bun.spawn([process.execPath, join(repoRoot, 'src/cli.ts'), 'audit', 'verify', '--data-dir', dataDir, ...files], {
        stdout: 'pipe',
        stderr: 'pipe',
      });
      const [stdout, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
      return { stdout, code };
    };
    const ok = await run(auditFilesOf(file));
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/audit chain intact/);
    const live = readAny(file);
    writeAny(file, live.map((l, i) => (i === 1 ? l.replace('"handshake"', '"handshakE"') : l)));
    const bad = await run(auditFilesOf(file));
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/BROKEN at .*audit\.log:3/);
  });
});
