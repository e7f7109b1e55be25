import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { createScramVerifier, parseScramVerifier } from '../../../../proxy/pg/auth/scram.ts';
import { type PgCluster, startPgCluster } from '../../../helpers/pg-cluster.ts';
import { loginWithScram } from '../../../helpers/pg-scram-login.ts';

const roles: [string, string][] = [
  ['warden_ascii', 'pencil'],
  ['warden_utf8', 'pässwörd ﬁ'],
  ['warden_mapped', 'I\u00ADX\u00A0y'],
  ['warden_prohibited', 'ü\u0007'],
];

describe('SCRAM-SHA-256 against a real PostgreSQL 15', () => {
  let cluster: PgCluster;
  let admin: pg.Client;

  before(async () => {
    cluster = await startPgCluster();
    admin = new pg.Client({ connectionString: cluster.url });
    await admin.connect();
    for (const [role, password] of roles) {
      await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD ${admin.escapeLiteral(password)}`);
    }
  });

  after(async () => {
    await admin?.end();
    await cluster?.stop();
  });

  for (const [role, password] of roles) {
    it(`computes the same verifier as PostgreSQL for ${role}`, async () => {
      const { rows } = await admin.query('SELECT rolpassword FROM pg_authid WHERE rolname = $1', [role]);
      const stored = parseScramVerifier(rows[0].rolpassword);
      const ours = createScramVerifier(password, { salt: stored.salt, iterations: stored.iterations });
      assert.deepEqual(ours, stored);
    });

    it(`logs in as ${role} with our SCRAM client and verifies the server`, async () => {
      const result = await loginWithScram({ port: cluster.port, user: role, database: 'postgres', password });
      assert.deepEqual(result.ok && { ok: true, serverVerified: result.serverVerified }, {
        ok: true,
        serverVerified: true,
      });
      assert.equal(result.ok && result.parameters.get('server_version')?.split('.')[0], '15');
    });
  }

  it('is refused with SQLSTATE 28P01 for a wrong password', async () => {
    const result = await loginWithScram({
      port: cluster.port,
      user: 'warden_ascii',
      database: 'postgres',
      password: 'pen',
    });
    assert.equal(result.ok, false);
    assert.equal(!result.ok && result.sqlState, '28P01');
  });
});
