/**
 * `model-canary report <id> --html FILE` against the real stack, opened in headless Chromium
 * from the file alone (no server, no network): the page is one self-contained file, its charts
 * (uPlot, inlined) render onto canvases — weights over time, error rate and p95 per version,
 * each metric's e-value against its rollback level — the decisions table lists every check with
 * its summary, and the browser logs no console message or error. The page and its screenshot
 * are kept under test-output/cli/.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RolloutStatus } from '../../src/workflows/status';
import { eventually, request } from '../helpers/http';
import { uniqueTarget } from '../helpers/specs';
import { cliEnv, elsewhere, ensureDir, Fleet, requireBinary, runCli, startStack, TEST_OUTPUT, type Stack } from './support';

let chromium: string;
let stack: Stack;
let fleet: Fleet;
let dir: string;
const profiles: string[] = [];

beforeAll(async () => {
  chromium = requireBinary('chromium');
  stack = await startStack();
  fleet = new Fleet(stack.gatewayUrl);
  dir = elsewhere();
}, 180_000);

afterAll(async () => {
  await fleet?.close();
  await stack?.stop();
  for (const d of [dir, ...profiles]) if (d) rmSync(d, { recursive: true, force: true });
});

/** Headless Chromium on a file:// URL with `args`; its stdout and stderr (console messages are logged there). */
function runChromium(url: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const profile = mkdtempSync(join(tmpdir(), 'model-canary-chromium-'));
  profiles.push(profile);
  const all = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check',
    `--user-data-dir=${profile}`, '--enable-logging=stderr', '--v=0',
    // Let the page's scripts and animation frames run before the dump or the screenshot.
    '--virtual-time-budget=10000', '--window-size=1200,2000',
    ...args, url,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(chromium, all, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`chromium ${args.join(' ')} did not finish within 60 s\n${stderr.slice(-3000)}`));
    }, 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Chromium's log lines for the page's console (messages, uncaught errors). */
const consoleLines = (stderr: string) => stderr.split('\n').filter((l) => /:CONSOLE[:(]|Uncaught/.test(l));

test('the HTML report renders its charts offline in Chromium, with no console errors', async () => {
  const [v1, v2] = await Promise.all([
    fleet.model({ version: 'v1', latencyMs: 20, latencySpread: 0.25 }),
    fleet.model({ version: 'v2', latencyMs: 22, latencySpread: 0.25, errorRate: 0.01 }),
  ]);
  const target = uniqueTarget('cli-html');
  await fleet.serve(target, v1, 'v1', 80);
  const spec = {
    target,
    baseline: { version: 'v1', url: v1.url },
    candidate: { version: 'v2', url: v2.url },
    steps: [{ weight: 20, bake: '3s' }, { weight: 50, bake: '3s' }, { weight: 100 }],
    analysis: { interval: '1s', minRequests: 5, readiness: 'advisory', sequential: { boundaryMinBaseline: 50, tolerances: { latency: 3, ttfb: 3 } } },
  };
  const started = await request(stack.apiUrl, 'POST', '/v1/rollouts', { body: spec });
  expect(started.status).toBe(201);
  const id = `rollout-${target}`;
  const final = await eventually(
    async () => {
      const s = (await request<RolloutStatus>(stack.apiUrl, 'GET', `/v1/rollouts/${id}`)).body;
      return ['promoted', 'rolled_back', 'aborted', 'failed'].includes(s.phase) ? s : undefined;
    },
    60_000,
    'the rollout to end',
  );
  expect(final.phase).toBe('promoted');
  expect(final.decisions.length).toBeGreaterThanOrEqual(4);

  const env = cliEnv({ API_URL: stack.apiUrl });
  const written = await runCli(['report', target, '--html', 'report.html'], { env, cwd: dir });
  expect(written).toMatchObject({ code: 0, stderr: '' });
  const file = join(dir, 'report.html');
  expect(written.stdout).toBe(`wrote ${file} (${final.decisions.length} decisions; open it in a browser, no network needed)\n`);

  // Self-contained: uPlot and the data are inlined; nothing is fetched from anywhere.
  const html = readFileSync(file, 'utf8');
  expect(html).toMatch(/^<!doctype html>/);
  expect(html).toContain('uPlot');
  expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|@import|url\(\s*['"]?https?:/i);

  const out = ensureDir(TEST_OUTPUT);
  const keptHtml = join(out, 'report.html');
  copyFileSync(file, keptHtml);
  const url = `file://${keptHtml}`;

  // The DOM once scripts ran: every chart drew onto its canvas; no script error.
  const dom = await runChromium(url, ['--dump-dom']);
  expect(dom.code).toBe(0);
  const body = /<body([^>]*)>/.exec(dom.stdout)?.[1] ?? '';
  expect(body).not.toContain('data-errors');
  expect(body).toContain('data-rendered="true"');
  const charts = Number(/data-charts="(\d+)"/.exec(body)?.[1]);
  // Weights, error rate, p95, and the e-values of errors, latency and TTFB.
  expect(charts).toBe(6);
  for (const chart of ['chart-weights', 'chart-errors', 'chart-p95', 'chart-evidence-errors', 'chart-evidence-latency', 'chart-evidence-ttfb']) {
    expect(dom.stdout).toMatch(new RegExp(`<div class="chart" id="${chart}"><div class="uplot[^"]*" data-drawn="true"`));
  }
  expect((dom.stdout.match(/<canvas /g) ?? []).length).toBe(6);
  expect(dom.stdout).toContain('Traffic weights over time');
  expect(dom.stdout).toContain('errors: evidence (e-value) against its rollback level');
  expect(dom.stdout).toContain('rolls back at');
  // The decisions table: one row per check, with its summary.
  const rows = [...dom.stdout.matchAll(/<tr><td class="num">(\d+)<\/td>/g)].map((m) => Number(m[1]));
  expect(rows).toEqual(final.decisions.map((d) => d.seq));
  expect(dom.stdout).toContain(final.decisions.at(-1)!.summary!.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;'));
  expect(consoleLines(dom.stderr)).toEqual([]);

  // The screenshot, kept with the test output.
  const png = join(out, 'report.png');
  rmSync(png, { force: true });
  const shot = await runChromium(url, [`--screenshot=${png}`]);
  expect(shot.code).toBe(0);
  expect(existsSync(png)).toBe(true);
  expect(statSync(png).size).toBeGreaterThan(20_000);
  expect(readFileSync(png).subarray(1, 4).toString()).toBe('PNG');
  expect(consoleLines(shot.stderr)).toEqual([]);
  console.log(`HTML report: ${keptHtml}\nscreenshot:  ${png}`);
}, 90_000);
