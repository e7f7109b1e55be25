/** The broker's public types: who acts, what a request asks for, what a call returns. */
import type { CiRuleConfig } from '../ci/config.ts';
import type { Config } from '../config/load.ts';
import type { Directory } from '../directory/directory.ts';
import type { EventBus, IssuedCredential } from '../events/events.ts';
import type { Logger } from '../log.ts';
import type { AccessRequest, Approval, CredentialRecord, RequestSource } from '../model.ts';
import type { ApprovalRequirement } from '../policy/evaluate.ts';
import type { CredentialProvider } from '../providers/provider.ts';
import type { Store } from '../store/store.ts';
import type { Approvers } from './approvers.ts';
import type { AuditLog } from './audit-log.ts';

/** Who performs an operation: a person from the directory, or an admin/service token. */
export interface Actor {
  id: string;
  admin: boolean;
}

export interface CreateRequestInput {
  requester: string;
  target: string;
  level?: string | undefined;
  /** `30m`, or milliseconds. */
  duration?: string | number | undefined;
  reason?: string | undefined;
  breakGlass?: boolean | undefined;
  source: RequestSource;
  meta?: Record<string, unknown> | undefined;
}

/** A CI job's request, after its token was verified and a CI rule matched (see `broker/ci/`). */
export interface CreateCiRequestInput {
  /** `ci:<issuer>:<subject>`: the job, not a person. */
  requester: string;
  /** The matched CI rule: it sets target, level, maximum and approvers (`rules:` do not apply). */
  rule: CiRuleConfig;
  /** Granted lifetime in milliseconds, already checked against the rule's maximum. */
  durationMs: number;
  reason: string;
  /** Job facts (repository, run id, commit, ...). Never secrets. */
  meta: Record<string, unknown>;
}

/** A request as a call left it, and the credential when that call activated it (its caller's only). */
export interface Activation {
  request: AccessRequest;
  /** Present when this call minted: handed to the caller, never stored. */
  credential?: IssuedCredential;
}

export interface RequestDetails {
  request: AccessRequest;
  approvals: Approval[];
  credentials: CredentialRecord[];
  /** Who may still approve, resolved now (pending requests). */
  requirement: ApprovalRequirement | undefined;
}

export interface BrokerOptions {
  config: Config;
  directory: Directory;
  store: Store;
  providers: ReadonlyMap<string, CredentialProvider>;
  events: EventBus;
  logger: Logger;
  clock?: () => number;
  /** Identifies this replica in credential leases. */
  replicaId?: string;
}

/** What the broker's parts share (one per broker). */
export interface BrokerContext {
  config: Config;
  directory: Directory;
  store: Store;
  providers: ReadonlyMap<string, CredentialProvider>;
  events: EventBus;
  log: Logger;
  clock: () => number;
  audit: AuditLog;
  approvers: Approvers;
}
