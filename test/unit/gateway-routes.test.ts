import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseRoute, RouteStore } from '../../src/gateway/routes';

const v = (name: string, weight: number, url = 'http://127.0.0.1:9001') => ({ name, url, weight });

function issuesOf(body: unknown, target = 'chat') {
  const result = parseRoute(target, body);
  if (result.ok) throw new Error('expected a validation failure');
  return result.issues;
}

describe('route validation', () => {
  it('accepts one or two versions whose weights sum to 100, salt defaulting to the target', () => {
    const result = parseRoute('chat', { versions: [v('v1', 90), v('v2', 10, 'https://models.example/v2')] });
    expect(result).toEqual({ ok: true, value: { versions: [v('v1', 90), v('v2', 10, 'https://models.example/v2')], salt: 'chat' } });
    expect(parseRoute('chat', { versions: [v('v1', 100)], salt: 'rollout-7' })).toMatchObject({ ok: true, value: { salt: 'rollout-7' } });
    expect(parseRoute('chat', { versions: [v('v1', 87.5), v('v2', 12.5)] }).ok).toBe(true);
  });

  it('keeps the existing salt when a PUT omits it', () => {
    const existing = { versions: [v('v1', 100)], salt: 'rollout-7' };
    expect(parseRoute('chat', { versions: [v('v1', 90), v('v2', 10)] }, existing)).toMatchObject({ ok: true, value: { salt: 'rollout-7' } });
  });

  it('names the weight that is out of range', () => {
    expect(issuesOf({ versions: [v('v1', 90), v('v2', 110)] })).toContainEqual({ path: 'versions.1.weight', message: 'weight must be at most 100' });
    expect(issuesOf({ versions: [v('v1', -1), v('v2', 101)] }).map((i) => i.path)).toEqual(expect.arrayContaining(['versions.0.weight', 'versions.1.weight']));
    expect(issuesOf({ versions: [{ name: 'v1', url: 'http://x', weight: '100' }] })).toContainEqual({ path: 'versions.0.weight', message: 'weight must be a number' });
  });

  it('takes weights in the spec\'s steps of 0.01, as the rollout sends them', () => {
    expect(parseRoute('chat', { versions: [v('v1', 99.93), v('v2', 0.07)] }).ok).toBe(true);
    expect(parseRoute('chat', { versions: [v('v1', 87.5), v('v2', 12.5)] }).ok).toBe(true);
    const fine = parseRoute('chat', { versions: [v('v1', 99.999), v('v2', 0.001)] });
    expect(fine.ok || fine.issues.map((i) => i.path)).toEqual(['versions.0.weight', 'versions.1.weight']);
  });

  it('requires the weights to sum to 100', () => {
    expect(issuesOf({ versions: [v('v1', 90), v('v2', 20)] })).toEqual([{ path: 'versions', message: 'weights must sum to 100 (they sum to 110)' }]);
  });

  it('names a bad url, a duplicate name, a bad name', () => {
    expect(issuesOf({ versions: [v('v1', 50, 'ftp://x'), v('v2', 50)] }).map((i) => i.path)).toEqual(['versions.0.url']);
    expect(issuesOf({ versions: [v('v1', 50), v('v1', 50)] })).toEqual([{ path: 'versions.1.name', message: 'name "v1" is already used by versions.0' }]);
    expect(issuesOf({ versions: [v('bad name', 100)] }).map((i) => i.path)).toEqual(['versions.0.name']);
  });

  it('bounds the number of versions and rejects unknown fields', () => {
    expect(issuesOf({ versions: [] }).map((i) => i.path)).toContain('versions');
    expect(issuesOf({ versions: [v('a', 20), v('b', 20), v('c', 20), v('d', 20), v('e', 20)] }).map((i) => i.path)).toContain('versions');
    expect(issuesOf({ versions: [v('v1', 100)], weights: 3 }).length).toBeGreaterThan(0);
    expect(issuesOf([]).length).toBeGreaterThan(0);
    expect(issuesOf({ versions: [v('v1', 100)], salt: '' }).map((i) => i.path)).toEqual(['salt']);
  });

  it('rejects reserved and malformed target names', () => {
    expect(issuesOf({ versions: [v('v1', 100)] }, 'admin')).toEqual([{ path: 'target', message: 'target "admin" is reserved by the gateway (admin, metrics, healthz)' }]);
    expect(issuesOf({ versions: [v('v1', 100)] }, 'metrics').map((i) => i.path)).toEqual(['target']);
    expect(issuesOf({ versions: [v('v1', 100)] }, 'Chat_1').map((i) => i.path)).toEqual(['target']);
  });
});

describe('RouteStore', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'routes-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('persists atomically and reloads', async () => {
    const store = new RouteStore(dir);
    await store.load();
    const route = { versions: [v('v1', 90), v('v2', 10)], salt: 'chat' };
    await Promise.all([store.set('chat', route), store.set('embed', { versions: [v('e1', 100)], salt: 'embed' })]);
    expect(await readdir(dir)).toEqual(['routes.json']); // no temp files left behind
    const reloaded = new RouteStore(dir);
    await reloaded.load();
    expect(reloaded.get('chat')).toEqual(route);
    expect(reloaded.get('embed')?.versions[0]?.name).toBe('e1');
    expect(await reloaded.delete('embed')).toBe(true);
    expect(await reloaded.delete('embed')).toBe(false);
    expect(JSON.parse(await readFile(path.join(dir, 'routes.json'), 'utf8'))).toEqual({ routes: { chat: route } });
  });
});
