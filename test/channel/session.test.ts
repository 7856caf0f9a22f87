import { describe, expect, test } from 'bun:test';
import type { AeadBatchItem, BatchAead } from '../../src/crypto/types.ts';
import { BatchScratch, ChannelError, FrameType, ReplayWindow, Session, openMany, sealMany, decodeClose, encodeClose, CHANNEL_ERROR_CODES, CHANNEL_ERROR_STATUS, channelErrorStatus } from '../../src/channel/index.ts';
import { nobleSuite } from './fixtures.ts';

const noble = nobleSuite();
const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array) => new TextDecoder().decode(b);

function pair(options: { rekeyMessages?: number; rekeySeconds?: number; maxFrameBytes?: number; now?: () => number; aead?: 'chacha' | 'aes' } = {}) {
  const k1 = new Uint8Array(32).fill(1);
  const k2 = new Uint8Array(32).fill(2);
  const { aead: which, ...limits } = options;
  const aead = which === 'aes' ? noble.aesGcm : noble.chachaPoly;
  const common = { aead, handshakeHash: new Uint8Array(32), protocolName: 'test', ...limits };
  return {
    a: new Session({ ...common, sendKey: k1, receiveKey: k2, initiator: true }),
    b: new Session({ ...common, sendKey: k2, receiveKey: k1, initiator: false }),
  };
}

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ChannelError);
    return (error as ChannelError).code;
  }
  return 'none';
}

describe('replay window (RFC 6479)', () => {
  test('in order, out of order within the window once, duplicates and too-old rejected', () => {
    const w = new ReplayWindow();
    for (let i = 0; i < 100; i++) {
      expect(w.check(i)).toBe('ok');
      w.update(i);
    }
    expect(w.check(50)).toBe('duplicate');
    w.update(5000);
    expect(w.check(5000 - 2047)).toBe('ok');
    expect(w.check(5000 - 2048)).toBe('too-old');
    expect(w.check(4000)).toBe('ok');
    w.update(4000);
    expect(w.check(4000)).toBe('duplicate');
    expect(w.check(99)).toBe('too-old');
    // A huge jump clears the whole ring.
    w.update(1_000_000_000_000);
    expect(w.check(1_000_000_000_000 - 1)).toBe('ok');
    expect(w.check(1_000_000_000_000)).toBe('duplicate');
  });

  test('matches a simple set-based reference on random traffic', () => {
    const w = new ReplayWindow();
    const seen = new Set<number>();
    let top = -1;
    let seed = 7;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed;
    };
    for (let i = 0; i < 20_000; i++) {
      const c = Math.max(0, top + (rand() % 3000) - 2500);
      const expected = c > top ? 'ok' : top - c >= 2048 ? 'too-old' : seen.has(c) ? 'duplicate' : 'ok';
      expect(w.check(c)).toBe(expected);
      if (expected === 'ok') {
        w.update(c);
        seen.add(c);
        top = Math.max(top, c);
      }
    }
  });
});

describe('sessions', () => {
  test('frames are [type][counter u64 BE][ciphertext], AAD = header', () => {
    const { a, b } = pair();
    a.seal(0x10, text('zero'));
    const f = a.seal(0x20, text('hello'));
    expect(f[0]).toBe(0x20);
    expect([...f.subarray(1, 9)]).toEqual([0, 0, 0, 0, 0, 0, 0, 1]);
    expect(f.length).toBe(9 + 5 + 16);
    const opened = b.open(f);
    expect(opened).toMatchObject({ type: 0x20, counter: 1 });
    expect(str(opened.plaintext)).toBe('hello');
    // Changing the type byte (AAD) breaks authentication.
    const g = a.seal(0x10, text('x'));
    g[0] = 0x11;
    expect(code(() => b.open(g))).toBe('DECRYPT_FAILED');
  });

  test('out-of-order frames are accepted once; replays and too-old frames are rejected', () => {
    const { a, b } = pair();
    const frames = Array.from({ length: 3000 }, (_, i) => a.seal(0x10, text(`m${i}`)));
    expect(str(b.open(frames[2999]).plaintext)).toBe('m2999');
    expect(str(b.open(frames[1000]).plaintext)).toBe('m1000');
    expect(code(() => b.open(frames[1000]))).toBe('REPLAY');
    expect(code(() => b.open(frames[2999]))).toBe('REPLAY');
    expect(code(() => b.open(frames[900]))).toBe('REPLAY'); // 2099 behind: outside the window
    expect(str(b.open(frames[952]).plaintext)).toBe('m952'); // exactly 2047 behind
    // A forged frame does not mark its counter seen.
    const forged = frames[1500].slice();
    forged[20] ^= 1;
    expect(code(() => b.open(forged))).toBe('DECRYPT_FAILED');
    expect(str(b.open(frames[1500]).plaintext)).toBe('m1500');
  });

  test('rekey after rekeyMessages, in order and across reordering', () => {
    const { a, b } = pair({ rekeyMessages: 10 });
    const frames = Array.from({ length: 45 }, (_, i) => a.seal(0x10, text(`m${i}`)));
    expect(a.sendRekeys).toBe(4);
    expect(frames[9][0]).toBe(FrameType.REKEY);
    // The receiver sees the application type, not the rekey wrapper.
    const order = [...frames.keys()];
    // Deliver the new-epoch frames before the REKEY frame that announced them.
    [order[9], order[12]] = [order[12], order[9]];
    for (const i of order) {
      const opened = b.open(frames[i]);
      expect(opened.type).toBe(0x10);
      expect(str(opened.plaintext)).toBe(`m${i}`);
    }
    // Keys really change: a frame sealed under the first key would not open now.
    const { a: a2 } = pair({ rekeyMessages: 10 });
    const old = a2.seal(0x10, text('old'));
    expect(code(() => b.open(old))).toBe('REPLAY');
  });

  test('rekey after rekeySeconds and on request', () => {
    let now = 0;
    const { a, b } = pair({ rekeySeconds: 600, now: () => now });
    b.open(a.seal(0x10, text('1')));
    now = 600_001;
    const f = a.seal(0x10, text('2'));
    expect(f[0]).toBe(FrameType.REKEY);
    expect(str(b.open(f).plaintext)).toBe('2');
    expect(str(b.open(a.seal(0x10, text('3'))).plaintext)).toBe('3');
    a.requestRekey();
    const g = a.seal(0x10, text('4'));
    expect(g[0]).toBe(FrameType.REKEY);
    expect(str(b.open(g).plaintext)).toBe('4');
    expect(a.sendRekeys).toBe(2);
  });

  test('AESGCM sessions work the same', () => {
    const { a, b } = pair({ aead: 'aes', rekeyMessages: 3 });
    for (let i = 0; i < 10; i++) expect(str(b.open(a.seal(0x10, text(`${i}`))).plaintext)).toBe(`${i}`);
  });

  test('frame size limits and malformed frames', () => {
    const { a, b } = pair({ maxFrameBytes: 100 });
    expect(a.maxPlaintextBytes).toBe(100 - 9 - 16 - 1);
    expect(code(() => a.seal(0x10, new Uint8Array(75)))).toBe('FRAME_TOO_LARGE');
    expect(code(() => b.open(new Uint8Array(101)))).toBe('FRAME_TOO_LARGE');
    expect(code(() => b.open(new Uint8Array(24)))).toBe('FRAME_TRUNCATED');
    const reserved = new Uint8Array(30);
    reserved[0] = 0x05;
    expect(code(() => b.open(reserved))).toBe('FRAME_INVALID');
    const huge = new Uint8Array(30);
    huge[0] = 0x10;
    huge[1] = 0xff;
    expect(code(() => b.open(huge))).toBe('FRAME_INVALID');
    expect(code(() => a.seal(FrameType.REKEY, text('x')))).toBe('FRAME_INVALID');
    expect(code(() => a.seal(0x05, text('x')))).toBe('FRAME_INVALID');
  });

  test('close frames and closed sessions', () => {
    const { a, b } = pair();
    const f = a.seal(FrameType.CLOSE, encodeClose(4003, 'bye'));
    const opened = b.open(f);
    expect(opened.type).toBe(FrameType.CLOSE);
    expect(decodeClose(opened.plaintext)).toEqual({ code: 4003, reason: 'bye' });
    b.close();
    expect(code(() => b.open(a.seal(0x10, text('x'))))).toBe('SESSION_CLOSED');
  });

  test('batch sealing for fan-out gives frames identical to one-by-one sealing', () => {
    let calls = 0;
    const batch: BatchAead = {
      ...noble.chachaPoly,
      sealBatch: (items: readonly AeadBatchItem[]) => {
        calls++;
        return items.map((i) => noble.chachaPoly.seal(i.key, i.nonce, i.data, i.aad));
      },
      openBatch: (items: readonly AeadBatchItem[]) => items.map((i) => noble.chachaPoly.open(i.key, i.nonce, i.data, i.aad)),
    };
    const pairs = Array.from({ length: 5 }, () => pair({ rekeyMessages: 2 }));
    for (let round = 0; round < 3; round++) {
      const frames = sealMany(batch, pairs.map(({ a }) => ({ session: a, type: 0x30, plaintext: text(`r${round}`) })));
      for (const [i, f] of frames.entries()) expect(str(pairs[i].b.open(f).plaintext)).toBe(`r${round}`);
    }
    expect(calls).toBe(3);
  });
});

describe('batched open (openMany)', () => {
  test('same verdicts as open() one by one: rekeys, reordering, a duplicate inside the batch, a forged frame', () => {
    let calls = 0;
    const batch: BatchAead = {
      ...noble.chachaPoly,
      sealBatch: (items: readonly AeadBatchItem[]) => items.map((i) => noble.chachaPoly.seal(i.key, i.nonce, i.data, i.aad)),
      openBatch: (items: readonly AeadBatchItem[]) => {
        calls++;
        return items.map((i) => noble.chachaPoly.open(i.key, i.nonce, i.data, i.aad));
      },
    };
    // One receiver opens through openMany; a second with the same keys, frame by frame with open().
    const sender = pair({ rekeyMessages: 3 });
    const k1 = new Uint8Array(32).fill(1);
    const other = pair();
    const frames = Array.from({ length: 10 }, (_, i) => sender.a.seal(0x30, text(`m${i}`)));
    const forged = frames[6]!.slice();
    forged[forged.length - 1]! ^= 1;
    // Reordered (inside the window), a duplicate within the batch, a forged copy, another session's frame.
    const otherFrame = other.a.seal(0x31, text('other'));
    // Frames 2, 5 and 8 are REKEY frames; 0 and 1 are opened in the batch, the rest need the
    // keys that follow (the single-frame path, in order).
    const sequence = [frames[1]!, frames[0]!, frames[1]!, frames[2]!, frames[3]!, frames[3]!, forged, frames[6]!, frames[4]!, frames[5]!, frames[7]!, frames[9]!, frames[8]!];
    const requests = [...sequence.map((frame) => ({ session: sender.b, frame })), { session: other.b, frame: otherFrame }];
    const results = openMany(batch, requests);
    expect(calls).toBe(1);
    const verdict = (r: unknown) => (r instanceof ChannelError ? r.code : str((r as { plaintext: Uint8Array }).plaintext));
    // Reference verdicts, computed on a fresh twin so each frame is opened exactly once.
    const ref = new Session({ aead: noble.chachaPoly, handshakeHash: new Uint8Array(32), protocolName: 'test', rekeyMessages: 3, sendKey: new Uint8Array(32).fill(2), receiveKey: k1, initiator: false });
    const expected = sequence.map((f) => {
      try {
        return str(ref.open(f).plaintext);
      } catch (error) {
        return (error as ChannelError).code;
      }
    });
    expect(expected).toEqual(['m1', 'm0', 'REPLAY', 'm2', 'm3', 'REPLAY', 'DECRYPT_FAILED', 'm6', 'm4', 'm5', 'm7', 'm9', 'm8']);
    expect(results.slice(0, sequence.length).map(verdict)).toEqual(expected);
    expect(verdict(results[sequence.length])).toBe('other');
  });
});

describe('error table', () => {
  test('every code has a distinct 4xxx close code and an HTTP status', () => {
    const closeCodes = new Set<number>();
    for (const c of CHANNEL_ERROR_CODES) {
      const s = CHANNEL_ERROR_STATUS[c];
      expect(s.closeCode).toBeGreaterThanOrEqual(4000);
      expect(s.closeCode).toBeLessThan(5000);
      expect(s.httpStatus).toBeGreaterThanOrEqual(400);
      closeCodes.add(s.closeCode);
    }
    expect(closeCodes.size).toBe(CHANNEL_ERROR_CODES.length);
    expect(channelErrorStatus(new ChannelError('REPLAY', 'x'))).toMatchObject({ closeCode: 4003, httpStatus: 409, fatal: false });
    expect(channelErrorStatus(new Error('x'))).toMatchObject({ code: 'INTERNAL', closeCode: 4500 });
  });
});

describe('fan-out with the WASM batch AEAD', () => {
  test('sealMany through the real WASM sealBatch opens on noble sessions', async () => {
    const { backendMixes } = await import('./backends.ts');
    const wasm = backendMixes()[0].chachaPoly as BatchAead;
    const mk = (i: number) => {
      const k1 = new Uint8Array(32).fill(i);
      const k2 = new Uint8Array(32).fill(i + 100);
      const common = { handshakeHash: new Uint8Array(32), protocolName: 'test', rekeyMessages: 4 };
      return {
        a: new Session({ ...common, aead: wasm, sendKey: k1, receiveKey: k2, initiator: true }),
        b: new Session({ ...common, aead: noble.chachaPoly, sendKey: k2, receiveKey: k1, initiator: false }),
      };
    };
    const pairs = Array.from({ length: 20 }, (_, i) => mk(i + 1));
    for (let round = 0; round < 6; round++) {
      const frames = sealMany(wasm, pairs.map(({ a }) => ({ session: a, type: 0x40, plaintext: text(`round ${round}`) })));
      for (const [i, f] of frames.entries()) expect(str(pairs[i].b.open(f).plaintext)).toBe(`round ${round}`);
    }
  });
});

describe('batch calls into a reused scratch (BatchScratch)', () => {
  async function wasmPairs(count: number) {
    const { backendMixes } = await import('./backends.ts');
    const wasm = backendMixes()[0].chachaPoly as BatchAead;
    const mk = (i: number) => {
      const k1 = new Uint8Array(32).fill(i);
      const k2 = new Uint8Array(32).fill(i + 100);
      const common = { handshakeHash: new Uint8Array(32), protocolName: 'test' };
      return {
        // Sender and receiver of the scratch path; `twin` receives the same frames through noble.
        a: new Session({ ...common, aead: wasm, sendKey: k1, receiveKey: k2, initiator: true }),
        b: new Session({ ...common, aead: wasm, sendKey: k2, receiveKey: k1, initiator: false }),
        twin: new Session({ ...common, aead: noble.chachaPoly, sendKey: k2, receiveKey: k1, initiator: false }),
      };
    };
    return { wasm, pairs: Array.from({ length: count }, (_, i) => mk(i + 1)) };
  }

  test('sealMany: the frames are views of the scratch, byte for byte the frames of a fresh buffer, and it grows to fit', async () => {
    const { wasm, pairs } = await wasmPairs(8);
    const { pairs: same } = await wasmPairs(8); // the same keys and counters, sealed without a scratch
    const scratch = new BatchScratch(512);
    for (const size of [10, 100, 1_000, 5_000]) {
      const plaintext = (i: number) => text(`${i}:`.padEnd(size, 'x'));
      const viaScratch = sealMany(wasm, pairs.map(({ a }, i) => ({ session: a, type: 0x40, plaintext: plaintext(i) })), scratch);
      const fresh = sealMany(wasm, same.map(({ a }, i) => ({ session: a, type: 0x40, plaintext: plaintext(i) })));
      expect(viaScratch.map((f) => [...f])).toEqual(fresh.map((f) => [...f]));
      const fits = viaScratch.every((f) => f.buffer === scratch.out.buffer);
      // 8 frames of 10 bytes (35 sealed) fit in 512 bytes; larger calls do not until the scratch has grown.
      if (size === 10) expect(fits).toBe(true);
      for (const [i, f] of viaScratch.entries()) expect(str(pairs[i]!.twin.open(f).plaintext)).toBe(str(plaintext(i)));
    }
    // After the 5,000-byte call the scratch holds 8 such frames: the same call now writes into it.
    expect(scratch.out.length).toBeGreaterThanOrEqual(8 * (5_000 + 9 + 16));
    const again = sealMany(wasm, pairs.map(({ a }) => ({ session: a, type: 0x40, plaintext: text('y'.repeat(5_000)) })), scratch);
    expect(again.every((f) => f.buffer === scratch.out.buffer)).toBe(true);
    // The next call overwrites the region: a caller keeping frames must copy them first.
    const kept = again[0]!.slice();
    sealMany(wasm, pairs.map(({ a }) => ({ session: a, type: 0x40, plaintext: text('z'.repeat(5_000)) })), scratch);
    expect([...again[0]!]).not.toEqual([...kept]);
  });

  test('a call larger than maxBytes gets its own buffer and leaves the scratch as it was', async () => {
    const { wasm, pairs } = await wasmPairs(4);
    const scratch = new BatchScratch(1_024, 4_096);
    const frames = sealMany(wasm, pairs.map(({ a }) => ({ session: a, type: 0x40, plaintext: new Uint8Array(2_000) })), scratch);
    expect(frames.some((f) => f.buffer === scratch.out.buffer)).toBe(false);
    expect(scratch.out.length).toBe(1_024);
    for (const [i, f] of frames.entries()) expect(pairs[i]!.twin.open(f).plaintext.length).toBe(2_000);
  });

  test('openMany: plaintexts are views of the scratch with the same verdicts as without it (forged and replayed frames refused)', async () => {
    const { wasm, pairs } = await wasmPairs(6);
    const scratch = new BatchScratch(64);
    // Round 0 does not fit in 64 bytes and round 1 not in what round 0 grew it to; round 2 (the
    // size of round 1) fits.
    const repeat = [1, 20, 20];
    for (let round = 0; round < 3; round++) {
      const message = (i: number) => `round ${round} from ${i}`.repeat(repeat[round]!);
      const frames = pairs.map(({ a }, i) => a.seal(0x40, text(message(i))));
      const forged = frames[2]!.slice();
      forged[forged.length - 1]! ^= 1;
      const requests = [
        ...frames.map((frame, i) => ({ session: pairs[i]!.b, frame: i === 2 ? forged : frame })),
        { session: pairs[0]!.b, frame: frames[0]! }, // a duplicate inside the batch
      ];
      const results = openMany(wasm, requests, scratch);
      const verdicts = results.map((r) => (r instanceof ChannelError ? r.code : str((r as { plaintext: Uint8Array }).plaintext)));
      expect(verdicts).toEqual([
        ...frames.map((_, i) => (i === 2 ? 'DECRYPT_FAILED' : message(i))),
        'REPLAY',
      ]);
      const opened = results.filter((r): r is { type: number; plaintext: Uint8Array; counter: number } => !(r instanceof Error));
      expect(opened.every((r) => r.plaintext.buffer === scratch.out.buffer)).toBe(round === 2);
      // The forged frame's receiver still accepts the genuine one afterwards (nothing was advanced).
      expect(str(pairs[2]!.b.open(frames[2]!).plaintext)).toBe(message(2));
    }
  });
});
