/**
 * `warden request [--wait] | credential | approve | deny | cancel | revoke | extend | grants | show`:
 * through the broker API.
 */
import type { ApiRequest } from '../../broker/api/types.ts';
import { UsageError } from '../errors.ts';
import type { Io } from '../output.ts';
import { ExitCode } from '../output.ts';
import { createClientFromFlags } from './client.ts';

type Flags = Record<string, string | boolean | undefined>;

const s = (v: string | boolean | undefined) => (typeof v === 'string' ? v : undefined);

/** What the API answers when it hands over a credential (`credential_text` is the kind's own text). */
type CredentialAnswer = {
  request: ApiRequest;
  credential?: Record<string, unknown>;
  credential_text?: string;
};

/** How often `--wait` re-reads the request (ms); the decision comes from a person, so seconds are fine. */
const WAIT_POLL_MS = 1_000;

function describe(r: ApiRequest): string {
  const until = r.expires ? ` until ${r.expires}` : '';
  return `${r.id}  ${r.state.padEnd(17)} ${r.requester} → ${r.target}:${r.level}${until}  ${r.reason}`;
}

export async function runRequestCommand(
  verb: string,
  positionals: string[],
  flags: Flags,
  io: Io,
): Promise<number> {
  const client = createClientFromFlags({ url: s(flags.url), 'token-file': s(flags['token-file']) }, io);
  const actor = s(flags.as) ?? io.env.WARDEN_USER;
  const json = flags.json === true;
  const print = (payload: { request: ApiRequest } & Record<string, unknown>) => {
    if (json) io.out(JSON.stringify(payload));
    else io.out(describe(payload.request));
  };
  const id = () => {
    const value = positionals[0];
    if (!value) throw new UsageError(`usage: warden ${verb} <request-id>`);
    return value;
  };
  const collect = (grantId: string) =>
    client.call<CredentialAnswer>('POST', `/v1/requests/${grantId}/credential`, { actor });
  const printCollected = (answer: CredentialAnswer) => {
    if (json) io.out(JSON.stringify(answer));
    else io.out(`${describe(answer.request)}\n${answer.credential_text ?? ''}`);
    return ExitCode.Ok;
  };
  switch (verb) {
    case 'request': {
      const target = s(flags.target) ?? positionals[0];
      if (!target)
        throw new UsageError(
          'usage: warden request --target <name> [--level read] [--duration 30m] --reason "..."',
        );
      const [name, level] = target.split(':');
      const result = await client.call<CredentialAnswer>('POST', '/v1/requests', {
        actor,
        requester: actor,
        target: name,
        level: s(flags.level) ?? level,
        duration: s(flags.duration),
        reason: s(flags.reason) ?? positionals.slice(1).join(' '),
        break_glass: flags['break-glass'] === true,
      });
      if (result.credential || !flags.wait) {
        print(result);
        if (result.credential_text && !json) io.out(result.credential_text);
        else if (result.request.state === 'pending' && !json) io.out(`waiting for ${result.request.summary}`);
        return ExitCode.Ok;
      }
      // --wait: wait for the decision, then collect the credential once (a fresh secret).
      if (!json) io.out(`${describe(result.request)}\nwaiting for ${result.request.summary}`);
      let request = result.request;
      while (request.state === 'pending' || request.state === 'approved') {
        await new Promise((resolve) => setTimeout(resolve, WAIT_POLL_MS));
        request = (await client.call<{ request: ApiRequest }>('GET', `/v1/requests/${request.id}`)).request;
      }
      if (request.state !== 'active') {
        const why = request.error ?? request.state;
        if (json) io.out(JSON.stringify({ request }));
        else io.err(`${describe(request)}\nnot granted: ${why}`);
        return ExitCode.Refused;
      }
      return printCollected(await collect(request.id));
    }
    case 'credential':
      return printCollected(await collect(id()));
    case 'approve':
    case 'cancel':
      print(await client.call('POST', `/v1/requests/${id()}/${verb}`, { actor }));
      return ExitCode.Ok;
    case 'deny':
    case 'revoke': {
      const reason = s(flags.reason) ?? positionals.slice(1).join(' ');
      print(
        await client.call('POST', `/v1/requests/${id()}/${verb}`, { actor, reason: reason || undefined }),
      );
      return ExitCode.Ok;
    }
    case 'extend': {
      const duration = s(flags.duration) ?? positionals[1];
      if (!duration) throw new UsageError('usage: warden extend <grant-id> <duration>');
      print(await client.call('POST', `/v1/requests/${id()}/extend`, { actor, duration }));
      return ExitCode.Ok;
    }
    case 'show': {
      const result = await client.call<{ request: ApiRequest }>('GET', `/v1/requests/${id()}`);
      io.out(json ? JSON.stringify(result) : JSON.stringify(result, null, 2));
      return ExitCode.Ok;
    }
    case 'grants': {
      const query = new URLSearchParams();
      const user = s(flags.user);
      if (user) query.set('requester', user);
      // Ending grants are listed by default: one whose credential is not removed yet still matters.
      const states = flags.failing
        ? 'revocation_failed'
        : (s(flags.state) ?? (flags.all ? '' : 'pending,approved,active,revoking,revocation_failed'));
      query.set('state', states);
      const result = await client.call<{ requests: ApiRequest[] }>('GET', `/v1/requests?${query}`);
      if (json) io.out(JSON.stringify(result));
      else if (result.requests.length === 0) io.out('no requests');
      else if (flags.failing) {
        for (const r of result.requests) io.out(`${describe(r)}\n    ${r.error ?? ''}`);
      } else for (const r of result.requests) io.out(describe(r));
      return ExitCode.Ok;
    }
    default:
      throw new UsageError(`unknown command ${verb}`);
  }
}
