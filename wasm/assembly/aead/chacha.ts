/**
 * ChaCha20 (RFC 8439 §2.3–2.4) and HChaCha20 (draft-irtf-cfrg-xchacha §2.2).
 *
 * Two kernels produce the same bytes: a scalar one (one 64-byte block at a time, state in
 * sixteen locals) and, in the SIMD build (`ASC_FEATURE_SIMD`), a 4-way one that computes four
 * consecutive blocks at once with each state word spread over the four lanes of a v128, then
 * transposes the result back to block order. Nothing here allocates; all scratch space is
 * static (`memory.data`).
 */

// "expand 32-byte k" (RFC 8439 §2.3)
const C0: u32 = 0x61707865;
const C1: u32 = 0x3320646e;
const C2: u32 = 0x79622d32;
const C3: u32 = 0x6b206574;

/** 256 zero bytes: XOR-ing the keystream into zeros yields the keystream itself. */
export const ZERO: usize = memory.data(256, 16);
/** 256 bytes of keystream scratch (four blocks), wiped by the AEAD after use. */
export const KS: usize = memory.data(256, 16);

/**
 * XORs `blocks` full 64-byte keystream blocks, starting at block `counter`, into `src` → `dst`
 * (scalar kernel). `src === ZERO` writes raw keystream.
 */
export function xorBlocksScalar(key: usize, nonce: usize, counter: u32, src: usize, dst: usize, blocks: u32): void {
  const k0 = load<u32>(key, 0), k1 = load<u32>(key, 4), k2 = load<u32>(key, 8), k3 = load<u32>(key, 12);
  const k4 = load<u32>(key, 16), k5 = load<u32>(key, 20), k6 = load<u32>(key, 24), k7 = load<u32>(key, 28);
  const n0 = load<u32>(nonce, 0), n1 = load<u32>(nonce, 4), n2 = load<u32>(nonce, 8);
  for (let b: u32 = 0; b < blocks; b++) {
    let x0 = C0, x1 = C1, x2 = C2, x3 = C3;
    let x4 = k0, x5 = k1, x6 = k2, x7 = k3, x8 = k4, x9 = k5, x10 = k6, x11 = k7;
    let x12 = counter, x13 = n0, x14 = n1, x15 = n2;
    for (let i = 0; i < 10; i++) {
      x0 += x4; x12 = rotl<u32>(x12 ^ x0, 16);
      x8 += x12; x4 = rotl<u32>(x4 ^ x8, 12);
      x0 += x4; x12 = rotl<u32>(x12 ^ x0, 8);
      x8 += x12; x4 = rotl<u32>(x4 ^ x8, 7);
      x1 += x5; x13 = rotl<u32>(x13 ^ x1, 16);
      x9 += x13; x5 = rotl<u32>(x5 ^ x9, 12);
      x1 += x5; x13 = rotl<u32>(x13 ^ x1, 8);
      x9 += x13; x5 = rotl<u32>(x5 ^ x9, 7);
      x2 += x6; x14 = rotl<u32>(x14 ^ x2, 16);
      x10 += x14; x6 = rotl<u32>(x6 ^ x10, 12);
      x2 += x6; x14 = rotl<u32>(x14 ^ x2, 8);
      x10 += x14; x6 = rotl<u32>(x6 ^ x10, 7);
      x3 += x7; x15 = rotl<u32>(x15 ^ x3, 16);
      x11 += x15; x7 = rotl<u32>(x7 ^ x11, 12);
      x3 += x7; x15 = rotl<u32>(x15 ^ x3, 8);
      x11 += x15; x7 = rotl<u32>(x7 ^ x11, 7);
      x0 += x5; x15 = rotl<u32>(x15 ^ x0, 16);
      x10 += x15; x5 = rotl<u32>(x5 ^ x10, 12);
      x0 += x5; x15 = rotl<u32>(x15 ^ x0, 8);
      x10 += x15; x5 = rotl<u32>(x5 ^ x10, 7);
      x1 += x6; x12 = rotl<u32>(x12 ^ x1, 16);
      x11 += x12; x6 = rotl<u32>(x6 ^ x11, 12);
      x1 += x6; x12 = rotl<u32>(x12 ^ x1, 8);
      x11 += x12; x6 = rotl<u32>(x6 ^ x11, 7);
      x2 += x7; x13 = rotl<u32>(x13 ^ x2, 16);
      x8 += x13; x7 = rotl<u32>(x7 ^ x8, 12);
      x2 += x7; x13 = rotl<u32>(x13 ^ x2, 8);
      x8 += x13; x7 = rotl<u32>(x7 ^ x8, 7);
      x3 += x4; x14 = rotl<u32>(x14 ^ x3, 16);
      x9 += x14; x4 = rotl<u32>(x4 ^ x9, 12);
      x3 += x4; x14 = rotl<u32>(x14 ^ x3, 8);
      x9 += x14; x4 = rotl<u32>(x4 ^ x9, 7);
    }
    store<u32>(dst, load<u32>(src, 0) ^ (x0 + C0), 0);
    store<u32>(dst, load<u32>(src, 4) ^ (x1 + C1), 4);
    store<u32>(dst, load<u32>(src, 8) ^ (x2 + C2), 8);
    store<u32>(dst, load<u32>(src, 12) ^ (x3 + C3), 12);
    store<u32>(dst, load<u32>(src, 16) ^ (x4 + k0), 16);
    store<u32>(dst, load<u32>(src, 20) ^ (x5 + k1), 20);
    store<u32>(dst, load<u32>(src, 24) ^ (x6 + k2), 24);
    store<u32>(dst, load<u32>(src, 28) ^ (x7 + k3), 28);
    store<u32>(dst, load<u32>(src, 32) ^ (x8 + k4), 32);
    store<u32>(dst, load<u32>(src, 36) ^ (x9 + k5), 36);
    store<u32>(dst, load<u32>(src, 40) ^ (x10 + k6), 40);
    store<u32>(dst, load<u32>(src, 44) ^ (x11 + k7), 44);
    store<u32>(dst, load<u32>(src, 48) ^ (x12 + counter), 48);
    store<u32>(dst, load<u32>(src, 52) ^ (x13 + n0), 52);
    store<u32>(dst, load<u32>(src, 56) ^ (x14 + n1), 56);
    store<u32>(dst, load<u32>(src, 60) ^ (x15 + n2), 60);
    counter++;
    dst += 64;
    if (src != ZERO) src += 64;
  }
}

// @ts-ignore: decorator
@inline function rot16(x: v128): v128 {
  return i8x16.shuffle(x, x, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
}
// @ts-ignore: decorator
@inline function rot8(x: v128): v128 {
  return i8x16.shuffle(x, x, 3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14);
}
// @ts-ignore: decorator
@inline function rot12(x: v128): v128 {
  return v128.or(i32x4.shl(x, 12), i32x4.shr_u(x, 20));
}
// @ts-ignore: decorator
@inline function rot7(x: v128): v128 {
  return v128.or(i32x4.shl(x, 7), i32x4.shr_u(x, 25));
}

/** Transposes four state rows (one per block lane) and XORs them into block order. */
// @ts-ignore: decorator
@inline function storeGroup(a: v128, b: v128, c: v128, d: v128, src: usize, dst: usize, off: usize, srcStep: usize): void {
  const t0 = i32x4.shuffle(a, b, 0, 4, 1, 5);
  const t1 = i32x4.shuffle(a, b, 2, 6, 3, 7);
  const t2 = i32x4.shuffle(c, d, 0, 4, 1, 5);
  const t3 = i32x4.shuffle(c, d, 2, 6, 3, 7);
  v128.store(dst + off, v128.xor(v128.load(src + off), i64x2.shuffle(t0, t2, 0, 2)));
  v128.store(dst + off + 64, v128.xor(v128.load(src + off + srcStep), i64x2.shuffle(t0, t2, 1, 3)));
  v128.store(dst + off + 128, v128.xor(v128.load(src + off + 2 * srcStep), i64x2.shuffle(t1, t3, 0, 2)));
  v128.store(dst + off + 192, v128.xor(v128.load(src + off + 3 * srcStep), i64x2.shuffle(t1, t3, 1, 3)));
}

/**
 * XORs four keystream blocks (counters `counter`…`counter+3`, 256 bytes) into `src` → `dst`,
 * computing the four blocks in parallel (SIMD build only).
 */
export function xor4Simd(key: usize, nonce: usize, counter: u32, src: usize, dst: usize): void {
  // Only the sixteen state rows stay live through the rounds (register pressure: x86 has 16
  // vector registers); the inputs are reloaded for the feed-forward afterwards.
  let v0 = i32x4.splat(C0), v1 = i32x4.splat(C1), v2 = i32x4.splat(C2), v3 = i32x4.splat(C3);
  let v4 = v128.load32_splat(key, 0), v5 = v128.load32_splat(key, 4), v6 = v128.load32_splat(key, 8), v7 = v128.load32_splat(key, 12);
  let v8 = v128.load32_splat(key, 16), v9 = v128.load32_splat(key, 20), v10 = v128.load32_splat(key, 24), v11 = v128.load32_splat(key, 28);
  let v12 = i32x4.add(i32x4.splat(counter), i32x4(0, 1, 2, 3));
  let v13 = v128.load32_splat(nonce, 0), v14 = v128.load32_splat(nonce, 4), v15 = v128.load32_splat(nonce, 8);
  for (let i = 0; i < 10; i++) {
      v0 = i32x4.add(v0, v4); v12 = rot16(v128.xor(v12, v0));
      v1 = i32x4.add(v1, v5); v13 = rot16(v128.xor(v13, v1));
      v2 = i32x4.add(v2, v6); v14 = rot16(v128.xor(v14, v2));
      v3 = i32x4.add(v3, v7); v15 = rot16(v128.xor(v15, v3));
      v8 = i32x4.add(v8, v12); v4 = rot12(v128.xor(v4, v8));
      v9 = i32x4.add(v9, v13); v5 = rot12(v128.xor(v5, v9));
      v10 = i32x4.add(v10, v14); v6 = rot12(v128.xor(v6, v10));
      v11 = i32x4.add(v11, v15); v7 = rot12(v128.xor(v7, v11));
      v0 = i32x4.add(v0, v4); v12 = rot8(v128.xor(v12, v0));
      v1 = i32x4.add(v1, v5); v13 = rot8(v128.xor(v13, v1));
      v2 = i32x4.add(v2, v6); v14 = rot8(v128.xor(v14, v2));
      v3 = i32x4.add(v3, v7); v15 = rot8(v128.xor(v15, v3));
      v8 = i32x4.add(v8, v12); v4 = rot7(v128.xor(v4, v8));
      v9 = i32x4.add(v9, v13); v5 = rot7(v128.xor(v5, v9));
      v10 = i32x4.add(v10, v14); v6 = rot7(v128.xor(v6, v10));
      v11 = i32x4.add(v11, v15); v7 = rot7(v128.xor(v7, v11));
      v0 = i32x4.add(v0, v5); v15 = rot16(v128.xor(v15, v0));
      v1 = i32x4.add(v1, v6); v12 = rot16(v128.xor(v12, v1));
      v2 = i32x4.add(v2, v7); v13 = rot16(v128.xor(v13, v2));
      v3 = i32x4.add(v3, v4); v14 = rot16(v128.xor(v14, v3));
      v10 = i32x4.add(v10, v15); v5 = rot12(v128.xor(v5, v10));
      v11 = i32x4.add(v11, v12); v6 = rot12(v128.xor(v6, v11));
      v8 = i32x4.add(v8, v13); v7 = rot12(v128.xor(v7, v8));
      v9 = i32x4.add(v9, v14); v4 = rot12(v128.xor(v4, v9));
      v0 = i32x4.add(v0, v5); v15 = rot8(v128.xor(v15, v0));
      v1 = i32x4.add(v1, v6); v12 = rot8(v128.xor(v12, v1));
      v2 = i32x4.add(v2, v7); v13 = rot8(v128.xor(v13, v2));
      v3 = i32x4.add(v3, v4); v14 = rot8(v128.xor(v14, v3));
      v10 = i32x4.add(v10, v15); v5 = rot7(v128.xor(v5, v10));
      v11 = i32x4.add(v11, v12); v6 = rot7(v128.xor(v6, v11));
      v8 = i32x4.add(v8, v13); v7 = rot7(v128.xor(v7, v8));
      v9 = i32x4.add(v9, v14); v4 = rot7(v128.xor(v4, v9));
  }
  // When src is ZERO the four "input blocks" all read the same 64 zero bytes.
  const step: usize = src == ZERO ? 0 : 64;
  storeGroup(
    i32x4.add(v0, i32x4.splat(C0)), i32x4.add(v1, i32x4.splat(C1)), i32x4.add(v2, i32x4.splat(C2)), i32x4.add(v3, i32x4.splat(C3)),
    src, dst, 0, step,
  );
  storeGroup(
    i32x4.add(v4, v128.load32_splat(key, 0)), i32x4.add(v5, v128.load32_splat(key, 4)),
    i32x4.add(v6, v128.load32_splat(key, 8)), i32x4.add(v7, v128.load32_splat(key, 12)),
    src, dst, 16, step,
  );
  storeGroup(
    i32x4.add(v8, v128.load32_splat(key, 16)), i32x4.add(v9, v128.load32_splat(key, 20)),
    i32x4.add(v10, v128.load32_splat(key, 24)), i32x4.add(v11, v128.load32_splat(key, 28)),
    src, dst, 32, step,
  );
  storeGroup(
    i32x4.add(v12, i32x4.add(i32x4.splat(counter), i32x4(0, 1, 2, 3))), i32x4.add(v13, v128.load32_splat(nonce, 0)),
    i32x4.add(v14, v128.load32_splat(nonce, 4)), i32x4.add(v15, v128.load32_splat(nonce, 8)),
    src, dst, 48, step,
  );
}

/** XORs `len` bytes of `a` with keystream `ks` into `out` (any lengths, any alignment). */
export function xorBytes(a: usize, ks: usize, out: usize, len: usize): void {
  let i: usize = 0;
  if (ASC_FEATURE_SIMD) {
    for (; i + 16 <= len; i += 16) v128.store(out + i, v128.xor(v128.load(a + i), v128.load(ks + i)));
  }
  for (; i + 8 <= len; i += 8) store<u64>(out + i, load<u64>(a + i) ^ load<u64>(ks + i));
  for (; i < len; i++) store<u8>(out + i, load<u8>(a + i) ^ load<u8>(ks + i));
}

/**
 * ChaCha20 encryption (RFC 8439 §2.4): XORs `len` bytes from `src` into `dst` with the keystream
 * of (`key`, `nonce`) starting at block `counter`. `src` may equal `dst`.
 */
export function chachaXor(key: usize, nonce: usize, counter: u32, src: usize, dst: usize, len: usize): void {
  if (ASC_FEATURE_SIMD) {
    while (len >= 256) {
      xor4Simd(key, nonce, counter, src, dst);
      counter += 4;
      src += 256;
      dst += 256;
      len -= 256;
    }
    // A short tail (≤ 2 blocks) is cheaper with the scalar kernel than with a 4-way call.
    if (len > 128) {
      xor4Simd(key, nonce, counter, ZERO, KS);
      xorBytes(src, KS, dst, len);
      return;
    }
  }
  {
    const blocks = <u32>(len >> 6);
    if (blocks > 0) {
      xorBlocksScalar(key, nonce, counter, src, dst, blocks);
      counter += blocks;
      const done = <usize>blocks << 6;
      src += done;
      dst += done;
      len -= done;
    }
    if (len > 0) {
      xorBlocksScalar(key, nonce, counter, ZERO, KS, 1);
      xorBytes(src, KS, dst, len);
    }
  }
}

/**
 * HChaCha20 (draft-irtf-cfrg-xchacha §2.2): derives a 32-byte subkey from `key` and the first
 * 16 bytes of `nonce`; the output is state words 0–3 and 12–15 after 20 rounds, no feed-forward.
 */
export function hchacha20(key: usize, nonce: usize, out: usize): void {
  let x0 = C0, x1 = C1, x2 = C2, x3 = C3;
  let x4 = load<u32>(key, 0), x5 = load<u32>(key, 4), x6 = load<u32>(key, 8), x7 = load<u32>(key, 12);
  let x8 = load<u32>(key, 16), x9 = load<u32>(key, 20), x10 = load<u32>(key, 24), x11 = load<u32>(key, 28);
  let x12 = load<u32>(nonce, 0), x13 = load<u32>(nonce, 4), x14 = load<u32>(nonce, 8), x15 = load<u32>(nonce, 12);
  for (let i = 0; i < 10; i++) {
      x0 += x4; x12 = rotl<u32>(x12 ^ x0, 16);
      x8 += x12; x4 = rotl<u32>(x4 ^ x8, 12);
      x0 += x4; x12 = rotl<u32>(x12 ^ x0, 8);
      x8 += x12; x4 = rotl<u32>(x4 ^ x8, 7);
      x1 += x5; x13 = rotl<u32>(x13 ^ x1, 16);
      x9 += x13; x5 = rotl<u32>(x5 ^ x9, 12);
      x1 += x5; x13 = rotl<u32>(x13 ^ x1, 8);
      x9 += x13; x5 = rotl<u32>(x5 ^ x9, 7);
      x2 += x6; x14 = rotl<u32>(x14 ^ x2, 16);
      x10 += x14; x6 = rotl<u32>(x6 ^ x10, 12);
      x2 += x6; x14 = rotl<u32>(x14 ^ x2, 8);
      x10 += x14; x6 = rotl<u32>(x6 ^ x10, 7);
      x3 += x7; x15 = rotl<u32>(x15 ^ x3, 16);
      x11 += x15; x7 = rotl<u32>(x7 ^ x11, 12);
      x3 += x7; x15 = rotl<u32>(x15 ^ x3, 8);
      x11 += x15; x7 = rotl<u32>(x7 ^ x11, 7);
      x0 += x5; x15 = rotl<u32>(x15 ^ x0, 16);
      x10 += x15; x5 = rotl<u32>(x5 ^ x10, 12);
      x0 += x5; x15 = rotl<u32>(x15 ^ x0, 8);
      x10 += x15; x5 = rotl<u32>(x5 ^ x10, 7);
      x1 += x6; x12 = rotl<u32>(x12 ^ x1, 16);
      x11 += x12; x6 = rotl<u32>(x6 ^ x11, 12);
      x1 += x6; x12 = rotl<u32>(x12 ^ x1, 8);
      x11 += x12; x6 = rotl<u32>(x6 ^ x11, 7);
      x2 += x7; x13 = rotl<u32>(x13 ^ x2, 16);
      x8 += x13; x7 = rotl<u32>(x7 ^ x8, 12);
      x2 += x7; x13 = rotl<u32>(x13 ^ x2, 8);
      x8 += x13; x7 = rotl<u32>(x7 ^ x8, 7);
      x3 += x4; x14 = rotl<u32>(x14 ^ x3, 16);
      x9 += x14; x4 = rotl<u32>(x4 ^ x9, 12);
      x3 += x4; x14 = rotl<u32>(x14 ^ x3, 8);
      x9 += x14; x4 = rotl<u32>(x4 ^ x9, 7);
  }
  store<u32>(out, x0, 0);
  store<u32>(out, x1, 4);
  store<u32>(out, x2, 8);
  store<u32>(out, x3, 12);
  store<u32>(out, x12, 16);
  store<u32>(out, x13, 20);
  store<u32>(out, x14, 24);
  store<u32>(out, x15, 28);
}
