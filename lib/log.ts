/**
 * The logger type every part of Warden takes: pino's. The broker makes loggers
 * (`broker/log.ts`: redaction, scrubbed messages); the proxies and the bot only receive one.
 */
import pino, { type Logger } from 'pino';

export type { Logger };

/** A logger that writes nothing (the default of parts given none, and tests that do not read logs). */
export function createSilentLogger(): Logger {
  return pino({ level: 'silent' });
}
