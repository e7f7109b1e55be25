/**
 * Who may decide on a request: its approval requirement resolved against the directory as it is
 * now (people change groups), eligibility of one person, and who counts as an admin.
 */
import { findCiRule, resolveCiRequirement } from '../ci/approvers.ts';
import type { Config } from '../config/load.ts';
import type { RuleConfig } from '../config/schema.ts';
import type { Directory } from '../directory/directory.ts';
import { ForbiddenError } from '../errors.ts';
import type { AccessRequest } from '../model.ts';
import { type ApprovalRequirement, describeRequirement, resolveApprovers } from '../policy/evaluate.ts';
import type { Actor } from './types.ts';

/** Resolves approvers of requests (human rules and CI rules). */
export class Approvers {
  readonly #config: Config;
  readonly #directory: Directory;

  constructor(config: Config, directory: Directory) {
    this.#config = config;
    this.#directory = directory;
  }

  /** Admin by token, or a person marked `admin` in the directory. */
  isAdmin(actor: Actor): boolean {
    return actor.admin || this.#directory.get(actor.id)?.admin === true;
  }

  rule(request: AccessRequest): RuleConfig | undefined {
    return this.#config.rules.find((r) => r.name === request.rule);
  }

  /** The requirement resolved against the directory as it is now (people change groups). */
  resolve(request: AccessRequest): ApprovalRequirement {
    if (request.source === 'ci') {
      const ciRule = findCiRule(this.#config.ci?.rules ?? [], request.rule);
      return resolveCiRequirement(ciRule, this.#directory, request.requester);
    }
    const rule = this.rule(request);
    const requester = this.#directory.get(request.requester);
    if (!rule || !requester) return { ...request.decision.approval, groups: [] };
    const groups = resolveApprovers(rule, requester, this.#directory);
    return {
      mode: rule.approvals === 'every' ? 'every' : 'count',
      count: rule.approvals === 'every' ? groups.length : rule.approvals,
      groups,
    };
  }

  check(request: AccessRequest, actor: Actor, verb: 'approve' | 'deny'): ApprovalRequirement {
    if (actor.id === request.requester) {
      throw new ForbiddenError('ERR_APPROVAL_SELF', `nobody can ${verb} their own request`);
    }
    const requirement = this.resolve(request);
    const eligible = requirement.groups.some((g) => g.members.includes(actor.id));
    if (!eligible) {
      throw new ForbiddenError(
        'ERR_APPROVAL_NOT_ELIGIBLE',
        `${actor.id} cannot ${verb} this request: it needs ${describeRequirement(requirement)}`,
      );
    }
    return requirement;
  }
}
