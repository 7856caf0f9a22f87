import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { join } from 'node:path';
import { connect, RelayRequestError, type SecureClient } from '../../src/client/index.ts';
import { createCrypto } from '../../src/crypto/index.ts';
import { repoRoot } from '../helpers/paths.ts';
import { type SpawnedServer, spawnServer } from '../helpers/server.ts';

const crypto = await createCrypto({ aead: 'auto', kem: 'auto', signer: 'auto', dh: 'auto', wasmSimd: true });
let server: SpawnedServer;
let fingerprint: string;
const clients: SecureClient[] = [];
beforeAll(async () => {
  server = await spawnServer();
  fingerprint = String((await server.waitForLine((l) => l.msg === 'node identity loaded')).fingerprint);
});
afterAll(async () => {
  for (const c of clients) c.close();
  await server.stop('SIGKILL');
});

async function grantFor(identity: string, rights: string) {
  const proc = Bun.spawn(
    [process.execPath, join(repoRoot, 'src/cli.ts'), 'grant', '--data-dir', server.dataDir, '--topic', 'private:board', '--identity', identity, '--rights', rights],
    { stdout: 'pipe', stderr: 'pipe', env: { ...process.env, NODE_ENV: 'test' } },
  );
  const [out, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
  expect(code).toBe(0);
  return JSON.parse(out) as Record<string, unknown>;
}

describe('signed grants for private topics', () => {
  test('a grant signed by the node opens a private topic for exactly its identity and rights', async () => {
    const reader = await connect(server.publicUrl, { serverFingerprint: fingerprint, crypto, reconnect: false });
    const writer = await connect(server.publicUrl, { serverFingerprint: fingerprint, crypto, reconnect: false });
    clients.push(reader, writer);
    const error = await reader.subscribe('private:board').catch((e) => e);
    expect(error).toBeInstanceOf(RelayRequestError);
    expect((error as RelayRequestError).code).toBe('forbidden');

    const readGrant = await grantFor(reader.identity, 'subscribe');
    const got: string[] = [];
    reader.on('publication', (p) => got.push(p.text()));
    await reader.subscribe('private:board', { grant: readGrant });
    // The subscribe-only grant does not let the reader publish.
    expect(((await reader.publish('private:board', 'nope').catch((e) => e)) as RelayRequestError).code).toBe('forbidden');
    // Another identity cannot use the reader's grant.
    expect(((await writer.publish('private:board', 'x', { grant: readGrant }).catch((e) => e)) as RelayRequestError).code).toBe('forbidden');
    const writeGrant = await grantFor(writer.identity, 'publish');
    await writer.publish('private:board', 'posted with a grant', { grant: writeGrant });
    for (let i = 0; i < 100 && got.length === 0; i++) await Bun.sleep(10);
    expect(got).toEqual(['posted with a grant']);
    // A tampered grant (rights widened after signing) does not verify.
    const other = await connect(server.publicUrl, { serverFingerprint: fingerprint, crypto, reconnect: false });
    clients.push(other);
    const forgedForOther = { ...(await grantFor(other.identity, 'subscribe')), rights: ['subscribe', 'publish'] };
    expect(((await other.publish('private:board', 'x', { grant: forgedForOther }).catch((e) => e)) as RelayRequestError).code).toBe('forbidden');
  });
});
