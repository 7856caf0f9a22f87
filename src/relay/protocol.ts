/**
 * The relay command set as it travels inside an open channel: one JSON object per frame
 * payload (UTF-8), client → server commands and server → client events. Payloads are base64
 * in `data`, so any bytes survive and clients in any language can speak it. Documented in
 * docs/RELAY.md; every command is validated here with zod, once, at the boundary.
 */
import { z } from 'zod';
import type { RelayErrorCode } from './types.ts';

/** Topic names: `public:…`, `private:…` or `user:<fingerprint>`; no braces (Redis hash tags). */
export const topicPattern = /^(public|private|user):[A-Za-z0-9._:@\-/]{1,200}$/;
/** An identity fingerprint: SHA-256 of the ML-DSA-65 public key, lower-case hex. */
export const fingerprintPattern = /^[0-9a-f]{64}$/;
const base64Pattern = /^[A-Za-z0-9+/]*={0,2}$/;

const requestId = z.union([z.number().int().min(0).max(Number.MAX_SAFE_INTEGER), z.string().min(1).max(64)]);
const topic = z.string().max(210).regex(topicPattern, 'a topic like public:name, private:name or user:<fingerprint>');
const data = z.string().regex(base64Pattern, 'base64').refine((s) => s.length % 4 === 0, 'base64 with padding');
const position = z.object({ epoch: z.string().min(1).max(64), offset: z.number().int().min(0) }).strict();

/** A signed grant for a private topic; the signature is checked by the injected `verifyGrant`. */
export const grantSchema = z
  .object({
    topic: topic,
    identity: z.string().regex(fingerprintPattern),
    rights: z.array(z.enum(['subscribe', 'publish'])).min(1).max(2),
    /** Expiry, seconds since the Unix epoch. */
    exp: z.number().int().positive(),
    /** Who signed it (a fingerprint), for the verifier to pick the key. */
    issuer: z.string().max(128).default(''),
    /** Signature over `grantMessage(grant)`, base64. */
    sig: z.string().min(1).max(8192).regex(base64Pattern),
  })
  .strict();
export type Grant = z.infer<typeof grantSchema>;

/** The bytes a grant's signature covers (UTF-8 of this text). */
export function grantMessage(grant: Omit<Grant, 'sig'>): string {
  return `ssc-grant-v1\n${grant.topic}\n${grant.identity}\n${[...grant.rights].sort().join(',')}\n${grant.exp}\n${grant.issuer}`;
}

export const commandSchema = z.discriminatedUnion('cmd', [
  z
    .object({
      id: requestId,
      cmd: z.literal('subscribe'),
      topic,
      /** Resume after this position (exclusive); publications since are replayed in order. */
      since: position.optional(),
      /** Resume from the position this identity committed with `ack` (when `since` is absent). */
      recover: z.boolean().optional(),
      grant: grantSchema.optional(),
    })
    .strict(),
  z.object({ id: requestId, cmd: z.literal('unsubscribe'), topic }).strict(),
  z.object({ id: requestId, cmd: z.literal('publish'), topic, data, grant: grantSchema.optional() }).strict(),
  z.object({ id: requestId, cmd: z.literal('send'), to: z.string().regex(fingerprintPattern, 'a fingerprint (64 hex)'), data }).strict(),
  z
    .object({
      id: requestId,
      cmd: z.literal('ack'),
      /** Direct-message ids to remove from this identity's queue. */
      ids: z.array(z.number().int().positive()).min(1).max(1_000).optional(),
      /** Commit a topic position (resume token) for `subscribe { recover: true }`. */
      topic: topic.optional(),
      position: position.optional(),
    })
    .strict()
    .refine((c) => c.ids || (c.topic && c.position), 'ack needs ids, or topic and position')
    .refine((c) => !c.topic === !c.position, 'topic and position go together'),
  z
    .object({
      id: requestId,
      cmd: z.literal('history'),
      topic,
      /** Offset to read after (exclusive); 0 = from the oldest kept. */
      since: z.number().int().min(0).optional(),
      limit: z.number().int().min(1).max(10_000).optional(),
    })
    .strict(),
  z.object({ id: requestId, cmd: z.literal('presence'), topic }).strict(),
  z.object({ id: requestId, cmd: z.literal('ping') }).strict(),
]);
export type RelayCommand = z.infer<typeof commandSchema>;

const isRequestId = (id: unknown) =>
  typeof id === 'number'
    ? Number.isInteger(id) && id >= 0 && id <= Number.MAX_SAFE_INTEGER
    : typeof id === 'string' && id.length >= 1 && id.length <= 64;
const isData = (data: unknown) => typeof data === 'string' && data.length % 4 === 0 && base64Pattern.test(data);

/**
 * The hot commands — `publish` without a grant and `send` — checked by hand with exactly the
 * rules of {@link commandSchema} (same fields, no others, same patterns). Returns undefined for
 * anything else or anything they refuse: zod then checks it and words the error. This spares the
 * schema walk (a few percent of a relayed message's CPU) on every message.
 */
export function parseHotCommand(raw: Record<string, unknown>): RelayCommand | undefined {
  let keys = 0;
  for (const _ in raw) keys++;
  if (keys !== 4 || !isRequestId(raw.id) || !isData(raw.data)) return undefined;
  if (raw.cmd === 'publish') {
    const topicName = raw.topic;
    if (typeof topicName !== 'string' || topicName.length > 210 || !topicPattern.test(topicName)) return undefined;
    return raw as RelayCommand;
  }
  if (raw.cmd === 'send') {
    if (typeof raw.to !== 'string' || !fingerprintPattern.test(raw.to)) return undefined;
    return raw as RelayCommand;
  }
  return undefined;
}
export type RequestId = number | string;
export const commandNames = ['subscribe', 'unsubscribe', 'publish', 'send', 'ack', 'history', 'presence', 'ping'] as const;

/** A publication delivered to a subscriber (live or replayed). */
export interface PublicationEvent {
  type: 'publication';
  topic: string;
  offset: number;
  epoch: string;
  from: string;
  data: string;
  time: number;
}
/** A direct message delivered to its recipient; ack its `id`. */
export interface MessageEvent {
  type: 'message';
  id: number;
  from: string;
  data: string;
  time: number;
}
export interface OkReply {
  type: 'reply';
  id: RequestId | null;
  ok: true;
  result: Record<string, unknown>;
}
export interface ErrorReply {
  type: 'reply';
  id: RequestId | null;
  ok: false;
  error: { code: RelayErrorCode; message: string };
}
export type RelayReply = OkReply | ErrorReply;
export type RelayEvent = RelayReply | PublicationEvent | MessageEvent;

const encoder = new TextEncoder();
/** Where a publication event keeps its encoding: a symbol key, which JSON.stringify skips. */
const ENCODED = Symbol('ssc.encoded');

/**
 * The UTF-8 JSON of an event. The same publication event object is handed to every recipient
 * of one fan-out, so its encoding is computed once (kept on the object under a symbol, cheaper
 * than a WeakMap for the collector) and only the sealing is per recipient.
 */
export function encodeEvent(event: RelayEvent): Uint8Array {
  const cached = (event as { [ENCODED]?: Uint8Array })[ENCODED];
  if (cached) return cached;
  if (event.type !== 'publication') return encoder.encode(JSON.stringify(event));
  const bytes = encoder.encode(publicationJson(event));
  (event as { [ENCODED]?: Uint8Array })[ENCODED] = bytes;
  return bytes;
}

/** Characters a JSON string may hold without escapes, as topics, epochs, fingerprints and base64 do. */
const PLAIN_STRING = /^[A-Za-z0-9+/=._:@-]*$/;

/** `JSON.stringify` of a string, without its escaping scan for the strings the relay moves most. */
export function jsonString(value: string): string {
  return PLAIN_STRING.test(value) ? `"${value}"` : JSON.stringify(value);
}

/** The JSON of a publication event: exactly what `JSON.stringify` writes, built directly (hot path). */
export function publicationJson(event: PublicationEvent): string {
  return `{"type":"publication","topic":${jsonString(event.topic)},"offset":${event.offset},"epoch":${jsonString(event.epoch)},"from":${jsonString(event.from)},"data":${jsonString(event.data)},"time":${event.time}}`;
}

/**
 * The reply to a `publish` (`{topic, offset, epoch}`), its encoding made with it: the JSON is
 * written directly instead of by `JSON.stringify` (the same bytes), since every publish gets one.
 */
export function publishReply(id: RequestId | null, topic: string, offset: number, epoch: string): OkReply {
  const reply: OkReply = { type: 'reply', id, ok: true, result: { topic, offset, epoch } };
  const idJson = typeof id === 'number' && Number.isSafeInteger(id) ? String(id) : JSON.stringify(id);
  (reply as { [ENCODED]?: Uint8Array })[ENCODED] = encoder.encode(
    `{"type":"reply","id":${idJson},"ok":true,"result":{"topic":${jsonString(topic)},"offset":${offset},"epoch":${jsonString(epoch)}}}`,
  );
  return reply;
}

const OPEN_BRACKET = 0x5b;
const COMMA = 0x2c;
const CLOSE_BRACKET = 0x5d;

/**
 * Bump allocation for the batch payloads of one flush: `take(n)` hands out views of one chunk,
 * and `reset()` (once nothing taken is in use) starts over on the largest chunk so far. A batch
 * payload is sealed (copied) in the turn it is encoded, so a fresh buffer each — kilobytes,
 * zero-filled, then written — is work the collector has to undo.
 */
export class PayloadArena {
  private chunk: Uint8Array;
  private used = 0;
  /** Bytes taken since the last reset, over every chunk. */
  private taken = 0;

  constructor(
    initialBytes = 64 * 1024,
    private readonly maxChunkBytes = 8 * 1024 * 1024,
  ) {
    this.chunk = new Uint8Array(initialBytes);
  }

  take(bytes: number): Uint8Array {
    if (bytes > this.maxChunkBytes) return new Uint8Array(bytes);
    if (this.used + bytes > this.chunk.length) {
      // Views taken so far keep the old chunk alive; the rest of this flush goes to a new one.
      this.chunk = new Uint8Array(this.fitting(Math.max(bytes, this.chunk.length * 2)));
      this.used = 0;
    }
    const view = this.chunk.subarray(this.used, this.used + bytes);
    this.used += bytes;
    this.taken += bytes;
    return view;
  }

  reset(): void {
    // A flush that did not fit in one chunk: the next one like it will.
    if (this.taken > this.chunk.length) this.chunk = new Uint8Array(this.fitting(this.taken));
    this.used = 0;
    this.taken = 0;
  }

  /** A power-of-two multiple of the current chunk size holding `bytes`, at most `maxChunkBytes`. */
  private fitting(bytes: number): number {
    let size = this.chunk.length;
    while (size < bytes) size *= 2;
    return Math.min(size, this.maxChunkBytes);
  }
}

/**
 * The payloads that carry `events` to one connection, in order: one event alone as its JSON
 * object, several as one JSON array of them (a batch), split so that no payload passes
 * `maxBytes` (an event that does not fit alone still goes alone). One frame per payload, so a
 * connection that is sent many events in one event-loop turn costs one seal and one write per
 * batch instead of per event (docs/RELAY.md "Batches"). With `arena`, batch payloads are views
 * of it, valid until its next `reset`.
 */
export function encodeEvents(events: readonly RelayEvent[], maxBytes: number, arena?: PayloadArena): Uint8Array[] {
  if (events.length === 1) return [encodeEvent(events[0]!)];
  const out: Uint8Array[] = [];
  let parts: Uint8Array[] = [];
  let size = 1;
  const close = () => {
    if (parts.length === 0) return;
    if (parts.length === 1) {
      out.push(parts[0]!);
    } else {
      const payload = arena ? arena.take(size + 1) : new Uint8Array(size + 1);
      payload[0] = OPEN_BRACKET;
      let at = 1;
      for (let i = 0; i < parts.length; i++) {
        if (i > 0) payload[at++] = COMMA;
        payload.set(parts[i]!, at);
        at += parts[i]!.length;
      }
      payload[at] = CLOSE_BRACKET;
      out.push(payload);
    }
    parts = [];
    size = 1;
  };
  for (const event of events) {
    const bytes = encodeEvent(event);
    // `[` + parts joined by `,` + `]`.
    if (parts.length > 0 && size + 1 + bytes.length + 1 > maxBytes) close();
    size += (parts.length > 0 ? 1 : 0) + bytes.length;
    parts.push(bytes);
  }
  close();
  return out;
}

/** Most commands one batch payload may carry (client → server). */
export const MAX_BATCH_COMMANDS = 1_024;
