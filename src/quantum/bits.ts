/** Bit-array helpers: packed little-endian Uint32Array ↔ one byte per bit. */

/** Unpacks `n` bits (bit i in word i>>5 at position i&31) into one byte per bit. */
export function unpackBits(words: Uint32Array, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (words[i >>> 5]! >>> (i & 31)) & 1;
  return out;
}

/** Packs one byte per bit into little-endian Uint32 words. */
export function packBits(bits: Uint8Array): Uint32Array {
  const out = new Uint32Array(Math.ceil(bits.length / 32));
  for (let i = 0; i < bits.length; i++) if (bits[i]) out[i >>> 5]! |= 1 << (i & 31);
  return out;
}

/** Packed bits to bytes (bit i of the stream is bit i&7 of byte i>>3); `n` bits, n % 8 == 0 kept. */
export function wordsToBytes(words: Uint32Array, nBits: number): Uint8Array {
  const bytes = new Uint8Array(words.buffer, words.byteOffset, words.byteLength);
  return bytes.slice(0, nBits >>> 3);
}
