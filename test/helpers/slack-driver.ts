/**
 * Sends what Slack sends to an app's `/slack/events`: slash commands, button clicks, modal
 * submissions and message events, signed with the signing secret as Slack signs them.
 */
import { request } from 'node:http';
import { signSlackRequest } from '../../bot/slack/signature.ts';
import type { SlackStandin } from './slack-standin.ts';

export interface SentRequest {
  status: number;
  body: string;
  /** Milliseconds from sending to the full response (the acknowledgement). */
  ms: number;
}

export interface SignOptions {
  /** Seconds since the epoch; default now. */
  timestamp?: number;
  /** Replace the signature (forgeries); `null` leaves the headers out. */
  signature?: string | null;
}

let counter = 0;

/** Slack sends what people type with `&`, `<` and `>` entity-escaped (commands and message events). */
function asSlackSends(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The fields every interaction payload carries. */
function interactionOf(type: 'block_actions' | 'view_submission', user: string): Record<string, unknown> {
  return {
    type,
    team: { id: 'T0TEST', domain: 'warden-test' },
    user: { id: user, username: user.toLowerCase(), team_id: 'T0TEST' },
    api_app_id: 'A0WARDEN',
    token: 'legacy-verification-token',
    trigger_id: `trigger-${++counter}`,
  };
}

export class SlackDriver {
  readonly #url: URL;
  readonly #secret: string;
  readonly #standin: SlackStandin;

  constructor(eventsUrl: string, signingSecret: string, standin: SlackStandin) {
    this.#url = new URL(eventsUrl);
    this.#secret = signingSecret;
    this.#standin = standin;
  }

  /** The app's events URL. */
  get url(): string {
    return this.#url.toString();
  }

  /** Posts a body with Slack's signature headers. */
  send(body: string, contentType: string, sign: SignOptions = {}): Promise<SentRequest> {
    const timestamp = String(sign.timestamp ?? Math.floor(Date.now() / 1000));
    const headers: Record<string, string | number> = {
      'content-type': contentType,
      'content-length': Buffer.byteLength(body),
    };
    if (sign.signature !== null) {
      headers['x-slack-request-timestamp'] = timestamp;
      headers['x-slack-signature'] = sign.signature ?? signSlackRequest(this.#secret, timestamp, body);
    }
    const started = performance.now();
    return new Promise((resolve, reject) => {
      const req = request(this.#url, { method: 'POST', headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            ms: performance.now() - started,
          }),
        );
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  /** The form body of `/access <text>` typed by `user`; `key` names its response_url. */
  commandBody(user: string, text: string, key: string, channel = 'CGENERAL'): string {
    return new URLSearchParams({
      token: 'legacy-verification-token',
      team_id: 'T0TEST',
      team_domain: 'warden-test',
      channel_id: channel,
      channel_name: 'general',
      user_id: user,
      user_name: user.toLowerCase(),
      command: '/access',
      text: asSlackSends(text),
      api_app_id: 'A0WARDEN',
      response_url: this.#standin.responseUrl(key),
      trigger_id: `trigger-${++counter}`,
    }).toString();
  }

  /** Types `/access <text>` as `user`; the reply arrives at `standin.responsesFor(key)`. */
  command(user: string, text: string, key: string, sign?: SignOptions): Promise<SentRequest> {
    return this.send(this.commandBody(user, text, key), 'application/x-www-form-urlencoded', sign);
  }

  /** Clicks a button on a root message. */
  click(
    user: string,
    actionId: 'warden_approve' | 'warden_deny' | 'warden_review_approve' | 'warden_review_deny',
    requestId: string,
    message: { channel: string; ts: string },
  ): Promise<SentRequest> {
    const payload = {
      ...interactionOf('block_actions', user),
      container: {
        type: 'message',
        message_ts: message.ts,
        channel_id: message.channel,
        is_ephemeral: false,
      },
      channel: { id: message.channel, name: 'access-requests' },
      message: { type: 'message', ts: message.ts, text: '' },
      response_url: this.#standin.responseUrl(`click-${counter}`),
      actions: [
        {
          type: 'button',
          action_id: actionId,
          block_id: `warden_actions_${requestId}`,
          value: requestId,
          text: { type: 'plain_text', text: actionId },
          action_ts: `${Date.now() / 1000}`,
        },
      ],
    };
    return this.#payload(payload);
  }

  /** Submits the deny modal with a reason. */
  submitDeny(user: string, privateMetadata: string, reason: string): Promise<SentRequest> {
    const payload = {
      ...interactionOf('view_submission', user),
      view: {
        id: 'V1',
        type: 'modal',
        callback_id: 'warden_deny_modal',
        private_metadata: privateMetadata,
        state: {
          values: { warden_reason: { warden_reason_input: { type: 'plain_text_input', value: reason } } },
        },
        hash: 'h',
        team_id: 'T0TEST',
        app_id: 'A0WARDEN',
        bot_id: 'BWARDEN',
      },
    };
    return this.#payload(payload);
  }

  /** A message posted by `user` in the thread of a root message. */
  threadReply(user: string, root: { channel: string; ts: string }, text: string): Promise<SentRequest> {
    const ts = `${Date.now() / 1000 + ++counter}`;
    const body = {
      token: 'legacy-verification-token',
      team_id: 'T0TEST',
      api_app_id: 'A0WARDEN',
      type: 'event_callback',
      event_id: `Ev${counter}`,
      event_time: Math.floor(Date.now() / 1000),
      authorizations: [{ team_id: 'T0TEST', user_id: 'UWARDENBOT', is_bot: true }],
      event: {
        type: 'message',
        channel: root.channel,
        channel_type: 'channel',
        user,
        text: asSlackSends(text),
        ts,
        thread_ts: root.ts,
        event_ts: ts,
      },
    };
    return this.send(JSON.stringify(body), 'application/json');
  }

  #payload(payload: unknown): Promise<SentRequest> {
    return this.send(
      new URLSearchParams({ payload: JSON.stringify(payload) }).toString(),
      'application/x-www-form-urlencoded',
    );
  }
}
