/**
 * Differential property tests: the WASM AEAD (SIMD and scalar builds) against @noble/ciphers on
 * random keys, nonces, AAD and lengths 0..16 KiB, single calls and the batch API with mixed
 * lengths; tampering with any byte of ciphertext, tag or AAD makes open fail; both builds give
 * identical bytes. Plus RFC 8439 §2.4.2 / §2.5.2 and HChaCha20 (draft-irtf-cfrg-xchacha §2.2.1)
 * known answers on the raw kernels.
 */
import { beforeAll, describe, expect, test } from 'bun:test';
import { chacha20poly1305, xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import fc from 'fast-check';
import type { AeadBatchItem } from '../../src/crypto/types.ts';
import { bytesToHex, hexToBytes as h } from '../../src/crypto/util.ts';
import { loadWasmAeadSync, type WasmAead } from '../../src/crypto/wasm.ts';
import { ensureWasmBuilt } from './setup.ts';

let simd: WasmAead;
let scalar: WasmAead;
beforeAll(() => {
  ensureWasmBuilt();
  simd = loadWasmAeadSync({ simd: true });
  scalar = loadWasmAeadSync({ simd: false });
});

const key = fc.uint8Array({ minLength: 32, maxLength: 32 });
const nonce12 = fc.uint8Array({ minLength: 12, maxLength: 12 });
const nonce24 = fc.uint8Array({ minLength: 24, maxLength: 24 });
const aad = fc.uint8Array({ minLength: 0, maxLength: 100 });
// Lengths 0..16 KiB, biased to block boundaries (64-byte ChaCha blocks, 256-byte SIMD groups).
const payload = fc.oneof(
  fc.uint8Array({ minLength: 0, maxLength: 300 }),
  fc.integer({ min: 0, max: 16384 }).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })),
  fc.constantFrom(0, 1, 15, 16, 17, 63, 64, 65, 191, 192, 193, 255, 256, 257, 4096, 16383, 16384).map((n) => crypto.getRandomValues(new Uint8Array(n))),
);
const hex = bytesToHex;

describe('WASM ChaCha20-Poly1305 vs @noble/ciphers', () => {
  test('seal and open agree on random inputs (SIMD and scalar)', () => {
    fc.assert(
      fc.property(key, nonce12, aad, payload, (k, n, a, p) => {
        const expected = hex(chacha20poly1305(k, n, a).encrypt(p));
        for (const w of [simd, scalar]) {
          const sealed = w.chachaPoly.seal(k, n, p, a);
          expect(hex(sealed)).toBe(expected);
          expect(hex(w.chachaPoly.open(k, n, sealed, a)!)).toBe(hex(p));
        }
      }),
      { numRuns: 150 },
    );
  });

  test('XChaCha20-Poly1305 seal and open agree on random inputs (SIMD and scalar)', () => {
    fc.assert(
      fc.property(key, nonce24, aad, payload, (k, n, a, p) => {
        const expected = hex(xchacha20poly1305(k, n, a).encrypt(p));
        for (const w of [simd, scalar]) {
          const sealed = w.xchachaPoly.seal(k, n, p, a);
          expect(hex(sealed)).toBe(expected);
          expect(hex(w.xchachaPoly.open(k, n, sealed, a)!)).toBe(hex(p));
        }
      }),
      { numRuns: 80 },
    );
  });

  test('batch API with mixed lengths equals per-item noble results', () => {
    const item = fc.record({ key, nonce: nonce12, aad, data: fc.uint8Array({ minLength: 0, maxLength: 2048 }) });
    fc.assert(
      fc.property(fc.array(item, { minLength: 0, maxLength: 40 }), (items: AeadBatchItem[]) => {
        const expected = items.map((i) => hex(chacha20poly1305(i.key, i.nonce, i.aad).encrypt(i.data)));
        for (const w of [simd, scalar]) {
          const sealed = w.chachaPoly.sealBatch(items);
          expect(sealed.map(hex)).toEqual(expected);
          const opened = w.chachaPoly.openBatch(items.map((i, j) => ({ ...i, data: sealed[j]! })));
          expect(opened.map((o) => (o ? hex(o) : null))).toEqual(items.map((i) => hex(i.data)));
        }
      }),
      { numRuns: 60 },
    );
  });

  test('batches of small frames (the paired small-frame seal path) agree with noble, odd counts and mixed sizes', () => {
    // ≤ 128-byte payloads with ≤ 16-byte AAD are sealed two at a time with stitched MACs in the
    // SIMD build; larger ones interleave with them in the same batch.
    const small = fc.record({ key, nonce: nonce12, aad: fc.option(fc.uint8Array({ minLength: 0, maxLength: 16 }), { nil: undefined }), data: fc.uint8Array({ minLength: 0, maxLength: 128 }) });
    const large = fc.record({ key, nonce: nonce12, aad: fc.uint8Array({ minLength: 0, maxLength: 40 }), data: fc.uint8Array({ minLength: 0, maxLength: 700 }) });
    fc.assert(
      fc.property(fc.array(fc.oneof({ arbitrary: small, weight: 4 }, { arbitrary: large, weight: 1 }), { minLength: 0, maxLength: 41 }), (items: AeadBatchItem[]) => {
        const expected = items.map((i) => hex(chacha20poly1305(i.key, i.nonce, i.aad).encrypt(i.data)));
        for (const w of [simd, scalar]) {
          const sealed = w.chachaPoly.sealBatch(items);
          expect(sealed.map(hex)).toEqual(expected);
          const opened = w.chachaPoly.openBatch(items.map((i, j) => ({ ...i, data: sealed[j]! })));
          expect(opened.map((o) => (o ? hex(o) : null))).toEqual(items.map((i) => hex(i.data)));
          // Every third frame tampered (ciphertext or tag byte): only those fail, in pairs too.
          const frames = sealed.map((f, j) => {
            if (j % 3 !== 1) return f;
            const t = f.slice();
            t[(j * 7) % t.length]! ^= 0x01;
            return t;
          });
          const mixed = w.chachaPoly.openBatch(items.map((i, j) => ({ ...i, data: frames[j]! })));
          expect(mixed.map((o) => (o ? hex(o) : null))).toEqual(items.map((i, j) => (j % 3 === 1 ? null : hex(i.data))));
        }
      }),
      { numRuns: 120 },
    );
  });

  test('XChaCha batch agrees with noble, and a batch mixing good and tampered frames flags only the bad ones', () => {
    const item = fc.record({ key, nonce: nonce24, aad, data: fc.uint8Array({ minLength: 0, maxLength: 600 }) });
    fc.assert(
      fc.property(fc.array(fc.tuple(item, fc.boolean()), { minLength: 1, maxLength: 30 }), (rows) => {
        const items = rows.map(([i]) => i);
        const sealed = simd.xchachaPoly.sealBatch(items);
        expect(sealed.map(hex)).toEqual(items.map((i) => hex(xchacha20poly1305(i.key, i.nonce, i.aad).encrypt(i.data))));
        const frames = sealed.map((s, j) => {
          if (!rows[j]![1]) return s;
          const t = s.slice();
          t[j % t.length]! ^= 0x80;
          return t;
        });
        const opened = scalar.xchachaPoly.openBatch(items.map((i, j) => ({ ...i, data: frames[j]! })));
        opened.forEach((o, j) => {
          if (rows[j]![1]) expect(o).toBeNull();
          else expect(hex(o!)).toBe(hex(items[j]!.data));
        });
      }),
      { numRuns: 40 },
    );
  });

  test('packed batch API: prefix ‖ ciphertext ‖ tag back to back, opens flag tampered frames, caller output region', () => {
    const item = fc.record({ key, nonce: nonce12, aad, data: fc.uint8Array({ minLength: 0, maxLength: 1200 }) });
    const prefix = fc.uint8Array({ minLength: 0, maxLength: 20 });
    fc.assert(
      fc.property(fc.array(fc.tuple(item, prefix, fc.boolean()), { minLength: 0, maxLength: 30 }), fc.boolean(), (rows, useOut) => {
        const items: AeadBatchItem[] = rows.map(([i]) => i);
        const prefixes = rows.map(([, p]) => p);
        const expected = items.map((i, j) => hex(prefixes[j]!) + hex(chacha20poly1305(i.key, i.nonce, i.aad).encrypt(i.data)));
        for (const w of [simd, scalar]) {
          const out = useOut ? new Uint8Array(40_000) : undefined;
          const sealed = w.chachaPoly.sealBatchPacked(items, { prefixes, out });
          if (out) expect(sealed.bytes.buffer).toBe(out.buffer);
          const frames = items.map((_, j) => sealed.bytes.subarray(sealed.offsets[j]!, sealed.offsets[j]! + sealed.lengths[j]!));
          expect(frames.map(hex)).toEqual(expected);
          expect([...sealed.ok]).toEqual(items.map(() => 1));
          const cts = frames.map((f, j) => {
            const ct = f.slice(prefixes[j]!.length);
            if (rows[j]![2] && ct.length > 0) ct[j % ct.length]! ^= 0x40;
            return ct;
          });
          const opened = w.chachaPoly.openBatchPacked(items.map((i, j) => ({ ...i, data: cts[j]! })));
          items.forEach((i, j) => {
            const tampered = rows[j]![2];
            expect(opened.ok[j]).toBe(tampered ? 0 : 1);
            expect(opened.lengths[j]).toBe(tampered ? 0 : i.data.length);
            if (!tampered) expect(hex(opened.bytes.subarray(opened.offsets[j]!, opened.offsets[j]! + opened.lengths[j]!))).toBe(hex(i.data));
          });
        }
      }),
      { numRuns: 50 },
    );
  });

  test('batch results are independent of linear memory (later calls do not change earlier frames)', () => {
    const items = Array.from({ length: 5 }, (_, i) => ({ key: new Uint8Array(32).fill(i), nonce: new Uint8Array(12).fill(i), data: new Uint8Array(100 + i).fill(i) }));
    const first = simd.chachaPoly.sealBatch(items);
    const copy = first.map(hex);
    simd.chachaPoly.sealBatch(items.map((i) => ({ ...i, data: new Uint8Array(3000).fill(9) })));
    simd.chachaPoly.openBatch(items.map((i, j) => ({ ...i, data: first[j]! })));
    expect(first.map(hex)).toEqual(copy);
    expect(simd.chachaPoly.sealBatch([])).toEqual([]);
    expect(simd.chachaPoly.sealBatchPacked([]).bytes.length).toBe(0);
    expect(() => simd.chachaPoly.sealBatchPacked(items, { prefixes: [] })).toThrow(RangeError);
  });

  test('short frames in a batch open as failures without touching their neighbours', () => {
    const k = new Uint8Array(32).fill(3), n = new Uint8Array(12).fill(4);
    const good = simd.chachaPoly.seal(k, n, new Uint8Array(40).fill(1));
    const opened = scalar.chachaPoly.openBatch([
      { key: k, nonce: n, data: good },
      { key: k, nonce: n, data: new Uint8Array(7) },
      { key: k, nonce: n, data: good },
    ]);
    expect(opened[1]).toBeNull();
    expect(hex(opened[0]!)).toBe(hex(new Uint8Array(40).fill(1)));
    expect(hex(opened[2]!)).toBe(hex(new Uint8Array(40).fill(1)));
  });

  test('tampering with any byte of ciphertext, tag or AAD makes open fail', () => {
    fc.assert(
      fc.property(key, nonce12, fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.uint8Array({ minLength: 0, maxLength: 300 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (k, n, a, p, pos, flip) => {
        for (const w of [simd, scalar]) {
          const sealed = w.chachaPoly.seal(k, n, p, a);
          const badCt = sealed.slice();
          badCt[pos % badCt.length]! ^= flip; // covers ciphertext and tag bytes
          expect(w.chachaPoly.open(k, n, badCt, a)).toBeNull();
          const badAad = a.slice();
          badAad[pos % badAad.length]! ^= flip;
          expect(w.chachaPoly.open(k, n, sealed, badAad)).toBeNull();
          expect(w.chachaPoly.open(k, n, sealed.subarray(0, sealed.length - 1), a)).toBeNull();
        }
      }),
      { numRuns: 150 },
    );
  });

  test('every single byte position of a 200-byte frame is covered by the tag', () => {
    const k = new Uint8Array(32).fill(7), n = new Uint8Array(12).fill(9), a = new Uint8Array(13).fill(1);
    const sealed = simd.chachaPoly.seal(k, n, new Uint8Array(200).fill(3), a);
    for (let i = 0; i < sealed.length; i++) {
      const bad = sealed.slice();
      bad[i]! ^= 1;
      expect(simd.chachaPoly.open(k, n, bad, a)).toBeNull();
      expect(scalar.chachaPoly.open(k, n, bad, a)).toBeNull();
    }
    for (let i = 0; i < a.length; i++) {
      const bad = a.slice();
      bad[i]! ^= 1;
      expect(simd.chachaPoly.open(k, n, sealed, bad)).toBeNull();
    }
  });

  test('open writes no plaintext when the tag fails', () => {
    const w = simd;
    const k = new Uint8Array(32).fill(1), n = new Uint8Array(12).fill(2);
    const sealed = w.chachaPoly.seal(k, n, new Uint8Array(500).fill(0xaa));
    sealed[sealed.length - 1]! ^= 1;
    // Drive the raw export so we can look at the output region afterwards.
    const kp = w.scratch(k, 0), np = w.scratch(n, 32), src = w.scratch(sealed, 64), dst = src + 1024;
    w.scratch(new Uint8Array(600).fill(0x5c), dst - kp);
    expect(w.exports.open(kp, np, 0, 0, src, sealed.length, dst)).toBe(0);
    expect(w.read(dst, 484).every((b) => b === 0x5c)).toBe(true);
  });

  test('batch open writes no plaintext for a frame whose tag fails (paired small frames too)', () => {
    for (const w of [simd, scalar]) {
      const k = new Uint8Array(32).fill(1), n = new Uint8Array(12).fill(2);
      const good = w.chachaPoly.seal(k, n, new Uint8Array(100).fill(0xaa));
      const bad = good.slice();
      bad[bad.length - 1]! ^= 1;
      // Table of 3 items (a pair and an odd one out): [key, nonce, aad, aadLen, src, srcLen, dst, status].
      const kp = w.scratch(k, 0), np = w.scratch(n, 32);
      const frames = [bad, good, bad];
      const src = frames.map((f, j) => w.scratch(f, 256 + j * 512));
      const dst = frames.map((_, j) => w.scratch(new Uint8Array(100).fill(0x5c), 256 + j * 512 + 256));
      const table = new Uint32Array(frames.flatMap((f, j) => [kp, np, 0, 0, src[j]!, f.length, dst[j]!, 7]));
      const tp = w.scratch(new Uint8Array(table.buffer), 2048);
      expect(w.exports.batch(tp, 3, 1)).toBe(1);
      expect([...new Uint32Array(w.read(tp, 96).buffer)].filter((_, i) => i % 8 === 7)).toEqual([0, 1, 0]);
      expect(w.read(dst[0]!, 100).every((b) => b === 0x5c)).toBe(true);
      expect(w.read(dst[1]!, 100).every((b) => b === 0xaa)).toBe(true);
      expect(w.read(dst[2]!, 100).every((b) => b === 0x5c)).toBe(true);
    }
  });

  test('SIMD and scalar builds give identical raw ChaCha20 keystreams at every length and counter', () => {
    fc.assert(
      fc.property(key, nonce12, fc.integer({ min: 0, max: 2 ** 32 - 8 }), fc.integer({ min: 0, max: 5000 }), (k, n, counter, len) => {
        const out = [simd, scalar].map((w) => {
          const kp = w.scratch(k, 0), np = w.scratch(n, 32), src = w.scratch(new Uint8Array(len), 64);
          w.exports.chachaXor(kp, np, counter, src, src, len);
          return hex(w.read(src, len));
        });
        expect(out[0]).toBe(out[1]);
      }),
      { numRuns: 60 },
    );
  });

  test('wrong key or nonce sizes are refused at the boundary', () => {
    expect(() => simd.chachaPoly.seal(new Uint8Array(31), new Uint8Array(12), new Uint8Array(1))).toThrow(RangeError);
    expect(() => simd.chachaPoly.seal(new Uint8Array(32), new Uint8Array(24), new Uint8Array(1))).toThrow(RangeError);
    expect(() => simd.xchachaPoly.open(new Uint8Array(32), new Uint8Array(12), new Uint8Array(20))).toThrow(RangeError);
    expect(simd.chachaPoly.open(new Uint8Array(32), new Uint8Array(12), new Uint8Array(15))).toBeNull();
  });

  test('memory growth keeps working (frames larger than anything before, then small again)', () => {
    const k = new Uint8Array(32).fill(4), n = new Uint8Array(12).fill(5);
    for (const len of [10, 300_000, 2_000_000, 7]) {
      const p = crypto.getRandomValues(new Uint8Array(len));
      const sealed = scalar.chachaPoly.seal(k, n, p);
      expect(hex(sealed)).toBe(hex(chacha20poly1305(k, n).encrypt(p)));
      expect(hex(scalar.chachaPoly.open(k, n, sealed)!)).toBe(hex(p));
    }
  });

  test('frames beyond the 16 KiB stitched-open scratch (SIMD) agree with noble, and a bad tag yields nothing', () => {
    const k = new Uint8Array(32).fill(6), n = new Uint8Array(12).fill(8), a = new Uint8Array(9).fill(2);
    for (const len of [16_511, 16_512, 16_639, 16_640, 16_641, 20_000, 65_536 + 77, 300_001]) {
      const p = crypto.getRandomValues(new Uint8Array(len));
      const expected = hex(chacha20poly1305(k, n, a).encrypt(p));
      const sealed = simd.chachaPoly.seal(k, n, p, a);
      expect(hex(sealed)).toBe(expected);
      expect(hex(simd.chachaPoly.open(k, n, sealed, a)!)).toBe(hex(p));
      const bad = sealed.slice();
      bad[len - 1]! ^= 4;
      expect(simd.chachaPoly.open(k, n, bad, a)).toBeNull();
    }
  });
});

describe('raw kernels, RFC known answers', () => {
  test('ChaCha20 encryption, RFC 8439 §2.4.2', () => {
    const k = h('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
    const n = h('000000000000004a00000000');
    const pt = new TextEncoder().encode(
      "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.",
    );
    const expected =
      '6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0bf91b65c5524733ab8f593dabcd62b3571639d624e65152ab8f530c359f0861d807ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab77937365af90bbf74a35be6b40b8eedf2785e42874d';
    for (const w of [simd, scalar]) {
      const kp = w.scratch(k, 0), np = w.scratch(n, 32), src = w.scratch(pt, 64);
      w.exports.chachaXor(kp, np, 1, src, src, pt.length);
      expect(hex(w.read(src, pt.length))).toBe(expected);
    }
  });

  test('Poly1305, RFC 8439 §2.5.2', () => {
    const k = h('85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b');
    const msg = new TextEncoder().encode('Cryptographic Forum Research Group');
    for (const w of [simd, scalar]) {
      const kp = w.scratch(k, 0), mp = w.scratch(msg, 64), out = mp + 128;
      w.exports.poly1305(kp, mp, msg.length, out);
      expect(hex(w.read(out, 16))).toBe('a8061dc1305136c6c22b8baf0c0127a9');
    }
  });

  test('HChaCha20, draft-irtf-cfrg-xchacha §2.2.1', () => {
    const k = h('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');
    const n = h('000000090000004a0000000031415927');
    for (const w of [simd, scalar]) {
      const kp = w.scratch(k, 0), np = w.scratch(n, 32), out = np + 64;
      w.exports.hchacha20(kp, np, out);
      expect(hex(w.read(out, 32))).toBe('82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc');
    }
  });
});
