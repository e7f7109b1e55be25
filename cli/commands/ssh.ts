/**
 * `warden ssh ca | krl | login | replay`: the SSH verbs. `ca` and `krl` are for admins and read the
 * configuration and the store directly; `login` goes through the broker API; `replay` reads the
 * store (see {@link replaySshSession}).
 */
import { loadSshCa, openConfiguredStore } from '../../broker/app.ts';
import { buildGrantKrl } from '../../broker/providers/ssh-ca/ssh-ca-provider.ts';
import type { Store } from '../../broker/store/store.ts';
import { preloadVaultSecrets } from '../../broker/vault/preload.ts';
import { isSshCaError } from '../../lib/ssh/errors.ts';
import { formatCaPublicKeyLine } from '../../lib/ssh/keys.ts';
import { isRecordingError } from '../../proxy/ssh/recording/errors.ts';
import { UsageError } from '../errors.ts';
import { ExitCode, type Io } from '../output.ts';
import { SshCliError } from '../ssh/errors.ts';
import { loadConfigOf } from '../ssh/load-config.ts';
import { writeFileAtomically } from '../ssh/write-file.ts';
import { loginWithCertificate } from './ssh-login.ts';
import { replaySshSession } from './ssh-replay.ts';

type Flags = Record<string, string | boolean | undefined>;

const USAGE = `usage: warden ssh ca [--config f]
       warden ssh krl --out FILE [--config f]
       warden ssh login <grant> [--dir ~/.ssh/warden] [--key FILE.pub] [--as user]
       warden ssh replay <session> [--speed 2] [--idle-limit 1] [--export file.cast] [--format jsonl]`;

/** Dependencies a test may replace; the entry point passes none. */
export interface SshCommandDeps {
  /** Use this store instead of opening the configured one. */
  readonly store?: Store;
  /** Clock in epoch ms; default `Date.now`. */
  readonly clock?: () => number;
  /** Pause of the replay, in ms; default a timer. */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Where the replay writes terminal output; default stdout, as is. */
  readonly write?: (chunk: string) => void;
}

/** Runs `warden ssh <verb>`; returns an {@link ExitCode}. */
export async function runSshCommand(
  positionals: string[],
  flags: Flags,
  io: Io,
  deps: SshCommandDeps = {},
): Promise<number> {
  const [verb, ...rest] = positionals;
  try {
    switch (verb) {
      case 'ca': {
        const { config, env } = await preloadVaultSecrets(loadConfigOf(flags, io), io.env);
        io.out(formatCaPublicKeyLine(loadSshCa(config, env)));
        return ExitCode.Ok;
      }
      case 'krl':
        return await writeKrl(flags, io, deps);
      case 'login':
        return await loginWithCertificate(rest, flags, io);
      case 'replay': {
        if (!rest[0] || rest.length > 1) throw new UsageError(USAGE);
        return await replaySshSession(rest[0], flags, io, deps);
      }
      default:
        throw new UsageError(USAGE);
    }
  } catch (error) {
    // Errors of the SSH areas carry a code but are not broker errors: print it here.
    if (error instanceof SshCliError || isRecordingError(error) || isSshCaError(error)) {
      io.err(`warden: ${error.message} (${error.code})`);
      return ExitCode.Refused;
    }
    throw error;
  }
}

/**
 * `warden ssh krl --out FILE`: the KRL of grants revoked before their expiry whose certificates
 * are still valid, written atomically. An empty file when none: sshd reads it as "nothing revoked".
 */
async function writeKrl(flags: Flags, io: Io, deps: SshCommandDeps): Promise<number> {
  const out = typeof flags.out === 'string' ? flags.out : undefined;
  if (!out) throw new UsageError('usage: warden ssh krl --out FILE [--config warden.yaml]');
  // A CA key (or store URL) in Vault is read as `warden serve` reads it.
  const { config, env } = await preloadVaultSecrets(loadConfigOf(flags, io), io.env);
  const ca = loadSshCa(config, env);
  const store = deps.store ?? (await openConfiguredStore(config, env, undefined, { mustExist: true }));
  try {
    const now = (deps.clock ?? Date.now)();
    // Grants of targets the configuration no longer has stay in: their certificates may still be valid.
    const revoked = (await store.listRevokedUnexpired(now)).filter(
      (grant) => config.targets[grant.target]?.kind !== 'postgres',
    );
    const krl = buildGrantKrl(ca, revoked, new Date(now)) ?? new Uint8Array(0);
    writeFileAtomically(out, krl, 0o644);
    io.out(`wrote ${out}: ${revoked.length} revoked grant${revoked.length === 1 ? '' : 's'}`);
    return ExitCode.Ok;
  } finally {
    if (!deps.store) await store.close();
  }
}
