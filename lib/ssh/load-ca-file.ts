/** The IO shell of the CA: reads the CA private key from a file. */
import { readFile } from 'node:fs/promises';
import { SshKeyError } from './errors.ts';
import { loadCa, type SshCa } from './keys.ts';

/**
 * Reads an unencrypted OpenSSH or PKCS#8 PEM Ed25519 private key from `path`. Throws
 * `ERR_SSH_CA_KEY_INVALID` naming the path when it cannot be read, and the errors of {@link loadCa}.
 */
export async function loadCaFile(path: string, comment?: string): Promise<SshCa> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new SshKeyError('ERR_SSH_CA_KEY_INVALID', `cannot read the SSH CA key file ${path}`, {
      details: { path },
      cause,
    });
  }
  return loadCa(text, comment);
}
