/** Levenshtein distance, bounded to short names (targets, levels). */
function distance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = prev[j]!;
      prev[j] = Math.min(prev[j]! + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = above;
    }
  }
  return prev[b.length]!;
}

/** The known names closest to `input` (typo suggestions), best first, at most `limit`. */
export function findClosestNames(input: string, known: readonly string[], limit = 3): string[] {
  const needle = input.toLowerCase().slice(0, 64);
  return known
    .map((name) => ({
      name,
      score: name.includes(needle) || needle.includes(name) ? 0 : distance(needle, name),
    }))
    .filter((c) => c.score <= Math.max(2, Math.floor(c.name.length / 2)))
    .sort((a, b) => a.score - b.score || a.name.localeCompare(b.name))
    .slice(0, limit)
    .map((c) => c.name);
}
