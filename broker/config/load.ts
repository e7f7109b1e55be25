import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { isSecretRefOf } from '../../lib/secret.ts';
import { ConfigError } from '../errors.ts';
import { configSchema, type ParsedConfig } from './schema.ts';

/** A validated configuration, with the file it came from (for error messages). */
export type Config = ParsedConfig & { source: string };

/** Formats a schema path the way the config file reads: `targets.prod-db.levels.write.grants[0]`. */
export function formatConfigPath(path: readonly PropertyKey[], raw?: unknown): string {
  let out = '';
  let node: unknown = raw;
  for (const key of path) {
    if (typeof key === 'number') {
      const item = Array.isArray(node) ? node[key] : undefined;
      const label = item && typeof item === 'object' && 'name' in item ? String(item.name) : undefined;
      const id = item && typeof item === 'object' && 'id' in item ? String(item.id) : undefined;
      out += label || id ? `[${key}:${label ?? id}]` : `[${key}]`;
    } else {
      out += out ? `.${String(key)}` : String(key);
    }
    node = node && typeof node === 'object' ? (node as Record<PropertyKey, unknown>)[key] : undefined;
  }
  return out;
}

function firstIssue(error: z.ZodError, raw: unknown): ConfigError {
  const issue = error.issues[0]!;
  // A union's issue carries the branch errors; report the deepest one, it names the real key.
  let deepest: { path: readonly PropertyKey[]; message: string } = issue;
  if (issue.code === 'invalid_union' && 'errors' in issue) {
    for (const branch of issue.errors) {
      for (const inner of branch) {
        const path = [...issue.path, ...inner.path];
        if (path.length > deepest.path.length) deepest = { path, message: inner.message };
      }
    }
  }
  return new ConfigError(formatConfigPath(deepest.path, raw), deepest.message);
}

/** Validates a configuration object; throws `ConfigError` naming the first bad path. */
export function parseConfig(raw: unknown, source = 'warden.yaml'): Config {
  const parsed = configSchema.safeParse(raw ?? {});
  if (!parsed.success) throw firstIssue(parsed.error, raw);
  const config: Config = { ...parsed.data, source };
  checkReferences(config, raw);
  return config;
}

/**
 * Reads and validates a YAML configuration file. Relative paths in it (the store, TLS files,
 * secret files, known_hosts, audit keys and checkpoints) are relative to the file's directory,
 * not to wherever the command runs: see {@link resolveConfigPaths}.
 */
export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError('', `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  return resolveConfigPaths(parseConfigText(text, file), dirname(resolve(file)));
}

/** Every `{file: relative}` under `node` made absolute against `base` (sections other parts parse too). */
function resolveFileRefs(node: unknown, base: string): unknown {
  if (Array.isArray(node)) return node.map((item) => resolveFileRefs(item, base));
  if (isSecretRefOf(node, 'file')) return { file: resolve(base, node.file) };
  if (typeof node !== 'object' || node === null) return node;
  return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, resolveFileRefs(v, base)]));
}

/** A masking fragment whose `key: file:relative` becomes `file:/absolute`. */
function resolveMaskingKey(masking: Record<string, unknown> | undefined, base: string) {
  const key = masking?.key;
  if (typeof key !== 'string' || !key.startsWith('file:') || isAbsolute(key.slice(5))) return masking;
  return { ...masking, key: `file:${resolve(base, key.slice(5))}` };
}

/**
 * Makes every file path of `config` absolute against `base` (the configuration file's directory):
 * `broker.store.path`, each `{file: ...}` secret reference (in every section, chat included), the
 * proxies' `tls.cert`/`tls.key`, masking keys `file:...`, `known_hosts`, `audit.public_keys` and
 * `audit.checkpoints.file`. Absolute paths stay as they are.
 */
export function resolveConfigPaths(config: Config, base: string): Config {
  const at = (path: string) => resolve(base, path);
  const refs = resolveFileRefs(config, base) as Config;
  const store = refs.broker.store;
  const targets = Object.fromEntries(
    Object.entries(refs.targets).map(([name, target]) => {
      if (target.kind === 'ssh') {
        return [
          name,
          {
            ...target,
            ...(target.known_hosts ? { known_hosts: at(target.known_hosts) } : {}),
            ...(target.masking ? { masking: resolveMaskingKey(target.masking, base) } : {}),
          },
        ];
      }
      const proxy = target.proxy;
      return [
        name,
        proxy
          ? {
              ...target,
              proxy: {
                ...proxy,
                ...(proxy.tls ? { tls: { cert: at(proxy.tls.cert), key: at(proxy.tls.key) } } : {}),
                masking: resolveMaskingKey(proxy.masking, base)!,
              },
            }
          : target,
      ];
    }),
  ) as Config['targets'];
  const checkpoints = refs.audit.checkpoints;
  return {
    ...refs,
    broker: {
      ...refs.broker,
      store:
        store.kind === 'embedded' && store.path !== ':memory:' ? { ...store, path: at(store.path) } : store,
    },
    targets,
    audit: {
      ...refs.audit,
      public_keys: refs.audit.public_keys.map(at),
      checkpoints: { ...checkpoints, ...(checkpoints.file ? { file: at(checkpoints.file) } : {}) },
    },
  };
}

/** Parses YAML text into a validated configuration. */
export function parseConfigText(text: string, source = 'warden.yaml'): Config {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const where = e.linePos?.[0] ? ` (line ${e.linePos[0].line}, column ${e.linePos[0].col})` : '';
    throw new ConfigError('', `${source} is not valid YAML${where}: ${e.message.split('\n')[0]}`);
  }
  return parseConfig(doc.toJS(), source);
}

function checkReferences(config: Config, raw: unknown): void {
  const path = (...keys: PropertyKey[]) => formatConfigPath(keys, raw);
  const people = new Map<string, (typeof config.people)[number]>();
  const groups = new Set<string>();
  const seenEmail = new Set<string>();
  const seenSlack = new Set<string>();
  const seenTeams = new Set<string>();
  config.people.forEach((person, i) => {
    if (people.has(person.id))
      throw new ConfigError(path('people', i, 'id'), `duplicate person id "${person.id}"`);
    const email = person.email.toLowerCase();
    if (seenEmail.has(email))
      throw new ConfigError(path('people', i, 'email'), `duplicate email "${person.email}"`);
    if (person.slack && seenSlack.has(person.slack)) {
      throw new ConfigError(path('people', i, 'slack'), `duplicate Slack id "${person.slack}"`);
    }
    const teams = person.teams?.toLowerCase();
    if (teams && seenTeams.has(teams)) {
      throw new ConfigError(path('people', i, 'teams'), `duplicate Teams id "${person.teams}"`);
    }
    seenEmail.add(email);
    if (person.slack) seenSlack.add(person.slack);
    if (teams) seenTeams.add(teams);
    people.set(person.id, person);
    for (const g of person.groups) groups.add(g);
  });
  config.people.forEach((person, i) => {
    if (person.manager && !people.has(person.manager)) {
      throw new ConfigError(path('people', i, 'manager'), `unknown person "${person.manager}"`);
    }
    if (person.manager === person.id)
      throw new ConfigError(path('people', i, 'manager'), 'a person cannot manage themself');
  });
  const ruleNames = new Set<string>();
  config.rules.forEach((rule, i) => {
    if (ruleNames.has(rule.name))
      throw new ConfigError(path('rules', i, 'name'), `duplicate rule name "${rule.name}"`);
    ruleNames.add(rule.name);
    rule.targets.forEach((t, j) => {
      const target = config.targets[t];
      if (!target) {
        const known = Object.keys(config.targets).join(', ') || 'none';
        throw new ConfigError(path('rules', i, 'targets', j), `unknown target "${t}" (known: ${known})`);
      }
      for (const [k, level] of (rule.levels ?? []).entries()) {
        if (!target.levels[level]) {
          throw new ConfigError(path('rules', i, 'levels', k), `target "${t}" has no level "${level}"`);
        }
      }
    });
    if (rule.duration.default > rule.duration.max) {
      throw new ConfigError(
        path('rules', i, 'duration', 'default'),
        'the default duration is longer than the maximum',
      );
    }
    const checkGroup = (g: string, p: string) => {
      if (!groups.has(g)) throw new ConfigError(p, `group "${g}" has no members in people`);
    };
    const checkUser = (u: string, p: string) => {
      if (!people.has(u)) throw new ConfigError(p, `unknown person "${u}"`);
    };
    rule.approvers.forEach((a, k) => {
      if (typeof a === 'object' && 'group' in a)
        checkGroup(a.group, path('rules', i, 'approvers', k, 'group'));
      if (typeof a === 'object' && 'user' in a) checkUser(a.user, path('rules', i, 'approvers', k, 'user'));
    });
    for (const [k, u] of (rule.who.users ?? []).entries()) checkUser(u, path('rules', i, 'who', 'users', k));
    for (const [k, g] of (rule.who.groups ?? []).entries())
      checkGroup(g, path('rules', i, 'who', 'groups', k));
    if (rule.approvals === 'every' && rule.approvers.length === 0) {
      throw new ConfigError(path('rules', i, 'approvals'), '"every" needs at least one approver entry');
    }
    if (rule.window) {
      const [, h1, m1, h2, m2] = /^(\d\d):(\d\d)-(\d\d):(\d\d)$/.exec(rule.window.hours)!;
      if (Number(h1) * 60 + Number(m1) >= Number(h2) * 60 + Number(m2)) {
        throw new ConfigError(path('rules', i, 'window', 'hours'), 'the window ends before it starts');
      }
    }
  });
  const tokenNames = new Set<string>();
  config.broker.tokens.forEach((t, i) => {
    if (tokenNames.has(t.name))
      throw new ConfigError(path('broker', 'tokens', i, 'name'), `duplicate token "${t.name}"`);
    tokenNames.add(t.name);
  });
}
