/**
 * The HTTP-facing error type. Every layer throws errors with a stable `code`; the app's one
 * error renderer turns them into `{ error: { code, message, requestId } }` with `status`.
 */
export class AppError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 405 | 408 | 409 | 413 | 415 | 422 | 429 | 500 | 502 | 503 | 504,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    /** Seconds, for 429/503 `Retry-After`. */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = 'AppError';
  }
}

/** The structured error body every route answers with. */
export interface ErrorBody {
  error: { code: string; message: string; requestId?: string; details?: unknown };
}
