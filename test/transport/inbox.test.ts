/**
 * The transport's inbox on its own: a turn's frames from several channels opened in one batch
 * call, handed over in arrival order, each failure kept to its own channel — also when the
 * batch call itself fails.
 */
import { describe, expect, test } from 'bun:test';
import { type OpenedFrame, Session } from '../../src/channel/index.ts';
import type { AeadBatchItem, BatchAead } from '../../src/crypto/types.ts';
import type { ChannelConnection, FanoutSealer } from '../../src/transport/connection.ts';
import { FrameInbox } from '../../src/transport/connection.ts';
import { nobleSuite } from '../channel/fixtures.ts';

const noble = nobleSuite();
const text = (s: string) => new TextEncoder().encode(s);

function pair(seed: number) {
  const k1 = new Uint8Array(32).fill(seed);
  const k2 = new Uint8Array(32).fill(seed + 1);
  const common = { aead: noble.chachaPoly, handshakeHash: new Uint8Array(32), protocolName: 'test' };
  return {
    client: new Session({ ...common, sendKey: k1, receiveKey: k2, initiator: true }),
    server: new Session({ ...common, sendKey: k2, receiveKey: k1, initiator: false }),
  };
}

/** A channel as the inbox sees it: admits every frame, records what it is handed. */
function fakeChannel(session: Session) {
  const got: (OpenedFrame | Error)[] = [];
  const channel = {
    admitFrame: () => session,
    acceptOpened: (opened: OpenedFrame | Error) => void got.push(opened),
  };
  return { channel: channel as unknown as ChannelConnection, got };
}

function batchAead(openBatch: (items: readonly AeadBatchItem[]) => (Uint8Array | null)[]): BatchAead {
  return {
    ...noble.chachaPoly,
    sealBatch: (items) => items.map((i) => noble.chachaPoly.seal(i.key, i.nonce, i.data, i.aad)),
    openBatch,
  };
}

describe('frame inbox', () => {
  for (const batchFails of [false, true]) {
    test(`frames of several channels are opened ${batchFails ? 'one by one when the batch call fails' : 'in one batch call'}; a forged frame fails only its channel`, () => {
      let batchCalls = 0;
      const aead = batchAead((items) => {
        batchCalls++;
        if (batchFails) throw new Error('batch call failed');
        return items.map((i) => noble.chachaPoly.open(i.key, i.nonce, i.data, i.aad));
      });
      let sealerFlushes = 0;
      const sealer = { flush: () => void sealerFlushes++ } as unknown as FanoutSealer;
      const inbox = new FrameInbox(aead, sealer);
      const one = pair(1);
      const two = pair(3);
      const a = fakeChannel(one.server);
      const b = fakeChannel(two.server);
      const forged = two.client.seal(0x10, text('b1'));
      forged[forged.length - 1]! ^= 1;
      inbox.push(a.channel, one.client.seal(0x10, text('a0')));
      inbox.push(b.channel, two.client.seal(0x10, text('b0')));
      inbox.push(a.channel, one.client.seal(0x10, text('a1')));
      inbox.push(b.channel, forged);
      inbox.push(a.channel, one.client.seal(0x10, text('a2')));
      inbox.flush();

      expect(batchCalls).toBe(1);
      expect(sealerFlushes).toBe(1);
      const plain = (o: OpenedFrame | Error) => (o instanceof Error ? `error:${(o as { code?: string }).code}` : new TextDecoder().decode(o.plaintext));
      expect(a.got.map(plain)).toEqual(['a0', 'a1', 'a2']);
      expect(b.got.map(plain)).toEqual(['b0', 'error:DECRYPT_FAILED']);
      // A replay of an accepted frame is refused by the replay window, batch or not.
      const again = one.client.seal(0x10, text('a3'));
      inbox.push(a.channel, again);
      inbox.push(a.channel, again);
      inbox.flush();
      expect(a.got.slice(3).map(plain)).toEqual(['a3', 'error:REPLAY']);
    });
  }
});
