/**
 * Approvals of CI grants. A CI job is not a person: it has no manager and no directory entry, so
 * its approvers come from the CI rule (`approvers:` groups and users) and are resolved against the
 * directory as it is at each click, the same way human rules are.
 */
import type { Directory } from '../directory/directory.ts';
import type { ApprovalRequirement, ApproverGroup } from '../policy/evaluate.ts';
import type { CiRuleConfig } from './config.ts';

/** Prefix of the `rule` recorded on a CI request, so it never collides with a human rule's name. */
export const CI_RULE_PREFIX = 'ci:';

/** The `rule` value stored on a request made under `rule`. */
export function formatCiRuleRef(rule: CiRuleConfig): string {
  return `${CI_RULE_PREFIX}${rule.name}`;
}

/** Finds the CI rule a stored request refers to (`ci:<name>`), if it is still configured. */
export function findCiRule(rules: readonly CiRuleConfig[], ref: string): CiRuleConfig | undefined {
  if (!ref.startsWith(CI_RULE_PREFIX)) return undefined;
  const name = ref.slice(CI_RULE_PREFIX.length);
  return rules.find((r) => r.name === name);
}

/**
 * Resolves who may approve a CI request now. A rule that was removed from the configuration
 * resolves to nobody, so its pending requests can no longer be approved (deny by default).
 */
export function resolveCiRequirement(
  rule: CiRuleConfig | undefined,
  directory: Directory,
  requester: string,
): ApprovalRequirement {
  const groups: ApproverGroup[] = (rule?.approvers ?? []).map((entry) =>
    'group' in entry
      ? {
          kind: 'group',
          label: `group ${entry.group}`,
          members: directory
            .membersOf(entry.group)
            .map((p) => p.id)
            .filter((id) => id !== requester),
        }
      : {
          kind: 'user',
          label: entry.user,
          members: directory.get(entry.user) && entry.user !== requester ? [entry.user] : [],
        },
  );
  return { mode: 'count', count: rule?.approvals ?? 1, groups };
}
