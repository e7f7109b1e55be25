/**
 * Policy evaluation: a pure function from (configuration, directory, request, time) to a decision.
 * Rules are tried in file order; the first rule that covers the target, the level and the
 * requester decides. Anything not explicitly allowed is denied.
 */
import { formatDuration } from '../config/duration.ts';
import type { ApproverConfig, ParsedConfig, RuleConfig } from '../config/schema.ts';
import type { Directory, Person } from '../directory/directory.ts';
import { InvalidInputError, PolicyDeniedError } from '../errors.ts';
import { findClosestNames } from './closest.ts';
import { describeWindow, isWithinWindow } from './window.ts';

/** One entry of a rule's approvers, resolved to the people it names (never the requester). */
export interface ApproverGroup {
  kind: 'manager' | 'group' | 'user';
  /** `maria (manager)`, `group dba`, `bob`. */
  label: string;
  members: string[];
}

/** What approval a request needs. */
export interface ApprovalRequirement {
  /** `count`: that many distinct approvers from any group; `every`: one distinct approver per group. */
  mode: 'count' | 'every';
  count: number;
  groups: ApproverGroup[];
}

export type PolicyOutcome = 'auto_approved' | 'needs_approval' | 'break_glass';

/** A request the policy accepts, and on what terms. */
export interface PolicyDecision {
  outcome: PolicyOutcome;
  rule: string;
  target: string;
  level: string;
  durationMs: number;
  maxDurationMs: number;
  pendingTimeoutMs: number;
  approval: ApprovalRequirement;
  /** `1 approval from maria (manager) or group dba`. */
  summary: string;
  extend: { allowed: boolean; needsApproval: boolean };
}

export interface PolicyInput {
  requester: Person;
  target: string;
  level?: string | undefined;
  durationMs?: number | undefined;
  reason?: string | undefined;
  breakGlass?: boolean | undefined;
  at: number;
}

type PolicyConfig = Pick<ParsedConfig, 'targets' | 'rules'>;

function ruleCoversPerson(rule: RuleConfig, person: Person): boolean {
  const who = rule.who;
  if (who.anyone) return true;
  if (who.users?.includes(person.id)) return true;
  return who.groups?.some((g) => person.groups.includes(g)) ?? false;
}

function inList(list: { groups: string[]; users: string[] } | undefined, person: Person): boolean {
  if (!list) return false;
  return list.users.includes(person.id) || list.groups.some((g) => person.groups.includes(g));
}

/** Resolves a rule's approvers for a requester against the directory, as of now. */
export function resolveApprovers(rule: RuleConfig, requester: Person, directory: Directory): ApproverGroup[] {
  return rule.approvers.map((entry: ApproverConfig): ApproverGroup => {
    if (entry === 'manager') {
      const manager = requester.manager ? directory.get(requester.manager) : undefined;
      return {
        kind: 'manager',
        label: manager ? `${manager.id} (manager)` : 'the manager (none on file)',
        members: manager && manager.id !== requester.id ? [manager.id] : [],
      };
    }
    if ('group' in entry) {
      return {
        kind: 'group',
        label: `group ${entry.group}`,
        members: directory
          .membersOf(entry.group)
          .map((p) => p.id)
          .filter((id) => id !== requester.id),
      };
    }
    return { kind: 'user', label: entry.user, members: entry.user === requester.id ? [] : [entry.user] };
  });
}

/** `1 approval from maria (manager) or group dba`, `one approval from each of: group dba, group security`. */
export function describeRequirement(req: ApprovalRequirement): string {
  const labels = req.groups.map((g) => g.label);
  if (req.mode === 'every') return `one approval from each of: ${labels.join(', ')}`;
  const n = req.count === 1 ? '1 approval' : `${req.count} approvals`;
  return `${n} from ${labels.join(' or ')}`;
}

/** Whether enough approvers exist for the requirement to ever be met. */
function isSatisfiable(req: ApprovalRequirement): boolean {
  if (req.mode === 'every') return assignDistinct(req.groups.map((g) => g.members)) !== undefined;
  return new Set(req.groups.flatMap((g) => g.members)).size >= req.count;
}

/**
 * Finds distinct people, one per group (small bipartite matching by backtracking; groups are few).
 * Returns the assignment or undefined.
 */
export function assignDistinct(
  groups: readonly (readonly string[])[],
  used = new Set<string>(),
): string[] | undefined {
  if (groups.length === 0) return [];
  const [first, ...rest] = groups;
  for (const person of first!) {
    if (used.has(person)) continue;
    used.add(person);
    const tail = assignDistinct(rest, used);
    used.delete(person);
    if (tail) return [person, ...tail];
  }
  return undefined;
}

/** Whether the approvals given so far (approver ids) meet the requirement. */
export function isRequirementMet(req: ApprovalRequirement, approvers: readonly string[]): boolean {
  const given = new Set(approvers);
  if (req.mode === 'every') {
    return assignDistinct(req.groups.map((g) => g.members.filter((m) => given.has(m)))) !== undefined;
  }
  const eligible = new Set(req.groups.flatMap((g) => g.members));
  return [...given].filter((a) => eligible.has(a)).length >= req.count;
}

/** Picks the level when the request names none: `read` if the target has it, else its first level. */
export function pickDefaultLevel(levels: readonly string[]): string {
  return levels.includes('read') ? 'read' : levels[0]!;
}

function checkReason(rule: RuleConfig, reason: string): void {
  const hint = rule.reason.hint ? ` (${rule.reason.hint})` : '';
  if (rule.reason.required && reason === '') {
    throw new InvalidInputError('ERR_REQUEST_REASON', `a reason is required${hint}`, {
      details: { rule: rule.name },
    });
  }
  if (rule.reason.pattern && !new RegExp(rule.reason.pattern).test(reason)) {
    throw new InvalidInputError('ERR_REQUEST_REASON', `the reason must match ${rule.reason.pattern}${hint}`, {
      details: {
        rule: rule.name,
        pattern: rule.reason.pattern,
      },
    });
  }
}

/** Finds the rule that decides, or explains why none does. */
export function findRule(
  config: PolicyConfig,
  requester: Person,
  target: string,
  level: string,
): { rule: RuleConfig } | { rule?: undefined; why: string } {
  for (const rule of config.rules) {
    if (!rule.targets.includes(target)) continue;
    if (rule.levels && !rule.levels.includes(level)) continue;
    if (!ruleCoversPerson(rule, requester)) continue;
    return { rule };
  }
  return { why: `no rule lets ${requester.id} request ${target}:${level}` };
}

/**
 * Decides a request. Throws an `InvalidInputError` for a malformed request (unknown target or
 * level, bad duration, missing reason) and a `PolicyDeniedError` when the policy refuses.
 */
export function evaluatePolicy(
  config: PolicyConfig,
  directory: Directory,
  input: PolicyInput,
): PolicyDecision {
  const target = config.targets[input.target];
  if (!target) {
    const closest = findClosestNames(input.target, Object.keys(config.targets));
    const hint = closest.length > 0 ? `; did you mean ${closest.join(' or ')}?` : '';
    throw new InvalidInputError(
      'ERR_TARGET_UNKNOWN',
      `unknown target "${input.target.slice(0, 64)}"${hint}`,
      {
        details: {
          closest,
        },
      },
    );
  }
  const levels = Object.keys(target.levels);
  const level = input.level ?? pickDefaultLevel(levels);
  if (!target.levels[level]) {
    throw new InvalidInputError(
      'ERR_LEVEL_UNKNOWN',
      `target ${input.target} has no level "${level.slice(0, 32)}" (levels: ${levels.join(', ')})`,
      { details: { levels } },
    );
  }
  const found = findRule(config, input.requester, input.target, level);
  if (!found.rule) throw new PolicyDeniedError('ERR_POLICY_DENIED', found.why);
  const rule = found.rule;

  const durationMs = input.durationMs ?? rule.duration.default;
  if (durationMs > rule.duration.max) {
    throw new InvalidInputError(
      'ERR_REQUEST_DURATION',
      `${formatDuration(durationMs)} is longer than the ${formatDuration(rule.duration.max)} maximum of rule ${rule.name}`,
      { details: { maxMs: rule.duration.max, rule: rule.name } },
    );
  }
  // `reason: undefined` skips the reason checks (policy explain); requests always pass a string.
  if (input.reason !== undefined) checkReason(rule, input.reason.trim());

  const groups = resolveApprovers(rule, input.requester, directory);
  const approval: ApprovalRequirement = {
    mode: rule.approvals === 'every' ? 'every' : 'count',
    count: rule.approvals === 'every' ? groups.length : rule.approvals,
    groups,
  };
  const base = {
    rule: rule.name,
    target: input.target,
    level,
    durationMs,
    maxDurationMs: rule.duration.max,
    pendingTimeoutMs: rule.pending_timeout,
    approval,
    extend: { allowed: rule.extend.allowed, needsApproval: rule.extend.needs_approval },
  };

  if (input.breakGlass) {
    if (!inList(rule.break_glass, input.requester)) {
      throw new PolicyDeniedError(
        'ERR_POLICY_DENIED',
        `rule ${rule.name} does not let ${input.requester.id} break glass`,
        {
          details: {
            rule: rule.name,
          },
        },
      );
    }
    return { ...base, outcome: 'break_glass', summary: 'break-glass: immediate access, approvers notified' };
  }
  if (rule.window && !isWithinWindow(rule.window, input.at)) {
    throw new PolicyDeniedError(
      'ERR_POLICY_OUTSIDE_WINDOW',
      `rule ${rule.name} allows access only ${describeWindow(rule.window)}`,
      { details: { rule: rule.name } },
    );
  }
  if (inList(rule.auto_approve, input.requester)) {
    return { ...base, outcome: 'auto_approved', summary: `auto-approved by rule ${rule.name}` };
  }
  if (groups.length === 0 || !isSatisfiable(approval)) {
    throw new PolicyDeniedError(
      'ERR_POLICY_NO_APPROVER',
      `rule ${rule.name} needs ${describeRequirement(approval)}, and not enough people other than ${input.requester.id} can approve`,
      { details: { rule: rule.name } },
    );
  }
  return { ...base, outcome: 'needs_approval', summary: describeRequirement(approval) };
}
