/**
 * `warden ssh login <grant>`: makes an Ed25519 key pair on this machine (or takes `--key`'s public
 * key), has the broker certify it for the grant, writes `<dir>/<grant>` and `<dir>/<grant>-cert.pub`
 * and prints the `ssh` commands that use them. The private key never leaves this machine.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { SshCertificateAnswer } from '../../broker/api/ssh-route.ts';
import { isSshCaError } from '../../lib/ssh/errors.ts';
import { formatPublicKeyLine, generateSubjectKey, parsePublicKeyLine } from '../../lib/ssh/keys.ts';
import { UsageError } from '../errors.ts';
import { ExitCode, type Io } from '../output.ts';
import { SshCliError } from '../ssh/errors.ts';
import { writeFileAtomically } from '../ssh/write-file.ts';
import { createClientFromFlags } from './client.ts';

type Flags = Record<string, string | boolean | undefined>;

/** Grant ids become file names: nothing that could leave the directory. */
const GRANT_ID = /^[a-z0-9]{1,64}$/;
const MAX_KEY_FILE = 16_384;

const s = (v: string | boolean | undefined) => (typeof v === 'string' ? v : undefined);

/** The identity to certify: a public key line and the private key file `ssh -i` takes. */
interface Identity {
  publicKey: string;
  /** Set when the key pair was made here; written to `<dir>/<grant>`. */
  privateKey?: string;
  /** The private key file of a `--key` identity. */
  keyFile?: string;
}

/**
 * Reads `--key`: a public key file, or a private key file whose `.pub` sits beside it (only the
 * public key is read and sent). Throws `ERR_SSH_CLI_KEY_FILE`.
 */
function readKeyFlag(file: string): Identity {
  const fail = (why: string, cause?: unknown) =>
    new SshCliError('ERR_SSH_CLI_KEY_FILE', `--key ${file}: ${why}`, { cause });
  const read = (path: string) => {
    try {
      const text = readFileSync(path, 'utf8');
      if (text.length > MAX_KEY_FILE) throw fail('not an OpenSSH public key (too long)');
      return text;
    } catch (error) {
      if (error instanceof SshCliError) throw error;
      throw fail(`cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`, error);
    }
  };
  let text = read(file);
  let pubFile = file;
  if (text.includes('PRIVATE KEY')) {
    pubFile = `${file}.pub`;
    if (!existsSync(pubFile)) throw fail(`a private key without ${pubFile} beside it`);
    text = read(pubFile);
  }
  const line = text.trim().split('\n')[0] ?? '';
  try {
    parsePublicKeyLine(line);
  } catch (error) {
    if (!isSshCaError(error)) throw error;
    throw fail(`${error.message} (${error.code})`, error);
  }
  return { publicKey: line, keyFile: pubFile.endsWith('.pub') ? pubFile.slice(0, -4) : pubFile };
}

/** What is printed goes into a shell command line: every part must be plain. */
function checkAnswer(answer: SshCertificateAnswer): SshCertificateAnswer {
  const ok =
    typeof answer.certificate === 'string' &&
    /^[a-z0-9-]+-cert-v01@openssh\.com [A-Za-z0-9+/=]+( [\x20-\x7e]*)?$/.test(answer.certificate) &&
    Array.isArray(answer.principals) &&
    answer.principals.length > 0 &&
    answer.principals.every((p) => typeof p === 'string' && /^[A-Za-z0-9_][A-Za-z0-9._@-]*$/.test(p)) &&
    typeof answer.host === 'string' &&
    /^[A-Za-z0-9.:_-]+$/.test(answer.host) &&
    Number.isInteger(answer.port) &&
    typeof answer.target === 'string' &&
    /^[A-Za-z0-9._-]+$/.test(answer.target) &&
    typeof answer.valid_before === 'string' &&
    (answer.proxy === undefined ||
      (typeof answer.proxy.host === 'string' &&
        /^[A-Za-z0-9.:_-]+$/.test(answer.proxy.host) &&
        Number.isInteger(answer.proxy.port)));
  if (!ok)
    throw new SshCliError('ERR_SSH_CLI_ANSWER_INVALID', 'the broker answered with no usable certificate');
  return answer;
}

/** Quotes a path for a POSIX shell when it needs it. */
function shellQuote(text: string): string {
  return /^[A-Za-z0-9_./@:+=-]+$/.test(text) ? text : `'${text.replaceAll("'", `'\\''`)}'`;
}

/** Runs `warden ssh login <grant> [--dir D] [--key FILE] [--as user]`. */
export async function loginWithCertificate(positionals: string[], flags: Flags, io: Io): Promise<number> {
  const grantId = positionals[0];
  if (!grantId || positionals.length > 1) {
    throw new UsageError(
      'usage: warden ssh login <grant> [--dir ~/.ssh/warden] [--key FILE.pub] [--as user]',
    );
  }
  if (!GRANT_ID.test(grantId)) {
    throw new SshCliError('ERR_SSH_CLI_GRANT_ID', 'a grant id is 1-64 lowercase letters and digits');
  }
  const actor = s(flags.as) ?? io.env.WARDEN_USER;
  if (!actor) {
    // The broker certifies a key only for the grant's requester: say who that is before asking.
    throw new UsageError(
      `say whose grant ${grantId} is: --as <you> (or WARDEN_USER); only the grant's requester gets a certificate`,
    );
  }
  const client = createClientFromFlags({ url: s(flags.url), 'token-file': s(flags['token-file']) }, io);
  const dir = s(flags.dir) ?? join(io.env.HOME ?? homedir(), '.ssh', 'warden');
  const keyFlag = s(flags.key);
  let identity: Identity;
  if (keyFlag) identity = readKeyFlag(keyFlag);
  else {
    const generated = generateSubjectKey(`warden-${grantId}`);
    identity = {
      publicKey: formatPublicKeyLine(generated.publicKey.blob, generated.publicKey.comment),
      privateKey: generated.privateKey,
    };
  }
  const answer = checkAnswer(
    await client.call<SshCertificateAnswer>('POST', `/v1/requests/${grantId}/ssh-certificate`, {
      actor,
      public_key: identity.publicKey,
    }),
  );
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new SshCliError('ERR_SSH_CLI_WRITE_FAILED', `cannot create ${dir} (${reason})`, { cause: error });
  }
  const keyFile = identity.keyFile ?? join(dir, grantId);
  const certFile = join(dir, `${grantId}-cert.pub`);
  if (identity.privateKey) writeFileAtomically(keyFile, identity.privateKey, 0o600);
  writeFileAtomically(certFile, `${answer.certificate}\n`, 0o644);
  const account = answer.principals[0]!;
  const keyArgs = `-i ${shellQuote(keyFile)} -o CertificateFile=${shellQuote(certFile)}`;
  io.out(
    `certificate for grant ${grantId} (${answer.principals.join(', ')}), valid until ${answer.valid_before}`,
  );
  io.out(`  direct:        ssh ${keyArgs} -p ${answer.port} ${account}@${answer.host}`);
  if (answer.proxy) {
    io.out(
      `  through Warden: ssh ${keyArgs} -p ${answer.proxy.port} ${account}+${answer.target}@${answer.proxy.host}`,
    );
  }
  return ExitCode.Ok;
}
