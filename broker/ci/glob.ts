/**
 * Glob patterns for CI rule claims. A pattern is anchored (it must match the whole value):
 * `*` matches any run of characters except `/`, `**` matches any run including `/`, and every
 * other character matches itself. So `refs/heads/release/*` matches `refs/heads/release/1.2` but
 * not `refs/heads/release/1.2/hotfix`, and `octo-org/**` matches every path below `octo-org/`.
 * There is no `?`, no character class and no escape: claim values never need them.
 */

enum GlobToken {
  /** `*`: any run of characters without `/`. */
  Star = -1,
  /** `**`: any run of characters. */
  GlobStar = -2,
}

/** A compiled glob: literal UTF-16 code units, or a star token. */
export interface Glob {
  readonly source: string;
  readonly tokens: readonly number[];
  readonly literal: boolean;
}

const SLASH = 0x2f;

/** Compiles `pattern` once, at configuration time. */
export function compileGlob(pattern: string): Glob {
  const tokens: number[] = [];
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i] !== '*') {
      tokens.push(pattern.charCodeAt(i));
    } else if (pattern[i + 1] === '*') {
      tokens.push(GlobToken.GlobStar);
      i++;
    } else {
      tokens.push(GlobToken.Star);
    }
  }
  return { source: pattern, tokens, literal: !tokens.some((t) => t < 0) };
}

/**
 * Tests `value` against a compiled glob. Runs in O(pattern × value) time whatever the input, so
 * a long claim value cannot make matching backtrack (a regular expression could).
 */
export function matchGlob(glob: Glob, value: string): boolean {
  if (glob.literal) return glob.source === value;
  const n = value.length;
  // reachable[i]: the tokens seen so far can match value.slice(0, i).
  let reachable = new Array<boolean>(n + 1).fill(false);
  reachable[0] = true;
  for (const token of glob.tokens) {
    const next = new Array<boolean>(n + 1).fill(false);
    if (token < 0) {
      next[0] = reachable[0]!;
      for (let i = 1; i <= n; i++) {
        next[i] =
          reachable[i]! ||
          (next[i - 1]! && (token === GlobToken.GlobStar || value.charCodeAt(i - 1) !== SLASH));
      }
    } else {
      for (let i = 1; i <= n; i++) next[i] = reachable[i - 1]! && value.charCodeAt(i - 1) === token;
    }
    reachable = next;
  }
  return reachable[n]!;
}
