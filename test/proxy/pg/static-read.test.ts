/** Sockets reading into a reused buffer: bytes still queued for another socket are never overwritten. */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { describe, it } from 'node:test';
import { adoptWithStaticReads } from '../../../proxy/pg/static-read.ts';

/** A connected pair on 127.0.0.1: [the connecting side, the accepted side (paused)]. */
async function socketPair(): Promise<[Socket, Socket]> {
  const server = createServer({ pauseOnConnect: true });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  const [accepted] = (await once(server, 'connection')) as [Socket];
  await once(client, 'connect');
  server.close();
  return [client, accepted];
}

describe('adoptWithStaticReads', () => {
  it('keeps a chunk queued for a slow reader intact while later reads arrive (regression: reused read buffer)', async () => {
    const [source, sourcePeer] = await socketPair();
    const [sink, sinkPeer] = await socketPair();
    sink.pause();
    // Forwards every read as a view; the sink's reader is paused, so writes queue up.
    const relay = adoptWithStaticReads(sourcePeer, (chunk) => {
      sinkPeer.write(chunk);
      return sinkPeer.writableLength > 0;
    });
    const sent = randomBytes(4 * 1024 * 1024);
    for (let at = 0; at < sent.length; at += 4096) source.write(sent.subarray(at, at + 4096));
    source.end();
    await once(relay, 'end');
    const received: Buffer[] = [];
    sink.on('data', (chunk: Buffer) => received.push(chunk));
    sink.resume();
    sinkPeer.end();
    await once(sink, 'end');
    const digest = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    assert.equal(digest(Buffer.concat(received)), digest(sent));
    for (const s of [source, relay, sink, sinkPeer]) s.destroy();
  });

  it('returns a socket that was already closed as is', async () => {
    const [client, accepted] = await socketPair();
    client.destroy();
    accepted.destroy();
    await once(accepted, 'close');
    const adopted = adoptWithStaticReads(accepted, () => false);
    assert.equal(adopted, accepted);
  });
});
