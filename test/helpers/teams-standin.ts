/**
 * A local stand-in for the Microsoft side of a Teams bot, on 127.0.0.1:0:
 *
 * - the Bot Connector's OpenID metadata and signing keys (jose, RS256, endorsed for `msteams`),
 *   and a signer for inbound activities as the Connector signs them (and as an attacker would not);
 * - Entra ID's token endpoint (client credentials), which checks the app's id, secret and scope;
 * - the Bot Connector REST API (`/v3/conversations…`), which checks each call as the service
 *   would: a bearer token it issued and that has not expired, the fields an activity needs, and
 *   Adaptive Card attachments of schema 1.4 or later when they use `Action.Execute` or `refresh`.
 *   A call that fails a check gets the service's 4xx and is recorded in `rejected`.
 *
 * Faults can be injected (`failNext`: 429 with Retry-After, 5xx; `down`: every Connector call 503).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';

export const TENANT_ID = '6f1e2d3c-4b5a-4968-8776-655443322110';
export const APP_ID = '2b3c4d5e-6f70-4182-93a4-b5c6d7e8f901';
export const APP_PASSWORD = 'teams-test-secret~8f3a';
export const BOT_SCOPE = 'https://api.botframework.com/.default';
export const ISSUER = 'https://api.botframework.com';

/** A Teams user the stand-in knows (member lookups answer with the UPN). */
export interface StandinUser {
  aadObjectId: string;
  upn: string;
  name: string;
}

/** An activity the bot posted, as the Connector stored it. */
export interface PostedActivity {
  id: string;
  conversationId: string;
  replyToId: string | undefined;
  body: Record<string, unknown>;
  updates: number;
}

export interface StandinCall {
  method: string;
  path: string;
  status: number;
}

type AdaptiveCard = {
  type?: unknown;
  version?: unknown;
  body?: unknown;
  actions?: unknown;
  refresh?: unknown;
};

function send(
  res: ServerResponse,
  status: number,
  body?: unknown,
  headers: Record<string, string> = {},
): void {
  res
    .writeHead(status, { 'content-type': 'application/json', ...headers })
    .end(body === undefined ? '' : JSON.stringify(body));
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text) return undefined;
  return JSON.parse(text);
}

/** Whether a card uses anything that needs schema 1.4 (Action.Execute, refresh). */
function needsUniversalActions(card: AdaptiveCard): boolean {
  return JSON.stringify(card).includes('"Action.Execute"') || card.refresh !== undefined;
}

/** What the Connector (and Teams' card renderer) would refuse in an activity, if anything. */
export function checkActivity(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) return 'the body is not an activity';
  const a = body as Record<string, unknown>;
  if (a.type !== 'message') return `activity type ${String(a.type)}`;
  const attachments = (a.attachments ?? []) as unknown[];
  if (!Array.isArray(attachments)) return 'attachments is not a list';
  if (attachments.length === 0 && typeof a.text !== 'string') return 'a message needs text or an attachment';
  for (const att of attachments) {
    const { contentType, content } = att as { contentType?: unknown; content?: AdaptiveCard };
    if (contentType !== 'application/vnd.microsoft.card.adaptive')
      return `attachment type ${String(contentType)}`;
    if (content?.type !== 'AdaptiveCard') return 'the attachment is not an Adaptive Card';
    if (typeof content.version !== 'string' || !/^1\.\d$/.test(content.version))
      return 'the card has no schema version';
    if (needsUniversalActions(content) && Number(content.version.slice(2)) < 4) {
      return `Action.Execute needs schema 1.4, the card says ${content.version}`;
    }
    if (!Array.isArray(content.body) || content.body.length === 0) return 'the card has no body';
    if (JSON.stringify(content).length > 28 * 1024) return 'the card is larger than 28 KB';
  }
  return undefined;
}

export class TeamsStandin {
  readonly url: string;
  readonly activities: PostedActivity[] = [];
  /** 1:1 conversations created: conversation id → the user's Entra object id. */
  readonly personal = new Map<string, string>();
  readonly calls: StandinCall[] = [];
  readonly rejected: { path: string; why: string }[] = [];
  /** Tokens issued by the token endpoint. */
  tokensIssued = 0;
  /** Connector calls answer 503 while set. */
  down = false;
  readonly #server: Server;
  readonly #users: StandinUser[];
  readonly #issued = new Map<string, number>();
  readonly #faults: { status: number; retryAfter?: number }[] = [];
  #signingKey!: import('jose').CryptoKey;
  #forgedKey!: import('jose').CryptoKey;
  #jwk!: JWK;
  #unendorsedKey!: import('jose').CryptoKey;
  #unendorsedJwk!: JWK;
  /** Lifetime of issued bot tokens, in seconds. */
  tokenLifetimeS = 3600;

  private constructor(server: Server, users: StandinUser[]) {
    this.#server = server;
    this.#users = users;
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  static async start(users: StandinUser[]): Promise<TeamsStandin> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const standin = new TeamsStandin(server, users);
    const signing = await generateKeyPair('RS256', { extractable: true });
    const forged = await generateKeyPair('RS256', { extractable: true });
    standin.#signingKey = signing.privateKey;
    standin.#forgedKey = forged.privateKey;
    standin.#jwk = {
      ...(await exportJWK(signing.publicKey)),
      kid: 'connector-key-1',
      use: 'sig',
      alg: 'RS256',
    };
    // A key of the Connector's set that is endorsed for another channel only (not msteams).
    const other = await generateKeyPair('RS256', { extractable: true });
    standin.#unendorsedKey = other.privateKey;
    standin.#unendorsedJwk = {
      ...(await exportJWK(other.publicKey)),
      kid: 'connector-key-webchat',
      use: 'sig',
      alg: 'RS256',
    };
    server.on('request', (req, res) => {
      standin.#handle(req, res).catch((error) => send(res, 500, { error: String(error) }));
    });
    return standin;
  }

  get openIdMetadataUrl(): string {
    return `${this.url}/v1/.well-known/openidconfiguration`;
  }

  /** Where activities say they come from (the Connector the bot answers). */
  get serviceUrl(): string {
    return `${this.url}/teams/`;
  }

  /** The next Connector calls answer these (429 with Retry-After seconds, 5xx). */
  failNext(...faults: { status: number; retryAfter?: number }[]): void {
    this.#faults.push(...faults);
  }

  /**
   * An inbound token as the Connector signs it. The options make the bad ones: another key (a
   * forgery), expired, another audience or issuer, another serviceUrl.
   */
  async sign(
    options: {
      forged?: boolean;
      /** Signed by a key of the Connector's set that is not endorsed for msteams. */
      unendorsed?: boolean;
      expiredSecondsAgo?: number;
      audience?: string;
      issuer?: string;
      serviceUrl?: string;
      kid?: string;
    } = {},
  ): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const exp = options.expiredSecondsAgo !== undefined ? now - options.expiredSecondsAgo : now + 3600;
    return new SignJWT({ serviceurl: options.serviceUrl ?? this.serviceUrl })
      .setProtectedHeader({
        alg: 'RS256',
        kid: options.kid ?? (options.unendorsed ? 'connector-key-webchat' : 'connector-key-1'),
        typ: 'JWT',
      })
      .setIssuer(options.issuer ?? ISSUER)
      .setAudience(options.audience ?? APP_ID)
      .setNotBefore(exp - 3900)
      .setIssuedAt(exp - 3900)
      .setExpirationTime(exp)
      .sign(options.forged ? this.#forgedKey : options.unendorsed ? this.#unendorsedKey : this.#signingKey);
  }

  /** Activities posted to a conversation (its thread included when `conversationId` names one). */
  in(conversationId: string): PostedActivity[] {
    return this.activities.filter((a) => a.conversationId === conversationId);
  }

  /** Every text a card or message in a conversation shows (TextRuns joined), for assertions. */
  static textOf(activity: PostedActivity): string {
    const runs: string[] = [];
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node && typeof node === 'object') {
        const o = node as Record<string, unknown>;
        if (o.type === 'TextRun' && typeof o.text === 'string') runs.push(o.text);
        if (o.type === 'RichTextBlock') {
          walk(o.inlines);
          runs.push('\n');
          return;
        }
        for (const [k, v] of Object.entries(o)) if (k !== 'inlines') walk(v);
      }
    };
    walk(activity.body.attachments);
    return runs.join('').replace(/\u200b/g, '');
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const path = decodeURIComponent(url.pathname);
    const record = (status: number) => this.calls.push({ method: req.method ?? '', path, status });
    if (req.method === 'GET' && path === '/v1/.well-known/openidconfiguration') {
      send(res, 200, {
        issuer: ISSUER,
        jwks_uri: `${this.url}/v1/.well-known/keys`,
        id_token_signing_alg_values_supported: ['RS256'],
      });
      return;
    }
    if (req.method === 'GET' && path === '/v1/.well-known/keys') {
      send(res, 200, {
        keys: [
          { ...this.#jwk, endorsements: ['msteams'] },
          { ...this.#unendorsedJwk, endorsements: ['webchat'] },
        ],
      });
      return;
    }
    if (req.method === 'POST' && path === `/${TENANT_ID}/oauth2/v2.0/token`) {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      const ok =
        form.get('grant_type') === 'client_credentials' &&
        form.get('client_id') === APP_ID &&
        form.get('client_secret') === APP_PASSWORD &&
        form.get('scope') === BOT_SCOPE;
      record(ok ? 200 : 401);
      if (!ok) {
        send(res, 401, { error: 'invalid_client' });
        return;
      }
      const token = await new SignJWT({ appid: APP_ID, tid: TENANT_ID })
        .setProtectedHeader({ alg: 'RS256', kid: 'entra' })
        .setIssuer(`https://login.microsoftonline.com/${TENANT_ID}/v2.0`)
        .setAudience('https://api.botframework.com')
        .setExpirationTime(Math.floor(Date.now() / 1000) + this.tokenLifetimeS)
        .setJti(randomUUID())
        .sign(this.#forgedKey);
      this.#issued.set(token, Date.now() + this.tokenLifetimeS * 1000);
      this.tokensIssued++;
      send(res, 200, { token_type: 'Bearer', expires_in: this.tokenLifetimeS, access_token: token });
      return;
    }
    if (!path.startsWith('/teams/v3/conversations')) {
      record(404);
      send(res, 404, { error: { code: 'NotFound' } });
      return;
    }
    if (this.down) {
      record(503);
      send(res, 503, { error: { code: 'ServiceUnavailable' } });
      return;
    }
    const fault = this.#faults.shift();
    if (fault) {
      record(fault.status);
      send(
        res,
        fault.status,
        { error: { code: 'Fault' } },
        fault.retryAfter !== undefined ? { 'retry-after': String(fault.retryAfter) } : {},
      );
      return;
    }
    const auth = req.headers.authorization ?? '';
    const token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
    const expiresAt = this.#issued.get(token);
    if (!expiresAt || expiresAt < Date.now()) {
      this.rejected.push({ path, why: 'no valid bot token' });
      record(401);
      send(res, 401, { error: { code: 'Unauthorized' } });
      return;
    }
    const reject = (why: string, status = 400) => {
      this.rejected.push({ path, why });
      record(status);
      send(res, status, { error: { code: 'BadArgument', message: why } });
    };
    const body = (await readJson(req)) as Record<string, unknown> | undefined;
    const rest = path.slice('/teams/v3/conversations'.length);
    if (req.method === 'POST' && rest === '') {
      const members = (body?.members ?? []) as { id?: string }[];
      const member = members[0]?.id?.replace(/^8:orgid:/, '');
      if (
        body?.isGroup !== false ||
        members.length !== 1 ||
        !this.#users.some((u) => u.aadObjectId === member)
      ) {
        reject('a 1:1 conversation needs one known member');
        return;
      }
      if (body?.tenantId !== TENANT_ID) {
        reject('tenantId is required for a 1:1 conversation');
        return;
      }
      const id = `a:1personal-${member}`;
      this.personal.set(id, member!);
      record(201);
      send(res, 201, { id });
      return;
    }
    const m = /^\/([^/]+)\/(activities|members)(?:\/([^/]+))?$/.exec(rest);
    if (!m) {
      reject('no such route', 404);
      return;
    }
    const [, conversationId, kind, itemId] = m as unknown as [string, string, string, string | undefined];
    if (kind === 'members' && req.method === 'GET' && itemId) {
      const user = this.#users.find((u) => `29:${u.aadObjectId}` === itemId);
      if (!user) {
        reject('no such member', 404);
        return;
      }
      record(200);
      send(res, 200, {
        id: itemId,
        aadObjectId: user.aadObjectId,
        userPrincipalName: user.upn,
        email: user.upn,
        name: user.name,
      });
      return;
    }
    const problem = checkActivity(body);
    if (problem) {
      reject(problem);
      return;
    }
    if (req.method === 'POST' && !itemId) {
      const id = `${Date.now()}${String(this.activities.length).padStart(4, '0')}`;
      this.activities.push({
        id,
        conversationId,
        replyToId: typeof body!.replyToId === 'string' ? body!.replyToId : undefined,
        body: body!,
        updates: 0,
      });
      record(201);
      send(res, 201, { id });
      return;
    }
    if (req.method === 'PUT' && itemId) {
      const posted = this.activities.find((a) => a.id === itemId && a.conversationId === conversationId);
      if (!posted) {
        reject('no such activity in that conversation', 404);
        return;
      }
      posted.body = body!;
      posted.updates++;
      record(200);
      send(res, 200, { id: itemId });
      return;
    }
    reject('unsupported', 405);
  }
}
