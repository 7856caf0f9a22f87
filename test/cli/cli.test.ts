import { describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../helpers/paths.ts';

async function ssc(args: string[], env: Record<string, string> = {}) {
  const proc = Bun.spawn([process.execPath, join(repoRoot, 'src/cli.ts'), ...args], {
    cwd: repoRoot,
    env: { ...process.env, NODE_ENV: 'test', ...env },
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { stdout, stderr, code };
}

describe('ssc cli', () => {
  test('keygen writes both keys with mode 0600 and refuses to overwrite without --force', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'ssc-keygen-'));
    const first = await ssc(['keygen', '--data-dir', dataDir]);
    expect(first.code).toBe(0);
    const fingerprint = /identity fingerprint: ([0-9a-f]{64})/.exec(first.stdout)?.[1];
    expect(fingerprint).toBeDefined();
    for (const name of ['identity.json', 'static.json']) {
      expect(statSync(join(dataDir, 'keys', name)).mode & 0o777).toBe(0o600);
    }
    expect(statSync(join(dataDir, 'keys')).mode & 0o777).toBe(0o700);
    const identity = JSON.parse(readFileSync(join(dataDir, 'keys/identity.json'), 'utf8'));
    expect(identity.algorithm).toBe('ML-DSA-65');
    expect(Buffer.from(identity.publicKey, 'base64')).toHaveLength(1952);
    expect(identity.fingerprint).toBe(fingerprint);
    const staticKey = JSON.parse(readFileSync(join(dataDir, 'keys/static.json'), 'utf8'));
    expect(Buffer.from(staticKey.secretKey, 'base64')).toHaveLength(32);

    const again = await ssc(['keygen', '--data-dir', dataDir]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('--force');
    expect(JSON.parse(readFileSync(join(dataDir, 'keys/identity.json'), 'utf8')).fingerprint).toBe(fingerprint);

    const forced = await ssc(['keygen', '--data-dir', dataDir, '--force']);
    expect(forced.code).toBe(0);
    expect(JSON.parse(readFileSync(join(dataDir, 'keys/identity.json'), 'utf8')).fingerprint).not.toBe(fingerprint);
  });

  test('config print shows the effective config with secrets redacted', async () => {
    const { stdout, code } = await ssc(['config', 'print', '--port', '4444'], {
      SSC_SECURITY__ADMIN_TOKEN: 'do-not-print-me',
    });
    expect(code).toBe(0);
    const printed = JSON.parse(stdout);
    expect(printed.server.port).toBe(4444);
    expect(printed.security.adminToken).toBe('[redacted]');
    expect(stdout).not.toContain('do-not-print-me');
  });

  test('--help lists the commands; unknown commands and flags exit 2', async () => {
    const help = await ssc(['--help']);
    expect(help.code).toBe(0);
    for (const word of ['serve', 'keygen', 'config print', '--metrics-port', '--data-dir', '--log-dir']) {
      expect(help.stdout).toContain(word);
    }
    expect((await ssc(['frobnicate'])).code).toBe(2);
    expect((await ssc(['serve', '--bogus'])).code).toBe(2);
    expect((await ssc(['serve', '--port', 'x'])).stderr).toContain('--port');
  });
});
