/**
 * The embedded store's history segments (one row per topic per group commit): reads that start
 * or stop inside a segment, bounds that cut through one, and files written before segments.
 */
import { Database } from 'bun:sqlite';
import { describe, expect, test } from 'bun:test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSqliteStore, segmentEntries, segmentText } from '../../src/relay/sqlite.ts';
import { openFilesUnder } from '../helpers/fds.ts';

const from = 'f'.repeat(64);
/** History rows of the file, by topic name (segments are keyed by the topic's number). */
const SEGMENTS = 'topic_segments s JOIN topics t ON t.id = s.topic_id';
const tempPath = () => join(mkdtempSync(join(tmpdir(), 'ssc-seg-')), 'relay.sqlite');
/** Rows of a query on the file, through a read-only connection of its own. */
const fileRows = <T,>(path: string, sql: string): T[] => {
  const db = new Database(path, { readonly: true });
  try {
    return db.query<T, []>(sql).all();
  } finally {
    db.close();
  }
};
const read = (store: ReturnType<typeof createSqliteStore>, topic: string, since: number, extra: { limit?: number; maxCount?: number; maxAgeMs?: number; now?: number } = {}) =>
  store.readSince(topic, since, { limit: extra.limit ?? 1_000, maxCount: extra.maxCount ?? 1_000, maxAgeMs: extra.maxAgeMs ?? 3_600_000, now: extra.now ?? Date.now() });

describe('sqlite store close', () => {
  test('close releases the file: no connection of the store or its checkpoint worker stays open', async () => {
    const path = tempPath();
    const dir = join(path, '..');
    const store = createSqliteStore({ path });
    await store.append('public:close', { from, data: 'YQ==', time: Date.now() }, { maxCount: 10, maxAgeMs: 3_600_000 });
    // The checkpoint worker has opened its connection and run a pass (every 250 ms).
    await Bun.sleep(700);
    expect(openFilesUnder(dir)).toBeGreaterThan(0);
    await store.close();
    expect(openFilesUnder(dir)).toBe(0);
    // And the file opens again in this process.
    const again = createSqliteStore({ path });
    expect((await read(again, 'public:close', 0)).publications.map((p) => p.data)).toEqual(['YQ==']);
    await again.close();
  });
});

describe('sqlite history segments', () => {
  test('the stored form: offsets from the row, senders once, times as differences; the full form still read', () => {
    const other = 'e'.repeat(64);
    const data = Buffer.from(new Uint8Array(128).map((_, i) => i * 7)).toString('base64');
    const t = 1_764_000_000_000;
    const entries: [number, string, string, number][] = Array.from({ length: 10 }, (_, i) => [41 + i, i % 3 === 2 ? other : from, `${data}${i}`, t + i * 3]);
    const text = segmentText(entries);
    expect(text.startsWith('{')).toBe(true);
    expect(segmentEntries(text, 41)).toEqual(entries);
    // Each sender once; no offsets; a quarter fewer bytes than the full form here (two senders).
    expect(text.split(from).length - 1).toBe(1);
    expect(text.split(other).length - 1).toBe(1);
    expect(text.length).toBeLessThan(JSON.stringify(entries).length * 0.8);
    // Offsets that do not follow one another keep the full form, and read back the same.
    const gap = [entries[0]!, entries[2]!];
    expect(segmentText(gap)).toBe(JSON.stringify(gap));
    expect(segmentEntries(segmentText(gap), 41)).toEqual(gap);
    // Segments written by earlier versions (the full form) are read as they are.
    expect(segmentEntries(JSON.stringify(entries), 0)).toEqual(entries);
  });

  test('the store writes the short form and reads it back exactly', async () => {
    const path = tempPath();
    const store = createSqliteStore({ path });
    const limits = { maxCount: 1_000, maxAgeMs: 3_600_000 };
    try {
      const t = Date.now();
      await Promise.all(Array.from({ length: 6 }, (_, i) => store.append('public:short', { from: i % 2 ? from : 'a'.repeat(64), data: `s${i}`, time: t + i }, limits)));
      const rows = fileRows<{ first_offset: number; entries: string }>(path, `SELECT s.first_offset, s.entries FROM ${SEGMENTS} WHERE t.topic = 'public:short'`);
      expect(rows).toHaveLength(1);
      expect(rows[0]!.first_offset).toBe(1);
      expect(JSON.parse(rows[0]!.entries)).toEqual({ t, f: ['a'.repeat(64), from], e: [0, 0, 's0', 1, 1, 's1', 0, 2, 's2', 1, 3, 's3', 0, 4, 's4', 1, 5, 's5'] });
      const page = await read(store, 'public:short', 0);
      expect(page.publications.map((p) => [p.offset, p.from, p.data, p.time])).toEqual(
        Array.from({ length: 6 }, (_, i) => [i + 1, i % 2 ? from : 'a'.repeat(64), `s${i}`, t + i]),
      );
    } finally {
      await store.close();
    }
  });

  test('reads start, stop and are bounded inside segments; every offset once, in order', async () => {
    const path = tempPath();
    const store = createSqliteStore({ path });
    const limits = { maxCount: 25, maxAgeMs: 3_600_000 };
    try {
      // Four group commits of 10 (each batch is one turn → one segment of 10).
      for (let c = 0; c < 4; c++) {
        await Promise.all(Array.from({ length: 10 }, (_, i) => store.append('public:seg', { from, data: `d${c * 10 + i}`, time: Date.now() }, limits)));
      }
      const segments = fileRows<{ n: number }>(path, `SELECT count(*) AS n FROM ${SEGMENTS} WHERE t.topic = 'public:seg'`)[0]!.n;
      // 4 written, the oldest dropped whole by the count trim (its last offset 10 ≤ 40 − 25).
      expect(segments).toBe(3);
      // The count bound cuts the second segment: offsets 16..40 are kept.
      const all = await read(store, 'public:seg', 0, { maxCount: 25 });
      expect(all.position.offset).toBe(40);
      expect(all.publications.map((p) => p.offset)).toEqual(Array.from({ length: 25 }, (_, i) => 16 + i));
      expect(all.publications.map((p) => p.data)).toEqual(Array.from({ length: 25 }, (_, i) => `d${15 + i}`));
      // `since` inside a segment, and a limit that stops inside the next one.
      const page = await read(store, 'public:seg', 23, { maxCount: 25, limit: 12 });
      expect(page.publications.map((p) => p.offset)).toEqual(Array.from({ length: 12 }, (_, i) => 24 + i));
      expect((await read(store, 'public:seg', 40)).publications).toEqual([]);
    } finally {
      await store.close();
    }
  });

  test('the age bound applies to each publication, also inside a segment', async () => {
    const store = createSqliteStore({ path: tempPath() });
    const limits = { maxCount: 1_000, maxAgeMs: 3_600_000 };
    try {
      const t = Date.now();
      // One turn, one segment: times 10 s apart.
      await Promise.all(Array.from({ length: 5 }, (_, i) => store.append('public:age', { from, data: `a${i}`, time: t - 40_000 + i * 10_000 }, limits)));
      const page = await read(store, 'public:age', 0, { maxAgeMs: 25_000, now: t });
      expect(page.publications.map((p) => p.data)).toEqual(['a2', 'a3', 'a4']);
    } finally {
      await store.close();
    }
  });

  test('a file written with one history row per publication is moved into segments at open', async () => {
    const path = tempPath();
    const legacy = new Database(path, { create: true });
    legacy.exec(`
      CREATE TABLE topics (topic TEXT PRIMARY KEY, epoch TEXT NOT NULL, last_offset INTEGER NOT NULL, trimmed_at INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
      CREATE TABLE history (topic TEXT NOT NULL, offset INTEGER NOT NULL, from_id TEXT NOT NULL, data TEXT NOT NULL, time INTEGER NOT NULL, PRIMARY KEY (topic, offset)) WITHOUT ROWID;
      CREATE TABLE kv (ns TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, expires INTEGER NOT NULL, PRIMARY KEY (ns, key)) WITHOUT ROWID;
    `);
    const t = Date.now();
    legacy.query("INSERT INTO topics VALUES ('public:old', 'e0e0e0e0e0e0', 3, 0)").run();
    for (let o = 1; o <= 3; o++) legacy.query('INSERT INTO history VALUES (?, ?, ?, ?, ?)').run('public:old', o, from, `old${o}`, t - 100 + o);
    legacy.close();

    const store = createSqliteStore({ path });
    try {
      const page = await read(store, 'public:old', 0);
      // A clean file: same epoch, same offsets, same data.
      expect(page.position).toEqual({ epoch: 'e0e0e0e0e0e0', offset: 3 });
      expect(page.publications.map((p) => [p.offset, p.data, p.from, p.time])).toEqual([
        [1, 'old1', from, t - 99],
        [2, 'old2', from, t - 98],
        [3, 'old3', from, t - 97],
      ]);
      const next = await store.append('public:old', { from, data: 'new4', time: t }, { maxCount: 1_000, maxAgeMs: 3_600_000 });
      expect(next).toMatchObject({ offset: 4, epoch: 'e0e0e0e0e0e0' });
      expect((await read(store, 'public:old', 2)).publications.map((p) => p.data)).toEqual(['old3', 'new4']);
    } finally {
      await store.close();
    }
    const db = new Database(path, { readonly: true });
    expect(db.query("SELECT name FROM sqlite_master WHERE name = 'history'").get()).toBeNull();
    db.close();
  });

  test('a file whose segments are keyed by topic name is moved to numbered topics at open', async () => {
    const path = tempPath();
    const old = new Database(path, { create: true });
    old.exec(`
      CREATE TABLE topics (topic TEXT PRIMARY KEY, epoch TEXT NOT NULL, last_offset INTEGER NOT NULL, trimmed_at INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
      CREATE TABLE segments (id INTEGER PRIMARY KEY, topic TEXT NOT NULL, first_offset INTEGER NOT NULL, last_offset INTEGER NOT NULL, last_time INTEGER NOT NULL, entries TEXT NOT NULL);
      CREATE UNIQUE INDEX segments_topic ON segments (topic, last_offset);
      CREATE TABLE kv (ns TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, expires INTEGER NOT NULL, PRIMARY KEY (ns, key)) WITHOUT ROWID;
    `);
    const t = Date.now();
    const segment = (topic: string, offsets: number[]) =>
      old
        .query('INSERT INTO segments (topic, first_offset, last_offset, last_time, entries) VALUES (?, ?, ?, ?, ?)')
        .run(topic, offsets[0]!, offsets.at(-1)!, t, JSON.stringify(offsets.map((o) => [o, from, `${topic}#${o}`, t])));
    old.query("INSERT INTO topics VALUES ('public:a', 'aaaaaaaaaaaa', 5, 0)").run();
    old.query("INSERT INTO topics VALUES ('public:b', 'bbbbbbbbbbbb', 2, 0)").run();
    segment('public:a', [1, 2, 3]);
    segment('public:b', [1, 2]);
    segment('public:a', [4, 5]);
    // History without a topics row (never written so, but a file may be damaged): kept, new epoch.
    segment('public:orphan', [1]);
    old.close();

    const store = createSqliteStore({ path });
    try {
      const a = await read(store, 'public:a', 0);
      expect(a.position).toEqual({ epoch: 'aaaaaaaaaaaa', offset: 5 });
      expect(a.publications.map((p) => p.data)).toEqual([1, 2, 3, 4, 5].map((o) => `public:a#${o}`));
      const b = await read(store, 'public:b', 1);
      expect(b.publications.map((p) => [p.offset, p.data, p.epoch])).toEqual([[2, 'public:b#2', 'bbbbbbbbbbbb']]);
      const orphan = await read(store, 'public:orphan', 0);
      expect(orphan.position.offset).toBe(1);
      expect(orphan.position.epoch).toMatch(/^[0-9a-f]{12}$/);
      expect(orphan.publications.map((p) => p.data)).toEqual(['public:orphan#1']);
      // New topics and appends continue with distinct numbers and the old offsets.
      const limits = { maxCount: 1_000, maxAgeMs: 3_600_000 };
      expect(await store.append('public:a', { from, data: 'a6', time: t }, limits)).toMatchObject({ offset: 6, epoch: 'aaaaaaaaaaaa' });
      await store.append('public:c', { from, data: 'c1', time: t }, limits);
      expect((await read(store, 'public:c', 0)).publications.map((p) => p.data)).toEqual(['c1']);
      expect((await read(store, 'public:a', 4)).publications.map((p) => p.data)).toEqual(['public:a#5', 'a6']);
    } finally {
      await store.close();
    }
    const db = new Database(path, { readonly: true });
    expect(db.query("SELECT name FROM sqlite_master WHERE name = 'segments'").get()).toBeNull();
    const ids = db.query<{ id: number }, []>('SELECT id FROM topics ORDER BY id').all().map((r) => r.id);
    expect(ids).toEqual([1, 2, 3, 4]);
    db.close();
  });
  test('the age trim drops expired segments from the oldest up to the first young one', async () => {
    const path = tempPath();
    const store = createSqliteStore({ path });
    const limits = { maxCount: 1_000, maxAgeMs: 10_000 };
    try {
      const t = Date.now();
      // Three group commits (one segment each), 5 s apart in publication time; the third
      // commit's age trim (newest − 10 s) finds the first two expired.
      for (const [c, time] of [t - 20_000, t - 15_000, t].entries()) {
        await Promise.all(Array.from({ length: 3 }, (_, i) => store.append('public:aged', { from, data: `c${c}.${i}`, time }, limits)));
      }
      const rows = fileRows<{ first_offset: number }>(path, `SELECT s.first_offset FROM ${SEGMENTS} WHERE t.topic = 'public:aged' ORDER BY s.first_offset`);
      expect(rows.map((r) => r.first_offset)).toEqual([7]);
      expect((await read(store, 'public:aged', 0, { maxAgeMs: 10_000, now: t })).publications.map((p) => p.data)).toEqual(['c2.0', 'c2.1', 'c2.2']);
    } finally {
      await store.close();
    }
  });

  test('trims are spread over commits when many topics reach their bound together; reads stay exact', async () => {
    const path = tempPath();
    const store = createSqliteStore({ path });
    const limits = { maxCount: 5, maxAgeMs: 3_600_000 };
    const topics = Array.from({ length: 12 }, (_, i) => `public:spread-${i}`);
    const segmentsPerTopic = () => {
      const rows = fileRows<{ topic: string; n: number }>(path, `SELECT t.topic, count(*) AS n FROM ${SEGMENTS} GROUP BY t.topic`);
      return new Map(rows.map((r) => [r.topic, r.n]));
    };
    try {
      // Each round is one group commit: 10 publications to every topic, one segment each.
      const round = () => Promise.all(topics.flatMap((topic) => Array.from({ length: 10 }, (_, i) => store.append(topic, { from, data: `x${i}`, time: Date.now() }, limits))));
      await round();
      await round();
      // Every topic is past its bound after the second round; one commit trims only a few of them.
      const after2 = segmentsPerTopic();
      expect([...after2.values()].filter((n) => n === 2).length).toBeGreaterThan(0);
      for (let r = 3; r <= 12; r++) {
        await round();
        for (const topic of topics) {
          const page = await read(store, topic, 0, { maxCount: 5 });
          expect(page.publications.map((p) => p.offset)).toEqual([r * 10 - 4, r * 10 - 3, r * 10 - 2, r * 10 - 1, r * 10]);
        }
      }
      // No topic is left behind: each is trimmed within a few commits of reaching its bound.
      const settled = segmentsPerTopic();
      expect(settled.size).toBe(topics.length);
      for (const n of settled.values()) expect(n).toBeLessThanOrEqual(4);
    } finally {
      await store.close();
    }
  });
});
