/**
 * `warden reviews [--pending]` and `warden review approve|deny <id> [reason...]`: statements the
 * Postgres proxy holds for review, through the broker API. `--as` (or WARDEN_USER) names the
 * approver; the broker checks they may decide.
 */
import type { ApiReview } from '../../broker/api/review-routes.ts';
import { UsageError } from '../errors.ts';
import type { Io } from '../output.ts';
import { ExitCode } from '../output.ts';
import { createClientFromFlags } from './client.ts';

type Flags = Record<string, string | boolean | undefined>;

const s = (v: string | boolean | undefined) => (typeof v === 'string' ? v : undefined);

/** Statements longer than this are cut in listings (`--json` has them whole). */
const MAX_LISTED = 120;

/** One line per review: id, state, who and where, rule, the statement on one line. */
export function formatReviewLine(r: ApiReview): string {
  const text = r.statement.replace(/\s+/g, ' ');
  const statement = text.length > MAX_LISTED ? `${text.slice(0, MAX_LISTED)}…` : text;
  const decided = r.decided_by ? ` by ${r.decided_by}${r.reason ? ` (${r.reason})` : ''}` : '';
  return `${r.id}  ${r.state.padEnd(8)} ${r.requester} → ${r.target}:${r.level}  rule ${r.rule}${decided}  ${statement}`;
}

export async function runReviewsCommand(
  command: 'reviews' | 'review',
  positionals: string[],
  flags: Flags,
  io: Io,
): Promise<number> {
  const client = createClientFromFlags({ url: s(flags.url), 'token-file': s(flags['token-file']) }, io);
  const json = flags.json === true;
  if (command === 'reviews') {
    const query = new URLSearchParams();
    if (flags.pending === true) query.set('state', 'pending');
    else if (s(flags.state)) query.set('state', s(flags.state)!);
    const result = await client.call<{ reviews: ApiReview[] }>('GET', `/v1/reviews?${query}`);
    if (json) io.out(JSON.stringify(result));
    else if (result.reviews.length === 0) io.out('no reviews');
    else for (const r of result.reviews) io.out(formatReviewLine(r));
    return ExitCode.Ok;
  }
  const [verb, id, ...reason] = positionals;
  if ((verb !== 'approve' && verb !== 'deny') || !id) {
    throw new UsageError('usage: warden review approve|deny <review-id> [reason...] [--as user]');
  }
  const result = await client.call<{ review: ApiReview }>(
    'POST',
    `/v1/reviews/${encodeURIComponent(id)}/${verb}`,
    {
      actor: s(flags.as) ?? io.env.WARDEN_USER,
      reason: s(flags.reason) ?? (reason.join(' ') || undefined),
    },
  );
  io.out(json ? JSON.stringify(result) : formatReviewLine(result.review));
  return ExitCode.Ok;
}
