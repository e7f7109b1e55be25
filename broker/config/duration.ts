import { InvalidInputError } from '../errors.ts';

const UNIT_MS: Record<string, number> = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const DURATION = /^(?:(\d{1,6})([smhd]))+$/;
const PART = /(\d{1,6})([smhd])/g;

/**
 * Parses a duration such as `30m`, `1h`, `1h30m` or `45s` into milliseconds.
 * Rejects anything else (`30x`, `-5m`, `1.5h`, ``) with `ERR_DURATION_INVALID`.
 */
export function parseDuration(text: string): number {
  const trimmed = text.trim().toLowerCase();
  if (!DURATION.test(trimmed)) {
    throw new InvalidInputError(
      'ERR_DURATION_INVALID',
      `"${text.slice(0, 32)}" is not a duration: use a number and a unit, like 30m, 2h or 1h30m`,
      { details: { input: text.slice(0, 32) } },
    );
  }
  let total = 0;
  for (const [, amount, unit] of trimmed.matchAll(PART)) {
    total += Number(amount) * UNIT_MS[unit!]!;
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

/** Formats milliseconds as the shortest readable duration (`90m` → `1h30m`). */
export function formatDuration(ms: number): string {
  if (ms <= 0) return '0s';
  let rest = Math.round(ms / 1000);
  const parts: string[] = [];
  for (const [unit, size] of [
    ['d', 86_400],
    ['h', 3_600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.join('');
}
