/** A typed client of the broker's HTTP API, for the CLI and for parts running in other processes. */
import { BrokerError, type BrokerErrorCode } from '../errors.ts';

export interface BrokerClientOptions {
  /** Base URL, e.g. `http://127.0.0.1:8080`. */
  url: string;
  token: string;
  fetch?: typeof fetch;
  /** Per-call timeout in milliseconds (default 15 000). */
  timeoutMs?: number;
}

/**
 * An error answer from the broker, with its code. A broker that answers with a configuration code
 * (a secret it cannot resolve) makes this a configuration error too, naming the broker's key.
 */
export class BrokerApiError extends BrokerError {
  readonly status: number;
  constructor(status: number, code: string, message: string, details: Record<string, unknown> = {}) {
    const configPath = code.startsWith('ERR_CONFIG_')
      ? typeof details.path === 'string'
        ? details.path
        : ''
      : undefined;
    super(code as BrokerErrorCode, message, { details, ...(configPath !== undefined ? { configPath } : {}) });
    this.status = status;
  }
}

export class BrokerClient {
  readonly #options: BrokerClientOptions;
  constructor(options: BrokerClientOptions) {
    this.#options = options;
  }

  async call<T = Record<string, unknown>>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const doFetch = this.#options.fetch ?? fetch;
    let res: Response;
    try {
      res = await doFetch(new URL(path, this.#options.url), {
        method,
        headers: {
          authorization: `Bearer ${this.#options.token}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(this.#options.timeoutMs ?? 15_000),
      });
    } catch (error) {
      throw new BrokerApiError(
        0,
        'ERR_STORE_FAILED',
        `cannot reach the broker at ${this.#options.url}: ${(error as Error).message}`,
      );
    }
    const text = await res.text();
    let payload: { error?: { code: string; message: string; details?: Record<string, unknown> } } & Record<
      string,
      unknown
    >;
    try {
      payload = JSON.parse(text);
    } catch {
      throw new BrokerApiError(
        res.status,
        'ERR_API_BAD_REQUEST',
        `the broker answered ${res.status} with a non-JSON body`,
      );
    }
    if (!res.ok || payload.error) {
      const e = payload.error ?? { code: 'ERR_INTERNAL', message: `HTTP ${res.status}` };
      throw new BrokerApiError(res.status, e.code, e.message, e.details ?? {});
    }
    return payload as T;
  }
}
