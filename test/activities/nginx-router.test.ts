/**
 * The NGINX traffic router against a real nginx (Debian's) and two real demo model servers, with
 * real HTTP through nginx: split accuracy, stickiness and monotone moves on x-canary-key, the
 * per-request split without it, rollback, a config nginx -t refuses (the previous one stays live),
 * and readRoute.
 */
import { ApplicationFailure } from '@temporalio/common';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nginxRouter, nginxTrafficRouter, splitEntries } from '../../src/activities/routers/nginx';
import type { TrafficRouter } from '../../src/activities/types';
import { startModelServer, type ModelServer } from '../../src/demo/model-server';
import { startNginx, type NginxInstance } from '../helpers/nginx';

const TARGET = 'chat';
const ROLLOUT = 'rollout-nginx-1';
let configDir: string;
let nginx: NginxInstance;
let router: TrafficRouter;
let v1: ModelServer;
let v2: ModelServer;

beforeAll(async () => {
  configDir = await mkdtemp(join(tmpdir(), 'model-canary-nginx-routes-'));
  [nginx, v1, v2] = await Promise.all([
    startNginx({ configDir }),
    startModelServer({ version: 'v1', port: 0, latencyMs: 0, latencySpread: 0 }),
    startModelServer({ version: 'v2', port: 0, latencyMs: 0, latencySpread: 0 }),
  ]);
  router = nginxTrafficRouter(nginx.routing);
});

afterAll(async () => {
  await nginx?.stop();
  await Promise.all([v1?.close(), v2?.close()]);
  if (configDir) await rm(configDir, { recursive: true, force: true });
});

const route = (candidateWeight: number, candidateUrl = v2.url) => ({
  target: TARGET,
  versions: [
    { version: 'v1', url: v1.url, weight: Number((100 - candidateWeight).toFixed(2)) },
    { version: 'v2', url: candidateUrl, weight: candidateWeight },
  ],
});

interface Answer {
  status: number;
  /** x-canary-version, as nginx set it. */
  version: string;
  /** x-model-version: the server that actually answered. */
  servedBy: string;
  body: string;
}

/** One request through nginx on `agent`. */
function get(agent: Agent, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((done, fail) => {
    const req = httpRequest(`${nginx.url}${path}`, { agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        done({
          status: res.statusCode ?? 0,
          version: String(res.headers['x-canary-version'] ?? ''),
          servedBy: String(res.headers['x-model-version'] ?? ''),
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      res.on('error', fail);
    });
    req.on('error', fail);
    req.end();
  });
}

/**
 * `count` requests to /chat/healthz, 32 at a time, on a fresh keep-alive pool (never a
 * connection to a worker an earlier reload retired); `keyOf(i)` the x-canary-key of the i-th, if any.
 */
async function send(count: number, keyOf?: (i: number) => string, headers: Record<string, string> = {}, target = TARGET): Promise<Answer[]> {
  const agent = new Agent({ keepAlive: true, maxSockets: 32 });
  const answers: Answer[] = new Array(count);
  let next = 0;
  try {
    await Promise.all(
      Array.from({ length: 32 }, async () => {
        while (next < count) {
          const i = next++;
          answers[i] = await get(agent, `/${target}/healthz`, { ...headers, ...(keyOf ? { 'x-canary-key': keyOf(i) } : {}) });
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  for (const a of answers) {
    expect(a.status).toBe(200);
    expect(a.servedBy).toBe(a.version); // the header names the version that served
  }
  return answers;
}

const share = (answers: Answer[], version: string) => (100 * answers.filter((a) => a.version === version).length) / answers.length;
const KEYS = 4000;
const userKey = (i: number) => `user-${i}`;
/** Per-key version at each weight, for the stickiness checks across steps. */
const assigned = new Map<number, Map<string, string>>();
const measured: string[] = [];

async function measure(weight: number): Promise<void> {
  const keyed = await send(KEYS, userKey);
  const unkeyed = await send(KEYS);
  const keyedShare = share(keyed, 'v2');
  const unkeyedShare = share(unkeyed, 'v2');
  measured.push(`${weight}%: keyed ${keyedShare.toFixed(2)}%, per-request ${unkeyedShare.toFixed(2)}% (n=${KEYS} each)`);
  expect(Math.abs(keyedShare - weight)).toBeLessThanOrEqual(3);
  expect(Math.abs(unkeyedShare - weight)).toBeLessThanOrEqual(3);
  assigned.set(weight, new Map(keyed.map((a, i) => [userKey(i), a.version])));
}

afterAll(() => {
  if (measured.length) console.log(`NGINX router split accuracy:\n  ${measured.join('\n  ')}`);
});

describe('nginx traffic router', () => {
  test('no route before the first change', async () => {
    await expect(router.readRoute(TARGET)).resolves.toBeUndefined();
  });

  test('the baseline alone: everything to v1, paths and queries passed as sent', async () => {
    await router.setWeights(route(0), { rolloutId: ROLLOUT });
    const answers = await send(200, userKey);
    expect(share(answers, 'v1')).toBe(100);

    const agent = new Agent();
    try {
      // /{target}/{rest} → url + /{rest}, raw path and query: the model server names the path it got.
      const missing = await get(agent, `/${TARGET}/no/such%2Fpath?x=1`);
      expect(missing.status).toBe(404);
      expect(missing.version).toBe('v1');
      expect(JSON.parse(missing.body).error.message).toBe('no route GET /no/such%2Fpath');
      const root = await get(agent, `/${TARGET}?q=1`);
      expect(JSON.parse(root.body).error.message).toBe('no route GET /');
      // Another first segment is no target.
      const other = await get(agent, '/other/healthz');
      expect(other.status).toBe(404);
      expect(JSON.parse(other.body).error.code).toBe('unknown_target');
    } finally {
      agent.destroy();
    }
  });

  test('10%: weights within ±3%, keyed and per request; a key keeps its version', async () => {
    await router.setWeights(route(10), { rolloutId: ROLLOUT });
    await measure(10);
    // Sticky: the same key gets the same version on every request at a fixed split.
    const again = await send(1000, userKey);
    const first = assigned.get(10)!;
    expect(again.filter((a, i) => a.version !== first.get(userKey(i)))).toEqual([]);
  });

  test('10% → 50%: keys only move from v1 to v2, never back', async () => {
    await router.setWeights(route(50), { rolloutId: ROLLOUT });
    await measure(50);
    const at10 = assigned.get(10)!;
    const at50 = assigned.get(50)!;
    const movedBack = [...at10].filter(([key, version]) => version === 'v2' && at50.get(key) !== 'v2');
    expect(movedBack).toEqual([]);
    const moved = [...at10].filter(([key, version]) => version === 'v1' && at50.get(key) === 'v2').length;
    expect(moved).toBeGreaterThan(KEYS * 0.3);
  });

  test('readRoute gives back the route, urls and salt', async () => {
    await expect(router.readRoute(TARGET)).resolves.toEqual({
      target: TARGET,
      versions: [
        { version: 'v1', weight: 50, url: v1.url },
        { version: 'v2', weight: 50, url: v2.url },
      ],
      routerState: { salt: ROLLOUT },
    });
  });

  test('streams a chat completion (SSE) through nginx', async () => {
    const res = await fetch(`${nginx.url}/${TARGET}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-canary-key': 'streamer' },
      body: JSON.stringify({ stream: true, messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    expect(['v1', 'v2']).toContain(res.headers.get('x-canary-version'));
    const text = await res.text();
    expect(text.match(/^data: /gm)?.length).toBe(7); // 5 tokens, the stop chunk, [DONE]
    expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
  });

  test('a route nginx -t refuses fails for good, and the previous config stays live', async () => {
    const conf = join(configDir, `${TARGET}.conf`);
    const before = await readFile(conf, 'utf8');
    // Port 0 passes URL parsing but nginx refuses it ("invalid port in upstream").
    const err = await router.setWeights(route(75, 'http://127.0.0.1:0'), { rolloutId: ROLLOUT }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect((err as ApplicationFailure).nonRetryable).toBe(true);
    expect((err as ApplicationFailure).message).toContain('invalid port in upstream');
    // The files are the previous ones, and what is on disk passes nginx -t (a restart or another reload is safe).
    expect(await readFile(conf, 'utf8')).toBe(before);
    const test = spawnSync(nginx.bin, ['-t', '-c', nginx.mainConfig], { encoding: 'utf8' });
    expect(test.status).toBe(0);
    await expect(router.readRoute(TARGET)).resolves.toMatchObject({ versions: [{ weight: 50 }, { weight: 50 }] });
    // Traffic still flows at the previous split, keys where they were.
    const answers = await send(1000, userKey);
    const at50 = assigned.get(50)!;
    expect(answers.filter((a, i) => a.version !== at50.get(userKey(i)))).toEqual([]);
  });

  test('rollback to 100/0 sends everything to v1; a restored route keeps its own salt', async () => {
    await router.setWeights({ ...route(0), routerState: { salt: ROLLOUT } }, { rolloutId: 'another-rollout' });
    expect(share(await send(1000, userKey), 'v1')).toBe(100);
    expect(share(await send(1000), 'v1')).toBe(100);
    await expect(router.readRoute(TARGET)).resolves.toMatchObject({ routerState: { salt: ROLLOUT } });
  });

  test('a 0.25% step is rendered as nginx takes it (two decimals)', async () => {
    await router.setWeights(route(0.25), { rolloutId: ROLLOUT });
    const conf = await readFile(join(configDir, `${TARGET}.conf`), 'utf8');
    expect(conf).toContain('0.25% v2;');
    const answers = await send(2000, userKey);
    expect(share(answers, 'v2')).toBeLessThan(1.5);
    // Every key at v2 at 0.25% was at v2 at 10% too (the candidate's range only grows).
    const at10 = assigned.get(10)!;
    expect(answers.filter((a, i) => a.version === 'v2' && at10.get(userKey(i)) !== 'v2')).toEqual([]);
  });
});

describe('nginx router: a header match', () => {
  const MATCHED = 'matched';
  const match = { header: 'x-canary-user', values: ['internal', 'a.b+c', '$host{1}'], others: 'v1' };
  const at = (candidateWeight: number, more: object = {}) => ({ ...route(candidateWeight), target: MATCHED, ...more });

  test('only requests with the header at one of the values are split; the rest go to the baseline', async () => {
    await router.setWeights(at(100, { match }), { rolloutId: ROLLOUT });
    const conf = await readFile(join(configDir, `${MATCHED}.conf`), 'utf8');
    // A case-sensitive, anchored regex per value (plain map strings would match case-insensitively), metacharacters escaped.
    expect(conf).toContain(
      [
        'map $http_x_canary_user $model_canary_matched_version {',
        '    "~^internal$" $model_canary_matched_split;',
        '    "~^a\\.b\\+c$" $model_canary_matched_split;',
        '    "~^\\$host\\{1\\}$" $model_canary_matched_split;',
        '    default "v1";',
        '}',
      ].join('\n'),
    );
    const by = (answers: Answer[]) => [...new Set(answers.map((a) => a.version))];
    expect(by(await send(200, userKey, { 'x-canary-user': 'internal' }, MATCHED))).toEqual(['v2']);
    expect(by(await send(200, undefined, { 'x-canary-user': 'a.b+c' }, MATCHED))).toEqual(['v2']);
    expect(by(await send(50, undefined, { 'x-canary-user': '$host{1}' }, MATCHED))).toEqual(['v2']);
    expect(by(await send(200, userKey, {}, MATCHED))).toEqual(['v1']);
    expect(by(await send(200, undefined, {}, MATCHED))).toEqual(['v1']);
    for (const other of ['Internal', 'internal2', 'axb+c', '127.0.0.1', 'hostt', '']) expect(by(await send(50, userKey, { 'x-canary-user': other }, MATCHED))).toEqual(['v1']);
    await expect(router.readRoute(MATCHED)).resolves.toEqual({
      target: MATCHED,
      versions: [
        { version: 'v1', weight: 0, url: v1.url },
        { version: 'v2', weight: 100, url: v2.url },
      ],
      routerState: { salt: ROLLOUT },
      match,
    });
    // What nginx serves says so too.
    expect(((await (await fetch(`${nginx.url}/_model_canary/${MATCHED}`)).json()) as { match?: unknown }).match).toEqual(match);

    // Without the match again: every request is split (here all to v2), and readRoute has no match.
    await router.setWeights(at(100), { rolloutId: ROLLOUT });
    expect(by(await send(200, userKey, {}, MATCHED))).toEqual(['v2']);
    expect(await readFile(join(configDir, `${MATCHED}.conf`), 'utf8')).not.toContain('$http_x_canary_user');
    expect((await router.readRoute(MATCHED))?.match).toBeUndefined();
  });

  test('a mirror, or a match NGINX config cannot carry, is refused for good before anything is written', async () => {
    const before = await readFile(join(configDir, `${MATCHED}.conf`), 'utf8');
    const mirror = await router.setWeights(at(50, { mirror: { from: 'v1', to: 'v2', percent: 10 } }), { rolloutId: ROLLOUT }).catch((e: unknown) => e);
    expect(mirror).toBeInstanceOf(ApplicationFailure);
    expect((mirror as ApplicationFailure).nonRetryable).toBe(true);
    expect((mirror as ApplicationFailure).type).toBe('UnsupportedRouteFeature');
    expect((mirror as ApplicationFailure).message).toContain('"mirror"');
    for (const [bad, field] of [
      [{ ...match, header: 'x_canary_user' }, 'match.header'],
      [{ ...match, header: 'X-Canary-User' }, 'match.header'],
      [{ ...match, values: ['a"b'] }, 'match.values'],
      [{ ...match, values: ['a\\b'] }, 'match.values'],
      [{ ...match, values: ['line\nbreak'] }, 'match.values'],
      [{ ...match, values: [] }, 'match.values'],
      [{ ...match, others: 'v3' }, 'match.others'],
    ] as const) {
      const err = await router.setWeights(at(50, { match: bad }), { rolloutId: ROLLOUT }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ApplicationFailure);
      expect((err as ApplicationFailure).nonRetryable).toBe(true);
      expect((err as ApplicationFailure).type).toBe('InvalidRoute');
      expect((err as ApplicationFailure).message).toContain(field);
    }
    expect(await readFile(join(configDir, `${MATCHED}.conf`), 'utf8')).toBe(before);
  });
});

describe('nginx router: rendering and options', () => {
  test('split entries: the last version first, the baseline as "*", zero weights left out', () => {
    expect(splitEntries([{ version: 'v1', weight: 90 }, { version: 'v2', weight: 10 }])).toEqual(['10.00% v2;', '* v1;']);
    expect(splitEntries([{ version: 'v1', weight: 100 }, { version: 'v2', weight: 0 }])).toEqual(['* v1;']);
    expect(splitEntries([{ version: 'v1', weight: 0 }, { version: 'v2', weight: 100 }])).toEqual(['* v2;']);
    expect(splitEntries([{ version: 'v1', weight: 99.93 }, { version: 'v2', weight: 0.07 }])).toEqual(['0.07% v2;', '* v1;']);
    expect(splitEntries([
      { version: 'a', weight: 33.34 },
      { version: 'b', weight: 33.33 },
      { version: 'c', weight: 33.33 },
    ])).toEqual(['33.33% c;', '33.33% b;', '* a;']);
  });

  test('options: validated with messages that name the field', () => {
    const issues = (options: unknown) => {
      const result = nginxRouter.options.safeParse(options);
      return result.success ? [] : result.error.issues.map((i) => i.message);
    };
    expect(issues({ kind: 'nginx', configDir: '/etc/nginx/model-canary', listen: '8081' })).toEqual([]);
    expect(issues({ kind: 'nginx', configDir: '/x', listen: 8081 })[0]).toMatch(/^routing\.listen must be a string/);
    expect(nginxRouter.options.parse({ kind: 'nginx', configDir: '/x', listen: '127.0.0.1:8081' }).nginx).toBe('nginx');
    expect(issues({ kind: 'nginx', configDir: 'relative/dir', listen: '8081' })).toEqual(['routing.configDir must be an absolute path']);
    expect(issues({ kind: 'nginx', configDir: '/x', listen: 'nope' })[0]).toMatch(/^routing\.listen must be a port/);
    expect(issues({ kind: 'nginx', configDir: '/x', listen: '*:70000' })[0]).toMatch(/^routing\.listen must be a port/);
    expect(issues({ kind: 'nginx', configDir: '/x', listen: '8081', nginxConfig: 'nginx.conf' })).toEqual(['routing.nginxConfig must be an absolute path']);
    expect(issues({ kind: 'nginx', listen: '8081' })).toEqual(['routing.configDir must be a string']);
  });

  test('a route nginx could not carry is refused before anything is written', async () => {
    const invalid = nginxTrafficRouter({ kind: 'nginx', configDir, listen: String(nginx.port), nginx: nginx.bin, nginxConfig: nginx.mainConfig });
    for (const bad of [
      { target: TARGET, versions: [{ version: 'v1', url: 'http://127.0.0.1:1/$x', weight: 100 }] },
      { target: TARGET, versions: [{ version: 'v1', weight: 100 }] },
      { target: TARGET, versions: [{ version: 'v1', url: v1.url, weight: 60 }, { version: 'v2', url: v2.url, weight: 30 }] },
    ]) {
      const err = await invalid.setWeights(bad, { rolloutId: ROLLOUT }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ApplicationFailure);
      expect((err as ApplicationFailure).type).toBe('InvalidRoute');
    }
  });
});
