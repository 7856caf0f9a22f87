/**
 * The resync after a broker reconnect, with the live path's timing in the test's hands: a
 * broker wrapper holds live envelopes (as if still on the wire) and fires the reconnect.
 */
import { describe, expect, test } from 'bun:test';
import { configSchema } from '../../src/config/index.ts';
import { createMemoryBroker, createRelay, createSqliteStore } from '../../src/relay/index.ts';
import type { Broker, BrokerEnvelope, BrokerHandler } from '../../src/relay/types.ts';
import { attachClient, b64, unb64 } from './harness.ts';

/** A memory broker whose deliveries can be held back, and whose reconnect the test fires. */
function controllableBroker() {
  const inner = createMemoryBroker();
  const listeners: (() => void)[] = [];
  let holding = false;
  const held: (() => void)[] = [];
  const broker: Broker = {
    ...inner,
    subscribe(channel: string, handler: BrokerHandler) {
      return inner.subscribe(channel, (envelope: BrokerEnvelope) => {
        if (holding) held.push(() => handler(envelope));
        else handler(envelope);
      });
    },
    onReconnect(listener) {
      listeners.push(listener);
    },
  };
  return {
    broker,
    hold: () => {
      holding = true;
    },
    release: () => {
      holding = false;
      for (const deliver of held.splice(0)) deliver();
    },
    reconnect: () => {
      for (const listener of listeners) listener();
    },
  };
}

describe('resync after a broker reconnect', () => {
  test('a live envelope that arrives after the resync already delivered its publication is not delivered twice', async () => {
    const config = configSchema.parse({ broker: { type: 'memory' } });
    const control = controllableBroker();
    const store = createSqliteStore({ path: ':memory:' });
    const relay = createRelay({ config, broker: control.broker, store, nodeId: 'n1' });
    try {
      const subscriber = attachClient(relay);
      const publisher = attachClient(relay);
      await subscriber.ok({ cmd: 'subscribe', topic: 'public:race' });
      await publisher.ok({ cmd: 'publish', topic: 'public:race', data: b64('p1') });
      await subscriber.waitFor(() => subscriber.publications().length === 1, 'the first publication');

      // p2 is stored, its live envelope still on the way; the reconnect's resync reads it first.
      control.hold();
      await publisher.ok({ cmd: 'publish', topic: 'public:race', data: b64('p2') });
      control.reconnect();
      await subscriber.waitFor(() => subscriber.publications().length === 2, 'p2 from the resync');
      expect(relay.stats().resyncs).toBe(1);
      // Now the envelope arrives, late: p2 must not be delivered again.
      control.release();
      await publisher.ok({ cmd: 'publish', topic: 'public:race', data: b64('p3') });
      await subscriber.waitFor(() => subscriber.publications().length >= 3, 'p3 live');
      await Bun.sleep(50);
      expect(subscriber.publications().map((p) => [p.offset, unb64(p.data)])).toEqual([
        [1, 'p1'],
        [2, 'p2'],
        [3, 'p3'],
      ]);
    } finally {
      await relay.close();
      await store.close();
    }
  });
});
