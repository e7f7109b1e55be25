/**
 * One error root: every error class Warden exports extends {@link WardenError}, carries a code its
 * family declares, and tells configuration apart the one way; the code lists are exhaustive (no
 * code is raised that no family declares) and documented; authentication failures keep their
 * fixed, generic messages.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import * as bot from '../../bot/errors.ts';
import * as brokerApi from '../../broker/api/client.ts';
import * as ci from '../../broker/ci/errors.ts';
import * as broker from '../../broker/errors.ts';
import * as ciCli from '../../cli/ci/errors.ts';
import * as demo from '../../cli/demo/errors.ts';
import * as cli from '../../cli/errors.ts';
import * as psql from '../../cli/psql/errors.ts';
import * as sshCli from '../../cli/ssh/errors.ts';
import { formatConfigMessage, isConfigurationError, isWardenError, WardenError } from '../../lib/errors.ts';
import * as sshCa from '../../lib/ssh/errors.ts';
import * as sqlGuard from '../../proxy/guardrails/sql/errors.ts';
import * as masking from '../../proxy/masking/errors.ts';
import * as pgAuth from '../../proxy/pg/auth/errors.ts';
import * as pgProxy from '../../proxy/pg/errors.ts';
import * as protocol from '../../proxy/pg/protocol/errors.ts';
import * as sshProxy from '../../proxy/ssh/errors.ts';
import * as guardrail from '../../proxy/ssh/guardrails/errors.ts';
import * as recording from '../../proxy/ssh/recording/errors.ts';

const ROOT = join(import.meta.dirname, '../..');
const SOURCE_DIRS = ['lib', 'broker', 'bot', 'proxy', 'cli'];

/** Every source file (`.ts`) of the shipped folders, as a path relative to the repository. */
function sourceFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir)) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (entry.endsWith('.ts')) out.push(relative(ROOT, path));
    }
  };
  for (const dir of SOURCE_DIRS) walk(join(ROOT, dir));
  return out.sort();
}

type ErrorClass = abstract new (...args: never[]) => WardenError;

/** One family: its base class, its declared codes and the module that holds them. */
interface Family {
  module: string;
  exports: Record<string, unknown>;
  base: ErrorClass;
  codes: readonly string[];
}

const FAMILIES: Record<string, Family> = {
  broker: {
    module: 'broker/errors.ts',
    exports: broker,
    base: broker.BrokerError,
    codes: broker.BROKER_ERROR_CODES,
  },
  brokerApi: {
    module: 'broker/api/client.ts',
    exports: brokerApi,
    base: broker.BrokerError,
    codes: broker.BROKER_ERROR_CODES,
  },
  ci: { module: 'broker/ci/errors.ts', exports: ci, base: ci.CiError, codes: ci.CI_ERROR_CODES },
  sshCa: {
    module: 'lib/ssh/errors.ts',
    exports: sshCa,
    base: sshCa.SshCaError,
    codes: sshCa.SSH_CA_ERROR_CODES,
  },
  bot: { module: 'bot/errors.ts', exports: bot, base: bot.BotError, codes: bot.BOT_ERROR_CODES },
  pgProxy: {
    module: 'proxy/pg/errors.ts',
    exports: pgProxy,
    base: pgProxy.PgProxyError,
    codes: pgProxy.PG_PROXY_ERROR_CODES,
  },
  protocol: {
    module: 'proxy/pg/protocol/errors.ts',
    exports: protocol,
    base: protocol.ProtocolError,
    codes: protocol.PROTOCOL_ERROR_CODES,
  },
  pgAuth: {
    module: 'proxy/pg/auth/errors.ts',
    exports: pgAuth,
    base: pgAuth.PgAuthError,
    codes: pgAuth.PG_AUTH_ERROR_CODES,
  },
  sqlGuard: {
    module: 'proxy/guardrails/sql/errors.ts',
    exports: sqlGuard,
    base: sqlGuard.SqlGuardError,
    codes: sqlGuard.SQL_GUARD_ERROR_CODES,
  },
  masking: {
    module: 'proxy/masking/errors.ts',
    exports: masking,
    base: masking.MaskingError,
    codes: masking.MASKING_ERROR_CODES,
  },
  sshProxy: {
    module: 'proxy/ssh/errors.ts',
    exports: sshProxy,
    base: sshProxy.SshProxyError,
    codes: sshProxy.SSH_PROXY_ERROR_CODES,
  },
  guardrail: {
    module: 'proxy/ssh/guardrails/errors.ts',
    exports: guardrail,
    base: guardrail.GuardrailError,
    codes: guardrail.GUARDRAIL_ERROR_CODES,
  },
  recording: {
    module: 'proxy/ssh/recording/errors.ts',
    exports: recording,
    base: recording.RecordingError,
    codes: recording.RECORDING_ERROR_CODES,
  },
  cli: { module: 'cli/errors.ts', exports: cli, base: cli.UsageError, codes: cli.CLI_ERROR_CODES },
  sshCli: {
    module: 'cli/ssh/errors.ts',
    exports: sshCli,
    base: sshCli.SshCliError,
    codes: sshCli.SSH_CLI_ERROR_CODES,
  },
  psql: { module: 'cli/psql/errors.ts', exports: psql, base: psql.PsqlError, codes: psql.PSQL_ERROR_CODES },
  ciCli: {
    module: 'cli/ci/errors.ts',
    exports: ciCli,
    base: ciCli.CiCliError,
    codes: ciCli.CI_CLI_ERROR_CODES,
  },
  demo: { module: 'cli/demo/errors.ts', exports: demo, base: demo.DemoError, codes: demo.DEMO_ERROR_CODES },
};

/** One instance of every exported error class, built as its callers build it; `config` marks misconfiguration. */
const SAMPLES: Record<string, Record<string, { make: () => WardenError; config?: boolean }>> = {
  broker: {
    BrokerError: { make: () => new broker.BrokerError('ERR_LEVEL_UNKNOWN', 'no level') },
    ConfigError: { make: () => new broker.ConfigError('targets.db.levels', 'bad'), config: true },
    SecretError: { make: () => new broker.SecretError('targets.db.admin.password', 'not set'), config: true },
    InvalidInputError: {
      make: () => new broker.InvalidInputError('ERR_REQUEST_INVALID', 'bad', { details: { a: 1 } }),
    },
    PolicyDeniedError: { make: () => new broker.PolicyDeniedError('ERR_POLICY_DENIED', 'no') },
    NotFoundError: { make: () => new broker.NotFoundError('request', 'r1') },
    StateConflictError: { make: () => new broker.StateConflictError('already approved') },
    StoreMissingError: { make: () => new broker.StoreMissingError('no store at /x') },
    ForbiddenError: { make: () => new broker.ForbiddenError('ERR_FORBIDDEN', 'no') },
    ProviderError: { make: () => new broker.ProviderError('cannot mint', { cause: new Error('x') }) },
    AuthError: { make: () => new broker.AuthError('ERR_AUTH_INVALID') },
    VaultError: { make: () => new broker.VaultError('ERR_VAULT_SEALED', 'Vault is sealed', { status: 503 }) },
  },
  brokerApi: {
    BrokerApiError: {
      make: () => new brokerApi.BrokerApiError(404, 'ERR_NOT_FOUND', 'request r1 does not exist'),
    },
  },
  ci: {
    CiError: { make: () => new ci.CiError('ERR_CI_UNAVAILABLE') },
    CiTokenError: { make: () => new ci.CiTokenError('ERR_CI_TOKEN_EXPIRED', { details: { exp: 1 } }) },
    CiJwksError: { make: () => new ci.CiJwksError('ERR_CI_KEY_UNKNOWN') },
    CiRuleError: { make: () => new ci.CiRuleError('ERR_CI_NO_RULE') },
    CiExchangeError: { make: () => new ci.CiExchangeError('ERR_CI_GRANT_FAILED') },
    CiRateLimitError: {
      make: () => new ci.CiRateLimitError({ scope: 'subject', key: 's', retryAfterMs: 1 }),
    },
  },
  sshCa: {
    SshCaError: { make: () => new sshCa.SshCaError('ERR_SSH_CA_KRL_INVALID', 'bad') },
    SshKeyError: { make: () => new sshCa.SshKeyError('ERR_SSH_CA_KEY_TYPE', 'bad') },
    SshCertificateInputError: {
      make: () => new sshCa.SshCertificateInputError('ERR_SSH_CA_INPUT_INVALID', 'bad'),
    },
    SshCertificateRejectedError: {
      make: () => new sshCa.SshCertificateRejectedError('ERR_SSH_CA_CERT_EXPIRED', 'expired'),
    },
  },
  bot: {
    BotError: { make: () => new bot.BotError('ERR_BOT_NO_CHANNEL', 'no channel') },
    BotConfigError: { make: () => new bot.BotConfigError('chat.slack.listen', 'bad'), config: true },
    UsageError: { make: () => new bot.UsageError('usage: /access ...') },
    UnknownUserError: { make: () => new bot.UnknownUserError('U1') },
    SignatureError: { make: () => new bot.SignatureError('ERR_BOT_SIGNATURE', 'bad mac') },
    SlackApiError: { make: () => new bot.SlackApiError('ERR_BOT_SLACK_API', 'failed') },
    TeamsApiError: { make: () => new bot.TeamsApiError('failed') },
    UnknownTeamsUserError: { make: () => new bot.UnknownTeamsUserError('an admin', 'x') },
  },
  pgProxy: {
    PgProxyError: { make: () => new pgProxy.PgProxyError('ERR_PGPROXY_UPSTREAM', 'down') },
    PgProxyConfigError: {
      make: () => new pgProxy.PgProxyConfigError('targets.db.proxy.tls', 'bad'),
      config: true,
    },
    PgProxyAuthError: { make: () => new pgProxy.PgProxyAuthError('alice') },
    PgStartupParameterError: { make: () => new pgProxy.PgStartupParameterError('role refused') },
  },
  protocol: {
    ProtocolError: { make: () => new protocol.ProtocolError('ERR_PG_PROTOCOL_MALFORMED', 'bad') },
    MessageTooLongError: { make: () => new protocol.MessageTooLongError('message', 10, 5) },
    MalformedMessageError: { make: () => new protocol.MalformedMessageError('bad') },
    UnknownMessageError: { make: () => new protocol.UnknownMessageError('bad') },
    UnsupportedVersionError: { make: () => new protocol.UnsupportedVersionError(2, 0) },
    UnexpectedDataError: { make: () => new protocol.UnexpectedDataError('bad') },
  },
  pgAuth: {
    PgAuthError: { make: () => new pgAuth.PgAuthError('ERR_PG_AUTH_NONCE', 'bad') },
    ScramMalformedError: { make: () => new pgAuth.ScramMalformedError('bad') },
    ScramChannelBindingError: { make: () => new pgAuth.ScramChannelBindingError('no') },
    ScramAuthenticationFailedError: { make: () => new pgAuth.ScramAuthenticationFailedError() },
  },
  sqlGuard: {
    SqlGuardError: { make: () => new sqlGuard.SqlGuardError('ERR_SQLGUARD_UNPARSEABLE', 'bad') },
    SqlGuardConfigError: {
      make: () => new sqlGuard.SqlGuardConfigError('guardrails.rules.0', 'bad'),
      config: true,
    },
    SqlUnparseableError: { make: () => new sqlGuard.SqlUnparseableError('syntax error') },
  },
  masking: {
    MaskingError: { make: () => new masking.MaskingError('ERR_MASKING_INPUT', 'bad') },
    MaskingConfigError: {
      make: () => new masking.MaskingConfigError('masking.key', 'short', 'ERR_MASKING_KEY'),
      config: true,
    },
    MaskingInputError: { make: () => new masking.MaskingInputError('not a string') },
  },
  sshProxy: {
    SshProxyError: { make: () => new sshProxy.SshProxyError('ERR_SSH_PROXY_UPSTREAM', 'down') },
    SshProxyConfigError: {
      make: () => new sshProxy.SshProxyConfigError('targets.web-1', 'no pin'),
      config: true,
    },
  },
  guardrail: {
    GuardrailError: { make: () => new guardrail.GuardrailError('ERR_GUARDRAIL_CONFIG', 'bad') },
    GuardrailConfigError: {
      make: () => new guardrail.GuardrailConfigError('targets.web-1.guardrails', 'bad'),
      config: true,
    },
  },
  recording: {
    RecordingError: {
      make: () => new recording.RecordingError('ERR_RECORDING_EVENT', 'bad', { details: { line: 2 } }),
    },
  },
  cli: { UsageError: { make: () => new cli.UsageError('usage: warden ...') } },
  sshCli: { SshCliError: { make: () => new sshCli.SshCliError('ERR_SSH_CLI_GRANT_ID', 'bad') } },
  psql: { PsqlError: { make: () => new psql.PsqlError('ERR_PSQL_NO_PASSWORD', 'none') } },
  ciCli: { CiCliError: { make: () => new ciCli.CiCliError('ERR_CI_FORMAT_INVALID', 'bad') } },
  demo: { DemoError: { make: () => new demo.DemoError('ERR_DEMO_NO_DATABASE', 'none') } },
};

/** Error classes a module exports (functions whose prototype is an Error). */
function exportedErrorClasses(exports: Record<string, unknown>): string[] {
  return Object.entries(exports)
    .filter(([, value]) => typeof value === 'function' && value.prototype instanceof Error)
    .map(([name]) => name)
    .sort();
}

describe('WardenError, the root', () => {
  it('carries code, message, details, cause and a non-enumerable name', () => {
    const cause = new Error('low level');
    const error = new WardenError('ERR_TEST_THING', 'it failed', { details: { limit: 3 }, cause });
    assert.equal(error.code, 'ERR_TEST_THING');
    assert.equal(error.message, 'it failed');
    assert.deepEqual(error.details, { limit: 3 });
    assert.equal(error.cause, cause);
    assert.equal(error.name, 'WardenError');
    assert.equal(Object.keys(error).includes('name'), false);
    assert.equal(error.configPath, undefined);
    assert.equal(isConfigurationError(error), false);
    assert.ok(error instanceof Error);
    assert.deepEqual(new WardenError('ERR_TEST_THING', 'x').details, {});
  });

  it('a configuration error is told by its configPath, even an empty one (unreadable file)', () => {
    assert.ok(isConfigurationError(new WardenError('ERR_TEST_CONFIG', 'x', { configPath: 'a.b' })));
    assert.ok(isConfigurationError(new broker.ConfigError('', 'cannot read warden.yaml: ENOENT')));
    // A foreign error with the same shape is not one of ours.
    assert.equal(
      isConfigurationError(Object.assign(new Error('x'), { configPath: 'a', code: 'ERR_X' })),
      false,
    );
    assert.equal(isConfigurationError(undefined), false);
    assert.equal(isWardenError(new broker.NotFoundError('request', 'r'), 'ERR_NOT_FOUND'), true);
    assert.equal(isWardenError(new broker.NotFoundError('request', 'r'), 'ERR_FORBIDDEN'), false);
  });

  it('formats a configuration message with its key first', () => {
    assert.equal(formatConfigMessage('targets.db', 'bad'), 'targets.db: bad');
    assert.equal(formatConfigMessage('', 'bad'), 'bad');
  });

  it('lib/errors.ts depends on nothing of Warden', () => {
    const text = readFileSync(join(ROOT, 'lib/errors.ts'), 'utf8');
    assert.deepEqual(text.match(/^import .*$/gm) ?? [], []);
  });
});

describe('every error family', () => {
  it('the sample table covers every exported error class, and no module outside it exports one', () => {
    for (const [key, family] of Object.entries(FAMILIES)) {
      const covered = Object.keys(SAMPLES[key] ?? {}).sort();
      const exported = exportedErrorClasses(family.exports);
      assert.deepEqual(covered, exported, `${family.module}: exported error classes`);
    }
    const modules = new Set(Object.values(FAMILIES).map((f) => f.module));
    for (const file of sourceFiles()) {
      if (file === 'lib/errors.ts') continue;
      const text = readFileSync(join(ROOT, file), 'utf8');
      if (/^export class \w+Error\b/m.test(text) || /^export class \w+ extends \w*Error\b/m.test(text)) {
        assert.ok(modules.has(file), `${file} exports an error class: add its family here`);
      }
    }
  });

  it('no class extends Error directly except the root', () => {
    for (const file of sourceFiles()) {
      if (file === 'lib/errors.ts') continue;
      const text = readFileSync(join(ROOT, file), 'utf8');
      assert.doesNotMatch(
        text,
        /\bextends (Error|TypeError|RangeError)\b/,
        `${file} starts a new error root`,
      );
    }
  });

  for (const [key, family] of Object.entries(FAMILIES)) {
    it(`${family.module}: each class is a WardenError of its family, with a declared code`, () => {
      for (const [name, sample] of Object.entries(SAMPLES[key]!)) {
        const error = sample.make();
        assert.ok(error instanceof WardenError, `${name} extends WardenError`);
        assert.ok(error instanceof family.base, `${name} extends ${family.base.name}`);
        assert.ok(error instanceof (family.exports[name] as ErrorClass), name);
        assert.equal(error.name, name);
        assert.match(error.code, /^ERR_[A-Z0-9]+(_[A-Z0-9]+)*$/, `${name}: code ${error.code}`);
        assert.ok(family.codes.includes(error.code), `${name}: ${error.code} is declared by its family`);
        assert.ok(error.message.length > 0, `${name} has a message`);
        assert.equal(typeof error.details, 'object');
        assert.equal(isConfigurationError(error), sample.config === true, `${name}: a configuration error?`);
        if (sample.config)
          assert.ok(error.message.startsWith(`${error.configPath}: `), `${name} names its key`);
      }
    });
  }

  it('codes are unique across families, so a code names one family', () => {
    const seen = new Map<string, string>();
    for (const [key, family] of Object.entries(FAMILIES)) {
      if (key === 'brokerApi') continue;
      for (const code of family.codes) {
        assert.equal(
          seen.get(code),
          undefined,
          `${code} is declared by ${seen.get(code)} and ${family.module}`,
        );
        seen.set(code, family.module);
      }
    }
  });

  it('the code lists are exhaustive: every ERR_ code the source names is declared by a family', () => {
    const declared = new Set(Object.values(FAMILIES).flatMap((f) => [...f.codes]));
    // Codes that are not ours to declare: Node's and jose's, and the API's answer for an
    // unexpected error (which no error class carries, on purpose).
    const foreign = new Set([
      'ERR_PARSE_ARGS', // node:util parseArgs, by prefix
      'ERR_TLS_CERT_ALTNAME_INVALID', // node:tls
      'ERR_JWS_SIGNATURE_VERIFICATION_FAILED', // jose
      'ERR_INTERNAL', // broker API: 500 internal error
    ]);
    const undeclared = new Set<string>();
    for (const file of sourceFiles()) {
      const text = readFileSync(join(ROOT, file), 'utf8');
      for (const [, code] of text.matchAll(/['"`](ERR_[A-Z0-9_]*[A-Z0-9])['"`]/g)) {
        if (!declared.has(code!) && !foreign.has(code!)) undeclared.add(`${code} (${file})`);
      }
    }
    assert.deepEqual([...undeclared], []);
  });

  it('docs/errors.md lists every code of every family', () => {
    const doc = readFileSync(join(ROOT, 'docs/errors.md'), 'utf8');
    const missing = Object.values(FAMILIES)
      .flatMap((f) => [...f.codes])
      .filter((code) => !doc.includes(`\`${code}\``));
    assert.deepEqual([...new Set(missing)], []);
  });
});

describe('authentication failures keep fixed, generic messages', () => {
  it('broker API tokens', () => {
    assert.equal(new broker.AuthError('ERR_AUTH_INVALID').message, 'invalid credentials');
    assert.equal(new broker.AuthError('ERR_AUTH_REQUIRED').message, 'authentication required');
  });

  it('Slack signatures: the reason goes to the debug log only', () => {
    for (const code of ['ERR_BOT_SIGNATURE', 'ERR_BOT_REPLAY'] as const) {
      const error = new bot.SignatureError(code, 'v0=deadbeef does not match');
      assert.equal(error.message, 'request refused');
      assert.equal(error.reason, 'v0=deadbeef does not match');
    }
  });

  it('Postgres proxy logins and SCRAM proofs', () => {
    assert.equal(new pgAuth.ScramAuthenticationFailedError().message, 'password authentication failed');
    // The user name is the client's own input (as PostgreSQL says it), capped; nothing else is told.
    assert.equal(
      new pgProxy.PgProxyAuthError('alice').message,
      'password authentication failed for user "alice"',
    );
    assert.equal(
      new pgProxy.PgProxyAuthError('x'.repeat(500)).message,
      `password authentication failed for user "${'x'.repeat(63)}"`,
    );
  });

  it('CI tokens: one fixed message per code, whatever the details', () => {
    for (const code of ci.CI_ERROR_CODES) {
      const plain = new ci.CiTokenError(code);
      const detailed = new ci.CiTokenError(code, {
        details: { kid: 'kid-123', iss: 'https://evil.example' },
      });
      assert.equal(detailed.message, plain.message, code);
      assert.doesNotMatch(detailed.message, /kid-123|evil/, code);
    }
  });
});
