/**
 * What the revocation benchmarks share: grants minted to expire within the same second, and the
 * live Postgres sessions they open before expiry, with when each was ended.
 */
import pg from 'pg';
import type { AccessRequest } from '../broker/model.ts';
import type { PostgresCredential } from '../broker/providers/postgres/credential.ts';
import type { Broker } from '../broker/requests/broker.ts';

/**
 * Mints `count` grants on `target` for carol, `concurrency` at a time, the i-th expiring at
 * `expiryBase + i/count` seconds, so all expire within one second. Returns each active grant with
 * its minting time in ms; throws on a grant that is not active, or when minting ran into the
 * last five seconds before `expiryBase` (the lead time is too short).
 */
export async function mintGrantsExpiringTogether(
  broker: Broker,
  options: { target: string; count: number; concurrency: number; expiryBase: number },
): Promise<{ grant: AccessRequest; ms: number }[]> {
  const { target, count, concurrency, expiryBase } = options;
  const minted: { grant: AccessRequest; ms: number }[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        const expiresAt = expiryBase + Math.floor((i / count) * 1000);
        const started = performance.now();
        const grant = await broker.request({
          requester: 'carol',
          target,
          duration: expiresAt - Date.now(),
          reason: `bench ${i}`,
          source: 'api',
        });
        const ms = performance.now() - started;
        if (grant.state !== 'active') throw new Error(`grant ${i} is ${grant.state}: ${grant.error}`);
        minted.push({ grant, ms });
      }
    }),
  );
  if (Date.now() > expiryBase - 5_000) throw new Error('minting took longer than the lead time; raise it');
  return minted;
}

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
