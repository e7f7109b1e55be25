/** The stack `warden serve` stops its parts with: last started first, every part even when one fails, once. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ShutdownStack } from '../../lib/shutdown-stack.ts';

describe('ShutdownStack', () => {
  it('stops the last part started first, awaiting each', async () => {
    const stopped: string[] = [];
    const stack = new ShutdownStack();
    stack.push('store', () => stopped.push('store'));
    stack.push('api', async () => {
      await new Promise((resolve) => setImmediate(resolve));
      stopped.push('api');
    });
    stack.push('proxy', () => stopped.push('proxy'));
    assert.equal(stack.size, 3);
    await stack.stopAll();
    assert.deepEqual(stopped, ['proxy', 'api', 'store']);
    assert.equal(stack.size, 0);
  });

  it('reports a part that fails to stop and still stops the others', async () => {
    const stopped: string[] = [];
    const failures: [string, unknown][] = [];
    const stack = new ShutdownStack();
    stack.push('store', () => stopped.push('store'));
    stack.push('slack', () => Promise.reject(new Error('socket already closed')));
    stack.push('thrower', () => {
      throw new Error('boom');
    });
    await stack.stopAll((part, error) => failures.push([part, error]));
    assert.deepEqual(stopped, ['store']);
    assert.deepEqual(
      failures.map(([part, error]) => `${part}: ${(error as Error).message}`),
      ['thrower: boom', 'slack: socket already closed'],
    );
  });

  it('stops nothing twice', async () => {
    let stops = 0;
    const stack = new ShutdownStack();
    stack.push('api', () => {
      stops++;
    });
    await stack.stopAll();
    await stack.stopAll();
    assert.equal(stops, 1);
  });
});
