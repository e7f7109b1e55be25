import { createHash, createHmac, pbkdf2, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const pbkdf2Async = promisify(pbkdf2);

/**
 * Builds the SCRAM-SHA-256 verifier PostgreSQL stores for a password. Sending the verifier in
 * `CREATE ROLE ... PASSWORD` instead of the password keeps the cleartext out of the server's
 * statement log and `pg_stat_statements`. PBKDF2 runs on libuv's thread pool, so minting many
 * roles at once does not stall the event loop.
 */
export async function buildScramVerifier(
  password: string,
  iterations = 4096,
  salt: Buffer = randomBytes(16),
): Promise<string> {
  const salted = await pbkdf2Async(password.normalize('NFKC'), salt, iterations, 32, 'sha256');
  const clientKey = createHmac('sha256', salted).update('Client Key').digest();
  const storedKey = createHash('sha256').update(clientKey).digest();
  const serverKey = createHmac('sha256', salted).update('Server Key').digest();
  return `SCRAM-SHA-256$${iterations}:${salt.toString('base64')}$${storedKey.toString('base64')}:${serverKey.toString('base64')}`;
}
