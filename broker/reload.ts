/**
 * Reloading the configuration of a running broker (`warden serve` on `SIGHUP`): people, rules and
 * targets are read again from the configuration file and take effect for the next request, while
 * live grants and proxied sessions carry on untouched.
 *
 * All or nothing: a file that fails validation, or that changes something only a restart can
 * apply to a target, is refused as a whole and the running configuration stays (the reason is
 * logged). What may change:
 * - `people`: the directory is replaced at once (approvers, managers, groups, admins, chat ids).
 * - `rules`: the next request is judged by the new rules; live grants keep their decision.
 * - `targets`: a new target (without a recording proxy) gets its provider; a removed target
 *   refuses new requests, while its live grants run to their end and are revoked as usual (its
 *   provider stays until the process restarts). A target whose settings changed is refused: its
 *   provider, pool and proxy were built from the old ones, so that takes a restart; so does a new
 *   target behind a recording proxy (a Postgres `proxy:`, or any SSH target when `ssh.proxy` runs).
 * Other sections (`broker`, `chat`, `audit`, `ci`, `ssh`) are read at start only: a change to
 * them is logged as waiting for a restart and does not stop the rest from applying.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Logger } from '../lib/log.ts';
import type { BrokerApp } from './app.ts';
import { type Config, loadConfig } from './config/load.ts';
import type { CredentialProvider } from './providers/provider.ts';
import { createProviders } from './providers/registry.ts';
import { preloadVaultSecrets } from './vault/preload.ts';

/** What a reload did. */
export type ReloadOutcome =
  | {
      applied: true;
      added: string[];
      removed: string[];
      rules: { added: string[]; removed: string[]; changed: string[] };
      people: number;
      /** Sections that changed in the file but apply only on restart. */
      restartNeeded: string[];
    }
  | { applied: false; error: string; code: string };

/** Sections of the file a reload leaves as they were at start. */
const START_ONLY_SECTIONS = ['broker', 'chat', 'audit', 'ci', 'ssh'] as const;

/** Why the change to target `name` needs a restart, or undefined when a reload can apply it. */
function targetChangeRefusal(
  sshProxy: boolean,
  name: string,
  before: Config['targets'][string] | undefined,
  after: Config['targets'][string] | undefined,
): string | undefined {
  if (before && after && !isDeepStrictEqual(before, after)) {
    return `targets.${name} changed: a target's settings apply when warden restarts (its connections and proxy are built from them)`;
  }
  if (!before && after && after.kind === 'postgres' && after.proxy) {
    return `targets.${name} is new and has a recording proxy: its listener opens when warden restarts`;
  }
  if (!before && after && after.kind === 'ssh' && sshProxy) {
    return `targets.${name} is a new SSH target and the SSH proxy learns its targets at start: restart warden to add it`;
  }
  return undefined;
}

function diffRules(before: Config['rules'], after: Config['rules']) {
  const old = new Map(before.map((r) => [r.name, r]));
  const now = new Map(after.map((r) => [r.name, r]));
  return {
    added: [...now.keys()].filter((n) => !old.has(n)),
    removed: [...old.keys()].filter((n) => !now.has(n)),
    changed: [...now.keys()].filter((n) => old.has(n) && !isDeepStrictEqual(old.get(n), now.get(n))),
  };
}

/** What {@link reloadBrokerConfig} needs of the running broker. */
export type ReloadableApp = Pick<BrokerApp, 'config' | 'directory' | 'providers'>;

/**
 * Reads `file` again and applies its people, rules and targets to `app` (see the file comment).
 * Never throws: a refused reload is an outcome, logged at error with the running configuration
 * kept; an applied one is logged at info with what changed.
 */
export async function reloadBrokerConfig(
  app: ReloadableApp,
  file: string,
  options: { env: Record<string, string | undefined>; logger: Logger },
): Promise<ReloadOutcome> {
  const { logger } = options;
  let env = options.env;
  const refuse = (error: string, code: string): ReloadOutcome => {
    logger.error({ file, code, error }, 'configuration reload refused; the running configuration stays');
    return { applied: false, error, code };
  };
  let next: Config;
  try {
    // Vault references read again, as at start-up (`vault/preload.ts`).
    ({ config: next, env } = await preloadVaultSecrets(loadConfig(file), env));
  } catch (error) {
    return refuse((error as Error).message, (error as { code?: string }).code ?? 'ERR_CONFIG_INVALID');
  }
  const live = app.config;
  const names = new Set([...Object.keys(live.targets), ...Object.keys(next.targets)]);
  for (const name of names) {
    const refusal = targetChangeRefusal(
      live.ssh?.proxy !== undefined,
      name,
      live.targets[name],
      next.targets[name],
    );
    if (refusal) return refuse(refusal, 'ERR_CONFIG_INVALID');
  }
  const added = Object.keys(next.targets).filter((n) => !live.targets[n]);
  const removed = Object.keys(live.targets).filter((n) => !next.targets[n]);
  // Providers of new targets first: a secret that does not resolve refuses the reload before
  // anything changed.
  let fresh: Map<string, CredentialProvider>;
  try {
    // createProviders closes what it opened when a later target fails.
    fresh = await createProviders(live, {
      env,
      logger,
      targets: Object.fromEntries(added.map((name) => [name, next.targets[name]!])),
    });
  } catch (error) {
    return refuse((error as Error).message, (error as { code?: string }).code ?? 'ERR_CONFIG_INVALID');
  }
  const rules = diffRules(live.rules, next.rules);
  const restartNeeded = START_ONLY_SECTIONS.filter((s) => !isDeepStrictEqual(live[s], next[s]));
  // The broker, the bot, the API and the proxy authority read these through the same objects, so
  // swapping them here is the whole change; nothing is awaited in between.
  app.directory.replace(next.people);
  live.people = next.people;
  live.rules = next.rules;
  live.targets = { ...next.targets };
  for (const [name, provider] of fresh) app.providers.set(name, provider);
  const outcome: ReloadOutcome = {
    applied: true,
    added,
    removed,
    rules,
    people: next.people.length,
    restartNeeded: [...restartNeeded],
  };
  logger.info(
    {
      file,
      targets_added: added,
      targets_removed: removed,
      rules_added: rules.added,
      rules_removed: rules.removed,
      rules_changed: rules.changed,
      people: next.people.length,
      rules: next.rules.length,
      targets: Object.keys(next.targets).length,
    },
    'configuration reloaded',
  );
  if (restartNeeded.length > 0) {
    logger.warn(
      { file, sections: restartNeeded },
      `configuration sections changed that apply only when warden restarts: ${restartNeeded.join(', ')}`,
    );
  }
  return outcome;
}
