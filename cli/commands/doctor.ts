/**
 * `warden doctor`: checks a configuration against the world it describes — the store (read-only),
 * the API tokens, each target's admin (for Postgres, a full mint → login → revoke cycle on a
 * scratch role, see `broker/providers/postgres/self-test.ts`; for Vault targets, Vault's seal, the
 * token's capabilities and each Vault role), whether SSH targets answer, Vault secrets, the
 * proxies' settings, TLS files and masking keys (`doctor-checks.ts`), Slack's auth.test, the SSH CA
 * key, the OIDC issuers — and says what is wrong and how to fix it. Exits 3 when a failure is in
 * the configuration (or its secrets), 1 when only the world is wrong.
 */

import { startChat } from '../../bot/start.ts';
import { createProviders, loadSshCa, openConfiguredStore } from '../../broker/app.ts';
import { type Config, loadConfig } from '../../broker/config/load.ts';
import { createSilentLogger, scrubSecrets } from '../../broker/log.ts';
import { SCHEMA_VERSION } from '../../broker/store/sql/migrations.ts';
import { preloadVaultSecrets } from '../../broker/vault/preload.ts';
import { createSecretResolver } from '../../broker/vault/secrets.ts';
import { isConfigurationError } from '../../lib/errors.ts';
import { formatCaPublicKeyLine } from '../../lib/ssh/keys.ts';
import { compilePgProxies } from '../../proxy/pg/start.ts';
import { checkSshProxySettings } from '../../proxy/ssh/start.ts';
import { ExitCode, type Io } from '../output.ts';
import { readProxySettings } from '../proxy-settings.ts';
import {
  checkApiTokens,
  checkMaskingKeys,
  checkProxyTlsFiles,
  checkSshTargets,
  checkVaultSecrets,
} from './doctor-checks.ts';

export interface DoctorCheck {
  name: string;
  ok: boolean;
  detail: string;
  /** What to do about a failure. */
  fix?: string;
  /** The failure is a configuration error: the fix is in `warden.yaml` or the secrets it names. */
  configuration?: boolean;
}

export interface DoctorDeps {
  fetch?: typeof fetch;
  /** Epoch ms certificates' validity is checked against. Default `Date.now`. */
  clock?: () => number;
  /** How long an SSH target may take to send its banner (ms). Default 5 s. */
  sshTimeoutMs?: number;
}

async function check(name: string, run: () => Promise<string>, fix: string): Promise<DoctorCheck> {
  try {
    return { name, ok: true, detail: await run() };
  } catch (error) {
    const secretMissing = (error as { code?: string }).code === 'ERR_CONFIG_SECRET';
    return {
      name,
      ok: false,
      detail: (error as Error).message.split('\n')[0]!.slice(0, 300),
      fix: secretMissing ? 'set the environment variable or file it names' : fix,
      ...(isConfigurationError(error) ? { configuration: true } : {}),
    };
  }
}

/** The chat front ends, checked by the code that starts them (`startChat` in check mode). */
async function checkChat(config: Config, env: Record<string, string | undefined>): Promise<DoctorCheck[]> {
  try {
    const chat = await startChat({
      config: config.chat,
      resolveSecret: createSecretResolver(config, env),
      logger: createSilentLogger(),
      mode: 'check',
    });
    return chat.checks;
  } catch (error) {
    const code = (error as { code?: string }).code;
    return [
      {
        name: 'chat',
        ok: false,
        detail: (error as Error).message,
        fix:
          code === 'ERR_CONFIG_SECRET'
            ? 'set the environment variable or file it names'
            : 'fix the chat: section',
        ...(isConfigurationError(error) ? { configuration: true } : {}),
      },
    ];
  }
}

/**
 * The store, opened read-only: doctor creates no file and migrates nothing (it used to migrate as a
 * side effect). A missing store, one that holds no Warden schema, and one older or newer than this
 * Warden are reported; `warden serve` is what creates and migrates it.
 */
async function checkStore(config: Config, env: Record<string, string | undefined>): Promise<DoctorCheck> {
  const settings = config.broker.store;
  const name = `store (${settings.kind})`;
  const reach =
    settings.kind === 'embedded'
      ? "check broker.store.path (relative paths are read from the configuration file's folder); warden serve creates the store on its first start"
      : 'check broker.store.url: the server must accept the connection; warden serve creates the schema on its first start';
  let store: Awaited<ReturnType<typeof openConfiguredStore>>;
  try {
    store = await openConfiguredStore(config, env, undefined, { readOnly: true });
  } catch (error) {
    return {
      name,
      ok: false,
      detail: scrubSecrets((error as Error).message.split('\n')[0]!.slice(0, 300)),
      fix:
        (error as { code?: string }).code === 'ERR_CONFIG_SECRET'
          ? 'set the environment variable or file it names'
          : reach,
      ...(isConfigurationError(error) ? { configuration: true } : {}),
    };
  }
  try {
    await store.ping();
    const version = await store.schemaVersion();
    if (version < SCHEMA_VERSION) {
      return {
        name,
        ok: false,
        detail: `schema version ${version}, this Warden uses ${SCHEMA_VERSION}: doctor left it as it is`,
        fix: 'back the store up, then start warden serve once: it migrates the store',
      };
    }
    if (version > SCHEMA_VERSION) {
      return {
        name,
        ok: false,
        detail: `schema version ${version} is newer than this Warden's (${SCHEMA_VERSION})`,
        fix: 'run the Warden release that wrote this store, or a newer one',
      };
    }
    return { name, ok: true, detail: `reachable, schema version ${version} (current); opened read-only` };
  } catch (error) {
    return { name, ok: false, detail: scrubSecrets((error as Error).message.slice(0, 300)), fix: reach };
  } finally {
    await store.close().catch(() => {});
  }
}

/** Runs every check the configuration calls for. */
export async function runDoctorChecks(
  loaded: Config,
  loadedEnv: Record<string, string | undefined>,
  deps: DoctorDeps = {},
): Promise<DoctorCheck[]> {
  const doFetch = deps.fetch ?? fetch;
  const checks: DoctorCheck[] = [];
  checks.push(...(await checkVaultSecrets(loaded, loadedEnv)));
  // The rest sees Vault's values as `warden serve` does (broker/vault/preload.ts); when they
  // cannot be read, the check above says why and the references stay as written.
  const { config, env, sources } = await preloadVaultSecrets(loaded, loadedEnv).catch(() => ({
    config: loaded,
    env: loadedEnv,
    sources: new Map<string, string>(),
  }));
  checks.push(await checkStore(config, env));
  checks.push(...(await checkApiTokens(config, env)));
  let providers: Awaited<ReturnType<typeof createProviders>> | undefined;
  try {
    providers = await createProviders(config, env);
  } catch (error) {
    checks.push({
      name: 'target secrets',
      ok: false,
      detail: (error as Error).message,
      fix: 'set the environment variable or file it names',
      ...(isConfigurationError(error) ? { configuration: true } : {}),
    });
  }
  for (const [name, provider] of providers ?? []) {
    if (provider.selfTest) {
      // Mint → login → revoke with the configured admin: each step names what is missing.
      const steps = await provider.selfTest().catch((error: Error) => [
        {
          step: 'admin login',
          ok: false,
          detail: error.message,
          fix: `check targets.${name}.admin: host, port, user and password`,
        },
      ]);
      for (const step of steps) {
        checks.push({
          name: `target ${name}: ${step.step}`,
          ok: step.ok,
          detail: step.detail,
          ...(step.fix ? { fix: step.fix } : {}),
        });
      }
      await provider.close().catch(() => {});
      continue;
    }
    checks.push(
      await check(
        `target ${name} (${provider.name})`,
        async () => {
          await provider.check();
          return provider.name === 'postgres' ? 'admin login works and can create roles' : 'ready';
        },
        `check targets.${name}.admin: host, port, user and password; the role needs CREATEROLE`,
      ),
    );
    await provider.close().catch(() => {});
  }
  checks.push(...(await checkSshTargets(config, deps.sshTimeoutMs)));
  const proxied = Object.fromEntries(
    Object.entries(config.targets).flatMap(([name, target]) =>
      target.kind === 'postgres' && target.proxy ? [[name, target]] : [],
    ),
  );
  if (Object.keys(proxied).length > 0) {
    checks.push(
      await check(
        'Postgres proxy settings',
        async () =>
          `${compilePgProxies({ targets: proxied, env }).length} proxied targets: TLS, guardrails and masking compile`,
        'correct the key named above (docs/pg-proxy.md)',
      ),
    );
  }
  checks.push(...checkProxyTlsFiles(config, (deps.clock ?? Date.now)()));
  checks.push(...checkMaskingKeys(config, env, sources));
  if (config.ssh?.proxy) {
    checks.push(
      await check(
        'SSH proxy settings',
        async () => {
          const settings = readProxySettings(config, env).ssh;
          if (settings) checkSshProxySettings(settings);
          return 'keys, guardrails, masking and host key pins check out';
        },
        'correct the key named above (docs/ssh.md, "Starting the proxy")',
      ),
    );
  }
  if (config.ssh) {
    checks.push(
      await check(
        'SSH CA key',
        async () => formatCaPublicKeyLine(loadSshCa(config, env)),
        'ssh.ca_key must reference an unencrypted Ed25519 private key (ssh-keygen -t ed25519 -N "")',
      ),
    );
  }
  checks.push(...(await checkChat(config, env)));
  for (const issuer of config.ci?.issuers ?? []) {
    checks.push(
      await check(
        `OIDC issuer ${issuer.name}`,
        async () => {
          let jwksUri = issuer.jwksUri;
          if (!jwksUri) {
            const res = await doFetch(
              `${issuer.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`,
              { signal: AbortSignal.timeout(10_000) },
            );
            if (!res.ok) throw new Error(`discovery answered HTTP ${res.status}`);
            const doc = (await res.json()) as { issuer?: string; jwks_uri?: string };
            if (doc.issuer !== issuer.issuer)
              throw new Error(`discovery names issuer ${doc.issuer}, expected ${issuer.issuer}`);
            jwksUri = doc.jwks_uri;
          }
          if (!jwksUri) throw new Error('no jwks_uri');
          const res = await doFetch(jwksUri, { signal: AbortSignal.timeout(10_000) });
          const jwks = (await res.json()) as { keys?: unknown[] };
          if (!Array.isArray(jwks.keys) || jwks.keys.length === 0) throw new Error('the JWKS holds no keys');
          return `${jwks.keys.length} signing keys`;
        },
        `check ci.issuers[${issuer.name}].issuer and that Warden can reach it (egress)`,
      ),
    );
  }
  return checks;
}

export async function runDoctor(
  flags: Record<string, string | boolean | undefined>,
  io: Io,
  deps: DoctorDeps = {},
): Promise<number> {
  const file = typeof flags.config === 'string' ? flags.config : (io.env.WARDEN_CONFIG ?? 'warden.yaml');
  let config: Config;
  try {
    config = loadConfig(file);
  } catch (error) {
    io.out(`✗ configuration ${file}: ${(error as Error).message}`);
    io.out('  fix: correct the key named above (warden init writes a commented example)');
    return ExitCode.Config;
  }
  io.out(
    `✓ configuration ${file}: ${Object.keys(config.targets).length} targets, ${config.rules.length} rules, ${config.people.length} people`,
  );
  const checks = await runDoctorChecks(config, io.env, deps);
  for (const c of checks) {
    io.out(`${c.ok ? '✓' : '✗'} ${c.name}: ${c.detail}`);
    if (!c.ok && c.fix) io.out(`  fix: ${c.fix}`);
  }
  const failed = checks.filter((c) => !c.ok).length;
  io.out(failed === 0 ? 'everything checks out' : `${failed} problem${failed === 1 ? '' : 's'} found`);
  if (failed === 0) return ExitCode.Ok;
  return checks.some((c) => !c.ok && c.configuration) ? ExitCode.Config : ExitCode.Refused;
}
