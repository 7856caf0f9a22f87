/**
 * JS glue over the AssemblyScript AEAD module (`wasm/assembly/aead`), without any runtime
 * imports: give it a compiled `WebAssembly.Module` (Bun, Node or a browser) and it returns
 * ChaCha20-Poly1305 and XChaCha20-Poly1305 as `BatchAead`.
 *
 * Memory contract (STYLE.md rule 8): the module never allocates. Everything from its
 * `heapBase()` up is ours, growing only when a call needs more than it ever needed before; the
 * byte views are created once and re-created only after `memory.grow` detached them. Keys are
 * wiped from linear memory after every call.
 *
 * Batches (one JS→WASM crossing for many frames) are laid out as
 * `[table][keys][nonces][aads][frame slots]`: each frame's payload is copied once into its slot,
 * sealed or opened in place there, and the slots sit back to back, so the results leave linear
 * memory in a single copy (`packed*`: one buffer plus offsets; `sealBatch`/`openBatch`:
 * `subarray` views of that one buffer). A seal slot can start with a caller's prefix (a frame
 * header), so `prefix ‖ ciphertext ‖ tag` comes out contiguous without another concatenation.
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

/**
 * Results of a packed batch: every frame's output back to back in `bytes`. Frame `i` is
 * `bytes.subarray(offsets[i], offsets[i] + lengths[i])` (for a seal with prefixes the prefix is
 * included); `ok[i]` is 1 when it sealed, or opened with a valid tag, else 0 (length 0).
 */
export interface PackedFrames {
  bytes: Uint8Array;
  offsets: Uint32Array;
  lengths: Uint32Array;
  ok: Uint8Array;
}

/** Options of the packed batch calls. */
export interface PackedOptions {
  /** Seal only: `prefixes[i]` is written before frame i's ciphertext in the output (a header). */
  prefixes?: readonly Uint8Array[];
  /**
   * A caller-provided output region; used when large enough for the whole result (the
   * returned `bytes` is then a view of it), else a new buffer is allocated.
   */
  out?: Uint8Array;
}

/** `BatchAead` plus the packed forms of the batch calls (one output buffer, no per-frame copies). */
export interface WasmBatchAead extends BatchAead {
  /** Seals all items in one WASM call; outputs are `prefix ‖ ciphertext ‖ tag`, back to back. */
  sealBatchPacked(items: readonly AeadBatchItem[], options?: PackedOptions): PackedFrames;
  /** Opens all items in one WASM call; a frame whose tag fails has `ok[i] = 0` and length 0. */
  openBatchPacked(items: readonly AeadBatchItem[], options?: PackedOptions): PackedFrames;
}

/** The module's two AEADs plus access to the raw exports (tests, RFC 8439 §2.4/§2.5 checks). */
export interface WasmAead {
  readonly simd: boolean;
  readonly chachaPoly: WasmBatchAead;
  readonly xchachaPoly: WasmBatchAead;
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

  /** Copies bytes into linear memory; a plain loop beats `set` for keys, nonces and headers on JSC. */
  const put = (bytes: Uint8Array, at: number) => {
    const n = bytes.length;
    if (n > 48) u8.set(bytes, at);
    else for (let j = 0; j < n; j++) u8[at + j] = bytes[j]!;
  };

  const makeAead = (name: 'ChaChaPoly' | 'XChaChaPoly', nonceLength: number): WasmBatchAead => {
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

    /**
     * One crossing for the whole batch. Layout from `base`: table (32 B per item), keys and
     * nonces (32 B slots, keys contiguous so one fill wipes them), AADs back to back, then the
     * frame slots back to back. A seal slot is `prefix ‖ data ‖ 16-byte tag room`, an open slot
     * holds the ciphertext ‖ tag and receives the plaintext in place.
     */
    const run = (items: readonly AeadBatchItem[], seal: boolean, options: PackedOptions | undefined): PackedFrames => {
      const count = items.length;
      const prefixes = seal ? options?.prefixes : undefined;
      if (prefixes !== undefined && prefixes.length !== count) throw new RangeError('prefixes: expected one per item');
      const lengths = new Uint32Array(count);
      const offsets = new Uint32Array(count);
      const ok = new Uint8Array(count);
      // Pass 1: check every field at the boundary and size the regions.
      let aadBytes = 0;
      let slotBytes = 0;
      for (let i = 0; i < count; i++) {
        const it = items[i]!;
        abytes(it.key, 32, 'key');
        abytes(it.nonce, nonceLength, 'nonce');
        abytes(it.data, undefined, 'data');
        if (it.aad !== undefined) aadBytes += abytes(it.aad, undefined, 'aad').length;
        const p = prefixes === undefined ? 0 : abytes(prefixes[i], undefined, 'prefix').length;
        slotBytes += p + it.data.length + (seal ? 16 : 0);
      }
      const keys = base + count * ITEM;
      const nonces = keys + count * 32;
      const aads = nonces + count * 32;
      const slots = align16(aads + aadBytes);
      ensure(slots - base + slotBytes + 16);
      // Pass 2: copy in and fill the table.
      let ad = aads;
      let slot = slots;
      for (let i = 0; i < count; i++) {
        const it = items[i]!;
        const k = keys + i * 32;
        const n = nonces + i * 32;
        put(it.key, k);
        put(it.nonce, n);
        const aad = it.aad;
        const aadLen = aad === undefined ? 0 : aad.length;
        if (aadLen > 0) put(aad!, ad);
        offsets[i] = slot - slots;
        let d = slot;
        if (prefixes !== undefined) {
          const p = prefixes[i]!;
          if (p.length > 0) put(p, d);
          d += p.length;
        }
        const len = it.data.length;
        if (len > 0) u8.set(it.data, d);
        const t = (base >>> 2) + i * 8;
        u32[t] = k;
        u32[t + 1] = n;
        u32[t + 2] = ad;
        u32[t + 3] = aadLen;
        u32[t + 4] = d;
        u32[t + 5] = len;
        u32[t + 6] = d;
        u32[t + 7] = 0;
        ad += aadLen;
        slot = d + len + (seal ? 16 : 0);
      }
      if (count > 0) exports.batch(base, count, seal ? opSeal : opOpen);
      u8.fill(0, keys, keys + count * 32);
      for (let i = 0; i < count; i++) {
        const t = (base >>> 2) + i * 8;
        const good = u32[t + 7]!;
        ok[i] = good;
        const prefix = u32[t + 4]! - slots - offsets[i]!;
        const len = u32[t + 5]!;
        lengths[i] = good === 0 ? 0 : seal ? prefix + len + 16 : len - 16;
      }
      // The slots leave linear memory in one copy.
      const out = options?.out;
      let bytes: Uint8Array;
      if (out !== undefined && out.length >= slot - slots) {
        out.set(u8.subarray(slots, slot));
        bytes = out.subarray(0, slot - slots);
      } else {
        bytes = u8.slice(slots, slot);
      }
      return { bytes, offsets, lengths, ok };
    };

    const batch = (items: readonly AeadBatchItem[], seal: boolean): (Uint8Array | null)[] => {
      const { bytes, offsets, lengths, ok } = run(items, seal, undefined);
      const out: (Uint8Array | null)[] = new Array(items.length);
      for (let i = 0; i < items.length; i++) {
        out[i] = ok[i] === 1 ? bytes.subarray(offsets[i]!, offsets[i]! + lengths[i]!) : null;
      }
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
      sealBatchPacked: (items, options) => run(items, true, options),
      openBatchPacked: (items, options) => run(items, false, options),
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
