/**
 * `warden doctor`'s checks of what breaks a deployment later rather than at start: the proxies' TLS
 * files (readable, key matching the certificate, not expired, key not readable by others), the
 * masking keys (present, long enough, not readable by others), the API tokens (present, strong,
 * not placeholders, not shared), whether SSH targets answer (TCP, then an SSH banner), and Vault
 * as a secret source (reachable, unsealed, the token's capabilities, each field there). Each
 * check only reads; each failure says what to fix. The values of secrets never reach a line.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import type { Config } from '../../broker/config/load.ts';
import { checkVaultReachable } from '../../broker/providers/vault/self-test.ts';
import { createSecretResolver, createVaultClient, VaultKvReader } from '../../broker/vault/secrets.ts';
import { isConfigurationError } from '../../lib/errors.ts';
import type { DoctorCheck } from './doctor.ts';

/** A certificate that expires within this many days is flagged in its line (still a pass). */
const EXPIRY_NOTICE_DAYS = 14;
/** Shortest masking key doctor accepts (bytes): 256 bits, what `openssl rand 32` gives. */
export const DOCTOR_MIN_MASKING_KEY_BYTES = 32;
/** Shortest API token doctor accepts (characters). */
export const DOCTOR_MIN_TOKEN_CHARS = 24;
/** How long an SSH target may take to connect and send its banner (ms). */
export const SSH_BANNER_TIMEOUT_MS = 5_000;
/** Longest banner line read (RFC 4253 §4.2: 255 characters with CR LF). */
const MAX_BANNER_BYTES = 255;

/** Values people leave in place of a secret (compared lower-cased, with separators removed). */
const PLACEHOLDERS = new Set([
  'changeme',
  'changeit',
  'change',
  'secret',
  'password',
  'passw0rd',
  'token',
  'example',
  'test',
  'testing',
  'placeholder',
  'todo',
  'replaceme',
  'default',
  'admin',
  'letmein',
  'xoxbyourtoken',
]);

const DAY_MS = 24 * 60 * 60_000;

function errnoOf(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
}

/** The permission bits of a file as `0644`. */
function formatMode(mode: number): string {
  return `0${(mode & 0o777).toString(8)}`;
}

/**
 * Why `value` is not a real secret, or undefined: a known placeholder, a template marker, one
 * repeated character, or too few distinct characters to be random.
 */
export function describeWeakSecret(value: string, minChars: number): string | undefined {
  const folded = value.toLowerCase().replace(/[\s_.-]+/g, '');
  if (/^<.*>$|^\$\{.*\}$|^\{\{.*\}\}$/.test(value.trim())) return 'it is a template placeholder';
  if (PLACEHOLDERS.has(folded) || /^(change|replace)me/.test(folded) || folded.includes('changeme')) {
    return 'it is a placeholder value';
  }
  if (/^(.)\1*$/.test(value)) return 'it is one character repeated';
  if (value.length < minChars) return `it has ${value.length} characters, fewer than ${minChars}`;
  if (new Set(value).size < 8) return 'it has fewer than 8 distinct characters';
  return undefined;
}

/** The Postgres proxy's TLS files of target `name`. */
export function checkProxyTls(name: string, tls: { cert: string; key: string }, now: number): DoctorCheck {
  const check = `target ${name}: proxy TLS files`;
  const path = `targets.${name}.proxy.tls`;
  const fail = (detail: string, fix: string, configuration = true): DoctorCheck => ({
    name: check,
    ok: false,
    detail,
    fix,
    ...(configuration ? { configuration: true } : {}),
  });
  let certPem: Buffer;
  let keyPem: Buffer;
  try {
    certPem = readFileSync(tls.cert);
  } catch (error) {
    return fail(
      `cannot read the certificate ${tls.cert} (${errnoOf(error)})`,
      `${path}.cert must name a readable PEM file`,
    );
  }
  try {
    keyPem = readFileSync(tls.key);
  } catch (error) {
    return fail(
      `cannot read the key ${tls.key} (${errnoOf(error)})`,
      `${path}.key must name a readable PEM file`,
    );
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch {
    return fail(
      `${tls.cert} holds no PEM certificate`,
      `${path}.cert must be the certificate (-----BEGIN CERTIFICATE-----)`,
    );
  }
  let key: ReturnType<typeof createPrivateKey>;
  try {
    key = createPrivateKey(keyPem);
  } catch {
    // The key's text is never quoted: it is a secret.
    return fail(
      `${tls.key} holds no readable private key (encrypted, or not PEM)`,
      `${path}.key must be an unencrypted PEM private key`,
    );
  }
  if (!cert.checkPrivateKey(key)) {
    return fail(
      `the key ${tls.key} does not match the certificate ${tls.cert}`,
      `give ${path}.key the private key of that certificate`,
    );
  }
  const mode = statSync(tls.key).mode;
  if ((mode & 0o077) !== 0) {
    return fail(
      `the key ${tls.key} is readable by ${mode & 0o007 ? 'everyone' : 'its group'} (mode ${formatMode(mode)})`,
      `chmod 600 ${tls.key}`,
    );
  }
  const notAfter = Date.parse(cert.validTo);
  const notBefore = Date.parse(cert.validFrom);
  if (notAfter <= now) {
    return fail(
      `the certificate expired on ${new Date(notAfter).toISOString()}`,
      `renew the certificate ${tls.cert}`,
      false,
    );
  }
  if (notBefore > now) {
    return fail(
      `the certificate is valid only from ${new Date(notBefore).toISOString()}`,
      `check the clock, or the certificate ${tls.cert}`,
      false,
    );
  }
  const days = Math.floor((notAfter - now) / DAY_MS);
  const soon = days < EXPIRY_NOTICE_DAYS ? ` — renew it soon` : '';
  return {
    name: check,
    ok: true,
    detail: `${cert.subject.replace(/\n/g, ', ')}, key matches, expires in ${days} days${soon}; key mode ${formatMode(mode)}`,
  };
}

/**
 * A masking key reference (`env:NAME` or `file:/path`, as the proxies read it) at config path
 * `path`: present, at least {@link DOCTOR_MIN_MASKING_KEY_BYTES} bytes, not a placeholder, and a
 * file readable by its owner (and group) only.
 */
export function checkMaskingKey(
  path: string,
  ref: string,
  env: Record<string, string | undefined>,
  vaultSources: ReadonlyMap<string, string> = new Map(),
): DoctorCheck {
  const check = `masking key ${path}`;
  const fail = (detail: string, fix: string): DoctorCheck => ({
    name: check,
    ok: false,
    detail,
    fix,
    configuration: true,
  });
  const makeOne = `openssl rand -base64 ${DOCTOR_MIN_MASKING_KEY_BYTES}`;
  let value: Buffer;
  let where: string;
  if (ref.startsWith('env:')) {
    const name = ref.slice(4);
    const source = vaultSources.get(name);
    where = source ? `Vault secret ${source}` : `environment variable ${name}`;
    if (!env[name]) return fail(`${where} is not set`, `set ${name} to a random key (${makeOne})`);
    value = Buffer.from(env[name], 'utf8');
  } else if (ref.startsWith('file:')) {
    const file = ref.slice(5);
    where = `key file ${file}`;
    try {
      value = readFileSync(file);
    } catch (error) {
      return fail(
        `cannot read ${where} (${errnoOf(error)})`,
        `write a random key to it (${makeOne} > ${file}; chmod 600 ${file})`,
      );
    }
    const mode = statSync(file).mode;
    if ((mode & 0o007) !== 0)
      return fail(`${where} is readable by everyone (mode ${formatMode(mode)})`, `chmod 600 ${file}`);
  } else if (ref.startsWith('vault:')) {
    return fail(
      `the Vault secret ${ref.slice(6)} could not be read (see "Vault secrets" above)`,
      'fix what "Vault secrets" names',
    );
  } else {
    return fail(
      'the key is written inline',
      `reference it as env:NAME, file:/path or vault:<mount>/data/<path>#<field> in ${path}`,
    );
  }
  const text = value.toString('utf8').trim();
  const weak = describeWeakSecret(text, 0);
  if (weak)
    return fail(
      `the key in ${where} is not a real key: ${weak}`,
      `replace it with a random key (${makeOne})`,
    );
  if (value.length < DOCTOR_MIN_MASKING_KEY_BYTES) {
    return fail(
      `the key in ${where} has ${value.length} bytes, fewer than ${DOCTOR_MIN_MASKING_KEY_BYTES}`,
      `replace it with a longer random key (${makeOne})`,
    );
  }
  return { name: check, ok: true, detail: `${where}: ${value.length} bytes` };
}

/** Every masking key the configuration references: proxied Postgres targets and SSH targets. */
export function checkMaskingKeys(
  config: Config,
  env: Record<string, string | undefined>,
  vaultSources?: ReadonlyMap<string, string>,
): DoctorCheck[] {
  const checks: DoctorCheck[] = [];
  for (const [name, target] of Object.entries(config.targets)) {
    const masking = target.kind === 'postgres' ? target.proxy?.masking : target.masking;
    const ref = masking?.key;
    if (typeof ref !== 'string') continue;
    const path =
      target.kind === 'postgres' ? `targets.${name}.proxy.masking.key` : `targets.${name}.masking.key`;
    checks.push(checkMaskingKey(path, ref, env, vaultSources));
  }
  return checks;
}

/** `broker.tokens`: each resolves, is strong, is no placeholder, and no two share a secret. */
export async function checkApiTokens(
  config: Config,
  env: Record<string, string | undefined>,
): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  const seen = new Map<string, string>();
  for (const [i, token] of config.broker.tokens.entries()) {
    const path = `broker.tokens[${i}:${token.name}].secret`;
    const check = `API token ${token.name} (${token.role})`;
    const fail = (detail: string, fix: string): DoctorCheck => ({
      name: check,
      ok: false,
      detail,
      fix,
      configuration: true,
    });
    let value: string;
    try {
      value = (await createSecretResolver(config, env)(token.secret, path)).reveal();
    } catch (error) {
      checks.push(fail((error as Error).message, 'set the environment variable or file it names'));
      continue;
    }
    const makeOne = 'openssl rand -base64 32';
    const weak = describeWeakSecret(value, DOCTOR_MIN_TOKEN_CHARS);
    if (weak) {
      checks.push(
        fail(`${path} is not a strong token: ${weak}`, `replace it with a random one (${makeOne})`),
      );
      continue;
    }
    const twin = seen.get(value);
    if (twin) {
      checks.push(
        fail(`${path} is the same secret as token ${twin}`, `give each token its own secret (${makeOne})`),
      );
      continue;
    }
    seen.set(value, token.name);
    checks.push({ name: check, ok: true, detail: `${value.length} characters` });
  }
  return checks;
}

/**
 * Whether an SSH server answers at `host:port`: a TCP connection, then its identification line
 * (`SSH-2.0-…`), within `timeoutMs`. Tells a refused connection, a time-out, a closed connection
 * and a server that is not SSH apart.
 */
export function checkSshTarget(
  name: string,
  host: string,
  port: number,
  timeoutMs = SSH_BANNER_TIMEOUT_MS,
): Promise<DoctorCheck> {
  const check = `target ${name}: SSH answers`;
  const where = `${host}:${port}`;
  const fixReach = `check targets.${name}.host and port, and that Warden can reach ${where} (firewall, sshd running)`;
  return new Promise((resolve) => {
    let settled = false;
    let received = Buffer.alloc(0);
    const socket = connect({ host, port });
    const finish = (result: DoctorCheck) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(
      () =>
        finish({
          name: check,
          ok: false,
          detail: `${where} sent no SSH banner within ${timeoutMs / 1000} s (${socket.connecting ? 'connecting timed out' : 'connected, then silence'})`,
          fix: fixReach,
        }),
      timeoutMs,
    );
    socket.on('error', (error) =>
      finish({
        name: check,
        ok: false,
        detail: `cannot connect to ${where} (${errnoOf(error)})`,
        fix: fixReach,
      }),
    );
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]).subarray(0, MAX_BANNER_BYTES + 2);
      // RFC 4253 §4.2: a server may send other lines first; the one that counts starts with SSH-.
      for (const line of received.toString('latin1').split('\n').slice(0, -1)) {
        const text = line.replace(/\r$/, '');
        if (text.startsWith('SSH-')) {
          const ok = text.startsWith('SSH-2.0-') || text.startsWith('SSH-1.99-');
          finish({
            name: check,
            ok,
            detail: ok ? `${where}: ${printable(text)}` : `${where} speaks ${printable(text)}, not SSH 2`,
            ...(ok ? {} : { fix: `upgrade the server at ${where}` }),
          });
          return;
        }
      }
      if (received.length > MAX_BANNER_BYTES) {
        finish({
          name: check,
          ok: false,
          detail: `${where} answered, but not as an SSH server (${printable(received.toString('latin1').slice(0, 40))}…)`,
          fix: `targets.${name}.port must be the sshd's port`,
        });
      }
    });
    socket.on('end', () => {
      const text = received.toString('latin1');
      finish({
        name: check,
        ok: false,
        detail: `${where} closed the connection ${text ? `after ${printable(text.slice(0, 40))}` : 'without a banner'}: not an SSH server, or it refuses Warden`,
        fix: `targets.${name}.port must be the sshd's port; check the sshd's MaxStartups and its allow lists`,
      });
    });
  });
}

/** `text` with control characters shown as `?` (what a hostile server sends never drives the terminal). */
function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, 120);
}

/** {@link checkSshTarget} for every SSH target, at the same time. */
export function checkSshTargets(config: Config, timeoutMs = SSH_BANNER_TIMEOUT_MS): Promise<DoctorCheck[]> {
  return Promise.all(
    Object.entries(config.targets).flatMap(([name, target]) =>
      target.kind === 'ssh' ? [checkSshTarget(name, target.host, target.port, timeoutMs)] : [],
    ),
  );
}

/** {@link checkProxyTls} for every proxied Postgres target with TLS files. */
export function checkProxyTlsFiles(config: Config, now: number): DoctorCheck[] {
  return Object.entries(config.targets).flatMap(([name, target]) =>
    target.kind === 'postgres' && target.proxy?.tls ? [checkProxyTls(name, target.proxy.tls, now)] : [],
  );
}

/** Every `{vault: "<mount>/data/<path>#<field>"}` reference in `node`, with its config key. */
export function findVaultRefs(node: unknown, path = ''): { ref: string; path: string }[] {
  if (Array.isArray(node)) return node.flatMap((item, i) => findVaultRefs(item, `${path}[${i}]`));
  if (typeof node !== 'object' || node === null) return [];
  const entries = Object.entries(node);
  if (entries.length === 1 && entries[0]![0] === 'vault' && typeof entries[0]![1] === 'string') {
    return [{ ref: entries[0]![1], path }];
  }
  return entries.flatMap(([key, value]) => findVaultRefs(value, path ? `${path}.${key}` : key));
}

/**
 * The `vault:` section as a secret source: Vault answers and is unsealed, Warden logs in, the
 * token may read every KV path the configuration references, and every field referenced is there.
 */
export async function checkVaultSecrets(
  config: Config,
  env: Record<string, string | undefined>,
): Promise<DoctorCheck[]> {
  if (!config.vault) return [];
  const refs = findVaultRefs({ ...config, vault: undefined });
  const client = createVaultClient(config, env);
  if (!client) return [];
  try {
    const kvPaths = [...new Set(refs.map((r) => r.ref.slice(0, r.ref.lastIndexOf('#'))))];
    const steps = await checkVaultReachable(
      client,
      'the secrets of warden.yaml',
      kvPaths.map((path) => ({ path, needs: ['read'] })),
    );
    const checks: DoctorCheck[] = steps.map((s) => ({
      name: `vault: ${s.step}`,
      ok: s.ok,
      detail: s.detail,
      ...(s.fix ? { fix: s.fix } : {}),
    }));
    if (steps.some((s) => !s.ok)) return checks;
    const reader = new VaultKvReader(client);
    for (const { ref, path } of refs) {
      const at = ref.lastIndexOf('#');
      try {
        await reader.readField(ref.slice(0, at), ref.slice(at + 1), path);
        checks.push({ name: `vault secret ${path}`, ok: true, detail: `${ref} is there` });
      } catch (error) {
        checks.push({
          name: `vault secret ${path}`,
          ok: false,
          detail: (error as Error).message,
          fix: `write the field: vault kv patch ${ref.slice(0, at).replace('/data/', '/')} ${ref.slice(at + 1)}=...`,
          ...(isConfigurationError(error) ? { configuration: true } : {}),
        });
      }
    }
    return checks;
  } finally {
    client.close();
  }
}
