/**
 * The channel layer's one error type. Every failure the handshake, the frame parser or a
 * session can produce is a `ChannelError` with a stable `code`; the transport layer maps the
 * code to a WebSocket close code and an HTTP status with {@link channelErrorStatus}.
 */

/** Stable error codes of the channel layer. Never renumber or rename: clients match on them. */
export const CHANNEL_ERROR_CODES = [
  'FRAME_TRUNCATED',
  'FRAME_TOO_LARGE',
  'FRAME_INVALID',
  'REPLAY',
  'DECRYPT_FAILED',
  'NONCE_EXHAUSTED',
  'HANDSHAKE_FAILED',
  'HANDSHAKE_TIMEOUT',
  'IDENTITY_MISMATCH',
  'AUTH_FAILED',
  'PROTOCOL_NOT_ALLOWED',
  'PSK_UNKNOWN',
  'SESSION_CLOSED',
  'CONFIG_INVALID',
] as const;

export type ChannelErrorCode = (typeof CHANNEL_ERROR_CODES)[number];

/** A channel failure. `code` is stable; `message` is for humans and logs (never contains key material). */
export class ChannelError extends Error {
  override readonly name = 'ChannelError';
  constructor(
    readonly code: ChannelErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** True when `error` is a {@link ChannelError}, optionally with the given code. */
export function isChannelError(error: unknown, code?: ChannelErrorCode): error is ChannelError {
  return error instanceof ChannelError && (code === undefined || error.code === code);
}

/**
 * How the transport layer reports each code: the WebSocket close code (private-use range
 * 4000–4999, RFC 6455 §7.4.2) and the HTTP status. `fatal` says whether the session must be
 * closed (true for everything but a single replayed or undecryptable frame on HTTP, where the
 * frame is dropped and the channel lives on).
 */
export const CHANNEL_ERROR_STATUS: Readonly<
  Record<ChannelErrorCode, { closeCode: number; httpStatus: 400 | 401 | 403 | 404 | 408 | 409 | 413 | 422 | 500; fatal: boolean }>
> = Object.freeze({
  FRAME_TRUNCATED: { closeCode: 4000, httpStatus: 400, fatal: true },
  FRAME_TOO_LARGE: { closeCode: 4001, httpStatus: 413, fatal: true },
  FRAME_INVALID: { closeCode: 4002, httpStatus: 400, fatal: true },
  REPLAY: { closeCode: 4003, httpStatus: 409, fatal: false },
  DECRYPT_FAILED: { closeCode: 4004, httpStatus: 400, fatal: false },
  NONCE_EXHAUSTED: { closeCode: 4005, httpStatus: 500, fatal: true },
  HANDSHAKE_FAILED: { closeCode: 4010, httpStatus: 400, fatal: true },
  HANDSHAKE_TIMEOUT: { closeCode: 4011, httpStatus: 408, fatal: true },
  IDENTITY_MISMATCH: { closeCode: 4012, httpStatus: 403, fatal: true },
  AUTH_FAILED: { closeCode: 4013, httpStatus: 401, fatal: true },
  PROTOCOL_NOT_ALLOWED: { closeCode: 4014, httpStatus: 422, fatal: true },
  PSK_UNKNOWN: { closeCode: 4015, httpStatus: 403, fatal: true },
  SESSION_CLOSED: { closeCode: 4020, httpStatus: 404, fatal: true },
  CONFIG_INVALID: { closeCode: 4099, httpStatus: 500, fatal: true },
});

/** The close code and HTTP status for an error (any non-channel error maps to 4500 / 500). */
export function channelErrorStatus(error: unknown): { code: string; closeCode: number; httpStatus: number; fatal: boolean } {
  if (error instanceof ChannelError) return { code: error.code, ...CHANNEL_ERROR_STATUS[error.code] };
  return { code: 'INTERNAL', closeCode: 4500, httpStatus: 500, fatal: true };
}
