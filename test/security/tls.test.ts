import { afterAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateDevCertificate } from '../../src/security/tls.ts';
import { repoRoot } from '../helpers/paths.ts';
import { type SpawnedServer, spawnServer } from '../helpers/server.ts';

const servers: SpawnedServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop('SIGKILL')));
});

describe('TLS', () => {
  test('ssc tls dev-cert writes a certificate and a 0600 key', async () => {
    const out = mkdtempSync(join(tmpdir(), 'ssc-tls-'));
    const proc = Bun.spawn([process.execPath, join(repoRoot, 'src/cli.ts'), 'tls', 'dev-cert', '--out', out], { stdout: 'pipe' });
    expect(await proc.exited).toBe(0);
    expect(readFileSync(join(out, 'dev-cert.pem'), 'utf8')).toContain('BEGIN CERTIFICATE');
    expect(statSync(join(out, 'dev-cert-key.pem')).mode & 0o777).toBe(0o600);
  });

  test('the server serves HTTPS on the public port with a configured certificate', async () => {
    const out = mkdtempSync(join(tmpdir(), 'ssc-tls-'));
    const { cert, key } = await generateDevCertificate({ outDir: out, hosts: ['localhost', '127.0.0.1'] });
    const server = await spawnServer({ env: { SSC_SERVER__TLS__CERT: cert, SSC_SERVER__TLS__KEY: key } });
    servers.push(server);
    expect(server.publicUrl).toStartWith('https://');
    const ca = readFileSync(cert, 'utf8');
    const response = await fetch(`${server.publicUrl}/health`, { tls: { ca } });
    expect(response.status).toBe(200);
    // A client that does not trust the certificate is refused.
    await expect(fetch(`${server.publicUrl}/health`)).rejects.toThrow();
    // Plain HTTP to the TLS port does not get an answer from the app.
    await expect(fetch(server.publicUrl.replace('https', 'http') + '/health').then((r) => r.status)).rejects.toThrow();
  });
});
