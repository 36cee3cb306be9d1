/**
 * For the CLI tests: the real stack (scripts/serve.ts: Temporal dev server, worker, API, gateway)
 * on free ports and a temp DATA_DIR, demo model servers and traffic through the gateway, and the
 * CLI itself run as an operator runs it (`node bin/model-canary.js …`, from another directory).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { startModelServer, type ModelServer, type ModelServerOptions } from '../../src/demo/model-server';
import { startTraffic, type TrafficRun } from '../../src/demo/traffic';
import { PROJECT_ROOT } from '../../src/temporal-bin';
import { putRoute } from '../helpers/e2e';
import { alive, eventually, freePorts } from '../helpers/http';
import { serveEnv } from '../helpers/serve';

export const CLI_BIN = join(PROJECT_ROOT, 'bin', 'model-canary.js');
/** Screenshots and pages the tests keep (git-ignored). */
export const TEST_OUTPUT = join(PROJECT_ROOT, 'test-output', 'cli');

/** Fails (never skips) when a binary the test needs is missing, saying how to get it. */
export function requireBinary(name: string): string {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const path = found.stdout.trim();
  if (found.status !== 0 || !path) {
    throw new Error(`${name} is not installed, and this test needs it: run scripts/install-debian.sh (as root; it installs tmux and chromium from Debian), then run the test again`);
  }
  return path;
}

export interface Stack {
  apiUrl: string;
  gatewayUrl: string;
  output: string[];
  stop(): Promise<void>;
}

/** scripts/serve.ts on free ports and a temp DATA_DIR; resolves once it is ready. */
export async function startStack(): Promise<Stack> {
  const [temporal, ui, api, gateway] = await freePorts(4);
  const ports = { temporal: temporal!, ui: ui!, api: api!, gateway: gateway! };
  const dataDir = mkdtempSync(join(tmpdir(), 'model-canary-cli-'));
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'scripts/serve.ts'], { cwd: PROJECT_ROOT, env: serveEnv(ports, dataDir), stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const pids = new Set<number>([child.pid!]);
  const onData = (chunk: Buffer) => {
    const text = chunk.toString();
    output.push(text);
    for (const [, , pid] of text.matchAll(/\[serve\] started (\S+) \(pid (\d+)\)/g)) pids.add(Number(pid));
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stack: Stack = {
    apiUrl: `http://127.0.0.1:${ports.api}`,
    gatewayUrl: `http://127.0.0.1:${ports.gateway}`,
    output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGINT');
        const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
        await exited;
        clearTimeout(timer);
      }
      for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  try {
    await eventually(
      async () => {
        if (child.exitCode !== null) throw new Error('serve exited');
        const res = await fetch(`${stack.apiUrl}/healthz`);
        return res.ok && output.join('').includes('[serve] ready') ? true : undefined;
      },
      120_000,
      'the stack to be ready',
    );
    // `ready` means the API answers; the worker may still be bundling its workflows. Rollouts
    // wait for it anyway, but the tests' clocks should not.
    await workerPolling(`127.0.0.1:${ports.temporal}`, 120_000);
  } catch (err) {
    await stack.stop();
    throw new Error(`${(err as Error).message}\n--- serve output ---\n${output.join('').slice(-4000)}`);
  }
  return stack;
}

/** Waits until a worker polls the stack's task queue (model-canary, namespace default). */
async function workerPolling(address: string, timeoutMs: number): Promise<void> {
  const connection = await Connection.connect({ address });
  try {
    await eventually(
      async () => {
        const res = await connection.workflowService.describeTaskQueue({ namespace: 'default', taskQueue: { name: 'model-canary' }, taskQueueType: 1 /* WORKFLOW */ });
        return (res.pollers?.length ?? 0) > 0 ? true : undefined;
      },
      timeoutMs,
      'the worker to poll its task queue',
    );
  } finally {
    await connection.close();
  }
}

/** Model servers, gateway routes and traffic for the tests' targets; `close()` stops them all. */
export class Fleet {
  readonly models: ModelServer[] = [];
  private readonly traffic: TrafficRun[] = [];
  constructor(private readonly gatewayUrl: string) {}

  async model(options: ModelServerOptions): Promise<ModelServer> {
    const model = await startModelServer(options);
    this.models.push(model);
    return model;
  }

  /** The target on `baseline` alone in the gateway, with `rate` requests per second through it. */
  async serve(target: string, baseline: ModelServer, version = 'v1', rate = 60): Promise<void> {
    await putRoute(this.gatewayUrl, target, [{ name: version, url: baseline.url, weight: 100 }]);
    this.traffic.push(startTraffic({ gatewayUrl: this.gatewayUrl, target, rate, durationMs: Number.POSITIVE_INFINITY, users: 500 }));
  }

  async close(): Promise<void> {
    for (const t of this.traffic) t.stop();
    await Promise.all(this.traffic.map((t) => t.done.catch(() => undefined)));
    await Promise.all(this.models.map((m) => m.close()));
  }
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A directory that is not the project's: the CLI must work from anywhere. */
export function elsewhere(): string {
  const dir = mkdtempSync(join(tmpdir(), 'model-canary-cli-cwd-'));
  return dir;
}

/** The environment of a CLI run: this process's without API_URL / API_TOKEN, plus `extra`. */
export function cliEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', ...extra };
  if (!('API_URL' in extra)) delete env.API_URL;
  if (!('API_TOKEN' in extra)) delete env.API_TOKEN;
  return env;
}

export interface RunningCli {
  /** What it printed so far. */
  stdout(): string;
  done: Promise<CliResult>;
}

/** Starts `node bin/model-canary.js …args` (no TTY); `done` resolves with its exit code and output. */
export function spawnCli(args: string[], options: { env: NodeJS.ProcessEnv; cwd: string; timeoutMs?: number }): RunningCli {
  const child = spawn(process.execPath, [CLI_BIN, ...args], { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`model-canary ${args.join(' ')} did not finish within ${options.timeoutMs ?? 60_000} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, options.timeoutMs ?? 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
  return { stdout: () => stdout, done };
}

/** Runs `node bin/model-canary.js …args` (no TTY) and resolves with its exit code and output. */
export function runCli(args: string[], options: { env: NodeJS.ProcessEnv; cwd: string; timeoutMs?: number }): Promise<CliResult> {
  return spawnCli(args, options).done;
}

/** A fast rollout spec as YAML: the sequential judge, a check every second. */
export function yamlSpec(o: { target: string; baseline: string; candidate: string; candidateVersion?: string; steps: string[]; extra?: string }): string {
  return [
    '# a rollout spec, as an operator writes it',
    `target: ${o.target}`,
    'baseline:',
    '  version: v1',
    `  url: "${o.baseline}"`,
    'candidate:',
    `  version: ${o.candidateVersion ?? 'v2'}`,
    `  url: "${o.candidate}"`,
    'steps:',
    ...o.steps.map((s) => `  - ${s}`),
    'analysis:',
    '  interval: 1s',
    '  minRequests: 5',
    '  readiness: advisory',
    ...(o.extra ? [o.extra] : []),
    '',
  ].join('\n');
}

export function ensureDir(dir: string): string {
  mkdirSync(dir, { recursive: true });
  return dir;
}
