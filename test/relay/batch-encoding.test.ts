/** Batch payloads of the relay (docs/RELAY.md "Batches"): how a connection's events become frames. */
import { describe, expect, test } from 'bun:test';
import { encodeEvent, encodeEvents, publicationJson, publishReply, type RelayEvent } from '../../src/relay/index.ts';

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
