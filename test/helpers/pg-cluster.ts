/** Tests and benchmarks start real PostgreSQL servers with the same code the demo uses. */
export {
  createDatabase,
  execSql,
  freePort,
  type PgCluster,
  startPgCluster,
} from '../../cli/demo/local-postgres.ts';
