/**
 * The CLI's pure parts and its client, without the stack: spec files (YAML/JSON by extension or
 * content, syntax errors with line and column), the status view and the watch log of a status,
 * exit codes, wrapping, the HTML page's self-containment, and the client against a small fake
 * API (bearer token, the error envelope, 401).
 */
import { createClient, ApiResponseError, rolloutId } from '../../src/client';
import { renderHtmlReport, reportData } from '../../src/cli/html-report';
import { exitCodeOf, runCli, type CliIo } from '../../src/cli/program';
import { changeLines, renderStatus, wrapLine, visibleLength } from '../../src/cli/render';
import { parseSpecText, specFormat } from '../../src/cli/spec-file';
import { changesBetween } from '../../src/client/watch';
import { parseRolloutSpec } from '../../src/spec';
import { newRolloutState, statusOf } from '../../src/workflows/state';
import type { RolloutStatus } from '../../src/workflows/status';
import { listen } from '../helpers/http';

function status(change: (s: RolloutStatus) => void = () => undefined): RolloutStatus {
  const parsed = parseRolloutSpec({
    target: 'chat',
    baseline: { version: 'v1', url: 'http://127.0.0.1:9001' },
    candidate: { version: 'v2', url: 'http://127.0.0.1:9002' },
    steps: [{ weight: 10, bake: '20s' }, { weight: 50, bake: '20s', gate: 'manual' }, { weight: 100 }],
    analysis: { interval: '5s', minRequests: 5 },
  });
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  const s = statusOf(newRolloutState('rollout-chat', parsed.spec, null, '2026-01-01T00:00:00.000Z'));
  change(s);
  return s;
}

const evidence = {
  judge: 'sequential',
  errors: { tested: true, eValue: 1, rollbackAt: 166.7, ready: true, r0: 1.2, upperBound: null, errorRateUpperBound: 0.0093 },
  latency: { tested: true, eValue: 12.5, rollbackAt: 333.3, ready: false, r0: 1.25, upperBound: 1.9, boundaryMs: 35 },
  ttfb: { tested: true, eValue: 0.5, rollbackAt: 1000, ready: false, r0: 1.25, upperBound: null, boundaryMs: null },
};

function checked(): RolloutStatus {
  return status((s) => {
    s.weights = { baseline: 90, candidate: 10 };
    s.step.bakedMs = 10_000;
    s.updatedAt = '2026-01-01T00:00:06.000Z';
    s.step.waiting = { reason: 'needs_evidence', message: 'not bounded yet.', estimate: { candidateRequests: 120, seconds: 30 } };
    s.decisions.push({
      seq: 1,
      summary: 'v2 at 10%: 0.0% errors vs 0.0% on v1 — no regression seen so far: baking',
      at: '2026-01-01T00:00:05.000Z',
      step: 0,
      weight: 10,
      verdict: 'pass',
      reasons: ['fine.'],
      metrics: { baseline: { requests: 90, errors: 0, errorRate: 0, latencyP95Ms: 70 }, candidate: { requests: 10, errors: 0, errorRate: 0, latencyP95Ms: 72.4 } },
      evidence,
      failedChecks: 0,
      then: { action: 'bake' },
    });
  });
}

test('spec files: YAML or JSON by extension, else by content; syntax errors say where', () => {
  expect(specFormat('a.yaml', '{}')).toBe('yaml');
  expect(specFormat('a.YML', '')).toBe('yaml');
  expect(specFormat('a.json', 'x: 1')).toBe('json');
  expect(specFormat('spec', '  {"target": "x"}')).toBe('json');
  expect(specFormat('spec', 'target: x')).toBe('yaml');
  expect(parseSpecText('s.yaml', 'target: chat\nsteps:\n  - weight: 100\n').spec).toEqual({ target: 'chat', steps: [{ weight: 100 }] });
  expect(parseSpecText('s', '\uFEFF{"target":"chat"}')).toEqual({ format: 'json', spec: { target: 'chat' } });
  expect(() => parseSpecText('s.yaml', 'a: 1\na: 2\n')).toThrow(/^s\.yaml:2:1 is not valid YAML: Map keys must be unique/);
  expect(() => parseSpecText('s.json', '{\n  "a": 1,\n}')).toThrow(/^s\.json is not valid JSON: .*\(line 3, column 1\)$/);
  expect(() => parseSpecText('s.yaml', '  \n')).toThrow('s.yaml is empty');
});

test('exit codes: 0 promoted, 2 rolled_back, 3 aborted, 4 failed', () => {
  expect(['promoted', 'rolled_back', 'aborted', 'failed', 'progressing'].map(exitCodeOf)).toEqual([0, 2, 3, 4, 0]);
});

test('wrapping keeps every row within the width, continuation rows indented', () => {
  const text = `summary     ${'word '.repeat(40)}http://127.0.0.1:8233/${'x'.repeat(150)}`;
  const rows = wrapLine(text, 80, 12);
  expect(rows.length).toBeGreaterThan(3);
  for (const row of rows) expect(visibleLength(row)).toBeLessThanOrEqual(80);
  for (const row of rows.slice(1)) expect(row.startsWith(' '.repeat(12))).toBe(true);
  expect(rows.join('').replace(/\s+/g, '')).toBe(text.replace(/\s+/g, ''));
  expect(wrapLine('\x1b[1mshort\x1b[0m', 5, 0)).toEqual(['\x1b[1mshort\x1b[0m']);
});

test('the status view: steps as a progress bar, bake, evidence per metric, summary, waiting', () => {
  const view = renderStatus(checked(), { now: Date.parse('2026-01-01T00:00:08.000Z') });
  expect(view[0]).toMatch(/^rollout-chat {2}progressing {2}updated \d\d:\d\d:\d\d \(2s ago\)$/);
  expect(view.slice(3)).toEqual(
    [
      'weights     v1 90% / v2 10%',
      'progress    [█████·························] step 1/3 · v2 at 10%',
      'steps       ▶10%  50%  100%',
      'bake        [██████████··········] 10s of 20s (50%)',
      'last check  #1 at ' + new Date('2026-01-01T00:00:05.000Z').toTimeString().slice(0, 8) + ' · step 1 @10% · PASS · then bake',
      'traffic     v2 10 req, 0.0% err, p95 72 ms | v1 90 req, 0.0% err, p95 70 ms',
      'evidence    errors   e=1    [··········] below rollback at 166.7 · ready ✓ (rate ≤ 0.93%, tolerance 1.2×)',
      '            latency  e=12.5 [████······] below rollback at 333.3 · not ready (ratio ≤ 1.9, tolerance 1.25×)',
      '            TTFB     calibrating (the latency boundary is set from the baseline first)',
      'summary     v2 at 10%: 0.0% errors vs 0.0% on v1 — no regression seen so far: baking',
      'waiting     needs_evidence: not bounded yet.',
      'estimate    120 more candidate requests, ~30s at the current traffic',
    ],
  );
  // At the manual gate's step the bake line says so; once final, the outcome.
  const gated = renderStatus(status((s) => Object.assign(s.step, { index: 1, weight: 50, bakeMs: 20_000, bakedMs: 0 })));
  expect(gated).toContain('bake        [····················] 0ms of 20s (0%) · then a manual gate (approve)');
  const done = renderStatus(status((s) => {
    s.phase = 'rolled_back';
    s.outcome = { result: 'rolled_back', reason: 'errors regressed', at: '2026-01-01T00:01:00.000Z' };
  }));
  expect(done).toContain('steps       ✗10%  50%  100%');
  expect(done.find((l) => l.startsWith('outcome'))).toMatch(/^outcome {5}rolled_back at \d\d:\d\d:\d\d: errors regressed$/);
});

test('the watch log: one line per change (checks, weights, waiting, phase)', () => {
  const first = status();
  const next = checked();
  expect(changeLines(first, changesBetween(undefined, first), { now: 0 })).toEqual([expect.stringMatching(/^\d\d:\d\d:\d\d rollout-chat progressing · step 1\/3 · v1 100% \/ v2 0%$/)]);
  const lines = changeLines(next, changesBetween(first, next), { now: 0 }).map((l) => l.slice(9));
  expect(lines).toEqual([
    'check 1 · PASS · v2 at 10%: 0.0% errors vs 0.0% on v1 — no regression seen so far: baking',
    'weights v1 90% / v2 10% · step 1/3',
    'waiting needs_evidence: not bounded yet.',
  ]);
  // Only the numbers of the waiting message moved: not a change.
  const later = checked();
  later.step.waiting!.message = 'not bounded yet (3 of 30).';
  const same = checked();
  same.step.waiting!.message = 'not bounded yet (4 of 30).';
  expect(changesBetween(later, same).waiting).toBe(false);
});

test('an activity Temporal is retrying (the router down during a rollback) is shown, and its start and end are changes', () => {
  const before = status((s) => {
    s.phase = 'rolling_back';
  });
  const during = status((s) => {
    s.phase = 'rolling_back';
    s.retrying = [{ activity: 'setTrafficWeights', attempt: 3, lastError: 'activity setTrafficWeights failed: other side closed', nextAttemptAt: '2026-01-01T00:00:04.000Z' }];
  });
  expect(renderStatus(during).find((l) => l.startsWith('retrying'))).toMatch(/^retrying {4}setTrafficWeights, attempt 3 \(next at \d\d:\d\d:\d\d\): activity setTrafficWeights failed: other side closed$/);
  expect(renderStatus(before).some((l) => l.startsWith('retrying'))).toBe(false);
  expect(changeLines(during, changesBetween(before, during), { now: 0 }).map((l) => l.slice(9))).toEqual([
    'retrying setTrafficWeights (attempt 3): activity setTrafficWeights failed: other side closed',
  ]);
  // The next attempt is not news; the retries ending is.
  const next = structuredClone(during);
  next.retrying![0]!.attempt = 4;
  expect(changesBetween(during, next).retrying).toBe(false);
  expect(changesBetween(during, before).retrying).toBe(true);
});

test("the client's start carries one Idempotency-Key through its retries, and retries only what may not have started", async () => {
  const keys: string[] = [];
  let answers = ['drop', 'drop', 'created'];
  const server = await listen((req, res) => {
    keys.push(String(req.headers['idempotency-key']));
    req.resume();
    const answer = answers.shift();
    if (answer === 'drop') return req.socket.destroy();
    if (answer === 'invalid') {
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'invalid_spec', message: 'bad' } }));
      return;
    }
    res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ id: 'rollout-chat' }));
  });
  try {
    const api = createClient({ baseUrl: server.url });
    await expect(api.start({ target: 'chat' }, { idempotencyKey: 'job-42' })).resolves.toEqual({ status: { id: 'rollout-chat' }, replayed: false });
    expect(keys).toEqual(['job-42', 'job-42', 'job-42']);
    // Without a key given, a fresh UUID; a 400 is final: no retry.
    keys.length = 0;
    answers = ['invalid'];
    await expect(api.start({ target: 'chat' })).rejects.toBeInstanceOf(ApiResponseError);
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
  } finally {
    await server.close();
  }
});

test('the HTML page carries its library, data and charts, and nothing can close its scripts early', () => {
  const s = checked();
  s.decisions[0]!.summary = 'a </script><script>alert(1)</script> summary & more';
  const html = renderHtmlReport(s, { generatedAt: new Date(0) });
  expect(html).toContain('uPlot');
  expect(html.match(/<script/g)).toHaveLength(3);
  expect(html.match(/<\/script>/g)).toHaveLength(3);
  expect(html).toContain('a &lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt; summary &amp; more');
  const data = reportData(s);
  expect(data.weights.candidate).toEqual([0, 10, 10]);
  expect(data.checks.p95.candidate).toEqual([72.4]);
  expect(data.evidence.map((e) => e.metric)).toEqual(['errors', 'latency']);
});

test('the client sends API_TOKEN as a bearer token and reads the error envelope; the CLI says what a 401 needs', async () => {
  const seen: Array<string | undefined> = [];
  const api = await listen((req, res) => {
    seen.push(req.headers.authorization);
    res.setHeader('content-type', 'application/json');
    if (req.headers.authorization !== 'Bearer s3cret') {
      res.statusCode = 401;
      return res.end(JSON.stringify({ error: { code: 'unauthorized', message: 'missing or invalid bearer token' } }));
    }
    if (req.url === '/v1/rollouts/rollout-chat') {
      res.statusCode = 400;
      return res.end(JSON.stringify({ error: { code: 'invalid_request', message: 'invalid query', issues: [{ path: 'query.x', message: 'unknown' }] } }));
    }
    res.end(JSON.stringify({ rollouts: [] }));
  });
  try {
    const client = createClient({}, { API_URL: `${api.url}/`, API_TOKEN: 's3cret' });
    expect(await client.list()).toEqual([]);
    const err = await client.get(rolloutId('chat')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiResponseError);
    expect(err).toMatchObject({ status: 400, code: 'invalid_request', message: 'invalid query', issues: [{ path: 'query.x', message: 'unknown' }] });
    expect(rolloutId('rollout-chat')).toBe('rollout-chat');

    const out: string[] = [];
    const io = (env: NodeJS.ProcessEnv): CliIo => ({ stdout: { write: (t: string) => out.push(t) }, stderr: { write: (t: string) => out.push(t) }, env });
    expect(await runCli(['list'], io({ API_TOKEN: 's3cret', API_URL: api.url }))).toBe(0);
    expect(out.join('')).toBe('no rollouts\n');
    out.length = 0;
    expect(await runCli(['--api', api.url, 'list'], io({}))).toBe(1);
    expect(out.join('')).toBe('model-canary: the API refused the request (401 unauthorized: missing or invalid bearer token); set API_TOKEN to its token\n');
    expect(seen).toEqual(['Bearer s3cret', 'Bearer s3cret', 'Bearer s3cret', undefined]);
  } finally {
    await api.close();
  }
});

test('watch without a terminal: the first status, trouble on the way, Ctrl-C stops it with 130', async () => {
  let calls = 0;
  const running = status((s) => (s.weights = { baseline: 90, candidate: 10 }));
  const api = await listen((_req, res) => {
    calls += 1;
    res.setHeader('content-type', 'application/json');
    if (calls === 2) {
      res.statusCode = 503;
      return res.end(JSON.stringify({ error: { code: 'temporal_unavailable', message: 'Temporal is unreachable' } }));
    }
    res.end(JSON.stringify(running));
  });
  try {
    const out: string[] = [];
    const err: string[] = [];
    const stopper = new AbortController();
    const io: CliIo = {
      stdout: { write: (t: string) => out.push(t) },
      stderr: {
        write: (t: string) => {
          err.push(t);
          if (t.includes('still trying')) setTimeout(() => stopper.abort(), 300); // "Ctrl-C" once the trouble was told
        },
      },
      env: { API_URL: api.url },
      signal: stopper.signal,
    };
    expect(await runCli(['get', 'chat', '--watch', '--poll', '50'], io)).toBe(130);
    expect(out.join('')).toMatch(/^\d\d:\d\d:\d\d rollout-chat progressing · step 1\/3 · v1 90% \/ v2 10%\n$/);
    expect(err.join('')).toMatch(/^\d\d:\d\d:\d\d Temporal is unreachable; still trying\nstopped watching rollout-chat \(it is progressing; the rollout goes on\)\n$/);
  } finally {
    await api.close();
  }
});
