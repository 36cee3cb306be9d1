/**
 * `npm run serve`: the stack alone, no demo (design.md, "Commands").
 *
 *   1. a Temporal dev server (SQLite in $DATA_DIR, UI, our search attributes) unless
 *      TEMPORAL_ADDRESS names a cluster, and waits until it answers;
 *   2. the gateway (once src/gateway/main.ts exists), the worker and the API, as child processes;
 *   3. prints the URLs; on Ctrl-C / SIGTERM stops the children (Temporal last) and exits 0;
 *      when a child dies on its own, stops the others and exits 1.
 *
 * Env: DATA_DIR (.data), TEMPORAL_ADDRESS, TEMPORAL_PORT (7233), TEMPORAL_UI_PORT (8233),
 * TEMPORAL_NAMESPACE, API_PORT (3000), API_HOST, GATEWAY_PORT (8080), plus what each child reads.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Connection } from '@temporalio/client';
import { loadConfig } from '../src/config';
import { PROJECT_ROOT, requireTemporalBinary } from '../src/temporal-bin';
import { SEARCH_ATTRIBUTE_REGISTRATIONS } from '../src/workflows/search-attributes';

interface Child {
  name: string;
  process: ChildProcess;
  exited: Promise<void>;
  done: boolean;
}

const children: Child[] = [];
let stopping = false;

function log(message: string): void {
  process.stdout.write(`[serve] ${message}\n`);
}

async function main(): Promise<void> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  const dataDir = resolve(env.DATA_DIR || '.data');
  mkdirSync(dataDir, { recursive: true });
  env.DATA_DIR = dataDir;
  const localTemporal = !env.TEMPORAL_ADDRESS;
  const temporalPort = portFrom(env, 'TEMPORAL_PORT', 7233);
  const uiPort = portFrom(env, 'TEMPORAL_UI_PORT', 8233);
  if (localTemporal) env.TEMPORAL_ADDRESS = `127.0.0.1:${temporalPort}`;
  const config = loadConfig(env);

  process.on('SIGINT', () => void shutdown('SIGINT', 0));
  process.on('SIGTERM', () => void shutdown('SIGTERM', 0));

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
    start('temporal', requireTemporalBinary('temporal'), args, env);
  } else {
    log(`using the Temporal cluster at ${config.temporalAddress} (namespace ${config.namespace}); no dev server started`);
  }
  await waitForTemporal(config.temporalAddress, config.namespace, localTemporal);

  // ---- the gateway (data plane): spawned only once its entry point exists ----
  const gatewayMain = join(PROJECT_ROOT, 'src/gateway/main.ts');
  if (existsSync(gatewayMain)) startTs('gateway', gatewayMain, env);
  else log('src/gateway/main.ts not found: running without the gateway');
  // ---- end of gateway ----

  startTs('worker', join(PROJECT_ROOT, 'src/worker.ts'), env);
  startTs('api', join(PROJECT_ROOT, 'src/api/main.ts'), env);

  const apiUrl = `http://${config.apiHost}:${config.apiPort}`;
  await waitForHttp(`${apiUrl}/healthz`, 60_000);
  if (stopping) return;
  const lines = [
    `API          ${apiUrl}  (POST /v1/rollouts, GET /v1/rollouts${config.apiToken ? '; bearer token required' : ''})`,
    `Temporal UI  ${config.temporalUiUrl}/namespaces/${config.namespace}/workflows`,
    `Temporal     ${config.temporalAddress} (namespace ${config.namespace}, task queue ${config.taskQueue})`,
    ...(children.some((c) => c.name === 'gateway') ? [`Gateway      ${config.gatewayUrl}`] : []),
    `Data         ${dataDir}`,
  ];
  log(`ready\n${lines.map((l) => `  ${l}`).join('\n')}\n  Ctrl-C to stop`);
}

/** Spawns a TypeScript entry point with tsx, in one Node process (no tsx wrapper process). */
function startTs(name: string, file: string, env: NodeJS.ProcessEnv): void {
  start(name, process.execPath, ['--import', 'tsx', file], env);
}

function start(name: string, command: string, args: string[], env: NodeJS.ProcessEnv): void {
  const child = spawn(command, args, { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const entry: Child = { name, process: child, done: false, exited: Promise.resolve() };
  entry.exited = new Promise<void>((resolveExit) => {
    child.once('error', (err) => {
      log(`${name} could not start: ${err.message}`);
      entry.done = true;
      resolveExit();
      void shutdown(`${name} failed to start`, 1);
    });
    child.once('exit', (code, signal) => {
      entry.done = true;
      resolveExit();
      if (stopping) return;
      log(`${name} exited unexpectedly (${signal ? `signal ${signal}` : `code ${code}`}); stopping the others`);
      void shutdown(`${name} exited`, 1);
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

/** Stops the children, newest first, with Temporal (the first) last; then exits. */
async function shutdown(reason: string, exitCode: number): Promise<void> {
  if (stopping) return;
  stopping = true;
  log(`stopping (${reason})`);
  const temporal = children.filter((c) => c.name === 'temporal');
  const others = children.filter((c) => c.name !== 'temporal').reverse();
  await Promise.all(others.map((c) => stopChild(c, 15_000)));
  await Promise.all(temporal.map((c) => stopChild(c, 15_000)));
  log('stopped');
  process.exit(exitCode);
}

async function stopChild(child: Child, graceMs: number): Promise<void> {
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
async function waitForTemporal(address: string, namespace: string, local: boolean): Promise<void> {
  const deadline = Date.now() + (local ? 60_000 : 30_000);
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
      return;
    } catch (err) {
      lastError = err;
      await sleep(300);
    } finally {
      await connection?.close().catch(() => undefined);
    }
  }
  if (stopping) return;
  log(`Temporal at ${address} did not answer: ${lastError instanceof Error ? lastError.message : String(lastError)}`);
  await shutdown('Temporal unavailable', 1);
}

async function waitForHttp(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!stopping && Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (res.ok) return;
    } catch {
      // not up yet
    }
    await sleep(250);
  }
  if (stopping) return;
  log(`${url} did not answer within ${timeoutMs / 1000}s`);
  await shutdown('API did not come up', 1);
}

function portFrom(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (!raw) return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`${name} must be a port number, got "${raw}"`);
  return port;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

main().catch((err) => {
  console.error(err);
  void shutdown('error', 1);
});
