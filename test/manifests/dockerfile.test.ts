/**
 * Issue 14, "Dockerfile": it exposed 5433 while the proxy uses 6432; its data directory was not
 * writable for user 10001; it mentioned commands that do not exist. There is no Docker engine
 * here, so the file is checked against the code, and the file tree it builds is laid out in a
 * temporary directory and its CMD run as the image's user with setpriv.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { parseBotConfig } from '../../bot/config.ts';
import { generateAuditKey } from '../../broker/audit/signing.ts';
import { loadConfig, parseConfig, parseConfigText } from '../../broker/config/load.ts';
import { helpFor } from '../../cli/help.ts';
import { freePort } from '../helpers/pg-cluster.ts';

const run = promisify(execFile);
const root = join(import.meta.dirname, '../..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');
const text = read('Dockerfile');

/** The instructions of the final stage (and all stages), continuation lines joined, comments kept apart. */
function parseDockerfile(source: string) {
  const comments: string[] = [];
  const instructions: { op: string; args: string; stage: number }[] = [];
  let stage = -1;
  let pending = '';
  for (const line of source.split('\n')) {
    if (/^\s*#/.test(line)) {
      comments.push(line.replace(/^\s*#\s?/, ''));
      continue;
    }
    pending += line.replace(/\\$/, ' ');
    if (line.endsWith('\\')) continue;
    const match = /^\s*([A-Z]+)\s+(.*)$/.exec(pending);
    pending = '';
    if (!match) continue;
    if (match[1] === 'FROM') stage++;
    instructions.push({ op: match[1]!, args: match[2]!.trim(), stage });
  }
  const last = instructions.filter((i) => i.stage === stage);
  const one = (op: string) => last.find((i) => i.op === op)?.args;
  return {
    comments,
    instructions,
    last,
    one,
    all: (op: string) => last.filter((i) => i.op === op).map((i) => i.args),
  };
}

const docker = parseDockerfile(text);
const exposed = docker
  .all('EXPOSE')
  .flatMap((a) => a.split(/\s+/))
  .map(Number);
const user = docker.one('USER')!.split(':')[0]!;
const uid = Number(user);
const entrypoint = JSON.parse(docker.one('ENTRYPOINT')!) as string[];
const cmd = JSON.parse(docker.one('CMD')!) as string[];

/** The ports Warden listens on: its defaults, and the example deployment's configuration. */
function listeningPorts(): number[] {
  const defaults = parseConfig({
    ssh: { ca_key: { env: 'X' }, proxy: { host_key: { env: 'X' }, upstream_key: { env: 'X' } } },
  });
  const k8s = parseAllDocuments(read('manifests/kubernetes/warden.yaml'))
    .map((d) => d.toJS())
    .find((d) => d.kind === 'ConfigMap');
  const examples = [
    loadConfig(join(root, 'manifests/examples/warden.yaml')),
    parseConfigText(k8s.data['warden.yaml']),
  ];
  const listens = [
    defaults.broker.listen,
    parseBotConfig({ slack: { bot_token: { env: 'X' }, signing_secret: { env: 'Y' } } }).slack!.listen,
    defaults.ssh!.proxy!.listen,
    ...examples.flatMap((c) =>
      Object.values(c.targets).flatMap((t) => (t.kind === 'postgres' && t.proxy ? [t.proxy.listen] : [])),
    ),
  ];
  return [...new Set(listens.map((l) => Number(l.split(':').at(-1))))].sort((a, b) => a - b);
}

describe('the Dockerfile says only what is true', () => {
  it('exposes 5433 while the proxy uses 6432 (fixed): it exposes exactly the ports Warden listens on', () => {
    assert.deepEqual(
      [...exposed].sort((a, b) => a - b),
      listeningPorts(),
    );
    assert.ok(!exposed.includes(5433));
  });

  it('mentions commands that do not exist (fixed): every `warden <verb>` it names is a command', () => {
    // A backticked `warden <verb>`, or a lone backticked word (the old file said `broker`/`bot`/`proxy`).
    const spans = [...docker.comments.join('\n').matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    const mentioned = spans.flatMap((span) => {
      const verb = /\bwarden ([a-z-]+)/.exec(span)?.[1];
      return verb ? [verb] : /^[a-z-]+$/.test(span) ? [span] : [];
    });
    const verbs = [...mentioned, cmd[0]!];
    assert.ok(verbs.length >= 2, verbs.join(' '));
    for (const verb of verbs) assert.ok(helpFor(verb), `warden ${verb} is not a command`);
    assert.deepEqual(entrypoint, ['node', '/app/cli/warden.js']);
    assert.equal(docker.one('ENV')?.includes('NODE_ENV=production'), true);
    const configEnv = docker.all('ENV').find((e) => e.startsWith('WARDEN_CONFIG='));
    assert.equal(
      configEnv,
      `WARDEN_CONFIG=${cmd.at(-1)}`,
      'CLI verbs in the container read the config serve reads',
    );
  });

  it('runs as an unprivileged user that owns its state directory', () => {
    assert.ok(uid > 0, 'not root');
    const volume = JSON.parse(
      `[${docker
        .one('VOLUME')!
        .split(/\s+/)
        .map((v) => JSON.stringify(v))
        .join(',')}]`,
    ) as string[];
    const run = docker.all('RUN').join(' && ');
    for (const dir of volume) {
      assert.match(run, new RegExp(`mkdir -p ${dir}\\b`));
      assert.match(run, new RegExp(`chown ${uid}:${uid} ${dir}\\b`));
    }
  });
});

describe('its data directory is not writable for user 10001 (fixed): the CMD, run as the image user', () => {
  let dir: string;
  let child: ChildProcess | undefined;
  /** Image paths, laid out under `dir`. */
  const at = (path: string) => join(dir, path);

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'warden-image-'));
    chmodSync(dir, 0o755);
    // /app: what the build stage copies (and node_modules, as npm ci made it).
    const copies = parseDockerfile(text).instructions.filter((i) => i.stage === 0 && i.op === 'COPY');
    mkdirSync(at('app'));
    for (const copy of copies) {
      const parts = copy.args.split(/\s+/);
      const target = parts.pop()!;
      for (const source of parts) {
        cpSync(join(root, source), target.endsWith('/') ? at(join('app', source)) : at(join('app', target)), {
          recursive: true,
        });
      }
    }
    symlinkSync(join(root, 'node_modules'), at('app/node_modules'));
  });
  after(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGKILL');
      await new Promise((r) => child!.once('exit', r));
    }
    rmSync(dir, { recursive: true, force: true });
  });

  /** Lays out /etc/warden and /var/lib/warden, the latter as the Dockerfile's RUN makes it or not. */
  async function layout(name: string, stateAsInImage: boolean) {
    const etc = at(`${name}/etc/warden`);
    const state = at(`${name}/var/lib/warden`);
    mkdirSync(etc, { recursive: true });
    mkdirSync(state, { recursive: true });
    if (stateAsInImage) {
      chownSync(state, uid, uid);
      chmodSync(state, 0o700);
    }
    writeFileSync(join(etc, 'audit.pem'), generateAuditKey().privateKey, { mode: 0o400 });
    chownSync(join(etc, 'audit.pem'), uid, uid);
    const port = await freePort();
    writeFileSync(
      join(etc, 'warden.yaml'),
      [
        'broker:',
        `  listen: 127.0.0.1:${port}`,
        `  store: { kind: embedded, path: ${join(state, 'warden.db')} }`,
        'audit:',
        '  signing_key: { file: audit.pem }',
        `  checkpoints: { file: ${join(state, 'audit-checkpoints.jsonl')} }`,
      ].join('\n'),
    );
    return { etc, state, port };
  }

  /** ENTRYPOINT + CMD with the image's paths mapped (`/etc/warden` to `etc`), as uid:gid of USER. */
  function start(etc: string): ChildProcess {
    const argv = [...entrypoint, ...cmd].map((a) =>
      a.replace('/app/', `${at('app')}/`).replace('/etc/warden/', `${etc}/`),
    );
    const node = argv[0] === 'node' ? process.execPath : argv[0]!;
    const env = {
      PATH: process.env.PATH,
      NODE_ENV: 'production',
      WARDEN_CONFIG: join(etc, 'warden.yaml'),
      HOME: '/nonexistent',
    };
    return spawn(
      'setpriv',
      [`--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', '--', node, ...argv.slice(1)],
      {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
        cwd: '/',
      },
    );
  }

  it('serves, creating its store 0600 in the state directory; live and ready', async () => {
    const { etc, state, port } = await layout('image', true);
    child = start(etc);
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
    for (;;) {
      const answered = await fetch(`http://127.0.0.1:${port}/v1/health/live`).then(
        (r) => r.status,
        () => 0,
      );
      if (answered === 200) break;
      const done = await Promise.race([exited, new Promise((r) => setTimeout(() => r('wait'), 200))]);
      assert.equal(done, 'wait', `warden serve exited: ${output}`);
    }
    assert.equal((await fetch(`http://127.0.0.1:${port}/v1/health`)).status, 200);
    const db = statSync(join(state, 'warden.db'));
    assert.equal(db.uid, uid);
    assert.equal(db.mode & 0o777, 0o600);
    // The image's HEALTHCHECK command, against this port.
    const healthcheck = JSON.parse(docker.one('HEALTHCHECK')!.replace(/^.*?CMD\s+/, '')) as string[];
    await run(
      process.execPath,
      healthcheck.slice(1).map((a) => a.replace(':8080/', `:${port}/`)),
    );
    child.kill('SIGTERM');
    assert.equal(await exited, 0, output);
    assert.equal(statSync(join(state, 'audit-checkpoints.jsonl')).mode & 0o777, 0o600);
  });

  it('a state directory the user cannot write (the old image) stops start-up, loudly', async () => {
    const { etc } = await layout('old-image', false);
    const old = start(etc);
    let output = '';
    old.stderr!.on('data', (d) => (output += d));
    const code = await new Promise<number | null>((r) => old.once('exit', (c) => r(c)));
    assert.notEqual(code, 0);
    assert.match(output, /EACCES|permission denied/i);
  });
});
