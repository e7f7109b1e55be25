/**
 * `POST /v1/requests/<id>/ssh-certificate`: certifies a public key made on the user's machine for
 * an active SSH grant of the caller (what `warden ssh login` calls). The certificate carries the
 * grant's principals and options and ends at the grant's expiry, never later; each one is audited.
 */
import { hostname } from 'node:os';
import { isSshCaError } from '../../lib/ssh/errors.ts';
import { parsePublicKeyLine, type SshCa } from '../../lib/ssh/keys.ts';
import { tokenVia } from '../audit/caller.ts';
import type { Config } from '../config/load.ts';
import {
  BrokerError,
  ForbiddenError,
  InvalidInputError,
  NotFoundError,
  StateConflictError,
} from '../errors.ts';
import { mintGrantCertificate } from '../providers/ssh-ca/ssh-ca-provider.ts';
import type { Store } from '../store/store.ts';
import { actorOf, type Route } from './server.ts';

/** Longest public key line accepted (an RSA 8192 key line is about 1,450 characters). */
const MAX_PUBLIC_KEY = 4096;
/** A certificate must be valid for at least this long (ms); closer to expiry the grant is refused. */
const MIN_VALIDITY_MS = 2_000;

/** Where users reach the SSH proxy. */
export interface SshProxyAddress {
  host: string;
  port: number;
}

/** Options of {@link createSshRoutes}. */
export interface SshRouteOptions {
  store: Store;
  config: Config;
  ca: SshCa;
  /** Clock in epoch ms; default `Date.now`. */
  clock?: () => number;
  /** The proxy address printed to users; default from `ssh.proxy` (none when it is not configured). */
  proxy?: SshProxyAddress | undefined;
}

/** The answer of the route. */
export interface SshCertificateAnswer {
  certificate: string;
  key_id: string;
  serial: string;
  fingerprint: string;
  principals: string[];
  valid_after: string;
  valid_before: string;
  target: string;
  host: string;
  port: number;
  proxy?: SshProxyAddress;
}

/**
 * The proxy address users type: `ssh.proxy.public_host`, else the listen host (this machine's
 * name when it listens on every address), and the listen port.
 */
export function proxyAddressOf(
  config: Config,
  machineName: string = hostname(),
): SshProxyAddress | undefined {
  const proxy = config.ssh?.proxy;
  if (!proxy) return undefined;
  const [listenHost, port] = proxy.listen.split(':') as [string, string];
  const wildcard = listenHost === '0.0.0.0' || listenHost === '::' || listenHost === '';
  return { host: proxy.public_host ?? (wildcard ? machineName : listenHost), port: Number(port) };
}

function readPublicKey(body: Record<string, unknown>): string {
  const value = body.public_key;
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_PUBLIC_KEY) {
    throw new InvalidInputError(
      'ERR_SSH_KEY_INVALID',
      `"public_key" must be an OpenSSH public key line of at most ${MAX_PUBLIC_KEY} characters`,
    );
  }
  try {
    parsePublicKeyLine(value);
  } catch (error) {
    if (!isSshCaError(error)) throw error;
    throw new InvalidInputError('ERR_SSH_KEY_INVALID', `"public_key": ${error.message}`, {
      details: {
        reason: error.code,
      },
    });
  }
  return value;
}

/** The SSH certificate route, for `ApiServer`'s `extraRoutes`. */
export function createSshRoutes(options: SshRouteOptions): Route[] {
  const { store, config, ca } = options;
  const clock = options.clock ?? Date.now;
  const proxy = 'proxy' in options ? options.proxy : proxyAddressOf(config);
  return [
    {
      method: 'POST',
      pattern: /^\/v1\/requests\/([a-z0-9]{1,64})\/ssh-certificate$/,
      handler: async ({ caller, params, body }): Promise<SshCertificateAnswer> => {
        const actor = actorOf(caller, body);
        const id = params[0]!;
        const publicKey = readPublicKey(body);
        const grant = await store.getRequest(id);
        if (!grant) throw new NotFoundError('grant', id);
        // A certificate is a credential of the requester: nobody else gets one, admins included.
        if (grant.requester !== actor.id) {
          throw new ForbiddenError(
            'ERR_FORBIDDEN',
            `only the requester of grant ${id} can get its certificate; this call acts for "${actor.id}"`,
          );
        }
        const target = config.targets[grant.target];
        if (grant.kind !== 'access' || target?.kind !== 'ssh') {
          throw new InvalidInputError('ERR_SSH_GRANT_NOT_SSH', `${id} is not a grant on an SSH target`, {
            details: {
              target: grant.target,
            },
          });
        }
        const level = target.levels[grant.level];
        if (!level) {
          throw new BrokerError('ERR_LEVEL_UNKNOWN', `target ${grant.target} has no level ${grant.level}`);
        }
        const now = clock();
        if (grant.state !== 'active' || grant.expiresAt === null || grant.expiresAt - now < MIN_VALIDITY_MS) {
          throw new StateConflictError(
            `grant ${id} is ${grant.state === 'active' ? 'expiring' : grant.state}`,
            {
              state: grant.state,
            },
          );
        }
        const minted = mintGrantCertificate({ ca, grant, level, now, expiresAt: grant.expiresAt, publicKey });
        await store.appendAudit({
          at: now,
          actor: actor.id,
          via: tokenVia(caller.token),
          action: 'ssh.certificate_issued',
          subject: id,
          data: {
            serial: String(minted.serial),
            key_id: minted.keyId,
            fingerprint: minted.fingerprint,
            principals: level.principals,
            valid_before: minted.validBefore.toISOString(),
          },
        });
        return {
          certificate: minted.certificate,
          key_id: minted.keyId,
          serial: String(minted.serial),
          fingerprint: minted.fingerprint,
          principals: [...level.principals],
          valid_after: minted.validAfter.toISOString(),
          valid_before: minted.validBefore.toISOString(),
          target: grant.target,
          host: target.host,
          port: target.port,
          ...(proxy ? { proxy } : {}),
        };
      },
    },
  ];
}
