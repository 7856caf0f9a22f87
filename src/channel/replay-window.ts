/**
 * Sliding anti-replay window over 64-bit counters (RFC 6479, as WireGuard): a ring of 32-bit
 * words, one bit per counter, 2048 counters behind the highest one accepted. `check` never
 * mutates, so a frame is only marked seen after it authenticated (`update`).
 */
export const REPLAY_WINDOW_SIZE = 2048;
const WORD_BITS = 32;

export class ReplayWindow {
  private readonly words: Uint32Array;
  private readonly size: number;
  private top = -1;

  /** `size` must be a multiple of 32; the ring holds one spare word (RFC 6479 §2). */
  constructor(size = REPLAY_WINDOW_SIZE) {
    if (size % WORD_BITS !== 0 || size <= 0) throw new RangeError('window size must be a positive multiple of 32');
    this.size = size;
    this.words = new Uint32Array(size / WORD_BITS + 1);
  }

  /** The highest counter accepted so far (−1 before the first). */
  get highest(): number {
    return this.top;
  }

  /** 'ok' when `counter` may be accepted, else why not. Counters are safe integers ≥ 0. */
  check(counter: number): 'ok' | 'too-old' | 'duplicate' {
    if (counter > this.top) return 'ok';
    if (this.top - counter >= this.size) return 'too-old';
    const word = Math.floor(counter / WORD_BITS) % this.words.length;
    const bit = 1 << (counter % WORD_BITS);
    return this.words[word] & bit ? 'duplicate' : 'ok';
  }

  /** Marks `counter` seen; call only after `check` returned 'ok' and the frame authenticated. */
  update(counter: number): void {
    const n = this.words.length;
    if (counter > this.top) {
      const topWord = this.top < 0 ? -1 : Math.floor(this.top / WORD_BITS);
      const newWord = Math.floor(counter / WORD_BITS);
      // Clear the words the window slides over (at most the whole ring).
      const steps = Math.min(newWord - topWord, n);
      for (let i = 1; i <= steps; i++) this.words[(topWord + i + n) % n] = 0;
      this.top = counter;
    }
    this.words[Math.floor(counter / WORD_BITS) % n] |= 1 << (counter % WORD_BITS);
  }
}
