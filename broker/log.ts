/**
 * Logging with pino. Secrets must never reach a log line: the `Secret` type prints as
 * `[secret]`, known secret-bearing keys are redacted, and connection strings are scrubbed of
 * their password wherever they appear in a message.
 */
import pino, { type DestinationStream } from 'pino';
import type { Logger } from '../lib/log.ts';

export type { Logger };

const REDACT_PATHS = [
  'password',
  '*.password',
  '*.*.password',
  'token',
  '*.token',
  'secret',
  '*.secret',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'req.headers.authorization',
  'credential',
  '*.credential',
  'connectionString',
  '*.connectionString',
  'url',
  '*.url',
];

const URL_PASSWORD = /(\b[a-z][a-z0-9+.-]*:\/\/[^:/?#\s@]+:)[^@\s/]+@/gi;

/** Removes the password part of any URL in a text: `postgres://u:pw@h` → `postgres://u:[redacted]@h`. */
export function scrubSecrets(text: string): string {
  return text.replace(URL_PASSWORD, '$1[redacted]@');
}

export interface LoggerOptions {
  level?: string;
  destination?: DestinationStream;
  name?: string;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      name: options.name ?? 'warden',
      level: options.level ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
      hooks: {
        logMethod(args, method) {
          const scrubbed = args.map((a) => (typeof a === 'string' ? scrubSecrets(a) : a)) as typeof args;
          method.apply(this, scrubbed);
        },
      },
      serializers: {
        err: (err: Error) => ({
          type: err?.name,
          code: (err as { code?: string })?.code,
          message: scrubSecrets(String(err?.message ?? err)),
        }),
      },
    },
    options.destination,
  );
}

/** A logger that writes nothing (`lib/log.ts`). */
export { createSilentLogger } from '../lib/log.ts';
