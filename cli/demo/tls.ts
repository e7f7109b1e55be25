/** Throwaway TLS certificates (the demo's proxy listener, tests), made with the machine's `openssl`. */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/**
 * Writes a self-signed certificate for `localhost` and 127.0.0.1 (ECDSA P-256, valid 2 days) and
 * its key into `dir`; `undefined` when `openssl` is not available.
 */
export function createSelfSignedCertificate(dir: string): { cert: string; key: string } | undefined {
  const cert = join(dir, 'proxy-cert.pem');
  const key = join(dir, 'proxy-key.pem');
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
        '-days',
        '2',
        '-keyout',
        key,
        '-out',
        cert,
      ],
      { stdio: 'pipe', timeout: 30_000 },
    );
  } catch {
    return undefined;
  }
  return { cert, key };
}
