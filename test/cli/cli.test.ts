/**
 * The operator CLI against the real stack (scripts/serve.ts: Temporal dev server, worker, API,
 * gateway; demo model servers and traffic over HTTP), run as an operator runs it — a process,
 * from a directory that is not the project's: start from YAML and JSON files, list, get,
 * pause/resume, abort --reason, `get --watch` (not a terminal) exiting 0 on a promoted rollout
 * and 2 on a rolled-back one, 3 at once on an aborted one, `--json` everywhere, and the errors: a
 * 400 naming each field, 404, 409.
 */
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RolloutStatus, RolloutSummary } from '../../src/workflows/status';
import { PROJECT_ROOT } from '../../src/temporal-bin';
import { eventually, request } from '../helpers/http';
import { uniqueTarget } from '../helpers/specs';
import { cliEnv, elsewhere, Fleet, runCli, spawnCli, startStack, yamlSpec, type Stack } from './support';

let stack: Stack;
let fleet: Fleet;
let cwd: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  stack = await startStack();
  fleet = new Fleet(stack.gatewayUrl);
  cwd = elsewhere();
  env = cliEnv({ API_URL: stack.apiUrl });
}, 180_000);

afterAll(async () => {
  await fleet?.close();
  await stack?.stop();
  if (cwd) rmSync(cwd, { recursive: true, force: true });
});

const cli = (...args: string[]) => runCli(args, { env, cwd });
const status = async (id: string) => (await request<RolloutStatus>(stack.apiUrl, 'GET', `/v1/rollouts/${id}`)).body;

test('start from YAML and JSON, list, get, pause/resume, watch to promoted (0) and rolled back (2), abort --reason (3)', async () => {
  const [v1, v2, faulty] = await Promise.all([
    fleet.model({ version: 'v1', latencyMs: 15, latencySpread: 0.2 }),
    fleet.model({ version: 'v2', latencyMs: 15, latencySpread: 0.2 }),
    fleet.model({ version: 'v3', latencyMs: 15, latencySpread: 0.2, errorRate: 0.5 }),
  ]);
  const healthy = uniqueTarget('cli-ok');
  const broken = uniqueTarget('cli-bad');
  const long = uniqueTarget('cli-long');
  await Promise.all([fleet.serve(healthy, v1), fleet.serve(broken, v1), fleet.serve(long, v1, 'v1', 40)]);

  // ---- start: YAML (by extension), JSON (by content, no extension) ----
  writeFileSync(join(cwd, 'healthy.yaml'), yamlSpec({ target: healthy, baseline: v1.url, candidate: v2.url, steps: ['{ weight: 25, bake: 2s }', '{ weight: 100 }'] }));
  writeFileSync(
    join(cwd, 'broken-spec'),
    JSON.stringify({
      target: broken,
      baseline: { version: 'v1', url: v1.url },
      candidate: { version: 'v3', url: faulty.url },
      steps: [{ weight: 50, bake: '30s' }, { weight: 100 }],
      analysis: { interval: '1s', minRequests: 5 },
    }),
  );
  writeFileSync(join(cwd, 'long.yml'), yamlSpec({ target: long, baseline: v1.url, candidate: v2.url, steps: ['{ weight: 10, bake: 5m }', '{ weight: 100 }'] }));

  // Started with --watch, each is followed from its first status on (no terminal: one line per
  // change) until it ends: exit 0 promoted, 2 rolled back. The global --api beats API_URL.
  const watchHealthy = cli('start', '-f', 'healthy.yaml', '--watch');
  const watchBroken = runCli(['--api', stack.apiUrl, 'start', '-f', 'broken-spec', '--watch'], { env: cliEnv({ API_URL: 'http://127.0.0.1:9' }), cwd });
  // --json on a write is the API's 201 body.
  const longStarted = await cli('start', '-f', 'long.yml', '--json', '--idempotency-key', `ci-job-${long}`);
  expect(longStarted).toMatchObject({ code: 0, stderr: '' });
  expect(JSON.parse(longStarted.stdout)).toMatchObject({ id: `rollout-${long}`, phase: 'progressing', spec: { target: long } });
  // The same command again (a re-run CI job): the same rollout, nothing new started, exit 0.
  const again = await cli('start', '-f', 'long.yml', '--idempotency-key', `ci-job-${long}`);
  expect(again).toMatchObject({ code: 0, stderr: '' });
  expect(again.stdout).toMatch(new RegExp(`^rollout-${long} was already started by this Idempotency-Key \\(nothing new started\\), now progressing: v1 → v2`));
  await eventually(async () => ((await cli('list', '--json')).stdout.includes(`rollout-${broken}`) ? true : undefined), 30_000, 'all three rollouts to be listed');

  // ---- list / get while they run ----
  const [list, listedRun] = await Promise.all([cli('list'), cli('list', '--target', long, '--json')]);
  expect(list.code).toBe(0);
  expect(list.stdout.split('\n')[0]).toMatch(/^ID\s+TARGET\s+PHASE\s+WEIGHT\s+STARTED\s+CLOSED$/);
  for (const t of [healthy, broken, long]) expect(list.stdout).toContain(`rollout-${t}`);
  const listed = JSON.parse(listedRun.stdout) as { rollouts: RolloutSummary[] };
  expect(listed.rollouts).toEqual([expect.objectContaining({ id: `rollout-${long}`, target: long, phase: 'progressing' })]);

  // A check whose evidence tests the errors (the view prints the last one's).
  const tested = (d: RolloutStatus['decisions'][number] | undefined) => (d?.evidence?.errors as { tested?: boolean } | undefined)?.tested === true;
  await eventually(async () => (tested((await status(`rollout-${long}`)).decisions.at(-1)) ? true : undefined), 30_000, 'a check of the long rollout with evidence');
  const [got, gotJsonRun] = await Promise.all([cli('get', long), cli('get', long, '--json')]);
  expect(got.code).toBe(0);
  const view = got.stdout;
  expect(view).toMatch(new RegExp(`^rollout-${long}  progressing  updated`));
  expect(view).toMatch(/^target {6}cli-long-\S+: v1 → v2 · sequential judge, a check every 1s$/m);
  expect(view).toMatch(/^weights {5}v1 90% \/ v2 10%$/m);
  expect(view).toMatch(/^progress {4}\[[█▌·]{30}\] step 1\/2 · v2 at 10%$/m);
  expect(view).toMatch(/^steps {7}▶10% {2}100%$/m);
  expect(view).toMatch(/^bake {8}\[[█▌·]{20}\] [\d.]+m?s of 5m \(\d+%\)$/m);
  expect(view).toMatch(/^last check {2}#\d+ at \d\d:\d\d:\d\d · step 1 @10% · (PASS|INCONCLUSIVE) · then \w+/m);
  expect(view).toMatch(/^traffic {5}v2 \d+ req, [\d.]+% err, p95 /m);
  expect(view).toMatch(/^evidence {4}errors +e=\S+ +\[[█▌·]{10}\] (below|reached) rollback at 166\.7 · (ready ✓|not ready) \(/m);
  expect(view).toMatch(/^summary {5}v2 at 10%: /m);
  const gotJson = JSON.parse(gotJsonRun.stdout) as RolloutStatus;
  expect(gotJson).toMatchObject({ id: `rollout-${long}`, phase: 'progressing', weights: { baseline: 90, candidate: 10 } });

  // ---- pause / resume ----
  const paused = await cli('pause', long);
  expect(paused).toMatchObject({ code: 0, stderr: '' });
  expect(paused.stdout).toMatch(new RegExp(`^paused rollout-${long}: phase paused · step 1/2 · v1 90% / v2 10%`));
  const pausedView = (await cli('get', long)).stdout;
  expect(pausedView).toMatch(new RegExp(`^rollout-${long}  paused`));
  expect(pausedView).toMatch(/^waiting {5}paused: /m);
  expect(pausedView).toMatch(/^last action pause via update by anonymous at \d\d:\d\d:\d\d: applied/m);
  const pausedAgain = await cli('pause', long);
  expect(pausedAgain.code).toBe(1);
  expect(pausedAgain.stderr).toMatch(new RegExp(`^model-canary: cannot pause rollout-${long}: .+ \\(409 \\w+\\)\\n$`));
  const resumed = JSON.parse((await cli('resume', long, '--json')).stdout) as RolloutStatus;
  expect(resumed.phase).toBe('progressing');

  // A second rollout of a running target: the API's 409, in one line.
  const twice = await cli('start', '-f', 'long.yml');
  expect(twice.code).toBe(1);
  expect(twice.stderr).toMatch(new RegExp(`^model-canary: cannot start the rollout: target ${long} already has a rollout in progress: rollout-${long} .*\\(409 conflict\\)\\n$`));

  // ---- abort --reason while a `get --watch` follows it: exit 3; traffic back to the baseline ----
  const watchLong = spawnCli(['get', long, '--watch', '--poll', '300'], { env, cwd });
  await eventually(async () => (watchLong.stdout().includes(`rollout-${long} progressing`) ? true : undefined), 30_000, 'the watch to show the rollout');
  const aborted = await cli('abort', long, '--reason', 'bad answers from v2');
  expect(aborted.code).toBe(0);
  expect(aborted.stdout).toMatch(new RegExp(`^aborted rollout-${long}: phase (rolling_back|aborted)`));
  const longRun = await watchLong.done;
  expect(longRun.code).toBe(3);
  expect(longRun.stdout).toMatch(/ phase aborted: bad answers from v2$/m);
  expect(longRun.stdout.trimEnd().split('\n').at(-1)).toBe(`rollout-${long} aborted: bad answers from v2 (exit 3)`);
  expect((await status(`rollout-${long}`)).weights).toEqual({ baseline: 100, candidate: 0 });
  // A watch of a rollout that has ended prints it and exits at once with its code.
  const watchAborted = await cli('get', long, '--watch');
  expect(watchAborted.code).toBe(3);
  expect(watchAborted.stdout).toMatch(new RegExp(`^rollout-${long}  aborted  updated`));
  expect(watchAborted.stdout).toMatch(/^outcome {5}aborted at \d\d:\d\d:\d\d: bad answers from v2$/m);
  expect(watchAborted.stdout).toMatch(new RegExp(`^rollout-${long} aborted: bad answers from v2 \\(exit 3\\)$`, 'm'));

  // ---- the watches end with the rollouts ----
  const [okRun, badRun] = await Promise.all([watchHealthy, watchBroken]);
  expect(badRun.code).toBe(2);
  // The error-rate test, or (when a slow machine delays the first comparable check) the catastrophic fast path.
  expect(badRun.stdout).toMatch(/ check \d+ · FAIL · v3 at 50%: ([\d.]+% errors vs [\d.]+% on v1 .*|catastrophic candidate: \d+\/\d+ requests failed .*)rolling back$/m);
  // (errors over the tolerance, or a catastrophic error rate at once)
  expect(badRun.stdout).toMatch(/ phase rolled_back: the sequential judge failed the candidate: (error rate: |catastrophic candidate: )/);
  expect(badRun.stdout.trimEnd().split('\n').at(-1)).toMatch(new RegExp(`^rollout-${broken} rolled_back: .+ \\(exit 2\\)$`));

  expect(okRun).toMatchObject({ code: 0, stderr: '' });
  const lines = okRun.stdout.trimEnd().split('\n');
  expect(lines[0]).toBe(`started rollout-${healthy}: v1 → v2, 25% (2s) → 100%`);
  expect(lines[1]).toMatch(/^history: http:\/\/\S+\/workflows\/rollout-/);
  expect(lines[2]).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d rollout-${healthy} progressing · step 1/2 · `));
  expect(okRun.stdout).toMatch(/ check \d+ · PASS · v2 at 25%: /);
  expect(okRun.stdout).toMatch(/ weights v1 0% \/ v2 100% · all 2 steps done$/m);
  expect(okRun.stdout).toMatch(/ phase promoted: every step passed$/m);
  expect(lines.at(-1)).toBe(`rollout-${healthy} promoted: every step passed (exit 0)`);
  // One line per change: no check is printed twice.
  const checks = lines.map((l) => / check (\d+) · /.exec(l)?.[1]).filter(Boolean);
  expect(new Set(checks).size).toBe(checks.length);

  // ---- report (text) of the promoted rollout: the decisions table ----
  const report = await cli('report', healthy);
  expect(report.code).toBe(0);
  expect(report.stdout).toMatch(new RegExp(`^rollout rollout-${healthy}: promoted — every step passed$`, 'm'));
  expect(report.stdout).toMatch(/^SEQ +TIME +STEP +WEIGHT +VERDICT +ACTION +SUMMARY$/m);
  expect(report.stdout).toMatch(/^1 +\d\d:\d\d:\d\d +1\/2 +25% +(PASS|INCONCLUSIVE) +\w+ +v2 at 25%: /m);
  const reportJson = JSON.parse((await cli('report', healthy, '--json')).stdout) as RolloutStatus;
  expect(reportJson.phase).toBe('promoted');
  expect(reportJson.decisions.length).toBeGreaterThan(0);
}, 120_000);

test('errors: a 400 names each field, 404 names the rollout, a bad file says where; all exit 1', async () => {
  const target = uniqueTarget('cli-invalid');
  writeFileSync(
    join(cwd, 'invalid.yaml'),
    yamlSpec({ target, baseline: 'http://127.0.0.1:9001', candidate: 'ftp://127.0.0.1:9002', steps: ['{ weight: 150, bake: 2s }'], extra: '  failureLimit: 3' }),
  );
  writeFileSync(join(cwd, 'broken.yaml'), 'target: x\nsteps: [1,\n  b: 2\n');
  // Independent runs, at once.
  const [invalid, missing, abortMissing, syntax, noFile, down, usage, npx] = await Promise.all([
    cli('start', '-f', 'invalid.yaml'),
    cli('get', `${target}-nope`),
    cli('abort', `${target}-nope`, '--reason', 'x'),
    cli('start', '-f', 'broken.yaml'),
    cli('start', '-f', 'no-such.json'),
    runCli(['list'], { env: cliEnv({ API_URL: 'http://127.0.0.1:9' }), cwd }),
    cli('list', '--phase', 'bogus'),
    // `npx model-canary` works in the clone (package.json "bin"), from a folder of it.
    new Promise<{ code: number | null; out: string }>((resolve) => {
      const child = spawn('npx', ['--no-install', 'model-canary', 'list', '--json', '--limit', '1'], { cwd: join(PROJECT_ROOT, 'src'), env });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.once('close', (code) => resolve({ code, out }));
    }),
  ]);

  expect(invalid.code).toBe(1);
  expect(invalid.stdout).toBe('');
  const lines = invalid.stderr.trimEnd().split('\n');
  expect(lines[0]).toMatch(/^model-canary: the API refused the spec \(400 invalid_spec\): \d+ problems$/);
  expect(lines.slice(1)).toEqual(
    expect.arrayContaining([
      expect.stringMatching(/^ {2}candidate\.url: /),
      expect.stringMatching(/^ {2}steps\.0\.weight: /),
      expect.stringMatching(/^ {2}analysis\.failureLimit: /),
    ]),
  );
  // Nothing was created.
  expect((await request(stack.apiUrl, 'GET', `/v1/rollouts/rollout-${target}`)).status).toBe(404);

  expect(missing).toMatchObject({ code: 1, stdout: '' });
  expect(missing.stderr).toBe(`model-canary: no rollout rollout-${target}-nope (404; \`model-canary list\` shows the rollouts)\n`);
  expect(abortMissing.code).toBe(1);
  expect(abortMissing.stderr).toMatch(/^model-canary: no rollout rollout-cli-invalid-\S+-nope \(404/);

  expect(syntax.code).toBe(1);
  expect(syntax.stderr).toMatch(/^model-canary: broken\.yaml:\d+:\d+ is not valid YAML: /);
  expect(noFile).toMatchObject({ code: 1, stderr: 'model-canary: cannot read no-such.json: no such file\n' });

  expect(down.code).toBe(1);
  expect(down.stderr).toMatch(/^model-canary: cannot reach the API at http:\/\/127\.0\.0\.1:9: /);
  expect(usage.code).toBe(1);
  expect(usage.stderr).toMatch(/argument 'bogus' is invalid\. Allowed choices are progressing, paused/);

  expect(npx.code).toBe(0);
  expect(JSON.parse(npx.out)).toHaveProperty('rollouts');
}, 60_000);
