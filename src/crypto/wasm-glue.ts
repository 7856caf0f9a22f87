/**
 * JS glue over the AssemblyScript AEAD module (`wasm/assembly/aead`), without any runtime
 * imports: give it a compiled `WebAssembly.Module` (Bun, Node or a browser) and it returns
 * ChaCha20-Poly1305 and XChaCha20-Poly1305 as `BatchAead`.
 *
 * Memory contract (STYLE.md rule 8): the module never allocates. Everything from its
 * `heapBase()` up is ours: per call we lay out `[batch table][keys][nonces][aad ‖ data …]`,
 * growing the memory only when a call needs more than it ever needed before. The byte views
 * are created once and re-created only after `memory.grow` detached them. Seal and open work
 * in place (ciphertext overwrites plaintext and vice versa), so each frame is copied in once
 * and out once. Keys are wiped from linear memory after every call.
 */
import type { AeadBatchItem, BatchAead } from './types.ts';
import { abytes, EMPTY } from './util.ts';

/** The raw exports of `aead.wasm` / `aead.simd.wasm`. Pointers and lengths are u32. */
export interface WasmAeadExports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  isSimd(): number;
  seal(key: number, nonce: number, aad: number, aadLen: number, src: number, len: number, dst: number): void;
  open(key: number, nonce: number, aad: number, aadLen: number, src: number, srcLen: number, dst: number): number;
  xseal(key: number, nonce: number, aad: number, aadLen: number, src: number, len: number, dst: number): void;
  xopen(key: number, nonce: number, aad: number, aadLen: number, src: number, srcLen: number, dst: number): number;
  batch(table: number, count: number, op: number): number;
  chachaXor(key: number, nonce: number, counter: number, src: number, dst: number, len: number): void;
  hchacha20(key: number, nonce: number, out: number): void;
  poly1305(key: number, msg: number, len: number, out: number): void;
}

/** The module's two AEADs plus access to the raw exports (tests, RFC 8439 §2.4/§2.5 checks). */
export interface WasmAead {
  readonly simd: boolean;
  readonly chachaPoly: BatchAead;
  readonly xchachaPoly: BatchAead;
  readonly exports: WasmAeadExports;
  /** Copies bytes into scratch memory and returns a pointer (for tests of the raw exports). */
  scratch(bytes: Uint8Array, offset?: number): number;
  /** A fresh copy of linear memory bytes. */
  read(ptr: number, length: number): Uint8Array;
}

const OP_SEAL = 0;
const OP_OPEN = 1;
const OP_XSEAL = 2;
const OP_XOPEN = 3;
const ITEM = 32; // batch table entry: 8 × u32
const PAGE = 65536;

const align16 = (n: number) => (n + 15) & ~15;

/** Wraps an instantiated AEAD module. */
export function wrapWasmAead(exports: WasmAeadExports): WasmAead {
  const memory = exports.memory;
  const base = exports.heapBase();
  let u8 = new Uint8Array(memory.buffer);
  let u32 = new Uint32Array(memory.buffer);

  /** Makes sure [base, base + bytes) exists; re-creates the views after growth. */
  const ensure = (bytes: number) => {
    const need = base + bytes;
    if (u8.byteLength === 0 || u8.buffer !== memory.buffer) {
      u8 = new Uint8Array(memory.buffer);
      u32 = new Uint32Array(memory.buffer);
    }
    if (need > u8.byteLength) {
      memory.grow(Math.ceil((need - u8.byteLength) / PAGE));
      u8 = new Uint8Array(memory.buffer);
      u32 = new Uint32Array(memory.buffer);
    }
  };

  const makeAead = (name: 'ChaChaPoly' | 'XChaChaPoly', nonceLength: number): BatchAead => {
    const x = nonceLength === 24;
    const sealFn = x ? exports.xseal : exports.seal;
    const openFn = x ? exports.xopen : exports.open;
    const opSeal = x ? OP_XSEAL : OP_SEAL;
    const opOpen = x ? OP_XOPEN : OP_OPEN;

    const single = (key: Uint8Array, nonce: Uint8Array, data: Uint8Array, aad: Uint8Array | undefined, seal: boolean) => {
      abytes(key, 32, 'key');
      abytes(nonce, nonceLength, 'nonce');
      abytes(data, undefined, seal ? 'plaintext' : 'ciphertext');
      const a = aad ?? EMPTY;
      if (!seal && data.length < 16) return null;
      const k = base;
      const n = base + 32;
      const ad = base + 64;
      const d = align16(ad + a.length);
      ensure(d - base + data.length + 16);
      u8.set(key, k);
      u8.set(nonce, n);
      if (a.length > 0) u8.set(a, ad);
      u8.set(data, d);
      let out: Uint8Array | null;
      if (seal) {
        sealFn(k, n, ad, a.length, d, data.length, d);
        out = u8.slice(d, d + data.length + 16);
      } else {
        out = openFn(k, n, ad, a.length, d, data.length, d) === 1 ? u8.slice(d, d + data.length - 16) : null;
      }
      u8.fill(0, k, k + 32);
      return out;
    };

    const batch = (items: readonly AeadBatchItem[], seal: boolean): (Uint8Array | null)[] => {
      const count = items.length;
      if (count === 0) return [];
      const keys = base + count * ITEM;
      const nonces = keys + count * 32;
      let cursor = nonces + count * 32;
      let total = cursor - base;
      for (let i = 0; i < count; i++) {
        const it = items[i]!;
        abytes(it.key, 32, 'key');
        abytes(it.nonce, nonceLength, 'nonce');
        abytes(it.data, undefined, 'data');
        total = align16(total + (it.aad ? it.aad.length : 0)) + it.data.length + 16;
      }
      ensure(total + 16);
      for (let i = 0; i < count; i++) {
        const it = items[i]!;
        const k = keys + i * 32;
        const n = nonces + i * 32;
        u8.set(it.key, k);
        u8.set(it.nonce, n);
        const aad = it.aad ?? EMPTY;
        const ad = cursor;
        if (aad.length > 0) u8.set(aad, ad);
        const d = align16(ad + aad.length);
        u8.set(it.data, d);
        cursor = d + it.data.length + 16;
        const t = (base + i * ITEM) >>> 2;
        u32[t] = k;
        u32[t + 1] = n;
        u32[t + 2] = ad;
        u32[t + 3] = aad.length;
        u32[t + 4] = d;
        u32[t + 5] = it.data.length;
        u32[t + 6] = d;
        u32[t + 7] = 0;
      }
      exports.batch(base, count, seal ? opSeal : opOpen);
      const out: (Uint8Array | null)[] = new Array(count);
      for (let i = 0; i < count; i++) {
        const t = (base + i * ITEM) >>> 2;
        const d = u32[t + 4]!;
        const len = u32[t + 5]!;
        if (seal) out[i] = u8.slice(d, d + len + 16);
        else out[i] = u32[t + 7] === 1 ? u8.slice(d, d + len - 16) : null;
      }
      u8.fill(0, keys, keys + count * 32);
      return out;
    };

    return {
      name,
      backend: 'wasm',
      keyLength: 32,
      nonceLength,
      tagLength: 16,
      seal: (key, nonce, plaintext, aad) => single(key, nonce, plaintext, aad, true)!,
      open: (key, nonce, ciphertext, aad) => single(key, nonce, ciphertext, aad, false),
      sealBatch: (items) => batch(items, true) as Uint8Array[],
      openBatch: (items) => batch(items, false),
    };
  };

  return {
    simd: exports.isSimd() === 1,
    chachaPoly: makeAead('ChaChaPoly', 12),
    xchachaPoly: makeAead('XChaChaPoly', 24),
    exports,
    scratch(bytes, offset = 0) {
      ensure(offset + bytes.length + 16);
      u8.set(bytes, base + offset);
      return base + offset;
    },
    read(ptr, length) {
      ensure(ptr + length - base);
      return u8.slice(ptr, ptr + length);
    },
  };
}

/** Instantiates a compiled AEAD module (synchronously; the module is small). */
export function instantiateWasmAead(module: WebAssembly.Module): WasmAead {
  const instance = new WebAssembly.Instance(module, {
    env: {
      abort() {
        throw new Error('wasm aead: abort');
      },
    },
  });
  return wrapWasmAead(instance.exports as unknown as WasmAeadExports);
}
