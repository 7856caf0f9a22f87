/**
 * QKD in a running node: links filling pools, ETSI GS QKD 014 on the public port (bearer
 * tokens) and on a mutual-TLS port (SAE ID from the client certificate), and a channel that
 * mixes a QKD key fetched by the client into the handshake as a Noise psk.
 */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, fetchQkdKey } from '../../src/client/index.ts';
import { createCrypto } from '../../src/crypto/index.ts';
import { generateDevCertificate } from '../../src/security/tls.ts';
import { freePort } from '../helpers/redis.ts';
import { type SpawnedServer, spawnServer } from '../helpers/server.ts';

const crypto = await createCrypto({ aead: 'auto', kem: 'auto', signer: 'auto', dh: 'auto', wasmSimd: true });
const tokens = { alice: 'alice-token-0123456789abcdef', node: 'node-token-0123456789abcdef0' };
const link = { masterSae: 'alice', slaveSae: 'node', distanceKm: 20, pace: 'fast', blockPulses: 20_000_000, maxKeys: 200 };
const qkdEnv = {
  SSC_QKD__ENABLED: 'true',
  SSC_QKD__SAE_TOKENS: JSON.stringify(tokens),
  SSC_QKD__LINKS: JSON.stringify([link]),
};
const servers: SpawnedServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop('SIGKILL')));
});

async function waitForKeys(status: () => Promise<Response>) {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const response = await status();
    if (response.status === 200 && ((await response.json()) as { stored_key_count: number }).stored_key_count >= 4) return;
    await Bun.sleep(200);
  }
  throw new Error('no QKD keys pooled within 30 s');
}

describe('QKD in a running node', () => {
  let server: SpawnedServer;
  let fingerprint: string;
  const bearer = (sae: keyof typeof tokens) => ({ authorization: `Bearer ${tokens[sae]}`, 'content-type': 'application/json' });
  beforeAll(async () => {
    server = await spawnServer({ env: qkdEnv });
    servers.push(server);
    fingerprint = String((await server.waitForLine((l) => l.msg === 'node identity loaded')).fingerprint);
    await waitForKeys(() => fetch(`${server.publicUrl}/api/v1/keys/node/status`, { headers: bearer('alice') }));
  });

  const encKey = async () => {
    const response = await fetch(`${server.publicUrl}/api/v1/keys/node/enc_keys`, {
      method: 'POST',
      headers: bearer('alice'),
      body: JSON.stringify({ number: 1, size: 256 }),
    });
    expect(response.status).toBe(200);
    const { keys } = (await response.json()) as { keys: { key_ID: string; key: string }[] };
    return { keyId: keys[0]!.key_ID, key: new Uint8Array(Buffer.from(keys[0]!.key, 'base64')) };
  };

  test('a channel mixes a QKD key fetched through ETSI 014 as a psk; the key is then erased', async () => {
    const qkd = await fetchQkdKey(server.publicUrl, 'node', { token: tokens.alice });
    expect(qkd.key).toHaveLength(32);
    const client = await connect(server.publicUrl, { serverFingerprint: fingerprint, crypto, reconnect: false, qkd });
    expect((await client.ping()).nodeId).toBeTruthy();
    client.close();
    // The audit writer flushes every 200 ms.
    let audit = '';
    for (let i = 0; i < 50 && !audit.includes(qkd.keyId); i++) {
      await Bun.sleep(50);
      audit = readFileSync(join(server.logDir, 'audit.log'), 'utf8');
    }
    expect(audit).toContain(`"qkdKeyId":"${qkd.keyId}"`);
    // The server consumed the key: the slave can no longer fetch it, and it cannot open another channel.
    const dec = await fetch(`${server.publicUrl}/api/v1/keys/alice/dec_keys`, {
      method: 'POST',
      headers: bearer('node'),
      body: JSON.stringify({ key_IDs: [{ key_ID: qkd.keyId }] }),
    });
    expect(dec.status).toBe(400);
    await expect(connect(server.publicUrl, { serverFingerprint: fingerprint, crypto, reconnect: false, qkd })).rejects.toThrow();
  });

  test('a wrong key for a key_ID, or an unknown key_ID, fails the handshake cleanly', async () => {
    const qkd = await encKey();
    const wrong = qkd.key.slice();
    wrong[0] ^= 1;
    await expect(connect(server.publicUrl, { serverFingerprint: fingerprint, crypto, reconnect: false, qkd: { keyId: qkd.keyId, key: wrong } })).rejects.toThrow();
    await expect(
      connect(server.publicUrl, { serverFingerprint: fingerprint, crypto, reconnect: false, qkd: { keyId: '3fa85f64-5717-4562-b3fc-2c963f66afa6', key: qkd.key } }),
    ).rejects.toThrow();
    // Without QKD the channel still runs on the hybrid handshake.
    const plain = await connect(server.publicUrl, { serverFingerprint: fingerprint, crypto, reconnect: false });
    expect((await plain.ping()).nodeId).toBeTruthy();
    plain.close();
    expect(server.proc.exitCode).toBeNull();
  });

  test('link statistics reach metrics and the quantum-core health check', async () => {
    const metrics = await (await fetch(`${server.opsUrl}/metrics`)).text();
    expect(metrics).toMatch(/ssc_qkd_qber\{[^}]*link="alice->node#0"[^}]*\} 0\.0[0-9]+/);
    expect(metrics).toMatch(/ssc_qkd_pulses_total\{[^}]*link="alice->node#0"[^}]*\} [1-9]/);
    const detailed = (await (await fetch(`${server.opsUrl}/health/detailed?fresh=1`)).json()) as { checks: Record<string, { status: string; observedUnit?: string }[]> };
    const check = detailed.checks['quantum-core:qkd-links']![0]!;
    expect(check.status).toBe('pass');
    expect(check.observedUnit).toContain('QBER');
  });
});

describe('ETSI GS QKD 014 over mutual TLS', () => {
  test('the SAE ID comes from the client certificate; no certificate, no connection', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ssc-mtls-'));
    const ca = await generateDevCertificate({ outDir: dir, hosts: ['ca.test'], name: 'ca', commonName: 'Test SAE CA' });
    const serverCert = await generateDevCertificate({ outDir: dir, hosts: ['localhost', '127.0.0.1'], name: 'server', ca });
    const alice = await generateDevCertificate({ outDir: dir, hosts: ['alice'], name: 'alice', ca, commonName: 'alice' });
    const mallory = await generateDevCertificate({ outDir: dir, hosts: ['mallory'], name: 'mallory', ca, commonName: 'mallory' });
    const mtlsPort = await freePort();
    const server = await spawnServer({
      env: {
        ...qkdEnv,
        SSC_SERVER__TLS__CERT: serverCert.cert,
        SSC_SERVER__TLS__KEY: serverCert.key,
        SSC_SERVER__TLS__CA: ca.cert,
        SSC_QKD__MTLS__ENABLED: 'true',
        SSC_QKD__MTLS__HOST: '127.0.0.1',
        SSC_QKD__MTLS__PORT: String(mtlsPort),
      },
    });
    servers.push(server);
    const base = `https://127.0.0.1:${mtlsPort}/api/v1/keys`;
    const tlsAs = (who: { cert: string; key: string }) => ({
      ca: readFileSync(ca.cert, 'utf8'),
      cert: readFileSync(who.cert, 'utf8'),
      key: readFileSync(who.key, 'utf8'),
    });
    const status = await fetch(`${base}/node/status`, { tls: tlsAs(alice) });
    expect(status.status).toBe(200);
    const body = (await status.json()) as { master_SAE_ID: string; slave_SAE_ID: string };
    expect(body).toMatchObject({ master_SAE_ID: 'alice', slave_SAE_ID: 'node' });
    // A valid certificate for an SAE that has no link with this slave: not authorised.
    expect((await fetch(`${base}/node/status`, { tls: tlsAs(mallory) })).status).toBe(401);
    // No client certificate: the TLS handshake fails.
    await expect(fetch(`${base}/node/status`, { tls: { ca: readFileSync(ca.cert, 'utf8') } })).rejects.toThrow();
    // Bearer tokens are not accepted on the public port when mTLS is on (the API is not mounted there).
    const publicTry = await fetch(`${server.publicUrl}/api/v1/keys/node/status`, {
      headers: { authorization: `Bearer ${tokens.alice}` },
      tls: { ca: readFileSync(ca.cert, 'utf8') },
    });
    expect(publicTry.status).toBe(404);
  });
});
