/**
 * ChaCha20 (RFC 8439 §2.3–2.4) and HChaCha20 (draft-irtf-cfrg-xchacha §2.2).
 *
 * Two kernels produce the same bytes: a scalar one (one 64-byte block at a time, state in
 * sixteen locals) and, in the SIMD build (`ASC_FEATURE_SIMD`), one that computes three
 * consecutive blocks per iteration — two in v128 rows, one in scalar locals (see
 * `xorBlocksSimd`). Nothing here allocates; all scratch space is
 * static (`memory.data`).
 */

// "expand 32-byte k" (RFC 8439 §2.3)
export const C0: u32 = 0x61707865;
export const C1: u32 = 0x3320646e;
export const C2: u32 = 0x79622d32;
export const C3: u32 = 0x6b206574;

/** 256 zero bytes: XOR-ing the keystream into zeros yields the keystream itself. */
export const ZERO: usize = memory.data(256, 16);
/** 256 bytes of keystream scratch (up to four blocks), wiped by the AEAD after use. */
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
@inline export function rot16(x: v128): v128 {
  return i8x16.shuffle(x, x, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
}
// @ts-ignore: decorator
@inline export function rot8(x: v128): v128 {
  return i8x16.shuffle(x, x, 3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14);
}
// @ts-ignore: decorator
@inline export function rot12(x: v128): v128 {
  return v128.or(i32x4.shl(x, 12), i32x4.shr_u(x, 20));
}
// @ts-ignore: decorator
@inline export function rot7(x: v128): v128 {
  return v128.or(i32x4.shl(x, 7), i32x4.shr_u(x, 25));
}

/**
 * XORs `blocks` full 64-byte keystream blocks, starting at block `counter`, into `src` → `dst`
 * (SIMD build only). Three blocks per iteration: two in the "row" layout — one block per four
 * v128 rows (a, b, c, d), the diagonal round reached by rotating rows b, c, d with lane shuffles
 * — plus a third block in scalar locals interleaved with them. Why this shape (measured on Bun
 * 1.4.5 / JSC, x86-64): the 4-blocks-per-lane "vertical" layout keeps 16 v128 values live and
 * JSC spills them (x86 has 16 xmm registers, JSC also holds the byte-shuffle masks and re-materialises
 * every constant shift count through a general register); two row-layout blocks need 8, and the
 * scalar block runs on the integer ALUs, which the vector code leaves idle. ~0.62 → ~1.0 GB/s
 * for ChaCha20 alone. Rows are already in block order, so no transpose is needed. A remainder
 * of one or two blocks goes to the scalar kernel.
 */
export function xorBlocksSimd(key: usize, nonce: usize, counter: u32, src: usize, dst: usize, blocks: u32): void {
  const A0 = i32x4(C0, C1, C2, C3);
  const B0 = v128.load(key, 0);
  const Cc0 = v128.load(key, 16);
  const k0 = load<u32>(key, 0), k1 = load<u32>(key, 4), k2 = load<u32>(key, 8), k3 = load<u32>(key, 12);
  const k4 = load<u32>(key, 16), k5 = load<u32>(key, 20), k6 = load<u32>(key, 24), k7 = load<u32>(key, 28);
  const n0 = load<u32>(nonce, 0), n1 = load<u32>(nonce, 4), n2 = load<u32>(nonce, 8);
  let D0 = i32x4.replace_lane(i32x4.replace_lane(i32x4.replace_lane(i32x4.splat(counter), 1, n0), 2, n1), 3, n2);
  // With src === ZERO every "input block" reads the same 64 zero bytes.
  const step: usize = src == ZERO ? 0 : 64;
  while (blocks >= 3) {
    let a0 = A0, b0 = B0, c0 = Cc0, d0 = D0;
    let a1 = A0, b1 = B0, c1 = Cc0, d1 = i32x4.add(D0, i32x4(1, 0, 0, 0));
    const sc = counter + 2;
    let x0 = C0, x1 = C1, x2 = C2, x3 = C3, x4 = k0, x5 = k1, x6 = k2, x7 = k3, x8 = k4, x9 = k5, x10 = k6, x11 = k7, x12 = sc, x13 = n0, x14 = n1, x15 = n2;
    for (let i = 0; i < 10; i++) {
      a0 = i32x4.add(a0, b0); d0 = rot16(v128.xor(d0, a0));
      a1 = i32x4.add(a1, b1); d1 = rot16(v128.xor(d1, a1));
      x0 += x4; x12 = rotl<u32>(x12 ^ x0, 16);
      x1 += x5; x13 = rotl<u32>(x13 ^ x1, 16);
      x2 += x6; x14 = rotl<u32>(x14 ^ x2, 16);
      x3 += x7; x15 = rotl<u32>(x15 ^ x3, 16);
      c0 = i32x4.add(c0, d0); b0 = rot12(v128.xor(b0, c0));
      c1 = i32x4.add(c1, d1); b1 = rot12(v128.xor(b1, c1));
      x8 += x12; x4 = rotl<u32>(x4 ^ x8, 12);
      x9 += x13; x5 = rotl<u32>(x5 ^ x9, 12);
      x10 += x14; x6 = rotl<u32>(x6 ^ x10, 12);
      x11 += x15; x7 = rotl<u32>(x7 ^ x11, 12);
      a0 = i32x4.add(a0, b0); d0 = rot8(v128.xor(d0, a0));
      a1 = i32x4.add(a1, b1); d1 = rot8(v128.xor(d1, a1));
      x0 += x4; x12 = rotl<u32>(x12 ^ x0, 8);
      x1 += x5; x13 = rotl<u32>(x13 ^ x1, 8);
      x2 += x6; x14 = rotl<u32>(x14 ^ x2, 8);
      x3 += x7; x15 = rotl<u32>(x15 ^ x3, 8);
      c0 = i32x4.add(c0, d0); b0 = rot7(v128.xor(b0, c0));
      c1 = i32x4.add(c1, d1); b1 = rot7(v128.xor(b1, c1));
      x8 += x12; x4 = rotl<u32>(x4 ^ x8, 7);
      x9 += x13; x5 = rotl<u32>(x5 ^ x9, 7);
      x10 += x14; x6 = rotl<u32>(x6 ^ x10, 7);
      x11 += x15; x7 = rotl<u32>(x7 ^ x11, 7);
      b0 = i32x4.shuffle(b0, b0, 1, 2, 3, 0); c0 = i32x4.shuffle(c0, c0, 2, 3, 0, 1); d0 = i32x4.shuffle(d0, d0, 3, 0, 1, 2);
      b1 = i32x4.shuffle(b1, b1, 1, 2, 3, 0); c1 = i32x4.shuffle(c1, c1, 2, 3, 0, 1); d1 = i32x4.shuffle(d1, d1, 3, 0, 1, 2);
      a0 = i32x4.add(a0, b0); d0 = rot16(v128.xor(d0, a0));
      a1 = i32x4.add(a1, b1); d1 = rot16(v128.xor(d1, a1));
      x0 += x5; x15 = rotl<u32>(x15 ^ x0, 16);
      x1 += x6; x12 = rotl<u32>(x12 ^ x1, 16);
      x2 += x7; x13 = rotl<u32>(x13 ^ x2, 16);
      x3 += x4; x14 = rotl<u32>(x14 ^ x3, 16);
      c0 = i32x4.add(c0, d0); b0 = rot12(v128.xor(b0, c0));
      c1 = i32x4.add(c1, d1); b1 = rot12(v128.xor(b1, c1));
      x10 += x15; x5 = rotl<u32>(x5 ^ x10, 12);
      x11 += x12; x6 = rotl<u32>(x6 ^ x11, 12);
      x8 += x13; x7 = rotl<u32>(x7 ^ x8, 12);
      x9 += x14; x4 = rotl<u32>(x4 ^ x9, 12);
      a0 = i32x4.add(a0, b0); d0 = rot8(v128.xor(d0, a0));
      a1 = i32x4.add(a1, b1); d1 = rot8(v128.xor(d1, a1));
      x0 += x5; x15 = rotl<u32>(x15 ^ x0, 8);
      x1 += x6; x12 = rotl<u32>(x12 ^ x1, 8);
      x2 += x7; x13 = rotl<u32>(x13 ^ x2, 8);
      x3 += x4; x14 = rotl<u32>(x14 ^ x3, 8);
      c0 = i32x4.add(c0, d0); b0 = rot7(v128.xor(b0, c0));
      c1 = i32x4.add(c1, d1); b1 = rot7(v128.xor(b1, c1));
      x10 += x15; x5 = rotl<u32>(x5 ^ x10, 7);
      x11 += x12; x6 = rotl<u32>(x6 ^ x11, 7);
      x8 += x13; x7 = rotl<u32>(x7 ^ x8, 7);
      x9 += x14; x4 = rotl<u32>(x4 ^ x9, 7);
      b0 = i32x4.shuffle(b0, b0, 3, 0, 1, 2); c0 = i32x4.shuffle(c0, c0, 2, 3, 0, 1); d0 = i32x4.shuffle(d0, d0, 1, 2, 3, 0);
      b1 = i32x4.shuffle(b1, b1, 3, 0, 1, 2); c1 = i32x4.shuffle(c1, c1, 2, 3, 0, 1); d1 = i32x4.shuffle(d1, d1, 1, 2, 3, 0);
    }
    v128.store(dst + 0, v128.xor(v128.load(src + 0 * step, 0), i32x4.add(a0, A0)), 0);
    v128.store(dst + 0, v128.xor(v128.load(src + 0 * step, 16), i32x4.add(b0, B0)), 16);
    v128.store(dst + 0, v128.xor(v128.load(src + 0 * step, 32), i32x4.add(c0, Cc0)), 32);
    v128.store(dst + 0, v128.xor(v128.load(src + 0 * step, 48), i32x4.add(d0, D0)), 48);
    v128.store(dst + 64, v128.xor(v128.load(src + 1 * step, 0), i32x4.add(a1, A0)), 0);
    v128.store(dst + 64, v128.xor(v128.load(src + 1 * step, 16), i32x4.add(b1, B0)), 16);
    v128.store(dst + 64, v128.xor(v128.load(src + 1 * step, 32), i32x4.add(c1, Cc0)), 32);
    v128.store(dst + 64, v128.xor(v128.load(src + 1 * step, 48), i32x4.add(d1, i32x4.add(D0, i32x4(1, 0, 0, 0)))), 48);
    const ss = src + 2 * step, sd = dst + 128;
    store<u32>(sd, load<u32>(ss, 0) ^ (x0 + C0), 0);
    store<u32>(sd, load<u32>(ss, 4) ^ (x1 + C1), 4);
    store<u32>(sd, load<u32>(ss, 8) ^ (x2 + C2), 8);
    store<u32>(sd, load<u32>(ss, 12) ^ (x3 + C3), 12);
    store<u32>(sd, load<u32>(ss, 16) ^ (x4 + k0), 16);
    store<u32>(sd, load<u32>(ss, 20) ^ (x5 + k1), 20);
    store<u32>(sd, load<u32>(ss, 24) ^ (x6 + k2), 24);
    store<u32>(sd, load<u32>(ss, 28) ^ (x7 + k3), 28);
    store<u32>(sd, load<u32>(ss, 32) ^ (x8 + k4), 32);
    store<u32>(sd, load<u32>(ss, 36) ^ (x9 + k5), 36);
    store<u32>(sd, load<u32>(ss, 40) ^ (x10 + k6), 40);
    store<u32>(sd, load<u32>(ss, 44) ^ (x11 + k7), 44);
    store<u32>(sd, load<u32>(ss, 48) ^ (x12 + sc), 48);
    store<u32>(sd, load<u32>(ss, 52) ^ (x13 + n0), 52);
    store<u32>(sd, load<u32>(ss, 56) ^ (x14 + n1), 56);
    store<u32>(sd, load<u32>(ss, 60) ^ (x15 + n2), 60);
    D0 = i32x4.add(D0, i32x4(3, 0, 0, 0));
    counter += 3;
    src += 3 * step; dst += 192; blocks -= 3;
  }
  if (blocks > 0) xorBlocksScalar(key, nonce, counter, src, dst, blocks);
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
  const blocks = <u32>(len >> 6);
  if (blocks > 0) {
    if (ASC_FEATURE_SIMD) xorBlocksSimd(key, nonce, counter, src, dst, blocks);
    else xorBlocksScalar(key, nonce, counter, src, dst, blocks);
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
