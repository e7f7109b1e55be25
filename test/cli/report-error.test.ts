/**
 * The CLI's edge: one translation of errors into exit codes for every family (usage 2,
 * configuration 3, audit tampered 4, any other refusal or failure 1), and what it prints.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BotConfigError, BotError } from '../../bot/errors.ts';
import { BrokerApiError } from '../../broker/api/client.ts';
import { CiTokenError } from '../../broker/ci/errors.ts';
import { BrokerError, ConfigError, PolicyDeniedError, SecretError } from '../../broker/errors.ts';
import { UsageError } from '../../cli/errors.ts';
import { reportError } from '../../cli/main.ts';
import { ExitCode } from '../../cli/output.ts';
import { SqlGuardConfigError } from '../../proxy/guardrails/sql/errors.ts';
import { MaskingConfigError } from '../../proxy/masking/errors.ts';
import { PgProxyConfigError } from '../../proxy/pg/errors.ts';
import { SshProxyConfigError, SshProxyError } from '../../proxy/ssh/errors.ts';
import { GuardrailConfigError } from '../../proxy/ssh/guardrails/errors.ts';

function report(error: unknown): { code: ExitCode; lines: string[] } {
  const lines: string[] = [];
  const code = reportError(error, { err: (line) => lines.push(line) });
  return { code, lines };
}

describe('reportError (cli/main.ts)', () => {
  const table: [string, unknown, ExitCode][] = [
    ['a usage error', new UsageError('unknown command "x"'), ExitCode.Usage],
    [
      'a parseArgs error',
      Object.assign(new TypeError('Unknown option'), { code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION' }),
      ExitCode.Usage,
    ],
    ['broker ConfigError', new ConfigError('broker.listen', 'bad'), ExitCode.Config],
    [
      'broker ConfigError of an unreadable file',
      new ConfigError('', 'cannot read x.yaml: ENOENT'),
      ExitCode.Config,
    ],
    ['broker SecretError', new SecretError('broker.store.url', 'not set'), ExitCode.Config],
    ['bot config', new BotConfigError('chat.slack.listen', 'bad'), ExitCode.Config],
    ['pg proxy config', new PgProxyConfigError('targets.db.proxy.tls', 'bad'), ExitCode.Config],
    [
      'masking config',
      new MaskingConfigError('targets.db.proxy.masking.key', 'short', 'ERR_MASKING_KEY'),
      ExitCode.Config,
    ],
    [
      'SQL guardrails config',
      new SqlGuardConfigError('targets.db.proxy.guardrails.rules.0', 'bad'),
      ExitCode.Config,
    ],
    ['SSH guardrails config', new GuardrailConfigError('targets.web.guardrails', 'bad'), ExitCode.Config],
    ['SSH proxy config', new SshProxyConfigError('targets.web', 'no pin'), ExitCode.Config],
    [
      'a broker answering with a configuration code',
      new BrokerApiError(400, 'ERR_CONFIG_SECRET', 'targets.db.admin.password: not set', {
        path: 'targets.db.admin.password',
      }),
      ExitCode.Config,
    ],
    [
      'the audit log tampered',
      new BrokerError('ERR_AUDIT_TAMPERED', 'entry 3 was changed'),
      ExitCode.Tampered,
    ],
    ['a policy refusal', new PolicyDeniedError('ERR_POLICY_DENIED', 'no rule'), ExitCode.Refused],
    ['a broker answer that is a refusal', new BrokerApiError(403, 'ERR_FORBIDDEN', 'no'), ExitCode.Refused],
    [
      'a bot error that is not configuration',
      new BotError('ERR_BOT_NO_CHANNEL', 'no channel'),
      ExitCode.Refused,
    ],
    ['a CI refusal', new CiTokenError('ERR_CI_TOKEN_EXPIRED'), ExitCode.Refused],
    ['an SSH proxy failure', new SshProxyError('ERR_SSH_PROXY_UPSTREAM', 'down'), ExitCode.Refused],
    ['a foreign error', new Error('EACCES'), ExitCode.Refused],
    ['a thrown string', 'boom', ExitCode.Refused],
  ];
  for (const [name, error, expected] of table) {
    it(`${name} exits ${expected}`, () => assert.equal(report(error).code, expected));
  }

  it('prints Warden errors with their code, others with their message only', () => {
    assert.deepEqual(report(new ConfigError('broker.listen', 'bad')).lines, [
      'warden: broker.listen: bad (ERR_CONFIG_INVALID)',
    ]);
    assert.deepEqual(report(new UsageError('try warden help')).lines, ['warden: try warden help']);
    assert.deepEqual(report(new Error('EACCES')).lines, ['warden: EACCES']);
  });
});
