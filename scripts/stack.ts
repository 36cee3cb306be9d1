/**
 * The embedded stack as an importable function, shared by `npm run serve` (scripts/serve.ts)
 * and `npm start` (scripts/start.ts):
 *
 *   1. a Temporal dev server (SQLite in $DATA_DIR, UI, our search attributes) unless
 *      TEMPORAL_ADDRESS names a cluster, and waits until it answers;
 *   2. the gateway (once src/gateway/main.ts exists), the worker and the API, as child processes;
 *   3. `ready` settles once the API answers. `stop()` stops the children (Temporal last); when a
 *      child dies on its own, the others are stopped and `exited` resolves with 1.
 *
 * The stack installs no signal handlers and never exits the process: its caller does both.
 *
 * Env: DATA_DIR (.data), TEMPORAL_ADDRESS, TEMPORAL_PORT (7233), TEMPORAL_UI_PORT (8233),
 * TEMPORAL_NAMESPACE, API_PORT (3000), API_HOST, GATEWAY_PORT (8080), plus what each child reads.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Connection } from '@temporalio/client';
import { loadConfig, type Config } from '../src/config';
import { PROJECT_ROOT, requireTemporalBinary } from '../src/temporal-bin';
import { SEARCH_ATTRIBUTE_REGISTRATIONS } from '../src/workflows/search-attributes';

export interface StackChild {
  name: string;
  process: ChildProcess;
  exited: Promise<void>;
  done: boolean;
}

export interface StackOptions {
  /** Prefix of the stack's own log lines: `[name] ...` (default `serve`). */
  name?: string;
  /** The environment read for settings and passed to the children (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface Stack {
  /** Settings as the children see them (TEMPORAL_ADDRESS and DATA_DIR filled in). */
  config: Config;
  env: NodeJS.ProcessEnv;
  dataDir: string;
  apiUrl: string;
  /** Set when the gateway is part of the stack. */
  gatewayUrl?: string;
  children: StackChild[];
  /** Resolves once the API answers; rejects when the stack stopped (or failed) before that. */
  ready: Promise<void>;
  /** Resolves with the exit code the process should use, once every child has stopped. */
  exited: Promise<number>;
  stopping(): boolean;
  /** Stops the children, newest first, Temporal last. Idempotent; resolves with the exit code. */
  stop(reason: string, exitCode?: number): Promise<number>;
  /** The stack's `ready` block: URLs of the API, Temporal UI, gateway, data directory. */
  readyLines(): string[];
  log(message: string): void;
}

export function portFrom(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (!raw) return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`${name} must be a port number, got "${raw}"`);
  return port;
}

export function startStack(options: StackOptions = {}): Stack {
  const prefix = options.name ?? 'serve';
  const log = (message: string) => void process.stdout.write(`[${prefix}] ${message}\n`);
  const env: NodeJS.ProcessEnv = { ...(options.env ?? process.env) };
  const dataDir = resolve(env.DATA_DIR || '.data');
  mkdirSync(dataDir, { recursive: true });
  env.DATA_DIR = dataDir;
  const localTemporal = !env.TEMPORAL_ADDRESS;
  const temporalPort = portFrom(env, 'TEMPORAL_PORT', 7233);
  const uiPort = portFrom(env, 'TEMPORAL_UI_PORT', 8233);
  if (localTemporal) env.TEMPORAL_ADDRESS = `127.0.0.1:${temporalPort}`;
  const config = loadConfig(env);
  const apiUrl = `http://${config.apiHost}:${config.apiPort}`;
  const gatewayMain = join(PROJECT_ROOT, 'src/gateway/main.ts');
  const withGateway = existsSync(gatewayMain);

  const children: StackChild[] = [];
  let stopping = false;
  let stopped: Promise<number> | undefined;
  let resolveExited: (code: number) => void = () => undefined;
  const exited = new Promise<number>((r) => (resolveExited = r));

  function start(name: string, command: string, args: string[]): void {
    const child = spawn(command, args, { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const entry: StackChild = { name, process: child, done: false, exited: Promise.resolve() };
    entry.exited = new Promise<void>((resolveExit) => {
      child.once('error', (err) => {
        log(`${name} could not start: ${err.message}`);
        entry.done = true;
        resolveExit();
        void stop(`${name} failed to start`, 1);
      });
      child.once('exit', (code, signal) => {
        entry.done = true;
        resolveExit();
        if (stopping) return;
        log(`${name} exited unexpectedly (${signal ? `signal ${signal}` : `code ${code}`}); stopping the others`);
        void stop(`${name} exited`, 1);
      });
    });
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      const out = stream === child.stderr ? process.stderr : process.stdout;
      createInterface({ input: stream }).on('line', (line) => out.write(`[${name}] ${line}\n`));
    }
    children.push(entry);
    log(`started ${name} (pid ${child.pid})`);
  }

  /** Spawns a TypeScript entry point with tsx, in one Node process (no tsx wrapper process). */
  function startTs(name: string, file: string): void {
    start(name, process.execPath, ['--import', 'tsx', file]);
  }

  function stop(reason: string, exitCode = 0): Promise<number> {
    stopped ??= (async () => {
      stopping = true;
      log(`stopping (${reason})`);
      const temporal = children.filter((c) => c.name === 'temporal');
      const others = children.filter((c) => c.name !== 'temporal').reverse();
      await Promise.all(others.map((c) => stopChild(c, 15_000)));
      await Promise.all(temporal.map((c) => stopChild(c, 15_000)));
      log('stopped');
      resolveExited(exitCode);
      return exitCode;
    })();
    return stopped;
  }

  async function stopChild(child: StackChild, graceMs: number): Promise<void> {
    if (child.done) return;
    child.process.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (!child.done) {
        log(`${child.name} did not stop within ${graceMs / 1000}s; killing it`);
        child.process.kill('SIGKILL');
      }
    }, graceMs);
    await child.exited;
    clearTimeout(timer);
  }

  /** Waits until the server answers for the namespace, and checks our search attributes. */
  async function waitForTemporal(): Promise<boolean> {
    const { temporalAddress: address, namespace } = config;
    const deadline = Date.now() + (localTemporal ? 60_000 : 30_000);
    let lastError: unknown;
    while (!stopping && Date.now() < deadline) {
      let connection: Connection | undefined;
      try {
        connection = await Connection.connect({ address, connectTimeout: 2_000 });
        await connection.workflowService.describeNamespace({ namespace });
        const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
        const missing = Object.keys(SEARCH_ATTRIBUTE_REGISTRATIONS).filter((name) => !customAttributes?.[name]);
        if (missing.length > 0) {
          const hint = missing
            .map((n) => `temporal operator search-attribute create --namespace ${namespace} --name ${n} --type ${SEARCH_ATTRIBUTE_REGISTRATIONS[n]}`)
            .join('\n  ');
          log(`warning: search attributes ${missing.join(', ')} are not registered in namespace ${namespace}; ` +
            `rollouts will fail to start until an operator registers them:\n  ${hint}`);
        }
        log(`Temporal is ready at ${address}`);
        return true;
      } catch (err) {
        lastError = err;
        await sleep(300);
      } finally {
        await connection?.close().catch(() => undefined);
      }
    }
    if (stopping) return false;
    log(`Temporal at ${address} did not answer: ${lastError instanceof Error ? lastError.message : String(lastError)}`);
    await stop('Temporal unavailable', 1);
    return false;
  }

  async function waitForHttp(url: string, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!stopping && Date.now() < deadline) {
      try {
        const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
        if (res.ok) return true;
      } catch {
        // not up yet
      }
      await sleep(250);
    }
    if (stopping) return false;
    log(`${url} did not answer within ${timeoutMs / 1000}s`);
    await stop('API did not come up', 1);
    return false;
  }

  async function boot(): Promise<void> {
    if (localTemporal) {
      const args = [
        'server', 'start-dev',
        '--db-filename', join(dataDir, 'temporal.sqlite'),
        '--ip', '127.0.0.1',
        '--port', String(temporalPort),
        '--ui-port', String(uiPort),
        '--log-level', env.TEMPORAL_LOG_LEVEL || 'error',
        // Registering attributes that the SQLite file already holds is accepted on restart.
        ...Object.entries(SEARCH_ATTRIBUTE_REGISTRATIONS).flatMap(([name, type]) => ['--search-attribute', `${name}=${type}`]),
        ...(config.namespace !== 'default' ? ['--namespace', config.namespace] : []),
      ];
      log(`starting Temporal dev server on ${config.temporalAddress} (UI ${config.temporalUiUrl}, data ${dataDir})`);
      start('temporal', requireTemporalBinary('temporal'), args);
    } else {
      log(`using the Temporal cluster at ${config.temporalAddress} (namespace ${config.namespace}); no dev server started`);
    }
    if (!(await waitForTemporal())) throw new Error('the stack stopped before Temporal was ready');

    // ---- the gateway (data plane): spawned only once its entry point exists ----
    if (withGateway) startTs('gateway', gatewayMain);
    else log('src/gateway/main.ts not found: running without the gateway');

    startTs('worker', join(PROJECT_ROOT, 'src/worker.ts'));
    startTs('api', join(PROJECT_ROOT, 'src/api/main.ts'));

    if (!(await waitForHttp(`${apiUrl}/healthz`, 60_000))) throw new Error('the stack stopped before the API was ready');
  }

  const ready = boot().catch(async (err: unknown) => {
    if (!stopping) {
      log(err instanceof Error ? (err.stack ?? err.message) : String(err));
      await stop('error', 1);
    }
    throw err;
  });
  // Callers that only watch `exited` must not see an unhandled rejection.
  ready.catch(() => undefined);

  return {
    config,
    env,
    dataDir,
    apiUrl,
    ...(withGateway ? { gatewayUrl: config.gatewayUrl } : {}),
    children,
    ready,
    exited,
    stopping: () => stopping,
    stop,
    readyLines: () => [
      `API          ${apiUrl}  (POST /v1/rollouts, GET /v1/rollouts${config.apiToken ? '; bearer token required' : ''})`,
      `Temporal UI  ${config.temporalUiUrl}/namespaces/${config.namespace}/workflows`,
      `Temporal     ${config.temporalAddress} (namespace ${config.namespace}, task queue ${config.taskQueue})`,
      ...(children.some((c) => c.name === 'gateway') ? [`Gateway      ${config.gatewayUrl}`] : []),
      `Data         ${dataDir}`,
    ],
    log,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
