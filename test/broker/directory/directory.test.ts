import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../../broker/config/load.ts';
import { FileDirectory } from '../../../broker/directory/directory.ts';
import { BrokerError } from '../../../broker/errors.ts';

const ENTRA = '3f2504e0-4f89-11d3-9a0c-0305e82c3301';

describe('directory: people by (chat kind, id)', () => {
  const directory = new FileDirectory([
    {
      id: 'alice',
      email: 'Alice@example.com',
      slack: 'UALICE',
      teams: ENTRA.toUpperCase(),
      groups: [],
      admin: false,
    },
    { id: 'bob', email: 'bob@example.com', groups: ['dba'], admin: false },
  ]);

  it('finds a person by Slack id and by Entra object id (any case), and gives their chat ids', () => {
    assert.equal(directory.findByChatId('slack', 'UALICE')?.id, 'alice');
    assert.equal(directory.findByChatId('teams', ENTRA)?.id, 'alice');
    assert.equal(directory.findByChatId('teams', ENTRA.toUpperCase())?.id, 'alice');
    assert.equal(directory.chatIdOf('alice', 'slack'), 'UALICE');
    assert.equal(directory.chatIdOf('bob', 'teams'), undefined);
    assert.equal(directory.findByEmail('alice@EXAMPLE.com')?.id, 'alice');
  });

  it('finds nobody for an unknown id, another chat kind, or a Slack id in another case', () => {
    assert.equal(directory.findByChatId('slack', 'ualice'), undefined);
    assert.equal(directory.findByChatId('slack', ENTRA), undefined);
    assert.equal(directory.findByChatId('teams', 'UALICE'), undefined);
    assert.equal(directory.findByChatId('nope' as 'slack', 'UALICE'), undefined);
  });

  it('refuses two people with one Teams id, naming the key', () => {
    assert.throws(
      () =>
        parseConfig({
          people: [
            { id: 'a', email: 'a@example.com', teams: ENTRA },
            { id: 'b', email: 'b@example.com', teams: ENTRA.toUpperCase() },
          ],
        }),
      (error: unknown) =>
        error instanceof BrokerError &&
        error.code === 'ERR_CONFIG_INVALID' &&
        /people\[1:b\]\.teams/.test(error.message),
    );
  });
});
