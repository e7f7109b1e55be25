import { parseDurationMs } from '../../lib/duration.ts';
import { InvalidInputError } from '../errors.ts';

export { formatDuration } from '../../lib/duration.ts';

/**
 * Parses a duration such as `30m`, `1h`, `1h30m` or `45s` into milliseconds.
 * Rejects anything else (`30x`, `-5m`, `1.5h`, ``) with `ERR_DURATION_INVALID`.
 */
export function parseDuration(text: string): number {
  const total = parseDurationMs(text);
  if (total === undefined) {
    throw new InvalidInputError(
      'ERR_DURATION_INVALID',
      `"${text.slice(0, 32)}" is not a duration: use a number and a unit, like 30m, 2h or 1h30m`,
      { details: { input: text.slice(0, 32) } },
    );
  }
  if (total <= 0) {
    throw new InvalidInputError('ERR_DURATION_INVALID', 'a duration must be longer than zero', {
      details: {
        input: text,
      },
    });
  }
  return total;
}
