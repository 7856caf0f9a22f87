/** The startup self-test passes on every backend, and a corrupted backend fails it. */
import { beforeAll, describe, expect, test } from 'bun:test';
import { createCrypto } from '../../src/crypto/index.ts';
import { createNativeBackend } from '../../src/crypto/native.ts';
import { createNobleBackend } from '../../src/crypto/noble.ts';
import { selfTestAead, selfTestDh, selfTestHash, selfTestKem, selfTestKemAsync, selfTestSigner } from '../../src/crypto/self-test.ts';
import type { Aead, Dh, Hash, Kem, Signer } from '../../src/crypto/types.ts';
import { loadWasmAeadSync } from '../../src/crypto/wasm.ts';
import { ensureWasmBuilt } from './setup.ts';

beforeAll(() => ensureWasmBuilt());

const flipFirst = (b: Uint8Array) => {
  const c = b.slice();
  c[0]! ^= 1;
  return c;
};

describe('crypto self-test', () => {
  test('createCrypto: every backend passes and the choices are recorded', async () => {
    const logs: { level: string; msg?: string; obj: object }[] = [];
    const logger = { info: (obj: object, msg?: string) => logs.push({ level: 'info', obj, msg }), warn: (obj: object, msg?: string) => logs.push({ level: 'warn', obj, msg }) };
    const suite = await createCrypto({ aead: 'auto', kem: 'auto', signer: 'auto', dh: 'auto', wasmSimd: true }, logger);
    const results = suite.selfTest();
    expect(results.filter((r) => !r.ok)).toEqual([]);
    expect(results.length).toBeGreaterThanOrEqual(18);
    expect(suite.choices).toMatchObject({ chachaPoly: 'wasm', xchachaPoly: 'wasm', aesGcm: 'native', dh: 'native', signer: 'native', kem: 'noble', kemAsync: 'native', wasmBuild: 'simd' });
    expect(logs.some((l) => l.msg === 'crypto backends chosen')).toBe(true);
    expect(logs.filter((l) => l.level === 'warn')).toEqual([]);
  });

  test('config picks noble and scalar WASM when asked', async () => {
    const noble = await createCrypto({ aead: 'noble', kem: 'noble', signer: 'noble', dh: 'noble', wasmSimd: false });
    expect(noble.choices).toMatchObject({ chachaPoly: 'noble', aesGcm: 'noble', dh: 'noble', signer: 'noble', kem: 'noble' });
    expect(noble.kemAsync).toBeUndefined();
    const scalar = await createCrypto({ aead: 'wasm', kem: 'auto', signer: 'auto', dh: 'auto', wasmSimd: false });
    expect(scalar.choices.wasmBuild).toBe('scalar');
  });

  test('an unavailable configured backend falls back with a warning', async () => {
    const warnings: object[] = [];
    const suite = await createCrypto({ aead: 'auto', kem: 'native', signer: 'auto', dh: 'auto', wasmSimd: true }, { info() {}, warn: (o) => warnings.push(o) });
    expect(suite.choices.kem).toBe('noble');
    expect(warnings.length).toBeGreaterThan(0);
  });

  test('corrupted backends fail their known-answer test', async () => {
    const wasm = loadWasmAeadSync({ simd: true });
    const badAead = (a: Aead): Aead => ({ ...a, seal: (k, n, p, ad) => flipFirst(a.seal(k, n, p, ad)) });
    const lyingOpen = (a: Aead): Aead => ({ ...a, open: (k, n, c, ad) => a.open(k, n, c, ad) ?? new Uint8Array(0) });
    expect(selfTestAead(wasm.chachaPoly).ok).toBe(true);
    expect(selfTestAead(badAead(wasm.chachaPoly)).ok).toBe(false);
    expect(selfTestAead(lyingOpen(wasm.chachaPoly)).ok).toBe(false);
    expect(selfTestAead(badAead(wasm.xchachaPoly)).ok).toBe(false);

    const native = createNativeBackend();
    const noble = createNobleBackend();
    expect(selfTestAead(badAead(native.aesGcm)).ok).toBe(false);
    const badDh: Dh = { ...native.dh, dh: (s, p) => flipFirst(native.dh.dh(s, p)) };
    expect(selfTestDh(badDh)).toMatchObject({ ok: false, primitive: 'X25519', backend: 'native' });
    const badKem: Kem = { ...noble.kem, decapsulate: (c, s) => flipFirst(noble.kem.decapsulate(c, s)) };
    expect(selfTestKem(badKem).ok).toBe(false);
    const badKemAsync = { ...native.kemAsync, decapsulate: async (c: Uint8Array, s: Uint8Array) => flipFirst(await native.kemAsync.decapsulate(c, s)) };
    expect((await selfTestKemAsync(badKemAsync)).ok).toBe(false);
    const badSigner: Signer = { ...native.signer, verify: () => true };
    expect(selfTestSigner(badSigner).ok).toBe(false);
    const badHash: Hash = { ...native.hash('SHA256')!, hmac: (k, ...p) => flipFirst(native.hash('SHA256')!.hmac(k, ...p)) };
    expect(selfTestHash(badHash).ok).toBe(false);
    const throwing: Hash = { ...noble.hash('BLAKE2b'), digest: () => { throw new Error('boom'); } };
    expect(selfTestHash(throwing)).toMatchObject({ ok: false, error: 'boom' });
  });

  test('a corrupted WASM module fails its self-test', () => {
    const wasm = loadWasmAeadSync({ simd: false });
    // Break the module's static zero block (its keystream source): every output changes.
    const mem = new Uint8Array(wasm.exports.memory.buffer);
    const zeroStart = mem.findIndex((_, i) => i >= 1024 && i < wasm.exports.heapBase() && mem.subarray(i, i + 256).every((b) => b === 0));
    expect(zeroStart).toBeGreaterThanOrEqual(0);
    mem.fill(0xff, zeroStart, zeroStart + 64);
    expect(selfTestAead(wasm.chachaPoly).ok).toBe(false);
  });
});
