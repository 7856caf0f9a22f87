/** Batch payloads of the relay (docs/RELAY.md "Batches"): how a connection's events become frames. */
import { describe, expect, test } from 'bun:test';
import { encodeEvent, encodeEvents, PayloadArena, publicationJson, publishReply, type RelayEvent } from '../../src/relay/index.ts';

const decode = (bytes: Uint8Array) => JSON.parse(new TextDecoder().decode(bytes));
const publication = (offset: number, data = 'QUJD'): RelayEvent => ({
  type: 'publication',
  topic: 'public:t',
  offset,
  epoch: 'e1',
  from: 'f'.repeat(64),
  data,
  time: 1,
});

describe('encodeEvents', () => {
  test('one event travels alone, as its object; several as one array, in order', () => {
    const one = publication(1);
    expect(encodeEvents([one], 65_000)).toEqual([encodeEvent(one)]);
    const events = [publication(1), { type: 'reply', id: 7, ok: true, result: { x: 1 } } as RelayEvent, publication(2)];
    const payloads = encodeEvents(events, 65_000);
    expect(payloads).toHaveLength(1);
    expect(decode(payloads[0]!)).toEqual(JSON.parse(JSON.stringify(events)));
  });

  test('splits so that no payload passes the bound, keeping order; an oversized event goes alone', () => {
    const events = Array.from({ length: 50 }, (_, i) => publication(i + 1, 'A'.repeat(100)));
    const size = encodeEvent(events[0]!).length;
    const bound = size * 4 + 10;
    const payloads = encodeEvents(events, bound);
    for (const p of payloads) expect(p.length).toBeLessThanOrEqual(bound);
    expect(payloads.length).toBe(Math.ceil(50 / 4));
    const back = payloads.flatMap((p) => {
      const value = decode(p);
      return Array.isArray(value) ? value : [value];
    });
    expect(back.map((e) => e.offset)).toEqual(events.map((e) => (e as { offset: number }).offset));
    const huge = publication(99, 'B'.repeat(1_000));
    const mixed = encodeEvents([events[0]!, huge, events[1]!], 500);
    expect(mixed.map((p) => decode(p).offset ?? decode(p).map((e: { offset: number }) => e.offset))).toEqual([1, 99, 2]);
  });
});

describe('batch payloads in a PayloadArena', () => {
  test('the same bytes as fresh buffers, as views of one chunk; the chunk grows, and reset reuses it', () => {
    const arena = new PayloadArena(1_024, 1 << 20);
    const events = Array.from({ length: 40 }, (_, i) => publication(i + 1, 'A'.repeat(100)));
    const fresh = encodeEvents(events, 2_000);
    const first = encodeEvents(events, 2_000, arena);
    expect(first.map((p) => [...p])).toEqual(fresh.map((p) => [...p]));
    // 40 events of ~190 bytes in payloads of ≤ 2,000 bytes: more than the first 1,024-byte chunk holds.
    const chunks = new Set(first.map((p) => p.buffer));
    expect(chunks.size).toBeGreaterThan(1);
    // Payloads taken from one chunk lie back to back and do not overlap.
    const last = first[first.length - 1]!;
    const sameChunk = first.filter((p) => p.buffer === last.buffer);
    for (let i = 1; i < sameChunk.length; i++) expect(sameChunk[i]!.byteOffset).toBe(sameChunk[i - 1]!.byteOffset + sameChunk[i - 1]!.length);
    // After a reset, the same flush comes from one chunk (grown to hold it), from its start, and
    // the flush after that reuses the very same chunk.
    arena.reset();
    const second = encodeEvents(events, 2_000, arena);
    expect(second.map((p) => [...p])).toEqual(fresh.map((p) => [...p]));
    expect(new Set(second.map((p) => p.buffer)).size).toBe(1);
    expect(second[0]!.byteOffset).toBe(0);
    arena.reset();
    const third = encodeEvents(events, 2_000, arena);
    expect(third[0]!.buffer).toBe(second[0]!.buffer);
    expect(third.map((p) => [...p])).toEqual(fresh.map((p) => [...p]));
    // One event alone is its cached encoding, not an arena view.
    expect(encodeEvents([events[0]!], 2_000, arena)[0]).toBe(encodeEvent(events[0]!));
  });

  test('a payload larger than the largest chunk gets a buffer of its own', () => {
    const arena = new PayloadArena(256, 1_024);
    const events = Array.from({ length: 10 }, (_, i) => publication(i + 1, 'A'.repeat(200)));
    const [payload] = encodeEvents(events, 65_000, arena);
    expect(payload!.length).toBeGreaterThan(1_024);
    expect(payload!.byteOffset).toBe(0);
    expect(payload!.buffer.byteLength).toBe(payload!.length);
    expect(decode(payload!).map((e: { offset: number }) => e.offset)).toEqual(events.map((e) => (e as { offset: number }).offset));
  });
});

describe('hand-written JSON of the hot events', () => {
  const awkward = ['', 'plain:topic.x-1/@', 'quote"d', 'back\\slash', 'line\nfeed', 'tab\t', 'ünïcödé', '\u2028', '\ud800', 'a<b>&'];

  test('a publication encodes exactly as JSON.stringify would, for plain and awkward strings', () => {
    const fixed = { type: 'publication' as const, topic: 'public:t', offset: 7, epoch: 'e1a2', from: 'f'.repeat(64), data: 'QUJD', time: 1_763_892_773_000 };
    const cases = [fixed, ...awkward.flatMap((s) => [{ ...fixed, topic: s }, { ...fixed, epoch: s }, { ...fixed, from: s }, { ...fixed, data: s }])];
    for (const event of cases) {
      expect(new TextDecoder().decode(encodeEvent({ ...event }))).toBe(JSON.stringify(event));
      expect(publicationJson(event)).toBe(JSON.stringify(event));
    }
  });

  test('a publish reply encodes exactly as JSON.stringify would, whatever its id', () => {
    for (const id of [0, 1, 123_456_789, 'req-1', 'q"uote', null]) {
      for (const epoch of ['3f2a9c1b0d4e', ...awkward]) {
        const reply = publishReply(id, 'public:x', 42, epoch);
        expect(new TextDecoder().decode(encodeEvent(reply))).toBe(
          JSON.stringify({ type: 'reply', id, ok: true, result: { topic: 'public:x', offset: 42, epoch } }),
        );
      }
    }
  });
});
