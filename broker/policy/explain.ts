/**
 * `warden policy explain` and `warden policy test`: what the policy would do for a person,
 * target and level at a given time, without creating anything.
 */
import { parse } from 'yaml';
import { z } from 'zod';
import type { ParsedConfig } from '../config/schema.ts';
import type { Directory } from '../directory/directory.ts';
import { BrokerError, ConfigError, InvalidInputError } from '../errors.ts';
import { evaluatePolicy, findRule, pickDefaultLevel } from './evaluate.ts';

export type ExplainOutcome = 'denied' | 'needs_approval' | 'auto_approved' | 'break_glass';

export interface Explanation {
  user: string;
  target: string;
  level: string | null;
  outcome: ExplainOutcome;
  /** The rule that decided; null when no rule covers the request. */
  rule: string | null;
  /** Who may approve (person ids), when approval is needed. */
  approvers: string[];
  summary: string;
  code?: string;
  defaultDuration?: string;
  maxDuration?: string;
}

export interface ExplainInput {
  user: string;
  target: string;
  level?: string | undefined;
  at: number;
  breakGlass?: boolean | undefined;
}

type PolicyConfig = Pick<ParsedConfig, 'targets' | 'rules'>;

export function explainPolicy(config: PolicyConfig, directory: Directory, input: ExplainInput): Explanation {
  const person = directory.get(input.user);
  const target = config.targets[input.target];
  const level = input.level ?? (target ? pickDefaultLevel(Object.keys(target.levels)) : null);
  const base = { user: input.user, target: input.target, level };
  if (!person) {
    return {
      ...base,
      outcome: 'denied',
      rule: null,
      approvers: [],
      summary: `unknown person "${input.user}"`,
      code: 'ERR_USER_UNKNOWN',
    };
  }
  try {
    const decision = evaluatePolicy(config, directory, {
      requester: person,
      target: input.target,
      level: input.level,
      at: input.at,
      breakGlass: input.breakGlass,
    });
    const rule = config.rules.find((r) => r.name === decision.rule)!;
    return {
      ...base,
      outcome: decision.outcome,
      rule: decision.rule,
      approvers: [...new Set(decision.approval.groups.flatMap((g) => g.members))].sort(),
      summary:
        decision.outcome === 'needs_approval'
          ? `${input.user} may ask; it needs ${decision.summary} (rule ${decision.rule})`
          : `${input.user} may ask: ${decision.summary}`,
      defaultDuration: formatMs(rule.duration.default),
      maxDuration: formatMs(rule.duration.max),
    };
  } catch (error) {
    if (!(error instanceof BrokerError)) throw error;
    const found = target && level ? findRule(config, person, input.target, level) : undefined;
    return {
      ...base,
      outcome: 'denied',
      rule: found?.rule?.name ?? null,
      approvers: [],
      summary: error.message,
      code: error.code,
    };
  }
}

function formatMs(ms: number): string {
  const minutes = Math.round(ms / 60_000);
  return minutes % 60 === 0 ? `${minutes / 60}h` : `${minutes}m`;
}

const caseSchema = z.strictObject({
  name: z.string().optional(),
  user: z.string(),
  target: z.string(),
  level: z.string().optional(),
  at: z.string().optional(),
  break_glass: z.boolean().optional(),
  expect: z.enum(['denied', 'needs_approval', 'auto_approved', 'break_glass']),
  /** Exactly these people may approve. */
  approvers: z.array(z.string()).optional(),
  rule: z.string().optional(),
});

const casesFileSchema = z.strictObject({ cases: z.array(caseSchema).min(1) });

export interface PolicyCaseResult {
  name: string;
  passed: boolean;
  expected: string;
  actual: Explanation;
  problems: string[];
}

/** Runs the YAML cases of a `policy test` file against the configuration. */
export function runPolicyCases(
  config: PolicyConfig,
  directory: Directory,
  text: string,
  now = Date.now(),
): PolicyCaseResult[] {
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (error) {
    throw new ConfigError('', `the cases file is not valid YAML: ${(error as Error).message.split('\n')[0]}`);
  }
  const parsed = casesFileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(issue.path.map(String).join('.'), issue.message);
  }
  return parsed.data.cases.map((c, i) => {
    const at = c.at ? Date.parse(c.at) : now;
    if (Number.isNaN(at))
      throw new InvalidInputError('ERR_REQUEST_INVALID', `cases[${i}].at: not a date: ${c.at}`);
    const actual = explainPolicy(config, directory, {
      user: c.user,
      target: c.target,
      level: c.level,
      at,
      breakGlass: c.break_glass,
    });
    const problems: string[] = [];
    if (actual.outcome !== c.expect)
      problems.push(`expected ${c.expect}, got ${actual.outcome} (${actual.summary})`);
    if (c.rule && actual.rule !== c.rule)
      problems.push(`expected rule ${c.rule}, got ${actual.rule ?? 'none'}`);
    if (c.approvers) {
      const want = [...c.approvers].sort().join(', ');
      const got = actual.approvers.join(', ');
      if (want !== got) problems.push(`expected approvers [${want}], got [${got}]`);
    }
    return {
      name: c.name ?? `${c.user} → ${c.target}${c.level ? `:${c.level}` : ''}`,
      passed: problems.length === 0,
      expected: c.expect,
      actual,
      problems,
    };
  });
}
