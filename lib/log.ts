/**
 * The logger type every part of Warden takes: pino's. The broker makes loggers
 * (`broker/log.ts`: redaction, scrubbed messages); the proxies and the bot only receive one.
 */
export type { Logger } from 'pino';
