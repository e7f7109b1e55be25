/**
 * The SSH login name users type at the proxy: `<account>+<target>` (`ssh -p 2222 deploy+web-1@proxy`)
 * or just `<target>` for the first account of the grant's level. `+` cannot appear in a Warden
 * target name nor in a certificate principal, so the split is unambiguous. Pure.
 */
import { SshProxyError } from './errors.ts';

/** The parsed login name. */
export interface ProxyLoginName {
  /** The account on the target; `undefined` means the first principal of the grant's level. */
  account: string | undefined;
  target: string;
}

const TARGET = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const ACCOUNT = /^[A-Za-z0-9_][A-Za-z0-9._@-]{0,63}$/;

/** Parses a login name; throws `ERR_SSH_PROXY_LOGIN_NAME` for anything else. */
export function parseProxyLoginName(username: string): ProxyLoginName {
  const fail = () =>
    new SshProxyError(
      'ERR_SSH_PROXY_LOGIN_NAME',
      'log in as <account>+<target> or <target> (for example deploy+web-1)',
    );
  if (typeof username !== 'string' || username.length > 128) throw fail();
  const plus = username.lastIndexOf('+');
  const account = plus === -1 ? undefined : username.slice(0, plus);
  const target = plus === -1 ? username : username.slice(plus + 1);
  if (!TARGET.test(target) || (account !== undefined && !ACCOUNT.test(account))) throw fail();
  return { account, target };
}
