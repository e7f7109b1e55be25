/**
 * The Slack HTTP receiver against Bolt's receiver contract, with a fake event processor (what
 * Bolt's `App` is to it): Slack's handshakes answered without reaching the app, a verified request
 * handed over with an `ack` that writes the response, hostile and malformed requests refused with
 * nothing handed over, redeliveries dropped, and a processor failure answered, never a crash.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { ReceiverEvent } from '@slack/bolt';
import { type EventProcessor, SlackHttpReceiver } from '../../../bot/slack/http-receiver.ts';
import { signSlackRequest } from '../../../bot/slack/signature.ts';
import { Secret } from '../../../broker/config/secrets.ts';
import { createSilentLogger } from '../../../broker/log.ts';

const SECRET = 'receiver-test-secret';

class FakeProcessor implements EventProcessor {
  readonly events: ReceiverEvent[] = [];
  /** What the next event does: ack with a body, throw before acking, or never ack. */
  next: { ack: unknown } | { fail: Error } | 'never' = { ack: undefined };

  async processEvent(event: ReceiverEvent): Promise<void> {
    this.events.push(event);
    const next = this.next;
    if (next === 'never') return;
    if ('fail' in next) throw next.fail;
    await event.ack(next.ack as never);
  }
}

describe('SlackHttpReceiver', () => {
  let receiver: SlackHttpReceiver;
  let app: FakeProcessor;
  let url: string;
  const silent = createSilentLogger();
  const boltLogger = {
    debug: () => {},
    info: () => {},
    warn: () => {},
    error: () => {},
    setLevel: () => {},
    getLevel: () => 'error' as never,
    setName: () => {},
  };

  before(async () => {
    receiver = new SlackHttpReceiver({
      host: '127.0.0.1',
      port: 0,
      signingSecret: new Secret(SECRET),
      logger: silent,
      boltLogger,
    });
    app = new FakeProcessor();
    receiver.init(app);
    const address = await receiver.start();
    url = `http://127.0.0.1:${address.port}/slack/events`;
  });
  after(() => receiver.stop());
  beforeEach(() => {
    app.events.length = 0;
    app.next = { ack: undefined };
  });

  // Each request gets its own timestamp, so no two share a signature (the replay cache would refuse it).
  const base = Math.floor(Date.now() / 1000);
  let n = 0;
  async function post(
    body: string,
    contentType = 'application/json',
    options: { sign?: boolean; headers?: Record<string, string> } = {},
  ): Promise<{ status: number; text: string }> {
    const timestamp = String(base - ++n);
    const headers: Record<string, string> = { 'content-type': contentType };
    if (options.sign !== false) {
      headers['x-slack-request-timestamp'] = timestamp;
      headers['x-slack-signature'] = signSlackRequest(SECRET, timestamp, body);
    }
    Object.assign(headers, options.headers);
    const res = await fetch(url, { method: 'POST', headers, body });
    return { status: res.status, text: await res.text() };
  }

  it("answers Slack's URL verification and certificate check without reaching the app", async () => {
    const verified = await post(JSON.stringify({ type: 'url_verification', challenge: 'c-123', token: 't' }));
    assert.equal(verified.status, 200);
    assert.deepEqual(JSON.parse(verified.text), { challenge: 'c-123' });
    const ssl = await post(
      'ssl_check=1&token=t&payload=%7B%22type%22%3A%22block_actions%22%7D',
      'application/x-www-form-urlencoded',
      {
        sign: false,
      },
    );
    assert.equal(ssl.status, 200);
    assert.equal(app.events.length, 0, 'an unsigned ssl_check smuggles nothing in');
  });

  it('hands a verified request to the app; its ack is the HTTP response; retries are passed on', async () => {
    app.next = { ack: { response_action: 'errors', errors: { b: 'why?' } } };
    const body = JSON.stringify({ type: 'view_submission', view: { id: 'V1' } });
    const res = await post(body, 'application/json', {
      headers: { 'x-slack-retry-num': '2', 'x-slack-retry-reason': 'http_timeout' },
    });
    assert.equal(res.status, 200);
    assert.deepEqual(JSON.parse(res.text), { response_action: 'errors', errors: { b: 'why?' } });
    assert.equal(app.events.length, 1);
    assert.deepEqual(app.events[0]!.body, { type: 'view_submission', view: { id: 'V1' } });
    assert.equal(app.events[0]!.retryNum, 2);
    assert.equal(app.events[0]!.retryReason, 'http_timeout');
  });

  it('reads form bodies and interaction payloads as Bolt expects', async () => {
    await post('command=%2Faccess&text=list&user_id=UALICE', 'application/x-www-form-urlencoded');
    await post(
      `payload=${encodeURIComponent(JSON.stringify({ type: 'block_actions' }))}`,
      'application/x-www-form-urlencoded',
    );
    assert.equal(app.events[0]!.body.command, '/access');
    assert.equal(app.events[1]!.body.type, 'block_actions');
  });

  const refused: [string, () => Promise<{ status: number }>, number][] = [
    [
      'an unsigned request',
      () => post('{"type":"event_callback"}', 'application/json', { sign: false }),
      401,
    ],
    [
      'a forged signature',
      () =>
        post('{"type":"event_callback"}', 'application/json', {
          headers: { 'x-slack-signature': `v0=${'0'.repeat(64)}` },
        }),
      401,
    ],
    ['malformed JSON', () => post('{"type":'), 400],
    ['a JSON array', () => post('[1,2]'), 400],
    ['a bad payload field', () => post('payload=%7Bnot-json', 'application/x-www-form-urlencoded'), 400],
  ];
  for (const [name, send, status] of refused) {
    it(`refuses ${name} with ${status}, handing nothing to the app`, async () => {
      assert.equal((await send()).status, status);
      assert.equal(app.events.length, 0);
    });
  }

  it('drops an Events API redelivery of an event it took', async () => {
    const event = (id: string) =>
      JSON.stringify({ type: 'event_callback', event_id: id, event: { type: 'message' } });
    assert.equal((await post(event('Ev1'))).status, 200);
    assert.equal((await post(event('Ev1'))).status, 200);
    assert.equal((await post(event('Ev2'))).status, 200);
    assert.deepEqual(
      app.events.map((e) => e.body.event_id),
      ['Ev1', 'Ev2'],
    );
  });

  it('answers 500 when the app fails before acknowledging, and keeps serving', async () => {
    app.next = { fail: new Error('listener blew up') };
    assert.equal((await post('{"type":"block_actions"}')).status, 500);
    app.next = { ack: undefined };
    assert.equal((await post('{"type":"block_actions"}')).status, 200);
  });

  it("answers 404 when the app never acknowledges (Bolt's three seconds)", async () => {
    app.next = 'never';
    assert.equal((await post('{"type":"block_actions"}')).status, 404);
  });

  it('survives a client that sends garbage instead of HTTP', async () => {
    const { port } = new URL(url);
    await new Promise<void>((resolve) => {
      const socket = connect(Number(port), '127.0.0.1', () => socket.end('NOT HTTP AT ALL\r\n\r\n'));
      socket.on('close', () => resolve());
      socket.on('error', () => resolve());
      socket.resume();
    });
    assert.equal((await post('{"type":"block_actions"}')).status, 200);
  });

  it('answers 503 before an app is attached', async () => {
    const lone = new SlackHttpReceiver({
      host: '127.0.0.1',
      port: 0,
      signingSecret: new Secret(SECRET),
      logger: silent,
      boltLogger,
    });
    const { port } = await lone.start();
    try {
      const body = '{"type":"block_actions"}';
      const ts = String(Math.floor(Date.now() / 1000));
      const res = await fetch(`http://127.0.0.1:${port}/slack/events`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-slack-request-timestamp': ts,
          'x-slack-signature': signSlackRequest(SECRET, ts, body),
        },
        body,
      });
      assert.equal(res.status, 503);
    } finally {
      await lone.stop();
    }
  });
});
