/**
 * End-to-end helpers: free ports, TypeScript entry points as real processes (worker, gateway),
 * a recording HTTP proxy in front of the gateway admin API, and small gateway/spec helpers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { PROJECT_ROOT } from '../../src/temporal-bin';
import type { RolloutSpecInput } from '../../src/spec';
import type { RolloutStatus } from '../../src/workflows/status';
import { eventually, freePorts, listen } from './http';

export async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!;
}

export interface Proc {
  name: string;
  child: ChildProcess;
  pid: number;
  output: string[];
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  alive(): boolean;
  /** SIGKILL, then wait until it is gone. */
  kill9(): Promise<void>;
  /** SIGTERM (SIGKILL after `graceMs`), then wait until it is gone. */
  stop(graceMs?: number): Promise<void>;
}

/** Runs `node --import tsx <file>` from the project root with `env` added to this process's. */
export function spawnTs(name: string, file: string, env: NodeJS.ProcessEnv): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', file], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  child.stdout!.on('data', (c: Buffer) => output.push(c.toString()));
  child.stderr!.on('data', (c: Buffer) => output.push(c.toString()));
  let exited = false;
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = true;
      resolve({ code, signal });
    }),
  );
  const proc: Proc = {
    name,
    child,
    pid: child.pid!,
    output,
    exit,
    alive: () => !exited,
    async kill9() {
      if (!exited) child.kill('SIGKILL');
      await exit;
    },
    async stop(graceMs = 10_000) {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exit;
      clearTimeout(timer);
    },
  };
  return proc;
}

export interface ProcessSettings {
  temporalAddress: string;
  namespace?: string;
  taskQueue: string;
  gatewayUrl: string;
}

/**
 * Settings for a model-canary process (worker, API) on plain gRPC to `temporalAddress`: every
 * TLS, API-key and token setting is blank, so nothing leaks in from the test's own environment.
 */
export function processSettings(o: ProcessSettings, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    TEMPORAL_ADDRESS: o.temporalAddress,
    TEMPORAL_NAMESPACE: o.namespace ?? 'default',
    TEMPORAL_TLS: '', TEMPORAL_TLS_CA: '', TEMPORAL_TLS_CERT: '', TEMPORAL_TLS_KEY: '', TEMPORAL_TLS_SERVER_NAME: '', TEMPORAL_API_KEY: '',
    TASK_QUEUE: o.taskQueue,
    GATEWAY_URL: o.gatewayUrl,
    GATEWAY_ADMIN_TOKEN: '',
    API_TOKEN: '', API_TOKENS: '', API_TOKENS_FILE: '',
    ...extra,
  };
}

/** Waits until the process prints `text` (or throws with its output when it exits first). */
export async function waitForOutput(proc: Proc, text: string | RegExp, timeoutMs = 60_000): Promise<void> {
  await eventually(
    async () => {
      const all = proc.output.join('');
      if (typeof text === 'string' ? all.includes(text) : text.test(all)) return true;
      if (!proc.alive()) throw new Error(`${proc.name} exited:\n${all.slice(-4000)}`);
      return undefined;
    },
    timeoutMs,
    `${proc.name} to print ${String(text)}`,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n--- ${proc.name} output ---\n${proc.output.join('').slice(-4000)}`);
  });
}

export async function waitForHealthy(url: string, timeoutMs = 30_000): Promise<void> {
  await eventually(async () => ((await fetch(`${url}/healthz`)).ok ? true : undefined), timeoutMs, `${url}/healthz`);
}

export interface RecordedRequest {
  method: string;
  url: string;
  body: string;
  at: number;
}

export interface RecordingProxy {
  url: string;
  /** Every request that went through, in arrival order (not those refused by `fail`). */
  requests: RecordedRequest[];
  /** Requests refused while failing, by path. */
  refused: RecordedRequest[];
  /**
   * From now on, requests whose path starts with one of `pathPrefixes` (every request when none
   * is given) are refused as by a process that is down: the connection is reset, nothing reaches
   * the upstream.
   */
  fail(...pathPrefixes: string[]): void;
  /** Forwards everything again. */
  heal(): void;
  close(): Promise<void>;
}

/** A tiny HTTP proxy to `upstream` that records each request (method, path, body) it forwards. */
export async function recordingProxy(upstream: string): Promise<RecordingProxy> {
  const requests: RecordedRequest[] = [];
  const refused: RecordedRequest[] = [];
  let failing: string[] | undefined;
  const target = new URL(upstream);
  const server = await listen((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const path = req.url ?? '/';
      if (failing && (failing.length === 0 || failing.some((prefix) => path.startsWith(prefix)))) {
        refused.push({ method: req.method ?? 'GET', url: path, body: body.toString('utf8'), at: Date.now() });
        req.socket.destroy();
        return;
      }
      requests.push({ method: req.method ?? 'GET', url: req.url ?? '/', body: body.toString('utf8'), at: Date.now() });
      const headers = { ...req.headers, host: target.host, 'content-length': String(body.length) };
      const forward = http.request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers },
        (upstreamRes) => {
          res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
          upstreamRes.pipe(res);
        },
      );
      forward.on('error', (err) => {
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`proxy: ${err.message}`);
      });
      forward.end(body);
    });
  });
  return {
    url: server.url,
    requests,
    refused,
    fail: (...pathPrefixes) => {
      failing = pathPrefixes;
    },
    heal: () => {
      failing = undefined;
    },
    close: server.close,
  };
}

/** The weight split a PUT /admin/routes body asks for, e.g. `v1=75 v2=25`. */
export function splitOf(body: string): string {
  const parsed = JSON.parse(body) as { versions: Array<{ name: string; weight: number }> };
  return parsed.versions.map((v) => `${v.name}=${v.weight}`).join(' ');
}

export async function putRoute(gatewayUrl: string, target: string, versions: Array<{ name: string; url: string; weight: number }>): Promise<void> {
  const res = await fetch(`${gatewayUrl}/admin/routes/${target}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ versions }),
  });
  if (!res.ok) throw new Error(`PUT route ${target}: ${res.status} ${await res.text()}`);
}

export interface RouteView {
  versions: Array<{ name: string; url: string; weight: number }>;
  salt: string;
}

export async function getRoute(gatewayUrl: string, target: string): Promise<RouteView | undefined> {
  const res = await fetch(`${gatewayUrl}/admin/routes/${target}`);
  if (res.status === 404) return undefined;
  if (!res.ok) throw new Error(`GET route ${target}: ${res.status}`);
  return (await res.json()) as RouteView;
}

/** `{v1: 100, v2: 0}` from a route. */
export function weightsOf(route: RouteView | undefined): Record<string, number> {
  return Object.fromEntries((route?.versions ?? []).map((v) => [v.name, v.weight]));
}

/** A short rollout: two baked steps, a check every second. */
export function e2eSpec(
  target: string,
  baselineUrl: string,
  candidateUrl: string,
  overrides: Partial<RolloutSpecInput> = {},
): RolloutSpecInput {
  return {
    target,
    baseline: { version: 'v1', url: baselineUrl },
    candidate: { version: 'v2', url: candidateUrl },
    steps: [{ weight: 25, bake: '4s' }, { weight: 60, bake: '3s' }, { weight: 100 }],
    analysis: { judge: 'threshold', interval: '1s', minRequests: 8, failureLimit: 2, thresholds: { maxErrorRate: 0.05, maxLatencyP95Ms: 2000 } },
    ...overrides,
  };
}

/**
 * The e2e spec's regressed candidate (errors above its maxErrorRate of 5%) ended as it should:
 * rolled back after its two failed checks, with the gateway serving the baseline alone.
 */
export async function expectRolledBackOnErrorRate(final: RolloutStatus, gatewayUrl: string, target: string): Promise<void> {
  expect(final).toMatchObject({ phase: 'rolled_back', weights: { baseline: 100, candidate: 0 }, outcome: { result: 'rolled_back' } });
  expect(final.outcome!.reason).toMatch(/candidate error rate \d+\.\d+% \(\d+\/\d+\) is above maxErrorRate 5\.00%/);
  expect(final.decisions.filter((d) => d.verdict === 'fail').length).toBe(2);
  expect(weightsOf(await getRoute(gatewayUrl, target))).toEqual({ v1: 100 });
}
