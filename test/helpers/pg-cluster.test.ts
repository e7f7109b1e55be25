import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createDatabase, execSql, type PgCluster, startPgCluster } from './pg-cluster.ts';

describe('pg-cluster helper', () => {
  let cluster: PgCluster;
  before(async () => {
    cluster = await startPgCluster();
  });
  after(() => cluster.stop());
  it('serves a real PostgreSQL 15 over TCP with SCRAM', async () => {
    const db = await createDatabase(cluster);
    const [res] = await execSql(cluster, db, 'SHOW server_version_num');
    assert.match(String(res!.rows[0].server_version_num), /^15/);
  });
});
