/**
 * The shared relay suite: every backend (memory+SQLite, Redis) must pass the same tests, through
 * the relay core and through the Store/Broker interfaces directly.
 */
import { afterEach, describe, expect, test } from 'bun:test';
import { encodeEvent, grantMessage } from '../../src/relay/index.ts';
import {
  attachClient,
  type BackendFactory,
  b64,
  createTracker,
  fakeClock,
  identity,
  type TestClient,
  unb64,
} from './harness.ts';

const publicationsData = (client: TestClient, topic: string) => client.publications(topic).map((p) => unb64(p.data));

export function relaySuite(factory: BackendFactory) {
  describe(`relay shared suite [${factory.name}]`, () => {
    const tracker = createTracker();
    afterEach(() => tracker.closeAll());

    test('publish reaches subscribers with offset, epoch and publisher', async () => {
      const { relay } = await tracker.relay(await factory.cluster());
      const a = attachClient(relay);
      const b = attachClient(relay);
      const sub = await a.ok({ cmd: 'subscribe', topic: 'public:chat' });
      expect(sub).toMatchObject({ topic: 'public:chat', offset: 0 });
      expect(typeof sub.epoch).toBe('string');
      const pub = await b.ok({ cmd: 'publish', topic: 'public:chat', data: b64('hello') });
      expect(pub).toMatchObject({ topic: 'public:chat', offset: 1, epoch: sub.epoch });
      await a.waitFor(() => a.publications().length === 1, 'publication');
      expect(a.publications()[0]).toMatchObject({ topic: 'public:chat', offset: 1, epoch: sub.epoch, from: b.identity });
      expect(unb64(a.publications()[0].data)).toBe('hello');
      // The publisher is not subscribed: nothing but its reply.
      expect(b.publications()).toHaveLength(0);
      // Unsubscribed: no more deliveries.
      await a.ok({ cmd: 'unsubscribe', topic: 'public:chat' });
      await b.ok({ cmd: 'publish', topic: 'public:chat', data: b64('after') });
      await b.ok({ cmd: 'ping' });
      await Bun.sleep(50);
      expect(a.publications()).toHaveLength(1);
    });

    test('ordering per topic per publisher with pipelined publishes; replies in order', async () => {
      const { relay } = await tracker.relay(await factory.cluster());
      const a = attachClient(relay);
      const b = attachClient(relay);
      const c = attachClient(relay);
      await a.ok({ cmd: 'subscribe', topic: 'public:order' });
      const n = 200;
      const sent = await Promise.all(
        Array.from({ length: n }, (_, i) =>
          (i % 2 ? b : c).cmd({ cmd: 'publish', topic: 'public:order', data: b64(`${i % 2 ? 'b' : 'c'}${i}`) }),
        ),
      );
      expect(sent.every((r) => r.ok)).toBe(true);
      await a.waitFor(() => a.publications().length === n, `${n} publications`);
      const got = a.publications('public:order');
      // Offsets are unique and delivered in increasing order.
      expect(got.map((p) => p.offset)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      for (const who of ['b', 'c']) {
        const seq = got.map((p) => unb64(p.data)).filter((d) => d.startsWith(who)).map((d) => Number(d.slice(1)));
        expect(seq).toEqual([...seq].sort((x, y) => x - y));
        expect(seq).toHaveLength(n / 2);
      }
      // Each publisher's replies come back in command order with increasing offsets.
      const offsetsOf = (client: TestClient) =>
        client.replies().map((r) => (r.ok ? (r.result.offset as number) : -1));
      for (const client of [b, c]) {
        const offsets = offsetsOf(client);
        expect(offsets).toEqual([...offsets].sort((x, y) => x - y));
      }
    });

    test('a fan-out reaches every local subscriber inside one batch, as one shared event object', async () => {
      const log: string[] = [];
      const { relay } = await tracker.relay(await factory.cluster(), {
        batch: { begin: () => log.push('begin'), end: () => log.push('end') },
      });
      const subscribers = Array.from({ length: 5 }, () => attachClient(relay));
      for (const s of subscribers) await s.ok({ cmd: 'subscribe', topic: 'public:fan' });
      for (const s of subscribers) {
        const push = s.events.push.bind(s.events);
        s.events.push = (...events) => {
          if (events.some((e) => e.type === 'publication')) log.push('deliver');
          return push(...events);
        };
      }
      const pub = attachClient(relay);
      await pub.ok({ cmd: 'publish', topic: 'public:fan', data: b64('x') });
      await subscribers[4].waitFor(() => subscribers.every((s) => s.publications().length === 1), 'fan-out');
      expect(log).toEqual(['begin', 'deliver', 'deliver', 'deliver', 'deliver', 'deliver', 'end']);
      const events = subscribers.map((s) => s.publications()[0]);
      expect(events.every((e) => e === events[0])).toBe(true);
      expect(encodeEvent(events[0])).toBe(encodeEvent(events[1]));
      expect(JSON.parse(new TextDecoder().decode(encodeEvent(events[0])))).toMatchObject({ type: 'publication', offset: 1 });
    });

    test('presence lists subscribers and follows unsubscribe and detach', async () => {
      const { relay } = await tracker.relay(await factory.cluster());
      const a = attachClient(relay);
      const b = attachClient(relay);
      await a.ok({ cmd: 'subscribe', topic: 'public:room' });
      await b.ok({ cmd: 'subscribe', topic: 'public:room' });
      let presence = await a.ok({ cmd: 'presence', topic: 'public:room' });
      expect(presence.identities).toEqual([a.identity, b.identity].sort());
      expect(presence.clients).toHaveLength(2);
      expect(presence.clients[0]).toHaveProperty('nodeId', relay.nodeId);
      await a.ok({ cmd: 'unsubscribe', topic: 'public:room' });
      presence = await b.ok({ cmd: 'presence', topic: 'public:room' });
      expect(presence.identities).toEqual([b.identity]);
      await b.session.detach();
      presence = await a.ok({ cmd: 'presence', topic: 'public:room' });
      expect(presence.clients).toEqual([]);
    });

    test('presence entries expire when their node stops heartbeating', async () => {
      const clock = fakeClock();
      const cluster = await factory.cluster();
      const { relay: one } = await tracker.relay(cluster, { now: clock, heartbeatMs: 1_000 });
      const { relay: two } = await tracker.relay(cluster, { now: clock, heartbeatMs: 1_000 });
      const a = attachClient(one);
      const b = attachClient(two);
      await a.ok({ cmd: 'subscribe', topic: 'public:hb' });
      await b.ok({ cmd: 'subscribe', topic: 'public:hb' });
      expect((await b.ok({ cmd: 'presence', topic: 'public:hb' })).clients).toHaveLength(2);
      // Node two keeps heartbeating, node one "crashed" (no leave, no heartbeat).
      for (let i = 0; i < 4; i++) {
        clock.advance(1_000);
        await two.heartbeat();
      }
      const presence = await b.ok({ cmd: 'presence', topic: 'public:hb' });
      expect(presence.identities).toEqual([b.identity]);
      expect((await two.peers()).map((p) => p.nodeId)).toEqual([two.nodeId]);
    });

    test('history is bounded by count', async () => {
      const { relay } = await tracker.relay(await factory.cluster({ historyMaxCount: 5 }));
      const a = attachClient(relay);
      for (let i = 1; i <= 8; i++) await a.ok({ cmd: 'publish', topic: 'public:h', data: b64(`m${i}`) });
      const history = await a.ok({ cmd: 'history', topic: 'public:h' });
      expect(history.offset).toBe(8);
      expect(history.publications.map((p: { offset: number }) => p.offset)).toEqual([4, 5, 6, 7, 8]);
      expect(history.publications.map((p: { data: string }) => unb64(p.data))).toEqual(['m4', 'm5', 'm6', 'm7', 'm8']);
      const since = await a.ok({ cmd: 'history', topic: 'public:h', since: 6, limit: 1 });
      expect(since.publications.map((p: { offset: number }) => p.offset)).toEqual([7]);
    });

    test('history is bounded by age', async () => {
      const clock = fakeClock();
      const { relay } = await tracker.relay(await factory.cluster({ historyMaxAgeSeconds: 10 }), { now: clock });
      const a = attachClient(relay);
      for (let i = 1; i <= 3; i++) await a.ok({ cmd: 'publish', topic: 'public:age', data: b64(`old${i}`) });
      clock.advance(6_000);
      for (let i = 1; i <= 2; i++) await a.ok({ cmd: 'publish', topic: 'public:age', data: b64(`new${i}`) });
      clock.advance(6_000);
      const history = await a.ok({ cmd: 'history', topic: 'public:age' });
      expect(history.publications.map((p: { data: string }) => unb64(p.data))).toEqual(['new1', 'new2']);
      // Appends trim old entries too; offsets keep counting.
      await a.ok({ cmd: 'publish', topic: 'public:age', data: b64('newest') });
      clock.advance(5_000);
      const later = await a.ok({ cmd: 'history', topic: 'public:age' });
      expect(later.publications.map((p: { offset: number }) => p.offset)).toEqual([6]);
    });

    test('a reconnecting subscriber resumes from its position, exactly in order, then goes live', async () => {
      const { relay } = await tracker.relay(await factory.cluster());
      const pub = attachClient(relay);
      let a = attachClient(relay);
      const sub = await a.ok({ cmd: 'subscribe', topic: 'public:resume' });
      for (let i = 1; i <= 3; i++) await pub.ok({ cmd: 'publish', topic: 'public:resume', data: b64(`m${i}`) });
      await a.waitFor(() => a.publications().length === 3, '3 publications');
      const last = a.publications().at(-1)!;
      await a.session.detach();
      for (let i = 4; i <= 7; i++) await pub.ok({ cmd: 'publish', topic: 'public:resume', data: b64(`m${i}`) });
      const who = a.identity;
      a = attachClient(relay, who);
      const resumed = await a.ok({
        cmd: 'subscribe',
        topic: 'public:resume',
        since: { epoch: last.epoch, offset: last.offset },
      });
      expect(resumed).toMatchObject({ epoch: sub.epoch, offset: 7, recovered: true, replayed: 4 });
      await pub.ok({ cmd: 'publish', topic: 'public:resume', data: b64('m8') });
      await a.waitFor(() => a.publications().length === 5, '5 publications');
      expect(publicationsData(a, 'public:resume')).toEqual(['m4', 'm5', 'm6', 'm7', 'm8']);
      // The reply precedes the replay.
      const replyIndex = a.events.findIndex((e) => e.type === 'reply' && e.ok && e.result.recovered === true);
      const firstPub = a.events.findIndex((e) => e.type === 'publication');
      expect(replyIndex).toBeLessThan(firstPub);
    });

    test('resume across trimmed history reports recovered: false and replays what is kept', async () => {
      const { relay } = await tracker.relay(await factory.cluster({ historyMaxCount: 3 }));
      const pub = attachClient(relay);
      const first = await pub.ok({ cmd: 'publish', topic: 'public:trim', data: b64('m1') });
      for (let i = 2; i <= 6; i++) await pub.ok({ cmd: 'publish', topic: 'public:trim', data: b64(`m${i}`) });
      const a = attachClient(relay);
      const resumed = await a.ok({ cmd: 'subscribe', topic: 'public:trim', since: { epoch: first.epoch, offset: 1 } });
      expect(resumed).toMatchObject({ recovered: false, replayed: 3 });
      await a.waitFor(() => a.publications().length === 3, 'replay');
      expect(publicationsData(a, 'public:trim')).toEqual(['m4', 'm5', 'm6']);
      // A wrong epoch recovers nothing.
      const b = attachClient(relay);
      expect(await b.ok({ cmd: 'subscribe', topic: 'public:trim', since: { epoch: 'other', offset: 2 } })).toMatchObject({
        recovered: false,
        replayed: 0,
      });
    });

    test('recover: true resumes from the position committed with ack', async () => {
      const { relay } = await tracker.relay(await factory.cluster());
      const pub = attachClient(relay);
      let a = attachClient(relay);
      await a.ok({ cmd: 'subscribe', topic: 'public:cursor' });
      for (let i = 1; i <= 2; i++) await pub.ok({ cmd: 'publish', topic: 'public:cursor', data: b64(`m${i}`) });
      await a.waitFor(() => a.publications().length === 2, 'publications');
      const last = a.publications().at(-1)!;
      await a.ok({ cmd: 'ack', topic: 'public:cursor', position: { epoch: last.epoch, offset: last.offset } });
      await a.session.detach();
      await pub.ok({ cmd: 'publish', topic: 'public:cursor', data: b64('m3') });
      a = attachClient(relay, a.identity);
      expect(await a.ok({ cmd: 'subscribe', topic: 'public:cursor', recover: true })).toMatchObject({
        recovered: true,
        replayed: 1,
      });
      await a.waitFor(() => a.publications().length === 1, 'replay');
      expect(publicationsData(a, 'public:cursor')).toEqual(['m3']);
    });

    test('direct messages: stored for an offline identity, delivered in order, redelivered until acked, no duplicates after ack', async () => {
      const { relay } = await tracker.relay(await factory.cluster());
      const sender = attachClient(relay);
      const to = identity();
      const ids: number[] = [];
      for (let i = 1; i <= 3; i++) ids.push((await sender.ok({ cmd: 'send', to, data: b64(`dm${i}`) })).id);
      expect(ids).toEqual([...ids].sort((x, y) => x - y));
      let r = attachClient(relay, to);
      await r.waitFor(() => r.messages().length === 3, '3 messages');
      expect(r.messages().map((m) => unb64(m.data))).toEqual(['dm1', 'dm2', 'dm3']);
      expect(r.messages().map((m) => m.id)).toEqual(ids);
      expect(r.messages()[0].from).toBe(sender.identity);
      expect(await r.ok({ cmd: 'ack', ids: ids.slice(0, 2) })).toEqual({ acked: 2 });
      await r.session.detach();
      // Reconnect: only the unacked one comes again.
      r = attachClient(relay, to);
      await r.waitFor(() => r.messages().length === 1, 'redelivery');
      await Bun.sleep(30);
      expect(r.messages().map((m) => unb64(m.data))).toEqual(['dm3']);
      // Live while connected, after the backlog.
      await sender.ok({ cmd: 'send', to, data: b64('dm4') });
      await r.waitFor(() => r.messages().length === 2, 'live message');
      expect(r.messages().map((m) => unb64(m.data))).toEqual(['dm3', 'dm4']);
      await r.ok({ cmd: 'ack', ids: r.messages().map((m) => m.id) });
      // Acking twice is harmless.
      expect(await r.ok({ cmd: 'ack', ids: [ids[0]] })).toEqual({ acked: 0 });
      await r.session.detach();
      r = attachClient(relay, to);
      await sender.ok({ cmd: 'send', to, data: b64('dm5') });
      await r.waitFor(() => r.messages().length >= 1, 'message');
      await Bun.sleep(50);
      expect(r.messages().map((m) => unb64(m.data))).toEqual(['dm5']);
    });

    test('direct messages: a large backlog replays in order, pipelined sends keep their order', async () => {
      const { relay } = await tracker.relay(await factory.cluster(), { backlogPage: 16 });
      const sender = attachClient(relay);
      const to = identity();
      const n = 100;
      const replies = await Promise.all(
        Array.from({ length: n }, (_, i) => sender.cmd({ cmd: 'send', to, data: b64(String(i)) })),
      );
      expect(replies.every((x) => x.ok)).toBe(true);
      const r = attachClient(relay, to);
      // Live sends racing the backlog replay.
      const more = Array.from({ length: 20 }, (_, i) => sender.cmd({ cmd: 'send', to, data: b64(String(n + i)) }));
      await Promise.all(more);
      await r.waitFor(() => r.messages().length === n + 20, `${n + 20} messages`);
      await Bun.sleep(30);
      expect(r.messages().map((m) => Number(unb64(m.data)))).toEqual(Array.from({ length: n + 20 }, (_, i) => i));
    });

    test('a full queue refuses the send (never drops an accepted message)', async () => {
      const { relay } = await tracker.relay(await factory.cluster({ queueMaxCount: 2 }));
      const sender = attachClient(relay);
      const to = identity();
      await sender.ok({ cmd: 'send', to, data: b64('1') });
      await sender.ok({ cmd: 'send', to, data: b64('2') });
      const refused = await sender.cmd({ cmd: 'send', to, data: b64('3') });
      expect(refused).toMatchObject({ ok: false, error: { code: 'queue_full' } });
      const r = attachClient(relay, to);
      await r.waitFor(() => r.messages().length === 2, 'messages');
      await r.ok({ cmd: 'ack', ids: [r.messages()[0].id] });
      await sender.ok({ cmd: 'send', to, data: b64('3') });
      await r.waitFor(() => r.messages().length === 3, 'third');
      expect(r.messages().map((m) => unb64(m.data))).toEqual(['1', '2', '3']);
    });

    test('authorisation: user:, private: allow-list and signed grants', async () => {
      const alice = identity();
      const bob = identity();
      const cluster = await factory.cluster({
        privateTopics: { 'private:staff': [alice], 'private:ops-*': [bob] },
      });
      const verified: string[] = [];
      const { relay } = await tracker.relay(cluster, {
        verifyGrant: (grant) => {
          verified.push(grantMessage(grant));
          return grant.sig === b64('good-signature');
        },
      });
      const a = attachClient(relay, alice);
      const b = attachClient(relay, bob);
      const forbidden = { ok: false, error: { code: 'forbidden' } };
      // user:<fingerprint> is its owner's only.
      await a.ok({ cmd: 'subscribe', topic: `user:${alice}` });
      await a.ok({ cmd: 'publish', topic: `user:${alice}`, data: b64('self') });
      expect(await b.cmd({ cmd: 'subscribe', topic: `user:${alice}` })).toMatchObject(forbidden);
      expect(await b.cmd({ cmd: 'publish', topic: `user:${alice}`, data: b64('x') })).toMatchObject(forbidden);
      expect(await b.cmd({ cmd: 'history', topic: `user:${alice}` })).toMatchObject(forbidden);
      expect(await b.cmd({ cmd: 'presence', topic: `user:${alice}` })).toMatchObject(forbidden);
      // private: by allow-list (exact and prefix patterns).
      await a.ok({ cmd: 'subscribe', topic: 'private:staff' });
      expect(await b.cmd({ cmd: 'subscribe', topic: 'private:staff' })).toMatchObject(forbidden);
      await b.ok({ cmd: 'publish', topic: 'private:ops-eu', data: b64('x') });
      expect(await a.cmd({ cmd: 'publish', topic: 'private:ops-eu', data: b64('x') })).toMatchObject(forbidden);
      // private: by signed grant.
      const grant = {
        topic: 'private:staff',
        identity: bob,
        rights: ['subscribe'],
        exp: Math.floor(Date.now() / 1000) + 60,
        issuer: 'issuer-fp',
        sig: b64('good-signature'),
      };
      expect(await b.cmd({ cmd: 'subscribe', topic: 'private:staff', grant: { ...grant, sig: b64('forged') } })).toMatchObject(
        forbidden,
      );
      expect(
        await b.cmd({ cmd: 'subscribe', topic: 'private:staff', grant: { ...grant, exp: Math.floor(Date.now() / 1000) - 1 } }),
      ).toMatchObject(forbidden);
      expect(await b.cmd({ cmd: 'subscribe', topic: 'private:staff', grant: { ...grant, identity: alice } })).toMatchObject(
        forbidden,
      );
      await b.ok({ cmd: 'subscribe', topic: 'private:staff', grant });
      expect(verified.at(-1)).toBe(grantMessage(grant as Parameters<typeof grantMessage>[0]));
      // The grant gave subscribe, not publish.
      expect(await b.cmd({ cmd: 'publish', topic: 'private:staff', data: b64('x') })).toMatchObject(forbidden);
      await a.ok({ cmd: 'publish', topic: 'private:staff', data: b64('for staff') });
      await b.waitFor(() => b.publications('private:staff').length === 1, 'private publication');
      // Without a verifier no grant is accepted.
      const { relay: strict } = await tracker.relay(cluster);
      const c = attachClient(strict, bob);
      expect(await c.cmd({ cmd: 'subscribe', topic: 'private:staff', grant })).toMatchObject(forbidden);
    });

    test('a publish whose grant is still being verified holds back the publishes and sends after it', async () => {
      const cluster = await factory.cluster();
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      const { relay } = await tracker.relay(cluster, {
        verifyGrant: async (grant) => {
          await gate;
          return grant.sig === b64('good-signature');
        },
      });
      const pub = identity();
      const watcher = attachClient(relay);
      await watcher.ok({ cmd: 'subscribe', topic: 'public:after' });
      const p = attachClient(relay, pub);
      const grant = { topic: 'private:slow', identity: pub, rights: ['publish'], exp: Math.floor(Date.now() / 1000) + 60, issuer: 'i', sig: b64('good-signature') };
      const to = identity();
      const replies = [
        p.cmd({ cmd: 'publish', topic: 'private:slow', data: b64('first'), grant }),
        p.cmd({ cmd: 'publish', topic: 'public:after', data: b64('second') }),
        p.cmd({ cmd: 'send', to, data: b64('third') }),
        p.cmd({ cmd: 'publish', topic: 'public:after', data: b64('fourth') }),
      ];
      // Nothing after the grant's publish is issued while its verification waits.
      await Bun.sleep(50);
      expect(watcher.publications()).toHaveLength(0);
      expect(p.replies()).toHaveLength(0);
      release();
      const done = await Promise.all(replies);
      expect(done.every((r) => r.ok)).toBe(true);
      // Replies come in the order the commands finish (docs/RELAY.md); each exactly once.
      expect(p.replies().map((r) => r.id).sort()).toEqual(done.map((r) => r.id).sort());
      await watcher.waitFor(() => watcher.publications().length === 2, 'two publications');
      expect(publicationsData(watcher, 'public:after')).toEqual(['second', 'fourth']);
      const receiver = attachClient(relay, to);
      await receiver.waitFor(() => receiver.messages().length === 1, 'the direct message');
      expect(unb64(receiver.messages()[0].data)).toBe('third');
    });

    test('validation: every command answers bad input with its id and a code', async () => {
      const { relay } = await tracker.relay(await factory.cluster({ maxTopicsPerConnection: 2 }));
      const a = attachClient(relay);
      const bad = (code: string) => ({ ok: false, error: { code } });
      const to = identity();
      const cases: Array<[Record<string, unknown>, string]> = [
        [{ cmd: 'subscribe' }, 'bad_request'],
        [{ cmd: 'subscribe', topic: 'nonamespace' }, 'bad_topic'],
        [{ cmd: 'subscribe', topic: 42 }, 'bad_request'],
        [{ cmd: 'subscribe', topic: 'public:x', since: { epoch: 'e', offset: -1 } }, 'bad_request'],
        [{ cmd: 'unsubscribe', topic: 'public:{x}' }, 'bad_topic'],
        [{ cmd: 'history', topic: `user:${'x'.repeat(300)}` }, 'bad_topic'],
        [{ cmd: 'publish', topic: 'public:x' }, 'bad_request'],
        [{ cmd: 'publish', topic: 'public:x', data: 'not base64!' }, 'bad_request'],
        [{ cmd: 'publish', topic: 'public:x', data: b64('x'), extra: 1 }, 'bad_request'],
        [{ cmd: 'send', to: 'abc', data: b64('x') }, 'bad_request'],
        [{ cmd: 'send', to, data: 42 }, 'bad_request'],
        [{ cmd: 'ack' }, 'bad_request'],
        [{ cmd: 'ack', ids: [0] }, 'bad_request'],
        [{ cmd: 'ack', topic: 'public:x' }, 'bad_request'],
        [{ cmd: 'history', topic: 'public:x', limit: 0 }, 'bad_request'],
        [{ cmd: 'presence' }, 'bad_request'],
        [{ cmd: 'ping', x: 1 }, 'bad_request'],
        [{ cmd: 'fly' }, 'unknown_command'],
        [{ cmd: 'publish', topic: 'public:x', data: 'A'.repeat(100_000) }, 'payload_too_large'],
        [{ cmd: 'unsubscribe', topic: 'public:never' }, 'not_subscribed'],
      ];
      for (const [command, code] of cases) {
        const reply = await a.cmd(command);
        expect(reply, JSON.stringify(command).slice(0, 80)).toMatchObject(bad(code));
        expect(typeof reply.id).toBe('number');
      }
      expect(await a.session.handle('{not json')).toMatchObject({ id: null, ...bad('bad_request') });
      expect(await a.session.handle(new Uint8Array([0xff, 0xfe]))).toMatchObject(bad('bad_request'));
      expect(await a.session.handle('[1]')).toMatchObject(bad('bad_request'));
      expect(await a.session.handle({ id: 'req-1', cmd: 'ping' })).toMatchObject({ id: 'req-1', ok: true });
      const bytes = new TextEncoder().encode(JSON.stringify({ id: 9, cmd: 'ping' }));
      expect(await a.session.handle(bytes)).toMatchObject({ id: 9, ok: true });
      await a.ok({ cmd: 'subscribe', topic: 'public:1' });
      await a.ok({ cmd: 'subscribe', topic: 'public:2' });
      expect(await a.ok({ cmd: 'subscribe', topic: 'public:2' })).toMatchObject({ alreadySubscribed: true });
      expect(await a.cmd({ cmd: 'subscribe', topic: 'public:3' })).toMatchObject(bad('too_many_topics'));
      // Every reply was also delivered, in order.
      expect(a.replies().length).toBe(cases.length + 9);
    });

    test('a batch payload runs its commands in order, each answered as if sent alone', async () => {
      const { relay } = await tracker.relay(await factory.cluster());
      const a = attachClient(relay);
      const b = attachClient(relay);
      await a.ok({ cmd: 'subscribe', topic: 'public:batch' });
      const encode = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
      const batch = [
        { id: 1, cmd: 'publish', topic: 'public:batch', data: b64('one') },
        { id: 2, cmd: 'publish', topic: 'public:batch', data: 'not base64!' },
        { id: 3, cmd: 'publish', topic: 'public:batch', data: b64('two') },
        { id: 4, cmd: 'history', topic: 'public:batch' },
        { id: 5, cmd: 'fly' },
        { id: 6, cmd: 'ping' },
      ];
      const replies = (await b.session.handlePayload(encode(batch))) as { id: number; ok: boolean; error?: { code: string } }[];
      expect(replies.map((r) => r.id)).toEqual([1, 2, 3, 4, 5, 6]);
      expect(replies.map((r) => (r.ok ? 'ok' : r.error!.code))).toEqual(['ok', 'bad_request', 'ok', 'ok', 'unknown_command', 'ok']);
      // Delivered to the transport in the same order; history (after both publishes) holds both.
      expect(b.replies().map((r) => r.id)).toEqual([1, 2, 3, 4, 5, 6]);
      const history = b.replies()[3] as unknown as { result: { publications: { data: string }[] } };
      expect(history.result.publications.map((p) => unb64(p.data))).toEqual(['one', 'two']);
      await a.waitFor(() => a.publications().length === 2, 'two publications');
      expect(publicationsData(a, 'public:batch')).toEqual(['one', 'two']);

      // A lone object is one command; an empty or oversized batch is refused as a whole.
      expect(await b.session.handlePayload(encode({ id: 7, cmd: 'ping' }))).toMatchObject({ id: 7, ok: true });
      expect(await b.session.handlePayload(encode([]))).toMatchObject({ id: null, ok: false, error: { code: 'bad_request' } });
      const tooMany = Array.from({ length: 1_025 }, (_, i) => ({ id: 100 + i, cmd: 'ping' }));
      expect(await b.session.handlePayload(encode(tooMany))).toMatchObject({ id: null, ok: false, error: { code: 'bad_request' } });
      expect(await b.session.handlePayload(new TextEncoder().encode('[{"id":1'))).toMatchObject({ id: null, error: { code: 'bad_request' } });
      // Elements that are not objects are answered one by one.
      const mixed = (await b.session.handlePayload(encode([1, { id: 8, cmd: 'ping' }]))) as { id: unknown; ok: boolean }[];
      expect(mixed.map((r) => [r.id, r.ok])).toEqual([
        [null, false],
        [8, true],
      ]);

      // `admit` is asked with the number of commands first; refused, nothing runs.
      const asked: number[] = [];
      const before = b.replies().length;
      const none = await b.session.handlePayload(encode(batch.slice(0, 3)), (n) => {
        asked.push(n);
        return false;
      });
      expect(none).toBeUndefined();
      expect(asked).toEqual([3]);
      await Bun.sleep(20);
      expect(b.replies().length).toBe(before);
      expect(publicationsData(a, 'public:batch')).toEqual(['one', 'two']);
    });

    test('backpressure: buffered while blocked, flushed in order on drain', async () => {
      const { relay } = await tracker.relay(await factory.cluster());
      const a = attachClient(relay);
      const pub = attachClient(relay);
      await a.ok({ cmd: 'subscribe', topic: 'public:bp' });
      a.blocked = true;
      await pub.ok({ cmd: 'publish', topic: 'public:bp', data: b64('0') });
      await a.waitFor(() => a.publications().length === 1, 'first (accepted, then blocked)');
      for (let i = 1; i < 10; i++) await pub.ok({ cmd: 'publish', topic: 'public:bp', data: b64(String(i)) });
      await Bun.sleep(30);
      expect(a.publications()).toHaveLength(1);
      expect(a.session.queued).toBe(9);
      a.blocked = false;
      a.session.drain();
      expect(publicationsData(a, 'public:bp')).toEqual(Array.from({ length: 10 }, (_, i) => String(i)));
      expect(a.closed).toBeUndefined();
    });

    test('a transport whose deliver throws loses its connection, not the fan-out', async () => {
      const { relay } = await tracker.relay(await factory.cluster());
      const good = attachClient(relay);
      const broken = attachClient(relay);
      const pub = attachClient(relay);
      await broken.ok({ cmd: 'subscribe', topic: 'public:t' });
      await good.ok({ cmd: 'subscribe', topic: 'public:t' });
      broken.events.push = () => {
        throw new Error('socket gone');
      };
      await pub.ok({ cmd: 'publish', topic: 'public:t', data: b64('x') });
      await good.waitFor(() => good.publications().length === 1, 'publication');
      expect(broken.closed).toEqual({ code: 1011, reason: 'delivery failed' });
      expect(relay.session(broken.session.id)).toBeUndefined();
    });

    test('slow consumer: closed with 4008 past the bound; its direct messages stay stored', async () => {
      const cluster = await factory.cluster();
      const { relay } = await tracker.relay(cluster, { maxQueuedEvents: 20 });
      const slow = attachClient(relay);
      const pub = attachClient(relay);
      await slow.ok({ cmd: 'subscribe', topic: 'public:flood' });
      await slow.waitFor(() => slow.replies().length === 1, 'reply');
      slow.blocked = true;
      await pub.ok({ cmd: 'send', to: slow.identity, data: b64('keep me') });
      await slow.waitFor(() => slow.messages().length === 1, 'direct message');
      for (let i = 0; i < 30 && !slow.closed; i++) await pub.ok({ cmd: 'publish', topic: 'public:flood', data: b64(String(i)) });
      expect(slow.closed).toEqual({ code: 4008, reason: 'slow consumer' });
      expect(relay.session(slow.session.id)).toBeUndefined();
      expect(await slow.session.handle({ id: 1, cmd: 'ping' })).toMatchObject({ ok: false, error: { code: 'closed' } });
      // The unacked direct message comes again on the next connection.
      const again = attachClient(relay, slow.identity);
      await again.waitFor(() => again.messages().length === 1, 'redelivery');
      expect(unb64(again.messages()[0].data)).toBe('keep me');
    });

    test('two nodes: a batch of publishes interleaved over two topics reaches the other node in offset order', async () => {
      const cluster = await factory.cluster();
      const { relay: one } = await tracker.relay(cluster, { nodeId: 'node-one' });
      const { relay: two } = await tracker.relay(cluster, { nodeId: 'node-two' });
      const sub = attachClient(two);
      await sub.ok({ cmd: 'subscribe', topic: 'public:b1' });
      await sub.ok({ cmd: 'subscribe', topic: 'public:b2' });
      const pub = attachClient(one);
      const batch = Array.from({ length: 60 }, (_, i) => ({ id: i + 1, cmd: 'publish', topic: i % 3 ? 'public:b1' : 'public:b2', data: b64(`p${i}`) }));
      const replies = (await pub.session.handlePayload(new TextEncoder().encode(JSON.stringify(batch)))) as {
        ok: boolean;
        result: { topic: string; offset: number };
      }[];
      expect(replies.every((r) => r.ok)).toBe(true);
      for (const topic of ['public:b1', 'public:b2']) {
        const offsets = replies.filter((r) => r.result.topic === topic).map((r) => r.result.offset);
        expect(offsets).toEqual(Array.from({ length: offsets.length }, (_, i) => i + 1));
      }
      await sub.waitFor(() => sub.publications().length === 60, 'all 60 on node two');
      for (const topic of ['public:b1', 'public:b2']) {
        const expected = batch.filter((c) => c.topic === topic).map((c) => unb64(c.data));
        expect(publicationsData(sub, topic)).toEqual(expected);
        expect(sub.publications(topic).map((p) => p.offset)).toEqual(expected.map((_, i) => i + 1));
      }
      // History agrees with what was delivered.
      const history = await sub.ok({ cmd: 'history', topic: 'public:b1' });
      expect(history.publications.map((p: { data: string }) => unb64(p.data))).toEqual(publicationsData(sub, 'public:b1'));
    });

    test('two nodes: topic and direct messages cross nodes; presence, history and peers are global', async () => {
      const cluster = await factory.cluster();
      const { relay: one } = await tracker.relay(cluster, { nodeId: 'node-one' });
      const { relay: two } = await tracker.relay(cluster, { nodeId: 'node-two' });
      const a = attachClient(one);
      const b = attachClient(two);
      await a.ok({ cmd: 'subscribe', topic: 'public:x' });
      await b.ok({ cmd: 'subscribe', topic: 'public:x' });
      await a.ok({ cmd: 'publish', topic: 'public:x', data: b64('from one') });
      await b.ok({ cmd: 'publish', topic: 'public:x', data: b64('from two') });
      await a.waitFor(() => a.publications().length === 2, 'both on one');
      await b.waitFor(() => b.publications().length === 2, 'both on two');
      expect(publicationsData(a, 'public:x')).toEqual(['from one', 'from two']);
      expect(publicationsData(b, 'public:x')).toEqual(['from one', 'from two']);
      await a.ok({ cmd: 'send', to: b.identity, data: b64('dm a→b') });
      await b.waitFor(() => b.messages().length === 1, 'direct across nodes');
      expect(b.messages()[0].from).toBe(a.identity);
      const presence = await b.ok({ cmd: 'presence', topic: 'public:x' });
      expect(presence.clients.map((c: { nodeId: string }) => c.nodeId).sort()).toEqual(['node-one', 'node-two']);
      const history = await a.ok({ cmd: 'history', topic: 'public:x' });
      expect(history.publications.map((p: { data: string }) => unb64(p.data))).toEqual(['from one', 'from two']);
      await one.heartbeat();
      await two.heartbeat();
      expect((await one.peers()).map((p) => p.nodeId)).toEqual(['node-one', 'node-two']);
    });

    describe('store', () => {
      test('kv with namespaces and TTL; time series with retention', async () => {
        const clock = fakeClock();
        const { backends } = await tracker.relay(await factory.cluster(), { now: clock });
        const { kv, series } = backends.store;
        await kv.set('bans', '10.0.0.1', 'flood', 80);
        await kv.set('bans', '10.0.0.2', 'scan');
        await kv.set('alerts', 'cpu', 'firing');
        expect(await kv.get('bans', '10.0.0.2')).toBe('scan');
        expect(await kv.list('bans')).toEqual([
          { key: '10.0.0.1', value: 'flood' },
          { key: '10.0.0.2', value: 'scan' },
        ]);
        clock.advance(200);
        await Bun.sleep(200);
        expect(await kv.get('bans', '10.0.0.1')).toBeUndefined();
        expect(await kv.list('bans')).toEqual([{ key: '10.0.0.2', value: 'scan' }]);
        expect(await kv.delete('bans', '10.0.0.2')).toBe(true);
        expect(await kv.delete('bans', '10.0.0.2')).toBe(false);
        expect(await kv.list('alerts')).toEqual([{ key: 'cpu', value: 'firing' }]);

        const t = clock();
        await series.append('cpu', [
          [t - 3_000, 10],
          [t - 2_000, 20.5],
          [t - 1_000, 30],
        ]);
        expect(await series.range('cpu', t - 2_500, t)).toEqual([
          [t - 2_000, 20.5],
          [t - 1_000, 30],
        ]);
        await series.append('cpu', [[t, 40]], 1_500);
        expect(await series.range('cpu', 0, t)).toEqual([
          [t - 1_000, 30],
          [t, 40],
        ]);
      });

      test('health answers healthy', async () => {
        const { backends } = await tracker.relay(await factory.cluster());
        expect((await backends.store.health()).status).toBe('healthy');
        expect((await backends.broker.health()).status).toBe('healthy');
      });
    });
  });
}
