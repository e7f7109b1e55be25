/** Value shapes shared by every chat's section of `chat:` (secret references, durations). */
import { z } from 'zod';
import { parseDurationMs } from '../lib/duration.ts';

/** The same shape as every secret reference of `warden.yaml`: never a value written inline. */
export const secretRefSchema = z.union(
  [z.strictObject({ env: z.string().min(1) }), z.strictObject({ file: z.string().min(1) })],
  { error: 'secrets are referenced as {env: NAME} or {file: /path}, never written inline' },
);

export const durationSchema = z.string().refine((text) => (parseDurationMs(text) ?? 0) > 0, {
  error: 'a duration such as 30s, 1m or 5m',
});
