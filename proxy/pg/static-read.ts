/**
 * Sockets that read into one reusable buffer (`net` `onread`) instead of a new 64 KiB allocation
 * and a Readable `data` event per read: the relay's hot path (`pgbench -S`: two reads and two
 * writes per transaction). The bytes handed to `onChunk` are overwritten by the next read, so
 * whatever outlives the call must be copied; the relay's parsers copy what they keep, and a write
 * of a view that the kernel did not take at once (the destination socket still has bytes queued)
 * is reported by `onChunk` returning true: the buffer then stays with that write and the next
 * read gets a fresh one.
 */
import { Socket } from 'node:net';

/** Size of a read buffer, as Node's own per-read allocation. */
const READ_BUFFER_SIZE = 64 * 1024;

/**
 * Receives one read. Returns true when the bytes (or views of them) are still referenced after the
 * call (a queued write), so the buffer must not be reused.
 */
export type ChunkHandler = (chunk: Buffer) => boolean;

interface HandleOwner {
  _handle: unknown;
}

/**
 * Moves the connection of `socket` (connected, its reads not yet consumed elsewhere) to a new
 * socket that reads into a reusable buffer and hands every read to `onChunk`. `socket` is released
 * without closing the connection (a server counts it as gone); a socket already closed is returned
 * as is. Pausing and resuming the returned
 * socket stop and restart reading as usual; `end`, `close` and `error` are emitted as usual.
 */
export function adoptWithStaticReads(socket: Socket, onChunk: ChunkHandler): Socket {
  const handle = (socket as unknown as HandleOwner)._handle;
  if (!handle) {
    // Already closed: the caller sees its close event.
    socket.destroy();
    return socket;
  }
  let buffer = Buffer.allocUnsafe(READ_BUFFER_SIZE);
  (socket as unknown as HandleOwner)._handle = null;
  socket.destroy();
  // `handle` is not in Node's typings, but is how Node itself builds a socket on a connection.
  return new Socket({
    handle,
    readable: true,
    writable: true,
    onread: {
      buffer: () => buffer,
      callback: (bytes: number, into: Uint8Array) => {
        if (onChunk((into as Buffer).subarray(0, bytes))) buffer = Buffer.allocUnsafe(READ_BUFFER_SIZE);
        return true;
      },
    },
  } as ConstructorParameters<typeof Socket>[0]);
}
