/**
 * A local OIDC issuer for tests and the benchmark: node:http on 127.0.0.1 and a free port,
 * serving a discovery document and a JWKS, signing tokens shaped like GitHub Actions' and GitLab
 * CI's, and forging the bad tokens an attacker would try. Its clock is injectable so tokens and
 * the verifier agree on time.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { base64url, type CryptoKey, exportJWK, exportSPKI, generateKeyPair, type JWK, SignJWT } from 'jose';

/** Algorithms the issuer signs with. */
export type IssuerAlg = 'RS256' | 'ES256';

/** How the JWKS endpoint answers: normally, with HTTP 503, or by resetting the connection. */
export type JwksMode = 'ok' | 'http-error' | 'reset';

/** Claims to add or override; `undefined` removes a default claim. */
export type ClaimOverrides = Record<string, unknown>;

/** Header and key choices for one token. */
export interface IssueOptions {
  readonly alg?: IssuerAlg;
  /** `kid` to put in the header (the signing key stays the current one). */
  readonly kid?: string;
  /** Extra or overriding header parameters. */
  readonly header?: Record<string, unknown>;
}

/** A running test issuer. */
export interface OidcIssuer {
  /** The `iss` value and discovery base, `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** Default `aud` of issued tokens. */
  readonly audience: string;
  /** Requests served on the JWKS and discovery endpoints (failed ones included). */
  readonly jwksFetches: number;
  readonly discoveryFetches: number;
  /** Current `kid` per algorithm. */
  kid(alg?: IssuerAlg): string;
  /** Replaces both keys; the old ones leave the JWKS. */
  rotate(): Promise<void>;
  setJwksMode(mode: JwksMode): void;
  /** Makes discovery report another `issuer` value (undefined restores the true one). */
  setDiscoveryIssuer(issuer: string | undefined): void;
  /** A GitHub Actions shaped token. */
  issue(claims?: ClaimOverrides, options?: IssueOptions): Promise<string>;
  /** A GitLab CI shaped token. */
  issueGitLab(claims?: ClaimOverrides, options?: IssueOptions): Promise<string>;
  /** Bad tokens; each starts from a GitHub shaped payload with `claims` applied. */
  readonly forge: {
    algNone(claims?: ClaimOverrides): string;
    /** HS256 keyed with the RS256 public key PEM (the classic key-confusion attack). */
    hs256WithPublicKey(claims?: ClaimOverrides): Promise<string>;
    /** A valid token whose payload is swapped for `claims` applied to it, old signature kept. */
    tamperedPayload(claims: ClaimOverrides): Promise<string>;
    /** A valid token with one signature character changed. */
    tamperedSignature(claims?: ClaimOverrides): Promise<string>;
    /** Signed by a key that was never in the JWKS, under a fresh `kid`. */
    unknownKid(claims?: ClaimOverrides): Promise<string>;
  };
  close(): Promise<void>;
}

/** Options of {@link startOidcIssuer}. */
export interface OidcIssuerOptions {
  /** Clock in epoch milliseconds; default `Date.now`. */
  readonly now?: () => number;
  /** Default `aud`; default `warden-test`. */
  readonly audience?: string;
  /** Token lifetime in seconds; default 300. */
  readonly ttlSeconds?: number;
}

interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  jwk: JWK;
}

async function makeKey(alg: IssuerAlg): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `${alg.toLowerCase()}-${randomUUID().slice(0, 8)}`;
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, privateKey, publicKey, jwk };
}

const encode = (value: unknown): string => base64url.encode(JSON.stringify(value));

/** Starts an issuer on 127.0.0.1; call `close()` when done. */
export async function startOidcIssuer(options: OidcIssuerOptions = {}): Promise<OidcIssuer> {
  const now = options.now ?? Date.now;
  const audience = options.audience ?? 'warden-test';
  const ttl = options.ttlSeconds ?? 300;
  let keys: Record<IssuerAlg, SigningKey> = { RS256: await makeKey('RS256'), ES256: await makeKey('ES256') };
  let jwksMode: JwksMode = 'ok';
  let discoveryIssuer: string | undefined;
  let jwksFetches = 0;
  let discoveryFetches = 0;
  let url = '';

  const server: Server = createServer((req, res) => {
    if (req.url === '/.well-known/openid-configuration') {
      discoveryFetches++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ issuer: discoveryIssuer ?? url, jwks_uri: `${url}/.well-known/jwks` }));
    } else if (req.url === '/.well-known/jwks') {
      jwksFetches++;
      if (jwksMode === 'reset') {
        req.socket.destroy();
        return;
      }
      if (jwksMode === 'http-error') {
        res.statusCode = 503;
        res.end('unavailable');
        return;
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [keys.RS256.jwk, keys.ES256.jwk] }));
    } else {
      res.statusCode = 404;
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const times = () => {
    const iat = Math.floor(now() / 1000);
    return { iat, nbf: iat, exp: iat + ttl };
  };

  const apply = (base: Record<string, unknown>, claims: ClaimOverrides): Record<string, unknown> => {
    const payload = { ...base, ...claims };
    for (const [key, value] of Object.entries(payload)) if (value === undefined) delete payload[key];
    return payload;
  };

  const github = (claims: ClaimOverrides = {}): Record<string, unknown> => {
    const repository = typeof claims.repository === 'string' ? claims.repository : 'octo-org/reports';
    const ref = typeof claims.ref === 'string' ? claims.ref : 'refs/heads/main';
    return apply(
      {
        iss: url,
        aud: audience,
        sub: `repo:${repository}:ref:${ref}`,
        repository,
        repository_id: '74',
        repository_owner: repository.split('/')[0],
        repository_owner_id: '65',
        repository_visibility: 'private',
        ref,
        ref_type: 'branch',
        ref_protected: 'true',
        sha: 'e7f3a2c09b1d4f5a6e8c7b2d1f0a9e8d7c6b5a41',
        workflow: 'nightly-report',
        workflow_ref: `${repository}/.github/workflows/nightly-report.yml@${ref}`,
        job_workflow_ref: `${repository}/.github/workflows/nightly-report.yml@${ref}`,
        run_id: '8812345678',
        run_number: '412',
        run_attempt: '1',
        event_name: 'schedule',
        environment: 'production',
        actor: 'octocat',
        runner_environment: 'github-hosted',
        jti: randomUUID(),
        ...times(),
      },
      claims,
    );
  };

  const gitlab = (claims: ClaimOverrides = {}): Record<string, unknown> => {
    const project = typeof claims.project_path === 'string' ? claims.project_path : 'data-team/reports';
    const ref = typeof claims.ref === 'string' ? claims.ref : 'main';
    return apply(
      {
        iss: url,
        aud: audience,
        sub: `project_path:${project}:ref_type:branch:ref:${ref}`,
        project_id: '4412',
        project_path: project,
        namespace_id: '77',
        namespace_path: project.split('/')[0],
        user_id: '12',
        user_login: 'ana',
        pipeline_id: '99001',
        pipeline_source: 'schedule',
        job_id: '123456',
        ref,
        ref_type: 'branch',
        ref_path: `refs/heads/${ref}`,
        ref_protected: 'true',
        environment: 'production',
        sha: '0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c',
        ci_config_ref_uri: `gitlab.example.com/${project}//.gitlab-ci.yml@refs/heads/${ref}`,
        jti: randomUUID(),
        ...times(),
      },
      claims,
    );
  };

  const sign = (
    payload: Record<string, unknown>,
    opts: IssueOptions = {},
    key?: SigningKey,
  ): Promise<string> => {
    const alg = opts.alg ?? 'RS256';
    const signer = key ?? keys[alg];
    return new SignJWT(payload)
      .setProtectedHeader({ alg, typ: 'JWT', kid: opts.kid ?? signer.kid, ...opts.header })
      .sign(signer.privateKey);
  };

  return {
    url,
    audience,
    get jwksFetches() {
      return jwksFetches;
    },
    get discoveryFetches() {
      return discoveryFetches;
    },
    kid: (alg = 'RS256') => keys[alg].kid,
    async rotate() {
      keys = { RS256: await makeKey('RS256'), ES256: await makeKey('ES256') };
    },
    setJwksMode(mode) {
      jwksMode = mode;
    },
    setDiscoveryIssuer(issuer) {
      discoveryIssuer = issuer;
    },
    issue: (claims, opts) => sign(github(claims), opts),
    issueGitLab: (claims, opts) => sign(gitlab(claims), opts),
    forge: {
      algNone: (claims) => `${encode({ alg: 'none', typ: 'JWT' })}.${encode(github(claims))}.`,
      async hs256WithPublicKey(claims) {
        const pem = await exportSPKI(keys.RS256.publicKey);
        const input = `${encode({ alg: 'HS256', typ: 'JWT', kid: keys.RS256.kid })}.${encode(github(claims))}`;
        return `${input}.${createHmac('sha256', pem).update(input).digest('base64url')}`;
      },
      async tamperedPayload(claims) {
        const [header, payload, signature] = (await sign(github())).split('.');
        const original = JSON.parse(new TextDecoder().decode(base64url.decode(payload!))) as Record<
          string,
          unknown
        >;
        return `${header}.${encode(apply(original, claims))}.${signature}`;
      },
      async tamperedSignature(claims) {
        const [header, payload, signature] = (await sign(github(claims))).split('.');
        const i = Math.floor(signature!.length / 2);
        const flipped = signature![i] === 'A' ? 'B' : 'A';
        return `${header}.${payload}.${signature!.slice(0, i)}${flipped}${signature!.slice(i + 1)}`;
      },
      async unknownKid(claims) {
        const stranger = await makeKey('RS256');
        return sign(github(claims), { kid: `unknown-${randomUUID().slice(0, 8)}` }, stranger);
      },
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
