/**
 * Durations as people write them (`30m`, `1h30m`, `45s`) and as Warden prints them. Pure and
 * dependency-free: the broker wraps {@link parseDurationMs} in its own error, the bot prints.
 */

const UNIT_MS: Readonly<Record<string, number>> = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

const DURATION = /^(?:(\d{1,6})([smhd]))+$/;
const PART = /(\d{1,6})([smhd])/g;

/**
 * Milliseconds of a duration such as `30m`, `1h`, `1h30m` or `45s` (case and surrounding blanks
 * ignored), 0 for `0m`; undefined for anything else (`30x`, `-5m`, `1.5h`, ``).
 */
export function parseDurationMs(text: string): number | undefined {
  const trimmed = text.trim().toLowerCase();
  if (!DURATION.test(trimmed)) return undefined;
  let total = 0;
  for (const [, amount, unit] of trimmed.matchAll(PART)) total += Number(amount) * UNIT_MS[unit!]!;
  return total;
}

/** Formats milliseconds as the shortest readable duration (`90m` → `1h30m`); `0s` for none. */
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
