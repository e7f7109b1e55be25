/** TLS settings towards a Postgres target: defaults, secret resolution, Node/pg options, config errors. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { PeerCertificate } from 'node:tls';
import { inspect } from 'node:util';
import { parseConfig } from '../../../../broker/config/load.ts';
import { Secret } from '../../../../broker/config/secrets.ts';
import {
  buildPgSslOption,
  buildTlsConnectOptions,
  isLoopbackHost,
  resolvePgTls,
  selectDefaultTlsMode,
} from '../../../../broker/providers/postgres/tls.ts';

const dir = mkdtempSync(join(tmpdir(), 'warden-pgtls-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const caFile = join(dir, 'ca.pem');
writeFileSync(caFile, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n');

function target(tls?: Record<string, unknown>, ssl?: boolean) {
  return {
    kind: 'postgres',
    admin: {
      host: 'db.internal',
      database: 'app',
      user: 'warden',
      password: { env: 'PW' },
      ...(ssl ? { ssl } : {}),
    },
    levels: { read: { grants: ['select'] } },
    ...(tls ? { tls } : {}),
  };
}

function parseTarget(tls?: Record<string, unknown>, ssl?: boolean) {
  const parsed = parseConfig({ targets: { 'prod-db': target(tls, ssl) } }, 'test').targets['prod-db']!;
  if (parsed.kind !== 'postgres') throw new Error('a postgres target');
  return parsed;
}

/** A certificate shape `tls.checkServerIdentity` reads. */
const cert = (altnames: string) =>
  ({ subject: { CN: 'x' }, subjectaltname: altnames }) as unknown as PeerCertificate;

describe('pg upstream TLS settings', () => {
  const loopback: [string, boolean][] = [
    ['127.0.0.1', true],
    ['127.8.9.10', true],
    ['::1', true],
    ['[::1]', true],
    ['localhost', true],
    ['LocalHost', true],
    ['db.localhost', true],
    ['10.0.0.1', false],
    ['128.0.0.1', false],
    ['db.internal', false],
    ['localhost.evil.example', false],
    ['127.0.0.1.nip.io', false],
  ];
  for (const [host, expected] of loopback) {
    it(`${host} is ${expected ? '' : 'not '}loopback, default mode ${expected ? 'disable' : 'verify-full'}`, () => {
      assert.equal(isLoopbackHost(host), expected);
      assert.equal(selectDefaultTlsMode(host), expected ? 'disable' : 'verify-full');
    });
  }

  it('defaults per host, reads the legacy admin.ssl as verify-full, resolves secrets by reference', async () => {
    assert.equal((await resolvePgTls('prod-db', parseTarget(), 'db.internal', {})).mode, 'verify-full');
    assert.equal((await resolvePgTls('prod-db', parseTarget(), '127.0.0.1', {})).mode, 'disable');
    assert.equal(
      (await resolvePgTls('prod-db', parseTarget(undefined, true), '127.0.0.1', {})).mode,
      'verify-full',
    );
    assert.equal((await resolvePgTls('prod-db', parseTarget({}), '127.0.0.1', {})).mode, 'disable');
    const settings = await resolvePgTls(
      'prod-db',
      parseTarget({
        mode: 'verify-full',
        ca: { file: caFile },
        cert: { env: 'CLIENT_CERT' },
        key: { env: 'CLIENT_KEY' },
        servername: 'db.example.com',
      }),
      '10.1.2.3',
      { CLIENT_CERT: 'cert-pem', CLIENT_KEY: 'key-pem' },
    );
    assert.equal(settings.ca, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----');
    assert.equal(settings.cert, 'cert-pem');
    assert.ok(settings.key instanceof Secret);
    assert.doesNotMatch(inspect(settings), /key-pem/, 'the client key never prints');
    assert.equal(settings.servername, 'db.example.com');
  });

  it('fails at start-up naming the key when a referenced secret is missing', async () => {
    await assert.rejects(
      () =>
        resolvePgTls(
          'prod-db',
          parseTarget({ mode: 'verify-ca', ca: { file: join(dir, 'nope.pem') } }),
          'h',
          {},
        ),
      (error: Error & { code?: string }) =>
        error.code === 'ERR_CONFIG_SECRET' && error.message.startsWith('targets.prod-db.tls.ca:'),
    );
    await assert.rejects(
      () => resolvePgTls('prod-db', parseTarget({ cert: { env: 'C' }, key: { env: 'K' } }), 'h', { C: 'x' }),
      (error: Error & { code?: string }) =>
        error.code === 'ERR_CONFIG_SECRET' && error.message.startsWith('targets.prod-db.tls.key:'),
    );
  });

  it('maps each mode to tls.connect and pg options', () => {
    assert.equal(buildTlsConnectOptions({ mode: 'disable' }, 'db.internal'), undefined);
    assert.equal(buildPgSslOption({ mode: 'disable' }, 'db.internal'), false);
    const require = buildTlsConnectOptions({ mode: 'require' }, 'db.internal')!;
    assert.equal(require.rejectUnauthorized, false);
    assert.equal(require.checkServerIdentity!('db.internal', cert('DNS:other.example')), undefined);
    const ca = buildTlsConnectOptions({ mode: 'verify-ca', ca: 'PEM' }, 'db.internal')!;
    assert.equal(ca.rejectUnauthorized, true);
    assert.equal(ca.ca, 'PEM');
    assert.equal(ca.checkServerIdentity!('db.internal', cert('DNS:other.example')), undefined);
    const full = buildTlsConnectOptions({ mode: 'verify-full' }, 'db.internal')!;
    assert.equal(full.rejectUnauthorized, true);
    assert.equal(full.servername, 'db.internal');
    assert.equal(full.checkServerIdentity!('db.internal', cert('DNS:db.internal')), undefined);
    assert.ok(full.checkServerIdentity!('db.internal', cert('DNS:other.example')) instanceof Error);
    const named = buildTlsConnectOptions({ mode: 'verify-full', servername: 'db.example.com' }, '10.1.2.3')!;
    assert.equal(named.servername, 'db.example.com');
    // pg passes its own host as the first argument: the configured name wins.
    assert.equal(named.checkServerIdentity!('10.1.2.3', cert('DNS:db.example.com')), undefined);
    assert.ok(named.checkServerIdentity!('10.1.2.3', cert('IP Address:10.1.2.3')) instanceof Error);
    const ip = buildTlsConnectOptions({ mode: 'verify-full' }, '127.0.0.1')!;
    assert.equal(ip.servername, undefined, 'no SNI for an IP address');
    assert.equal(ip.checkServerIdentity!('127.0.0.1', cert('IP Address:127.0.0.1')), undefined);
    const client = buildTlsConnectOptions({ mode: 'require', cert: 'C', key: new Secret('K') }, 'h')!;
    assert.equal(client.cert, 'C');
    assert.equal(client.key, 'K');
  });

  const bad: [string, Record<string, unknown>, RegExp, boolean?][] = [
    ['unknown mode', { mode: 'prefer' }, /^targets\.prod-db\.tls\.mode: mode is one of disable, require/],
    ['inline CA', { mode: 'verify-ca', ca: 'PEM' }, /^targets\.prod-db\.tls\.ca: secrets are referenced/],
    ['cert without key', { cert: { file: '/c' } }, /^targets\.prod-db\.tls\.key: give cert and key together/],
    ['key without cert', { key: { file: '/k' } }, /^targets\.prod-db\.tls\.cert: give cert and key together/],
    [
      'ca under require',
      { mode: 'require', ca: { file: '/c' } },
      /^targets\.prod-db\.tls\.ca: ca is only checked/,
    ],
    ['servername under disable', { mode: 'disable', servername: 'x' }, /^targets\.prod-db\.tls\.servername:/],
    ['unknown key', { mode: 'require', sslmode: 'x' }, /^targets\.prod-db\.tls/],
    [
      'tls with admin.ssl',
      { mode: 'require' },
      /^targets\.prod-db\.admin\.ssl: admin\.ssl and tls both set/,
      true,
    ],
  ];
  for (const [name, tls, message, ssl] of bad) {
    it(`refuses ${name}, naming the key`, () => {
      assert.throws(
        () => parseConfig({ targets: { 'prod-db': target(tls, ssl) } }, 'test'),
        (error: Error & { code?: string }) =>
          error.code === 'ERR_CONFIG_INVALID' && message.test(error.message),
      );
    });
  }
});
