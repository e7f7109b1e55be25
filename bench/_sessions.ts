/** Live Postgres sessions the revocation benchmarks open before expiry, and when each was ended. */
import pg from 'pg';
import type { PostgresCredential } from '../broker/providers/postgres/credential.ts';

/**
 * Opens one session per credential; `ended` gets, by user, the time the server ended each (an
 * `error` or `end` event), for the benchmarks' "sessions ended" figure.
 */
export async function openWatchedSessions(
  credentials: readonly PostgresCredential[],
): Promise<{ clients: pg.Client[]; ended: Map<string, number> }> {
  const ended = new Map<string, number>();
  const clients: pg.Client[] = [];
  for (const credential of credentials) {
    const client = new pg.Client({ ...credential, password: credential.password.reveal() });
    await client.connect();
    const mark = () => {
      if (!ended.has(credential.user)) ended.set(credential.user, Date.now());
    };
    client.on('error', mark);
    client.on('end', mark);
    clients.push(client);
  }
  return { clients, ended };
}
