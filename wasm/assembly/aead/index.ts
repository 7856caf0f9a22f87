/**
 * The quantum core's AEAD hot path: ChaCha20-Poly1305 (RFC 8439 §2.8) and XChaCha20-Poly1305
 * (draft-irtf-cfrg-xchacha §2), single calls and a batch API.
 *
 * Memory contract with the JS glue (`src/crypto/wasm.ts`): this module never allocates. Its
 * scratch lives in static data below `heapBase()`; everything from `heapBase()` up belongs to
 * the caller, which lays out keys, nonces, AAD, inputs, outputs and batch tables there and grows
 * the memory itself when needed.
 *
 * Batch table (`batch(table, count, op)`): `count` items of 8 little-endian u32 each —
 * `[keyPtr, noncePtr, aadPtr, aadLen, srcPtr, srcLen, dstPtr, status]`. Seal writes
 * `srcLen + 16` bytes (ciphertext || tag) at dstPtr; open reads `srcLen` bytes (ciphertext ||
 * tag) and, only when the tag verifies, writes `srcLen − 16` bytes of plaintext. `status` is set
 * to 1 on success and 0 on failure. An item may work in place (src == dst) but must not overlap
 * another item: in the SIMD build ChaCha20-Poly1305 frames of ≤ 128 bytes with ≤ 16 bytes of
 * AAD are processed two at a time, and a sealed pair's tags are written during the next pair.
 */
import { KS, ZERO, chachaXor, hchacha20, xorBlocksScalar, xorBlocksSimd, xorBytes } from './chacha';
import { keystream2Poly, polyBlocks, polyFinish, polyInit, sealStitched } from './poly1305';

export { chachaXor, hchacha20 } from './chacha';

const PADBUF: usize = memory.data(16, 16);
const TAG: usize = memory.data(16, 16);
const SUBKEY: usize = memory.data(32, 16);
const NONCE12: usize = memory.data(16, 16);
/** Keystream scratch of the stitched open: up to 16 KiB (128 chunks of 128 bytes), wiped after use. */
const OPEN_KS_CHUNKS: u32 = 128;
const OPEN_KS: usize = memory.data(<i32>OPEN_KS_CHUNKS << 7, 16);

export const OP_SEAL: u32 = 0;
export const OP_OPEN: u32 = 1;
export const OP_XSEAL: u32 = 2;
export const OP_XOPEN: u32 = 3;

/** First byte the caller may use; everything below is the module's static data. */
export function heapBase(): usize {
  return (__heap_base + 63) & ~(<usize>63);
}

/** 1 in the SIMD build, 0 in the scalar build. */
export function isSimd(): u32 {
  return ASC_FEATURE_SIMD ? 1 : 0;
}

/** Absorbs `len` bytes zero-padded to a multiple of 16 (RFC 8439 §2.8 pad16). */
function polyPadded(m: usize, len: usize): void {
  const full = len & ~(<usize>15);
  if (full > 0) polyBlocks(m, full, 1 << 24);
  const rem = len & 15;
  if (rem > 0) {
    store<u64>(PADBUF, 0, 0);
    store<u64>(PADBUF, 0, 8);
    memory.copy(PADBUF, m + full, rem);
    polyBlocks(PADBUF, 16, 1 << 24);
  }
}

/** The AEAD MAC input: AAD ‖ pad ‖ ciphertext ‖ pad ‖ le64(aadLen) ‖ le64(ctLen). */
function polyAead(aad: usize, aadLen: usize, ct: usize, ctLen: usize, out: usize): void {
  polyPadded(aad, aadLen);
  polyPadded(ct, ctLen);
  store<u64>(PADBUF, <u64>aadLen, 0);
  store<u64>(PADBUF, <u64>ctLen, 8);
  polyBlocks(PADBUF, 16, 1 << 24);
  polyFinish(out);
}

/**
 * Keystream block 0 gives the Poly1305 key (RFC 8439 §2.6). For payloads over one block the
 * SIMD build computes blocks 0–2 in one iteration of its 3-block kernel, so up to 128 bytes of
 * payload keystream come with the key block; returns how many payload bytes KS + 64 covers.
 */
// @ts-ignore: decorator
@inline function firstBlocks(key: usize, nonce: usize, len: usize): usize {
  if (ASC_FEATURE_SIMD && len > 64) {
    xorBlocksSimd(key, nonce, 0, ZERO, KS, 3);
    return 128;
  } else {
    xorBlocksScalar(key, nonce, 0, ZERO, KS, 1);
    return 0;
  }
}

/** Encrypts with the keystream from counter 1, using what `firstBlocks` left in KS. */
// @ts-ignore: decorator
@inline function cryptPayload(key: usize, nonce: usize, src: usize, dst: usize, len: usize, cached: usize): void {
  if (cached > 0) {
    const first = len < cached ? len : cached;
    xorBytes(src, KS + 64, dst, first);
    if (len > first) chachaXor(key, nonce, 3, src + first, dst + first, len - first);
  } else {
    chachaXor(key, nonce, 1, src, dst, len);
  }
}

// Batch seal of small frames, two at a time (SIMD build). See `sealPair`.
const PAIR_KS: usize = memory.data(384, 16); // step s holds [A block s | B block s] at 128·s
const PAIR_KEY: usize = memory.data(64, 16); // pending one-time Poly1305 keys, A then B
const PAIR_MAC: usize = memory.data(320, 16); // pending MAC inputs (≤ 10 blocks each), A then B
let pendA: u32 = 0, pendB: u32 = 0; // block counts of the pending MAC jobs (0: none)
let tagA: usize = 0, tagB: usize = 0;
let held: usize = 0; // table item of a frame waiting for a partner (0: none)

/** Small-frame limits of the paired path: ≤ 2 payload blocks, AAD in one Poly1305 block. */
const PAIR_MAX_LEN: usize = 128;
const PAIR_MAX_AAD: usize = 16;

/** Copies `n` ≤ 128 bytes (memory.copy is a runtime call on JSC; frames here are tiny). */
// @ts-ignore: decorator
@inline function copySmall(dst: usize, src: usize, n: usize): void {
  let i: usize = 0;
  for (; i + 16 <= n; i += 16) v128.store(dst + i, v128.load(src + i));
  for (; i < n; i++) store<u8>(dst + i, load<u8>(src + i));
}

/** Lays out one frame's MAC input (RFC 8439 §2.8) at `mac`; returns its block count. */
function macInput(mac: usize, aad: usize, aadLen: usize, ct: usize, len: usize): u32 {
  const z = i64x2.splat(0);
  for (let o: usize = 0; o < 160; o += 16) v128.store(mac + o, z);
  let at: usize = 0;
  if (aadLen > 0) {
    copySmall(mac, aad, aadLen);
    at = 16;
  }
  copySmall(mac + at, ct, len);
  at += (len + 15) & ~(<usize>15);
  store<u64>(mac + at, <u64>aadLen, 0);
  store<u64>(mac + at, <u64>len, 8);
  return <u32>((at + 16) >> 4);
}

/** Finishes the MACs still pending from the last pair (end of a batch). */
function flushPending(): void {
  if (pendA > 0) {
    polyInit(PAIR_KEY);
    polyBlocks(PAIR_MAC, <usize>pendA << 4, 1 << 24);
    polyFinish(tagA);
    pendA = 0;
  }
  if (pendB > 0) {
    polyInit(PAIR_KEY + 32);
    polyBlocks(PAIR_MAC + 160, <usize>pendB << 4, 1 << 24);
    polyFinish(tagB);
    pendB = 0;
  }
}

/**
 * Seals two small frames (table items `a`, `b`) with their keystream computed two blocks per
 * step in v128 rows while the MACs of the previous pair are absorbed on the integer units
 * (`keystream2Poly`); the MACs of this pair are left pending for the next pair or the flush.
 * On JSC a frame's ChaCha (vector units) and Poly1305 (integer multiplies) then overlap, which
 * a one-frame-at-a-time seal cannot do for frames this short.
 */
function sealPair(a: usize, b: usize): void {
  const ka = <usize>load<u32>(a, 0), na = <usize>load<u32>(a, 4);
  const kb = <usize>load<u32>(b, 0), nb = <usize>load<u32>(b, 4);
  // Step 1: blocks 0 (Poly1305 keys) while the previous A's MAC is absorbed.
  if (pendA > 0) polyInit(PAIR_KEY);
  keystream2Poly(ka, na, 0, kb, nb, 0, PAIR_KS, PAIR_MAC, <i32>pendA);
  if (pendA > 0) polyFinish(tagA);
  // Step 2: blocks 1 while the previous B's MAC is absorbed.
  if (pendB > 0) polyInit(PAIR_KEY + 32);
  keystream2Poly(ka, na, 1, kb, nb, 1, PAIR_KS + 128, PAIR_MAC + 160, <i32>pendB);
  if (pendB > 0) polyFinish(tagB);
  // Step 3: blocks 2, needed only when a payload is longer than one block.
  if (<usize>load<u32>(a, 20) > 64 || <usize>load<u32>(b, 20) > 64) keystream2Poly(ka, na, 2, kb, nb, 2, PAIR_KS + 256, 0, 0);
  v128.store(PAIR_KEY, v128.load(PAIR_KS), 0);
  v128.store(PAIR_KEY, v128.load(PAIR_KS, 16), 16);
  v128.store(PAIR_KEY, v128.load(PAIR_KS, 64), 32);
  v128.store(PAIR_KEY, v128.load(PAIR_KS, 80), 48);
  for (let f: usize = 0; f < 2; f++) {
    const item = f == 0 ? a : b;
    const aad = <usize>load<u32>(item, 8), aadLen = <usize>load<u32>(item, 12);
    const src = <usize>load<u32>(item, 16), len = <usize>load<u32>(item, 20), dst = <usize>load<u32>(item, 24);
    const ks = PAIR_KS + 128 + (f << 6);
    const first = len < 64 ? len : 64;
    xorBytes(src, ks, dst, first);
    if (len > 64) xorBytes(src + 64, ks + 128, dst + 64, len - 64);
    const n = macInput(PAIR_MAC + f * 160, aad, aadLen, dst, len);
    if (f == 0) {
      pendA = n;
      tagA = dst + len;
    } else {
      pendB = n;
      tagB = dst + len;
    }
    store<u32>(item, 1, 28);
  }
}

const PAIR_TAG: usize = memory.data(32, 16);

/**
 * Opens two small frames (table items `a`, `b`). Keystream blocks 0 (the Poly1305 keys) come
 * first; each frame's MAC over its ciphertext then runs on the integer units while the next
 * keystream blocks are computed into scratch. Both tags are compared in constant time, and only
 * a frame whose tag verified gets plaintext written (verify before decrypt).
 */
function openPair(a: usize, b: usize): u32 {
  const ka = <usize>load<u32>(a, 0), na = <usize>load<u32>(a, 4);
  const kb = <usize>load<u32>(b, 0), nb = <usize>load<u32>(b, 4);
  keystream2Poly(ka, na, 0, kb, nb, 0, PAIR_KS, 0, 0);
  const macA = macInput(PAIR_MAC, <usize>load<u32>(a, 8), <usize>load<u32>(a, 12), <usize>load<u32>(a, 16), <usize>load<u32>(a, 20) - 16);
  const macB = macInput(PAIR_MAC + 160, <usize>load<u32>(b, 8), <usize>load<u32>(b, 12), <usize>load<u32>(b, 16), <usize>load<u32>(b, 20) - 16);
  polyInit(PAIR_KS);
  keystream2Poly(ka, na, 1, kb, nb, 1, PAIR_KS + 128, PAIR_MAC, <i32>macA);
  polyFinish(PAIR_TAG);
  polyInit(PAIR_KS + 64);
  keystream2Poly(ka, na, 2, kb, nb, 2, PAIR_KS + 256, PAIR_MAC + 160, <i32>macB);
  polyFinish(PAIR_TAG + 16);
  let okCount: u32 = 0;
  for (let f: usize = 0; f < 2; f++) {
    const item = f == 0 ? a : b;
    const src = <usize>load<u32>(item, 16), len = <usize>load<u32>(item, 20) - 16, dst = <usize>load<u32>(item, 24);
    const tag = PAIR_TAG + (f << 4);
    const diff =
      (load<u32>(tag, 0) ^ load<u32>(src + len, 0)) |
      (load<u32>(tag, 4) ^ load<u32>(src + len, 4)) |
      (load<u32>(tag, 8) ^ load<u32>(src + len, 8)) |
      (load<u32>(tag, 12) ^ load<u32>(src + len, 12));
    const ok = <u32>(((<u64>diff) - 1) >> 63);
    if (ok) {
      const ks = PAIR_KS + 128 + (f << 6);
      xorBytes(src, ks, dst, len < 64 ? len : 64);
      if (len > 64) xorBytes(src + 64, ks + 128, dst + 64, len - 64);
    }
    store<u32>(item, ok, 28);
    okCount += ok;
  }
  return okCount;
}

function wipeScratch(): void {
  memory.fill(KS, 0, 256);
  memory.fill(TAG, 0, 16);
}

/** ChaCha20-Poly1305 seal (RFC 8439 §2.8): writes `len` bytes of ciphertext and the tag to `dst`. */
export function seal(key: usize, nonce: usize, aad: usize, aadLen: usize, src: usize, len: usize, dst: usize): void {
  const cached = firstBlocks(key, nonce, len);
  polyInit(KS);
  if (ASC_FEATURE_SIMD && len >= 256) {
    // Stitched: chunk 0 comes from the cached keystream, then chunk i + 1 is encrypted while
    // chunk i is absorbed; the tail and its MAC run as usual.
    polyPadded(aad, aadLen);
    xorBytes(src, KS + 64, dst, 128);
    const chunks = <u32>((len - 128) >> 7);
    sealStitched(key, nonce, 3, src + 128, dst + 128, chunks, dst, 128);
    const done: usize = 128 + (<usize>chunks << 7);
    if (len > done) chachaXor(key, nonce, 3 + 2 * chunks, src + done, dst + done, len - done);
    const absorbed = <usize>chunks << 7;
    polyPadded(dst + absorbed, len - absorbed);
    store<u64>(PADBUF, <u64>aadLen, 0);
    store<u64>(PADBUF, <u64>len, 8);
    polyBlocks(PADBUF, 16, 1 << 24);
    polyFinish(dst + len);
  } else {
    cryptPayload(key, nonce, src, dst, len, cached);
    polyAead(aad, aadLen, dst, len, dst + len);
  }
  wipeScratch();
}

/**
 * ChaCha20-Poly1305 open: `srcLen` includes the 16-byte tag. The tag is recomputed and compared
 * in constant time before a single plaintext byte is written; returns 1 if it verified, else 0.
 */
export function open(key: usize, nonce: usize, aad: usize, aadLen: usize, src: usize, srcLen: usize, dst: usize): u32 {
  if (srcLen < 16) return 0;
  const len = srcLen - 16;
  const cached = firstBlocks(key, nonce, len);
  polyInit(KS);
  // SIMD build, longer frames: the MAC over the ciphertext is stitched with keystream generation
  // into OPEN_KS (scratch, never the output); plaintext is produced only after the tag check.
  let chunks: u32 = 0;
  if (ASC_FEATURE_SIMD && len >= 256) {
    chunks = <u32>((len - 128) >> 7);
    if (chunks > OPEN_KS_CHUNKS) chunks = OPEN_KS_CHUNKS;
    polyPadded(aad, aadLen);
    sealStitched(key, nonce, 3, ZERO, OPEN_KS, chunks, src, 0);
    const absorbed = <usize>chunks << 7;
    polyPadded(src + absorbed, len - absorbed);
    store<u64>(PADBUF, <u64>aadLen, 0);
    store<u64>(PADBUF, <u64>len, 8);
    polyBlocks(PADBUF, 16, 1 << 24);
    polyFinish(TAG);
  } else {
    polyAead(aad, aadLen, src, len, TAG);
  }
  const diff =
    (load<u32>(TAG, 0) ^ load<u32>(src + len, 0)) |
    (load<u32>(TAG, 4) ^ load<u32>(src + len, 4)) |
    (load<u32>(TAG, 8) ^ load<u32>(src + len, 8)) |
    (load<u32>(TAG, 12) ^ load<u32>(src + len, 12));
  // 1 when diff == 0, computed without a data-dependent branch.
  const ok = <u32>(((<u64>diff) - 1) >> 63);
  if (ok) {
    if (chunks > 0) {
      xorBytes(src, KS + 64, dst, 128);
      const ks = <usize>chunks << 7;
      xorBytes(src + 128, OPEN_KS, dst + 128, ks);
      const done: usize = 128 + ks;
      if (len > done) chachaXor(key, nonce, 3 + 2 * chunks, src + done, dst + done, len - done);
    } else {
      cryptPayload(key, nonce, src, dst, len, cached);
    }
  }
  if (chunks > 0) memory.fill(OPEN_KS, 0, <usize>chunks << 7);
  wipeScratch();
  return ok;
}

/** XChaCha20 key schedule: subkey = HChaCha20(key, nonce[0..16]), nonce' = 0⁴ ‖ nonce[16..24]. */
function xkey(key: usize, nonce: usize): void {
  hchacha20(key, nonce, SUBKEY);
  store<u32>(NONCE12, 0, 0);
  store<u64>(NONCE12, load<u64>(nonce, 16), 4);
}

/** XChaCha20-Poly1305 seal with a 24-byte nonce. */
export function xseal(key: usize, nonce: usize, aad: usize, aadLen: usize, src: usize, len: usize, dst: usize): void {
  xkey(key, nonce);
  seal(SUBKEY, NONCE12, aad, aadLen, src, len, dst);
  memory.fill(SUBKEY, 0, 32);
}

/** XChaCha20-Poly1305 open with a 24-byte nonce; 1 if the tag verified. */
export function xopen(key: usize, nonce: usize, aad: usize, aadLen: usize, src: usize, srcLen: usize, dst: usize): u32 {
  xkey(key, nonce);
  const ok = open(SUBKEY, NONCE12, aad, aadLen, src, srcLen, dst);
  memory.fill(SUBKEY, 0, 32);
  return ok;
}

/**
 * Seals or opens `count` frames described by the table at `table` (see the module comment) in
 * one call. Returns how many items succeeded.
 */
export function batch(table: usize, count: u32, op: u32): u32 {
  let okCount: u32 = 0;
  // A batch that trapped (a bad pointer from a raw caller) must not leak a held frame or a
  // pending MAC into this one.
  held = 0;
  pendA = 0;
  pendB = 0;
  for (let i: u32 = 0; i < count; i++) {
    const item = table + (<usize>i << 5);
    const key = <usize>load<u32>(item, 0);
    const nonce = <usize>load<u32>(item, 4);
    const aad = <usize>load<u32>(item, 8);
    const aadLen = <usize>load<u32>(item, 12);
    const src = <usize>load<u32>(item, 16);
    const srcLen = <usize>load<u32>(item, 20);
    const dst = <usize>load<u32>(item, 24);
    let ok: u32 = 1;
    // Lengths are public: choosing the path by them leaks nothing.
    const pairSeal = op == OP_SEAL && srcLen <= PAIR_MAX_LEN;
    const pairOpen = op == OP_OPEN && srcLen >= 16 && srcLen - 16 <= PAIR_MAX_LEN;
    if (ASC_FEATURE_SIMD && (pairSeal || pairOpen) && aadLen <= PAIR_MAX_AAD) {
      if (held == 0) {
        held = item;
        continue;
      }
      if (pairSeal) {
        sealPair(held, item);
        okCount += 2;
      } else {
        okCount += openPair(held, item);
      }
      held = 0;
      continue;
    }
    if (op == OP_SEAL) seal(key, nonce, aad, aadLen, src, srcLen, dst);
    else if (op == OP_OPEN) ok = open(key, nonce, aad, aadLen, src, srcLen, dst);
    else if (op == OP_XSEAL) xseal(key, nonce, aad, aadLen, src, srcLen, dst);
    else ok = xopen(key, nonce, aad, aadLen, src, srcLen, dst);
    store<u32>(item, ok, 28);
    okCount += ok;
  }
  if (ASC_FEATURE_SIMD) {
    flushPending();
    if (held != 0) {
      // An odd frame out takes the one-frame path.
      const item = held;
      held = 0;
      const k = <usize>load<u32>(item, 0), n = <usize>load<u32>(item, 4), ad = <usize>load<u32>(item, 8), adLen = <usize>load<u32>(item, 12);
      const src = <usize>load<u32>(item, 16), srcLen = <usize>load<u32>(item, 20), dst = <usize>load<u32>(item, 24);
      let ok: u32 = 1;
      if (op == OP_SEAL) seal(k, n, ad, adLen, src, srcLen, dst);
      else ok = open(k, n, ad, adLen, src, srcLen, dst);
      store<u32>(item, ok, 28);
      okCount += ok;
    }
    memory.fill(PAIR_KS, 0, 384);
    memory.fill(PAIR_KEY, 0, 64);
    memory.fill(PAIR_TAG, 0, 32);
  }
  return okCount;
}

/** Poly1305 alone (RFC 8439 §2.5), for known-answer tests: tag of `len` bytes at `m`. */
export function poly1305(key: usize, m: usize, len: usize, out: usize): void {
  polyInit(key);
  const full = len & ~(<usize>15);
  if (full > 0) polyBlocks(m, full, 1 << 24);
  const rem = len & 15;
  if (rem > 0) {
    store<u64>(PADBUF, 0, 0);
    store<u64>(PADBUF, 0, 8);
    memory.copy(PADBUF, m + full, rem);
    store<u8>(PADBUF + rem, 1);
    polyBlocks(PADBUF, 16, 0);
  }
  polyFinish(out);
}
