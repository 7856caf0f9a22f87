/**
 * Key pools: one bounded pool of secret key material per link (master SAE → slave SAE), and the
 * book of keys handed to a master and not yet fetched by its slave (ETSI GS QKD 014 §5: a key
 * goes to the master once and to the named slave once, then it is erased).
 *
 * Every operation is synchronous, so on one event loop a key can never be handed out twice.
 */
import { randomUUID } from 'node:crypto';

export interface KeyPoolLimits {
  /** Default key size, bits. */
  keySize: number;
  /** Keys of `keySize` a pool holds at most (max_key_count). */
  maxKeys: number;
}

/** One delivered key. */
export interface DeliveredKey {
  keyId: string;
  key: Uint8Array;
}

/** Bounded FIFO of key bytes for one link. */
export interface KeyPool {
  readonly masterSae: string;
  readonly slaveSae: string;
  readonly maxKeys: number;
  readonly keySize: number;
  /** Capacity in bytes (maxKeys · keySize / 8). */
  readonly capacityBytes: number;
  /** Bytes stored. */
  storedBytes(): number;
  /** Keys of `sizeBits` that could be served now. */
  storedKeyCount(sizeBits?: number): number;
  /** Fill, 0..1. */
  fill(): number;
  /** Appends key material; returns the bytes accepted (the rest is wiped and dropped). */
  add(material: Uint8Array): number;
}

interface PoolInternal extends KeyPool {
  take(bytes: number): Uint8Array;
}

function createPool(masterSae: string, slaveSae: string, limits: KeyPoolLimits): PoolInternal {
  const capacityBytes = Math.max(1, Math.ceil((limits.maxKeys * limits.keySize) / 8));
  // Material arrives in blocks; keep the block list and an offset into the first one.
  const chunks: Uint8Array[] = [];
  let offset = 0;
  let stored = 0;
  return {
    masterSae,
    slaveSae,
    maxKeys: limits.maxKeys,
    keySize: limits.keySize,
    capacityBytes,
    storedBytes: () => stored,
    storedKeyCount: (sizeBits = limits.keySize) => Math.floor((stored * 8) / sizeBits),
    fill: () => stored / capacityBytes,
    add(material) {
      const room = capacityBytes - stored;
      const n = Math.min(room, material.length);
      if (n > 0) {
        chunks.push(material.slice(0, n));
        stored += n;
      }
      material.fill(0);
      return n;
    },
    take(bytes) {
      const out = new Uint8Array(bytes);
      let filled = 0;
      while (filled < bytes) {
        const head = chunks[0]!;
        const n = Math.min(bytes - filled, head.length - offset);
        out.set(head.subarray(offset, offset + n), filled);
        head.fill(0, offset, offset + n);
        filled += n;
        offset += n;
        if (offset === head.length) {
          chunks.shift();
          offset = 0;
        }
      }
      stored -= bytes;
      return out;
    },
  };
}

/** Outcome of fetching keys by ID (dec_keys). */
export type FetchResult =
  | { ok: true; keys: DeliveredKey[] }
  | { ok: false; reason: 'not-found' | 'unauthorized' };

export interface KeyPoolManager {
  /** Registers (or returns) the pool of a master → slave link. */
  addLink(masterSae: string, slaveSae: string, maxKeys?: number): KeyPool;
  /** The pool of a master → slave link, or undefined. */
  pool(masterSae: string, slaveSae: string): KeyPool | undefined;
  pools(): KeyPool[];
  /**
   * Takes `number` keys of `sizeBits` from the master → slave pool, names them with UUIDs and
   * books them for the slave. All or nothing: null when the pool holds too little.
   */
  takeKeys(masterSae: string, slaveSae: string, number: number, sizeBits: number): DeliveredKey[] | null;
  /** Hands booked keys to `callerSae`, which must be their slave; erases them. All or nothing. */
  fetchKeys(masterSae: string, callerSae: string, keyIds: readonly string[]): FetchResult;
  /**
   * The slave side of a channel: returns the booked key with this ID and erases it, or null.
   * When `slaveSae` is given the key must have been booked for that SAE.
   */
  getKeyForChannel(keyId: string, slaveSae?: string): Uint8Array | null;
  /** Keys booked for slaves and not yet fetched. */
  pendingCount(): number;
}

/**
 * Creates the pools. `maxPending` bounds keys booked for slaves but not fetched (oldest are
 * wiped first), so an absent slave cannot grow memory without limit.
 */
export function createKeyPoolManager(limits: KeyPoolLimits & { maxPending?: number }): KeyPoolManager {
  const pools = new Map<string, PoolInternal>();
  const pending = new Map<string, { masterSae: string; slaveSae: string; key: Uint8Array }>();
  const maxPending = limits.maxPending ?? 100_000;
  const id = (m: string, s: string) => `${m}\u0000${s}`;
  const erase = (keyId: string) => {
    const entry = pending.get(keyId);
    pending.delete(keyId);
    return entry;
  };
  return {
    addLink(masterSae, slaveSae, maxKeys = limits.maxKeys) {
      const key = id(masterSae, slaveSae);
      let pool = pools.get(key);
      if (!pool) {
        pool = createPool(masterSae, slaveSae, { keySize: limits.keySize, maxKeys });
        pools.set(key, pool);
      }
      return pool;
    },
    pool: (m, s) => pools.get(id(m, s)),
    pools: () => [...pools.values()],
    takeKeys(masterSae, slaveSae, number, sizeBits) {
      const pool = pools.get(id(masterSae, slaveSae));
      const bytes = sizeBits >>> 3;
      if (!pool || pool.storedBytes() < number * bytes) return null;
      const keys: DeliveredKey[] = [];
      for (let i = 0; i < number; i++) {
        const key = pool.take(bytes);
        const keyId = randomUUID();
        pending.set(keyId, { masterSae, slaveSae, key: key.slice() });
        keys.push({ keyId, key });
      }
      while (pending.size > maxPending) {
        const oldest = pending.keys().next().value as string;
        erase(oldest)?.key.fill(0);
      }
      return keys;
    },
    fetchKeys(masterSae, callerSae, keyIds) {
      for (const keyId of keyIds) {
        const entry = pending.get(keyId);
        if (!entry || entry.masterSae !== masterSae) return { ok: false, reason: 'not-found' };
      }
      for (const keyId of keyIds)
        if (pending.get(keyId)!.slaveSae !== callerSae) return { ok: false, reason: 'unauthorized' };
      if (new Set(keyIds).size !== keyIds.length) return { ok: false, reason: 'not-found' };
      return { ok: true, keys: keyIds.map((keyId) => ({ keyId, key: erase(keyId)!.key })) };
    },
    getKeyForChannel(keyId, slaveSae) {
      const entry = pending.get(keyId);
      if (!entry || (slaveSae !== undefined && entry.slaveSae !== slaveSae)) return null;
      return erase(keyId)!.key;
    },
    pendingCount: () => pending.size,
  };
}
