/** ETSI GS QKD 014 routes on the Hono sub-app, in process (`app.request`). */
import { describe, expect, test } from 'bun:test';
import { bearerSaeResolver, createQkdRoutes, etsiMessages } from '../../src/quantum/etsi014.ts';
import { createKeyPoolManager } from '../../src/quantum/pool.ts';

const config = { kmeId: 'KME_A', keySize: 256, maxKeyPerRequest: 128, minKeySize: 64, maxKeySize: 1024 };
const tokens = {
  SAE_M: 'token-master-0123456789',
  SAE_S: 'token-slave-0123456789',
  SAE_X: 'token-other-0123456789',
  SAE_T: 'token-third-0123456789',
};

function setup(materialBytes = 32 * 100) {
  const pools = createKeyPoolManager({ keySize: 256, maxKeys: 1000 });
  pools.addLink('SAE_M', 'SAE_S');
  pools.addLink('SAE_M', 'SAE_T');
  const material = new Uint8Array(materialBytes);
  crypto.getRandomValues(material);
  const copy = material.slice();
  pools.pool('SAE_M', 'SAE_S')!.add(material);
  const app = createQkdRoutes({ pools, config, resolveSae: bearerSaeResolver(tokens) });
  const call = (sae: keyof typeof tokens | null, path: string, init: RequestInit = {}) =>
    app.request(`/api/v1/keys${path}`, {
      ...init,
      headers: {
        ...(sae ? { authorization: `Bearer ${tokens[sae]}` } : {}),
        ...(init.body ? { 'content-type': 'application/json' } : {}),
      },
    });
  const post = (sae: keyof typeof tokens | null, path: string, body: unknown) =>
    call(sae, path, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body) });
  return { pools, app, call, post, material: copy };
}

type KeyContainer = { keys: { key_ID: string; key: string }[] };

describe('ETSI GS QKD 014: Get status', () => {
  test('master gets the Status object with every field', async () => {
    const { call } = setup();
    const res = await call('SAE_M', '/SAE_S/status');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/json');
    expect(await res.json()).toEqual({
      source_KME_ID: 'KME_A',
      target_KME_ID: 'KME_A',
      master_SAE_ID: 'SAE_M',
      slave_SAE_ID: 'SAE_S',
      key_size: 256,
      stored_key_count: 100,
      max_key_count: 1000,
      max_key_per_request: 128,
      max_key_size: 1024,
      min_key_size: 64,
      max_SAE_ID_count: 0,
    });
  });

  test('401 with no body: no token, unknown token, slave asking, no link', async () => {
    const { call, app } = setup();
    for (const res of [
      await call(null, '/SAE_S/status'),
      await app.request('/api/v1/keys/SAE_S/status', {
        headers: { authorization: 'Bearer wrong-token-0123456789' },
      }),
      await call('SAE_S', '/SAE_M/status'),
      await call('SAE_X', '/SAE_S/status'),
    ]) {
      expect(res.status).toBe(401);
      expect(await res.text()).toBe('');
    }
  });
});

describe('ETSI GS QKD 014: Get key (enc_keys)', () => {
  test('POST delivers UUID-named base64 keys of the requested size, taken from the pool in order', async () => {
    const { post, material } = setup();
    const res = await post('SAE_M', '/SAE_S/enc_keys', { number: 3, size: 512 });
    expect(res.status).toBe(200);
    const body = (await res.json()) as KeyContainer;
    expect(body.keys).toHaveLength(3);
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    body.keys.forEach((k, i) => {
      expect(k.key_ID).toMatch(uuid);
      const bytes = Buffer.from(k.key, 'base64');
      expect(bytes.length).toBe(64);
      expect(bytes.equals(Buffer.from(material.subarray(64 * i, 64 * (i + 1))))).toBe(true);
    });
    expect(new Set(body.keys.map((k) => k.key_ID)).size).toBe(3);
  });

  test('GET with ?number=&size= and defaults (1 key of key_size); empty POST body means defaults', async () => {
    const { call, post } = setup();
    const a = (await (await call('SAE_M', '/SAE_S/enc_keys?number=2&size=128')).json()) as KeyContainer;
    expect(a.keys.map((k) => Buffer.from(k.key, 'base64').length)).toEqual([16, 16]);
    const b = (await (await call('SAE_M', '/SAE_S/enc_keys')).json()) as KeyContainer;
    expect(b.keys.map((k) => Buffer.from(k.key, 'base64').length)).toEqual([32]);
    const c = (await (await post('SAE_M', '/SAE_S/enc_keys', '')).json()) as KeyContainer;
    expect(c.keys).toHaveLength(1);
  });

  test('status counts drop as keys are delivered', async () => {
    const { call, post } = setup();
    await post('SAE_M', '/SAE_S/enc_keys', { number: 10 });
    const status = (await (await call('SAE_M', '/SAE_S/status')).json()) as { stored_key_count: number };
    expect(status.stored_key_count).toBe(90);
  });

  const errorCases: [string, unknown, string][] = [
    ['size not a multiple of 8', { size: 100 }, etsiMessages.sizeMultipleOf8],
    [
      'extension_mandatory',
      { extension_mandatory: [{ abc_route_type: 'direct' }] },
      etsiMessages.extensionMandatoryUnsupported,
    ],
    [
      'extension_optional',
      { extension_optional: [{ abc_transfer_method: 'qkd' }] },
      etsiMessages.extensionOptionalUnhandled,
    ],
    [
      'additional slaves (max_SAE_ID_count 0)',
      { additional_slave_SAE_IDs: ['SAE_T'] },
      'additional_slave_SAE_IDs are not supported (max_SAE_ID_count is 0)',
    ],
    [
      'size below min_key_size',
      { size: 32 },
      'size shall be between min_key_size (64) and max_key_size (1024)',
    ],
    [
      'size above max_key_size',
      { size: 2048 },
      'size shall be between min_key_size (64) and max_key_size (1024)',
    ],
    [
      'number above max_key_per_request',
      { number: 129 },
      'number shall not exceed max_key_per_request (128)',
    ],
    ['number zero', { number: 0 }, 'invalid key request'],
    ['size not an integer', { size: 'big' }, 'invalid key request'],
    ['invalid JSON', '{not json', 'request body is not valid JSON'],
  ];
  for (const [name, body, message] of errorCases) {
    test(`400 Error object: ${name}`, async () => {
      const { post, pools } = setup();
      const res = await post('SAE_M', '/SAE_S/enc_keys', body);
      expect(res.status).toBe(400);
      const err = (await res.json()) as { message: string; details?: unknown[] };
      expect(err.message).toBe(message);
      if (err.details) expect(Array.isArray(err.details)).toBe(true);
      expect(pools.pool('SAE_M', 'SAE_S')!.storedKeyCount()).toBe(100); // nothing taken
    });
  }

  test('400 for a bad GET query (size not a multiple of 8, non-numeric number)', async () => {
    const { call } = setup();
    const a = await call('SAE_M', '/SAE_S/enc_keys?size=20');
    expect(a.status).toBe(400);
    expect(((await a.json()) as { message: string }).message).toBe(etsiMessages.sizeMultipleOf8);
    const b = await call('SAE_M', '/SAE_S/enc_keys?number=abc');
    expect(b.status).toBe(400);
  });

  test('503 Error object when the pool holds too few keys; nothing is taken', async () => {
    const { post, pools } = setup(32 * 2);
    const res = await post('SAE_M', '/SAE_S/enc_keys', { number: 3 });
    expect(res.status).toBe(503);
    expect(((await res.json()) as { message: string }).message).toBe('not enough key material on KME');
    expect(pools.pool('SAE_M', 'SAE_S')!.storedKeyCount()).toBe(2);
  });

  test('401: slave asking for enc_keys, or a master without a link to that slave', async () => {
    const { post } = setup();
    expect((await post('SAE_S', '/SAE_M/enc_keys', {})).status).toBe(401);
    expect((await post('SAE_X', '/SAE_S/enc_keys', {})).status).toBe(401);
    expect((await post(null, '/SAE_S/enc_keys', {})).status).toBe(401);
  });
});

describe('ETSI GS QKD 014: Get key with key IDs (dec_keys)', () => {
  test('the named slave gets the same keys once (POST), then they are erased', async () => {
    const { post } = setup();
    const enc = (await (await post('SAE_M', '/SAE_S/enc_keys', { number: 2 })).json()) as KeyContainer;
    const res = await post('SAE_S', '/SAE_M/dec_keys', {
      key_IDs: enc.keys.map((k) => ({ key_ID: k.key_ID })),
    });
    expect(res.status).toBe(200);
    const dec = (await res.json()) as KeyContainer;
    expect(dec).toEqual(enc);
    const again = await post('SAE_S', '/SAE_M/dec_keys', { key_IDs: [{ key_ID: enc.keys[0]!.key_ID }] });
    expect(again.status).toBe(400);
    expect(((await again.json()) as { message: string }).message).toBe(etsiMessages.keysNotFound);
  });

  test('GET with a single ?key_ID=', async () => {
    const { post, call } = setup();
    const enc = (await (await post('SAE_M', '/SAE_S/enc_keys', {})).json()) as KeyContainer;
    const res = await call('SAE_S', `/SAE_M/dec_keys?key_ID=${enc.keys[0]!.key_ID}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual(enc);
  });

  test('401 when the caller is not the slave named in the Get key call (and the key stays for the slave)', async () => {
    const { post, pools } = setup();
    pools.addLink('SAE_M', 'SAE_X');
    const enc = (await (await post('SAE_M', '/SAE_S/enc_keys', {})).json()) as KeyContainer;
    const ids = { key_IDs: [{ key_ID: enc.keys[0]!.key_ID }] };
    for (const sae of ['SAE_X', 'SAE_M', 'SAE_T'] as const) {
      const res = await post(sae, '/SAE_M/dec_keys', ids);
      expect(res.status).toBe(401);
      expect(await res.text()).toBe('');
    }
    expect((await post('SAE_S', '/SAE_M/dec_keys', ids)).status).toBe(200);
  });

  test('400 "not found" for unknown IDs, for a wrong master, all or nothing', async () => {
    const { post, pools } = setup();
    pools.addLink('SAE_T', 'SAE_S');
    const enc = (await (await post('SAE_M', '/SAE_S/enc_keys', {})).json()) as KeyContainer;
    const known = { key_ID: enc.keys[0]!.key_ID };
    const unknown = { key_ID: crypto.randomUUID() };
    const res = await post('SAE_S', '/SAE_M/dec_keys', { key_IDs: [known, unknown] });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toBe(etsiMessages.keysNotFound);
    const wrongMaster = await post('SAE_S', '/SAE_T/dec_keys', { key_IDs: [known] });
    expect(wrongMaster.status).toBe(400);
    // The known key was not consumed by the failed requests.
    expect((await post('SAE_S', '/SAE_M/dec_keys', { key_IDs: [known] })).status).toBe(200);
  });

  test('400 for malformed requests: not a UUID, empty list, missing key_IDs, missing query', async () => {
    const { post, call } = setup();
    expect((await post('SAE_S', '/SAE_M/dec_keys', { key_IDs: [{ key_ID: 'nope' }] })).status).toBe(400);
    expect((await post('SAE_S', '/SAE_M/dec_keys', { key_IDs: [] })).status).toBe(400);
    expect((await post('SAE_S', '/SAE_M/dec_keys', {})).status).toBe(400);
    expect((await call('SAE_S', '/SAE_M/dec_keys')).status).toBe(400);
    expect((await call('SAE_S', '/SAE_M/dec_keys?key_ID=xyz')).status).toBe(400);
  });

  test('getKeyForChannel serves the slave side once', async () => {
    const { post, pools } = setup();
    const enc = (await (await post('SAE_M', '/SAE_S/enc_keys', {})).json()) as KeyContainer;
    const id = enc.keys[0]!.key_ID;
    expect(pools.getKeyForChannel(id, 'SAE_X')).toBeNull();
    const key = pools.getKeyForChannel(id, 'SAE_S');
    expect(Buffer.from(key!).toString('base64')).toBe(enc.keys[0]!.key);
    expect(pools.getKeyForChannel(id)).toBeNull();
    expect(pools.getKeyForChannel('not-an-id')).toBeNull();
  });
});

describe('ETSI GS QKD 014: concurrency', () => {
  test('many masters and slaves pulling at once: no key is delivered twice, every byte once', async () => {
    const pools = createKeyPoolManager({ keySize: 256, maxKeys: 10_000 });
    const masters = Array.from({ length: 8 }, (_, i) => `M${i}`);
    const slaves = Array.from({ length: 8 }, (_, i) => `S${i}`);
    const saeTokens: Record<string, string> = {};
    for (const s of [...masters, ...slaves]) saeTokens[s] = `token-${s}-0123456789abcdef`;
    const material = new Map<string, Uint8Array>();
    for (const [i, m] of masters.entries()) {
      const bytes = new Uint8Array(32 * 200);
      crypto.getRandomValues(bytes);
      material.set(m, bytes.slice());
      pools.addLink(m, slaves[i]!).add(bytes);
    }
    const app = createQkdRoutes({ pools, config, resolveSae: bearerSaeResolver(saeTokens) });
    const req = async (sae: string, path: string, body: unknown): Promise<Response> =>
      await app.request(`/api/v1/keys${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${saeTokens[sae]}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    // 8 masters × 30 concurrent requests of 1–8 keys: more than the 200 keys each pool holds.
    const results = await Promise.all(
      masters.flatMap((m, i) =>
        Array.from({ length: 30 }, (_, j) =>
          req(m, `/${slaves[i]}/enc_keys`, { number: 1 + (j % 8) }).then(async (r) => ({
            m,
            i,
            status: r.status,
            body: r.status === 200 ? ((await r.json()) as KeyContainer) : null,
          })),
        ),
      ),
    );
    const seen = new Set<string>();
    const delivered = new Map<string, Buffer[]>();
    for (const r of results) {
      expect([200, 503]).toContain(r.status);
      for (const k of r.body?.keys ?? []) {
        expect(seen.has(k.key_ID)).toBe(false);
        seen.add(k.key_ID);
        delivered.set(r.m, [...(delivered.get(r.m) ?? []), Buffer.from(k.key, 'base64')]);
      }
    }
    for (const m of masters) {
      const keys = delivered.get(m) ?? [];
      expect(keys.length).toBeLessThanOrEqual(200);
      // Every delivered key is a distinct slice of that link's material: no byte served twice.
      const all = Buffer.concat(keys.map((k) => k));
      const src = Buffer.from(material.get(m)!);
      const hex = new Set(keys.map((k) => k.toString('hex')));
      expect(hex.size).toBe(keys.length);
      for (const k of keys) expect(src.indexOf(k)).toBeGreaterThanOrEqual(0);
      expect(all.length + pools.pool(m, slaves[masters.indexOf(m)]!)!.storedBytes()).toBe(src.length);
    }
    // Slaves now fetch concurrently, each ID requested twice at once: each delivered exactly once.
    const byMaster = [...delivered.keys()];
    const fetches = await Promise.all(
      results
        .filter((r) => r.body)
        .flatMap((r) =>
          [0, 1].map(() =>
            req(slaves[r.i]!, `/${masters[r.i]}/dec_keys`, {
              key_IDs: r.body!.keys.map((k) => ({ key_ID: k.key_ID })),
            }).then((res) => res.status),
          ),
        ),
    );
    const ok = fetches.filter((s) => s === 200).length;
    expect(ok).toBe(fetches.length / 2);
    expect(fetches.filter((s) => s === 400).length).toBe(fetches.length / 2);
    expect(pools.pendingCount()).toBe(0);
    expect(byMaster.length).toBe(masters.length);
  });
});
