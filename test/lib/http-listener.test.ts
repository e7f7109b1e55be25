/**
 * The listener the API and the chat webhooks share (lib/http-listener.ts): a throwing handler, a
 * client that resets or sends garbage, an oversized body and a busy port each get a clear answer
 * and leave the listener serving.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import * as http from '../../lib/http-listener.ts';

const { closeServer, createHttpListener, firstHeader, listen, readBounded } = http;

describe('lib/http-listener', () => {
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
  const server = createHttpListener(
    async (req, res) => {
      if (req.url === '/throw') throw new Error('handler broke');
      if (req.url === '/half') {
        res.writeHead(200);
        res.write('partial');
        throw new Error('broke mid-answer');
      }
      const body = await readBounded(req, 16);
      if (!body) {
        res.writeHead(413).end();
        return;
      }
      res.writeHead(200).end(`${firstHeader(req, 'x-name') ?? '-'}:${body.toString()}`);
    },
    { name: 'probe', logger },
  );
  let base: string;
  let port: number;

  before(async () => {
    port = (await listen(server, 0, '127.0.0.1')).port;
    base = `http://127.0.0.1:${port}`;
  });
  after(() => closeServer(server));

  it('answers 500 for a handler that throws, and ends a response it had started', async () => {
    assert.equal((await fetch(`${base}/throw`)).status, 500);
    await assert.rejects(fetch(`${base}/half`).then((r) => r.text()));
    assert.ok(lines.some((l) => l.includes('probe request failed') && l.includes('handler broke')));
    assert.equal(await (await fetch(base, { method: 'POST', body: 'ok' })).text(), '-:ok');
  });

  it('bounds the body and reads the first of repeated headers', async () => {
    assert.equal((await fetch(base, { method: 'POST', body: 'x'.repeat(17) })).status, 413);
    const res = await fetch(base, { method: 'POST', body: 'x'.repeat(16), headers: { 'x-name': 'a' } });
    assert.equal(await res.text(), 'a:xxxxxxxxxxxxxxxx');
  });

  it('survives garbage and a reset mid-request', async () => {
    for (const bytes of ['NOT HTTP AT ALL\r\n\r\n', 'POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\nabc']) {
      await new Promise<void>((resolve) => {
        const socket = connect(port, '127.0.0.1', () => {
          socket.write(bytes);
          setTimeout(() => socket.resetAndDestroy(), 50);
        });
        socket.on('error', () => {});
        socket.on('close', () => resolve());
      });
    }
    assert.equal((await fetch(base, { method: 'POST', body: 'still' })).status, 200);
  });

  it('refuses a port in use with the bind error, and closes twice quietly', async () => {
    const other = createHttpListener(async () => {}, { name: 'second', logger });
    await assert.rejects(listen(other, port, '127.0.0.1'), /EADDRINUSE/);
    await closeServer(other);
    await closeServer(other);
  });
});
