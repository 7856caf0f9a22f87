/**
 * ETSI GS QKD 014 V1.1.1 key delivery API (`/api/v1/keys`), as summarised in ETSI-QKD-014.md:
 * Get status, Get key (enc_keys) and Get key with key IDs (dec_keys), GET and POST.
 *
 * Identity: the caller's SAE ID comes from `resolveSae(c)` — the mTLS client certificate when the
 * transport provides one, else a configured bearer token. Unknown callers get 401 with no body.
 * Errors are the standard's Error object `{ message, details? }`.
 */
import { timingSafeEqual } from 'node:crypto';
import { type Context, Hono } from 'hono';
import { z } from 'zod';
import type { KeyPoolManager } from './pool.ts';

/** The part of the `qkd` config section the API reads. */
export interface QkdApiConfig {
  kmeId: string;
  keySize: number;
  maxKeyPerRequest: number;
  minKeySize: number;
  maxKeySize: number;
}

/** What the routes need; the server passes its own. */
export interface QkdRoutesDeps {
  pools: KeyPoolManager;
  config: QkdApiConfig;
  /** The calling SAE's ID (client certificate or bearer token), or null if unauthenticated. */
  resolveSae: (c: Context) => string | null;
  /** KME ID of the far end (default: `config.kmeId`: this KME serves both ends of its links). */
  targetKmeId?: string;
  logger?: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void };
}

/** ETSI 014 §6: the messages the standard names for 400 answers. */
export const etsiMessages = {
  sizeMultipleOf8: 'size shall be a multiple of 8',
  extensionMandatoryUnsupported: 'not all extension_mandatory parameters are supported',
  extensionMandatoryUnmet: 'not all extension_mandatory request options could be met',
  extensionOptionalUnhandled: 'not all extension_optional request options handled',
  keysNotFound: 'one or more keys specified are not found on KME',
} as const;

const extensionList = z.array(z.record(z.string(), z.unknown()));
const keyRequestSchema = z.object({
  number: z.number().int().min(1).optional(),
  size: z.number().int().min(1).optional(),
  additional_slave_SAE_IDs: z.array(z.string()).optional(),
  extension_mandatory: extensionList.optional(),
  extension_optional: extensionList.optional(),
});
const keyIdsSchema = z.object({
  key_IDs: z.array(z.object({ key_ID: z.string().uuid(), key_ID_extension: z.unknown().optional() })).min(1),
  key_IDs_extension: z.unknown().optional(),
});
const encQuerySchema = z.object({
  number: z.coerce.number().int().min(1).optional(),
  size: z.coerce.number().int().min(1).optional(),
});
const decQuerySchema = z.object({ key_ID: z.string().uuid() });

type ErrorBody = { message: string; details?: object[] };

class EtsiError extends Error {
  constructor(
    readonly status: 400 | 503,
    readonly body: ErrorBody,
  ) {
    super(body.message);
  }
}

const bad = (message: string, details?: object[]) =>
  new EtsiError(400, details ? { message, details } : { message });
const zodDetails = (error: z.ZodError) =>
  error.issues.map((i) => ({ path: i.path.join('.'), problem: i.message }));

/**
 * Creates the ETSI GS QKD 014 sub-app; mount it at the root of the public app (its routes carry
 * the `/api/v1/keys` prefix).
 * @example app.route('/', createQkdRoutes({ pools, config: config.qkd, resolveSae }))
 */
export function createQkdRoutes(deps: QkdRoutesDeps): Hono<{ Variables: { sae: string } }> {
  const { pools, config, resolveSae, logger } = deps;
  const targetKmeId = deps.targetKmeId ?? config.kmeId;
  const app = new Hono<{ Variables: { sae: string } }>().basePath('/api/v1/keys');

  app.use('*', async (c, next) => {
    const sae = resolveSae(c);
    if (!sae) return c.body(null, 401);
    c.set('sae', sae);
    await next();
  });

  app.onError((error, c) => {
    if (error instanceof EtsiError) return c.json(error.body, error.status);
    logger?.warn({ err: error.message }, 'qkd api: server-side failure');
    return c.json({ message: 'KME internal error' }, 503);
  });

  const readJson = async (c: Context): Promise<unknown> => {
    const text = await c.req.text();
    if (text.trim() === '') return {};
    try {
      return JSON.parse(text);
    } catch {
      throw bad('request body is not valid JSON');
    }
  };

  // Get status: called by the master SAE about its slave.
  app.get('/:slave/status', (c) => {
    const master = c.get('sae');
    const pool = pools.pool(master, c.req.param('slave'));
    if (!pool) return c.body(null, 401);
    return c.json({
      source_KME_ID: config.kmeId,
      target_KME_ID: targetKmeId,
      master_SAE_ID: master,
      slave_SAE_ID: pool.slaveSae,
      key_size: config.keySize,
      stored_key_count: pool.storedKeyCount(config.keySize),
      max_key_count: pool.maxKeys,
      max_key_per_request: config.maxKeyPerRequest,
      max_key_size: config.maxKeySize,
      min_key_size: config.minKeySize,
      max_SAE_ID_count: 0,
    });
  });

  const encKeys = (c: Context<{ Variables: { sae: string } }>, request: z.infer<typeof keyRequestSchema>) => {
    const master = c.get('sae');
    const slave = c.req.param('slave')!;
    if (!pools.pool(master, slave)) return c.body(null, 401);
    if (request.extension_mandatory && request.extension_mandatory.length > 0) {
      throw bad(etsiMessages.extensionMandatoryUnsupported, [
        { extension_mandatory_unsupported: request.extension_mandatory },
      ]);
    }
    if (request.extension_optional && request.extension_optional.length > 0) {
      throw bad(etsiMessages.extensionOptionalUnhandled, [
        { extension_optional_unhandled: request.extension_optional },
      ]);
    }
    if (request.additional_slave_SAE_IDs && request.additional_slave_SAE_IDs.length > 0) {
      throw bad('additional_slave_SAE_IDs are not supported (max_SAE_ID_count is 0)');
    }
    const number = request.number ?? 1;
    const size = request.size ?? config.keySize;
    if (size % 8 !== 0) throw bad(etsiMessages.sizeMultipleOf8);
    if (size < config.minKeySize || size > config.maxKeySize) {
      throw bad(
        `size shall be between min_key_size (${config.minKeySize}) and max_key_size (${config.maxKeySize})`,
      );
    }
    if (number > config.maxKeyPerRequest)
      throw bad(`number shall not exceed max_key_per_request (${config.maxKeyPerRequest})`);
    const keys = pools.takeKeys(master, slave, number, size);
    if (!keys) {
      throw new EtsiError(503, {
        message: 'not enough key material on KME',
        details: [{ stored_key_count: pools.pool(master, slave)!.storedKeyCount(size), requested: number }],
      });
    }
    logger?.info({ master, slave, number, size }, 'qkd keys delivered to master');
    const body = {
      keys: keys.map(({ keyId, key }) => ({ key_ID: keyId, key: Buffer.from(key).toString('base64') })),
    };
    for (const k of keys) k.key.fill(0);
    return c.json(body);
  };

  app.get('/:slave/enc_keys', (c) => {
    const parsed = encQuerySchema.safeParse(c.req.query());
    if (!parsed.success) throw bad('invalid query parameters', zodDetails(parsed.error));
    return encKeys(c, parsed.data);
  });
  app.post('/:slave/enc_keys', async (c) => {
    const parsed = keyRequestSchema.safeParse(await readJson(c));
    if (!parsed.success) throw bad('invalid key request', zodDetails(parsed.error));
    return encKeys(c, parsed.data);
  });

  const decKeys = (c: Context<{ Variables: { sae: string } }>, keyIds: string[]) => {
    const slave = c.get('sae');
    const master = c.req.param('master')!;
    // Only the slave of a link with this master may ask; and only for keys booked to it.
    if (!pools.pool(master, slave)) return c.body(null, 401);
    if (keyIds.length > config.maxKeyPerRequest)
      throw bad(`number of key_IDs shall not exceed max_key_per_request (${config.maxKeyPerRequest})`);
    const result = pools.fetchKeys(master, slave, keyIds);
    if (!result.ok) {
      if (result.reason === 'unauthorized') return c.body(null, 401);
      throw bad(etsiMessages.keysNotFound);
    }
    logger?.info({ master, slave, number: keyIds.length }, 'qkd keys delivered to slave');
    const body = {
      keys: result.keys.map(({ keyId, key }) => ({
        key_ID: keyId,
        key: Buffer.from(key).toString('base64'),
      })),
    };
    for (const k of result.keys) k.key.fill(0);
    return c.json(body);
  };

  app.get('/:master/dec_keys', (c) => {
    const parsed = decQuerySchema.safeParse(c.req.query());
    if (!parsed.success) throw bad('invalid query parameters', zodDetails(parsed.error));
    return decKeys(c, [parsed.data.key_ID]);
  });
  app.post('/:master/dec_keys', async (c) => {
    const parsed = keyIdsSchema.safeParse(await readJson(c));
    if (!parsed.success) throw bad('invalid key_IDs request', zodDetails(parsed.error));
    return decKeys(
      c,
      parsed.data.key_IDs.map((k) => k.key_ID),
    );
  });

  return app;
}

/**
 * A `resolveSae` for development: bearer tokens per SAE (`qkd.saeTokens`, SAE ID → token),
 * compared in constant time. Put an mTLS-derived resolver first when TLS client certs are on.
 */
export function bearerSaeResolver(saeTokens: Record<string, string>): (c: Context) => string | null {
  const entries = Object.entries(saeTokens).map(([sae, token]) => [sae, Buffer.from(token)] as const);
  return (c) => {
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (!match) return null;
    const given = Buffer.from(match[1]!.trim());
    let found: string | null = null;
    for (const [sae, token] of entries) {
      // Constant time per candidate; every candidate is checked.
      if (given.length === token.length && timingSafeEqual(given, token)) found = sae;
    }
    return found;
  };
}
