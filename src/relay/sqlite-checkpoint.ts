/**
 * Bun Worker that checkpoints the embedded store's WAL off the event loop. SQLite's automatic
 * checkpoint runs inside the COMMIT that crosses `wal_autocheckpoint` pages, on the thread that
 * commits — for the relay, the event loop — and copying a few MB back into the database and
 * fsyncing it stalled the loop for 50–200 ms several times a second under publish load (bench
 * relay, 1:1 at 23k publishes/s: p50/p99 73/312 ms with it, 4/13 ms with this worker every
 * 250 ms). Here a second connection runs
 * `PRAGMA wal_checkpoint(PASSIVE)`, which never blocks the writer (SQLite §"Write-Ahead Logging":
 * checkpoints and writers run concurrently); the writer restarts the WAL from its start once a
 * checkpoint has caught up. Messages in: `{ path, intervalMs }` to start, `drain` (copy the tail
 * now: the writer has paused its commits), `stop`. Out: `behind` (after a pass, with the WAL's
 * frame count; see `pauseForRestart` in sqlite.ts), `drained`, `stopped`.
 */
import { Database } from 'bun:sqlite';

declare const self: Worker;

let db: Database | undefined;
let timer: ReturnType<typeof setInterval> | undefined;
let checkpoint: ReturnType<Database['query']> | undefined;

self.onmessage = (event: MessageEvent) => {
  const msg = event.data as { type: 'start'; path: string; intervalMs: number } | { type: 'stop' } | { type: 'drain' };
  if (msg.type === 'start' && !db) {
    db = new Database(msg.path);
    db.exec('PRAGMA busy_timeout = 1000');
    // FULL: the checkpoint fsyncs the WAL before copying and the database after.
    db.exec('PRAGMA synchronous = FULL');
    // `query`, not `prepare`: the connection's cached statements are finalized by `close`, while
    // a `prepare`d one left unfinalized turns `close` into a zombie connection that keeps the
    // file's descriptors and locks open in the process ("database is locked" for later opens).
    checkpoint = db.query('PRAGMA wal_checkpoint(PASSIVE)');
    timer = setInterval(() => {
      try {
        const result = checkpoint?.get() as { busy: number; log: number } | null;
        // Commits may have landed during the pass: report the WAL's size, so the writer can pause
        // its commits and ask for the tail (`drain`) once the WAL is large.
        if (result && !result.busy && result.log > 0) self.postMessage({ type: 'behind', frames: result.log });
      } catch {
        // Busy or closing: the next tick tries again.
      }
    }, msg.intervalMs);
  } else if (msg.type === 'drain') {
    // The writer paused its commits: copy the tail now, so the pass completes and the WAL can
    // start over at the next commit.
    try {
      checkpoint?.run();
    } catch {
      // Busy: the writer resumes anyway.
    }
    self.postMessage({ type: 'drained' });
  } else if (msg.type === 'stop') {
    clearInterval(timer);
    checkpoint = undefined;
    db?.close();
    db = undefined;
    self.postMessage({ type: 'stopped' });
  }
};
