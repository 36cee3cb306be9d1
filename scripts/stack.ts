/**
 * The embedded stack as an importable function, shared by `npm run serve` (scripts/serve.ts)
 * and `npm start` (scripts/start.ts):
 *
 *   1. the gateway (once src/gateway/main.ts exists) — the data plane, first, since it needs
 *      nothing else to serve its persisted routes;
 *   2. a Temporal dev server (SQLite in $DATA_DIR, UI, our search attributes) unless
 *      TEMPORAL_ADDRESS names a cluster, and waits until it answers;
 *   3. the worker and the API, as child processes; `ready` settles once the API answers and a
 *      worker polls the task queue.
 *
 * Supervision: a child that exits on its own is restarted, the others keep running (the gateway
 * keeps serving while Temporal, the worker or the API are down). Restarts back off exponentially
 * (0.5 s doubling to 30 s; back to 0.5 s once a process stayed up 60 s); the dev server comes back
 * on the same SQLite file and ports, so rollouts continue; once it answers again, a worker or API
 * waiting for its restart is started at once. The stack gives up (stops the others, `exited`
 * resolves with 1) only before it was ever ready, when a child cannot be spawned at all
 * (ENOENT, EACCES) or exits `bootFailureLimit` (3) times. `stop()` stops the children (Temporal
 * last); no restart is scheduled or started once it began.
 *
 * The stack installs no signal handlers and never exits the process: its caller does both.
 *
 * The dev server and its UI listen on 127.0.0.1 only (`--ip`, `--ui-ip`): they have no
 * authentication, and whoever reaches them can terminate, cancel or signal a rollout past the
 * API's tokens. Its UI is read-only unless TEMPORAL_UI_WRITE_ACTIONS=true: the dev server cannot
 * turn the UI's write actions off itself, so its UI listens on a loopback port of its own and a
 * read-only front (./temporal-ui-read-only.ts) serves TEMPORAL_UI_PORT.
 *
 * Env: DATA_DIR (.data), TEMPORAL_ADDRESS, TEMPORAL_PORT (7233), TEMPORAL_UI_PORT (8233),
 * TEMPORAL_UI_WRITE_ACTIONS (false), TEMPORAL_NAMESPACE, TEMPORAL_TLS, TEMPORAL_TLS_CA/CERT/KEY/SERVER_NAME, TEMPORAL_API_KEY (a cluster only;
 * src/config.ts), API_PORT (3000), API_HOST, GATEWAY_PORT (8080), plus what each child reads.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto'; // a dependency of @temporalio/client; listed in ours too
import { describeTemporalSecurity, loadConfig, temporalConnectionOptions, type Config } from '../src/config';
import { PROJECT_ROOT, requireTemporalBinary } from '../src/temporal-bin';
import { SEARCH_ATTRIBUTE_REGISTRATIONS } from '../src/workflows/search-attributes';
import { WRITE_ACTIONS_HINT, startReadOnlyUi, type ReadOnlyUi } from './temporal-ui-read-only';

/** One supervised child: the entry stays, its process is replaced on each restart. */
export interface StackChild {
  name: string;
  /** The current (or last) process. */
  process: ChildProcess;
  /** Resolves once the current process has exited. */
  exited: Promise<void>;
  /** The current process has exited (a restart may be pending). */
  done: boolean;
  /** How many times the child was restarted. */
  restarts: number;
}

/** How the stack restarts a child that exited on its own. */
export interface RestartPolicy {
  /** Delay before the first restart (after a process that stayed up `stableAfterMs`, again). */
  initialDelayMs: number;
  /** The delay doubles per consecutive early exit, up to this. */
  maxDelayMs: number;
  /** A process that stayed up this long was healthy: its next restart waits `initialDelayMs`. */
  stableAfterMs: number;
  /** Before the stack was ever ready, this many exits of one child make the stack give up. */
  bootFailureLimit: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  stableAfterMs: 60_000,
  bootFailureLimit: 3,
};

export interface StackOptions {
  /** Prefix of the stack's own log lines: `[name] ...` (default `serve`). */
  name?: string;
  /** The environment read for settings and passed to the children (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Overrides of DEFAULT_RESTART_POLICY. */
  restart?: Partial<RestartPolicy>;
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
  /** Resolves once the API answers; rejects when the stack stopped (or gave up) before that. */
  ready: Promise<void>;
  /**
   * Resolves with the exit code the process should use, once every child has stopped: after
   * stop(), or with 1 when the stack gave up (a child could not start during boot).
   */
  exited: Promise<number>;
  stopping(): boolean;
  /** Stops the children, newest first, Temporal last. Idempotent; resolves with the exit code. */
  stop(reason: string, exitCode?: number): Promise<number>;
  /** The stack's `ready` block: URLs of the API, Temporal UI, gateway, data directory. */
  readyLines(): string[];
  log(message: string): void;
}

interface Supervised extends StackChild {
  command: string;
  args: string[];
  /** In a process group of its own: signals to the stack's group (a terminal's Ctrl-C) miss it. */
  ownGroup: boolean;
  /** Spawns so far (also tells a restarted process from the one a callback saw). */
  generation: number;
  startedAt: number;
  /** Early exits in a row (reset once a process stayed up `stableAfterMs`). */
  consecutiveFailures: number;
  /** Exits before the stack was ever ready. */
  bootFailures: number;
  /** A pending restart. */
  timer?: NodeJS.Timeout;
}

export function portFrom(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (!raw) return fallback;
  const port = Number(raw);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`${name} must be a port number, got "${raw}"`);
  return port;
}

/** The delay before a restart, in ms, after `consecutiveFailures` early exits in a row (0 = first). */
export function restartDelayMs(policy: RestartPolicy, consecutiveFailures: number): number {
  return Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** consecutiveFailures);
}

/** Spawn errors that no retry can fix. */
const PERMANENT_SPAWN_ERRORS = new Set(['ENOENT', 'EACCES', 'ENOEXEC', 'ENOTDIR']);

/**
 * `temporal server start-dev`'s arguments: SQLite in `dbFile`, everything on 127.0.0.1 — the
 * gRPC frontend (`--ip`; its HTTP API, metrics and internal services bind that IP too) and the
 * UI (`--ui-ip`) — and our search attributes.
 */
/**
 * The dev server's settings for many rollouts (measured by `npm run bench:scale`, README "Scale"):
 * its SQLite file in WAL mode without an fsync per transaction (the default journal makes every
 * workflow task wait for the disk: checks 2 s late at 100 rollouts; WAL survives a kill -9 of the
 * server, the fault suite checks it, and only an OS crash can lose the last writes), and a timer
 * queue that reads up to 1,000 timers per poll at up to 500 polls/s (the defaults, 100 and 20,
 * fire some timers 30 s late at 300 rollouts).
 */
export const DEV_SERVER_SQLITE_PRAGMAS = ['journal_mode=wal', 'synchronous=normal'];
export const DEV_SERVER_DYNAMIC_CONFIG = ['history.timerTaskBatchSize=1000', 'history.timerProcessorMaxPollRPS=500'];
export const DEV_SERVER_TUNING_ARGS = [
  ...DEV_SERVER_SQLITE_PRAGMAS.flatMap((p) => ['--sqlite-pragma', p]),
  ...DEV_SERVER_DYNAMIC_CONFIG.flatMap((kv) => ['--dynamic-config-value', kv]),
];

export function devServerArgs(o: { dbFile: string; port: number; uiPort: number; logLevel: string; namespace: string }): string[] {
  return [
    'server', 'start-dev',
    '--db-filename', o.dbFile,
    ...DEV_SERVER_TUNING_ARGS,
    '--ip', '127.0.0.1',
    '--port', String(o.port),
    '--ui-ip', '127.0.0.1',
    '--ui-port', String(o.uiPort),
    '--log-level', o.logLevel,
    // Registering attributes that the SQLite file already holds is accepted on restart.
    ...Object.entries(SEARCH_ATTRIBUTE_REGISTRATIONS).flatMap(([name, type]) => ['--search-attribute', `${name}=${type}`]),
    ...(o.namespace !== 'default' ? ['--namespace', o.namespace] : []),
  ];
}

export function startStack(options: StackOptions = {}): Stack {
  const prefix = options.name ?? 'serve';
  const policy: RestartPolicy = { ...DEFAULT_RESTART_POLICY, ...options.restart };
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
  if (localTemporal && (config.temporalTls || config.temporalApiKey)) {
    const set = ['TEMPORAL_TLS', 'TEMPORAL_TLS_CA', 'TEMPORAL_TLS_CERT', 'TEMPORAL_TLS_KEY', 'TEMPORAL_TLS_SERVER_NAME', 'TEMPORAL_API_KEY'].filter((n) => env[n]);
    throw new Error(`${set.join(', ')} ${set.length > 1 ? 'are' : 'is'} set but TEMPORAL_ADDRESS is not: the stack's own dev server ` +
      `(${env.TEMPORAL_ADDRESS}) speaks plaintext. Set TEMPORAL_ADDRESS to the cluster, or unset ${set.length > 1 ? 'them' : 'it'}.`);
  }
  // TLS files are read now (an error names the variable), and the same options serve every check below.
  const temporalOptions = temporalConnectionOptions(config);
  const apiUrl = `http://${config.apiHost}:${config.apiPort}`;
  const gatewayMain = join(PROJECT_ROOT, 'src/gateway/main.ts');
  const withGateway = existsSync(gatewayMain);

  const children: Supervised[] = [];
  let readOnlyUi: ReadOnlyUi | undefined;
  /** What the ready block says of the dev server UI's write actions. */
  const uiWriteActions = () =>
    config.temporalUiWriteActions
      ? 'write actions ON: terminate, cancel, signal and reset there bypass the API\'s tokens'
      : `read-only: write actions off; ${WRITE_ACTIONS_HINT}`;
  let stopping = false;
  let everReady = false;
  let stopped: Promise<number> | undefined;
  let resolveExited: (code: number) => void = () => undefined;
  const exited = new Promise<number>((r) => (resolveExited = r));

  function start(name: string, command: string, args: string[], ownGroup = false): void {
    const entry: Supervised = {
      name, command, args, ownGroup,
      process: undefined as unknown as ChildProcess, // set by launch()
      exited: Promise.resolve(),
      done: true,
      restarts: 0,
      generation: 0,
      startedAt: 0,
      consecutiveFailures: 0,
      bootFailures: 0,
    };
    children.push(entry);
    launch(entry);
  }

  /** Spawns a TypeScript entry point with tsx, in one Node process (no tsx wrapper process). */
  function startTs(name: string, file: string): void {
    start(name, process.execPath, ['--import', 'tsx', file]);
  }

  function launch(entry: Supervised): void {
    const { name } = entry;
    const child = spawn(entry.command, entry.args, { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: entry.ownGroup });
    entry.process = child;
    entry.done = false;
    entry.generation += 1;
    entry.startedAt = Date.now();
    let settled = false;
    entry.exited = new Promise<void>((resolveExit) => {
      const settle = (how: string, spawnError?: NodeJS.ErrnoException) => {
        if (settled) return;
        settled = true;
        entry.done = true;
        resolveExit();
        onExit(entry, how, spawnError);
      };
      child.on('error', (err: NodeJS.ErrnoException) => {
        // Without a pid the process never ran; otherwise (a failed kill) it is still there.
        if (child.pid === undefined) settle(err.message, err);
        else log(`${name}: ${err.message}`);
      });
      child.once('exit', (code, signal) => settle(signal ? `signal ${signal}` : `code ${code}`));
    });
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      const out = stream === child.stderr ? process.stderr : process.stdout;
      createInterface({ input: stream }).on('line', (line) => out.write(`[${name}] ${line}\n`));
    }
    if (child.pid !== undefined) log(`started ${name} (pid ${child.pid})`);
    if (name === 'temporal' && entry.generation > 1) void watchTemporalRecovery(entry);
  }

  /** A child exited (or could not be spawned) while the stack was not stopping: restart it, or give up. */
  function onExit(entry: Supervised, how: string, spawnError?: NodeJS.ErrnoException): void {
    if (stopping) return;
    const { name } = entry;
    const what = spawnError ? `could not start (${how})` : `exited unexpectedly (${how})`;
    if (!everReady) {
      entry.bootFailures += 1;
      const permanent = spawnError?.code !== undefined && PERMANENT_SPAWN_ERRORS.has(spawnError.code);
      if (permanent || entry.bootFailures >= policy.bootFailureLimit) {
        const times = permanent ? '' : ` ${entry.bootFailures} times`;
        log(`${name} ${what}${times} before the stack was ready; giving up`);
        void stop(`${name} cannot start`, 1);
        return;
      }
    }
    if (Date.now() - entry.startedAt >= policy.stableAfterMs) entry.consecutiveFailures = 0;
    const delay = restartDelayMs(policy, entry.consecutiveFailures);
    entry.consecutiveFailures += 1;
    entry.restarts += 1;
    log(`${name} ${what}; restarting in ${delay / 1000}s (restart ${entry.restarts})`);
    scheduleRestart(entry, delay);
  }

  function scheduleRestart(entry: Supervised, delay: number): void {
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      if (!stopping) launch(entry);
    }, delay);
  }

  /**
   * After a restart of the dev server: once it answers, says so, and starts at once a worker or
   * API that is waiting out its backoff (they exit when Temporal is gone for long).
   */
  async function watchTemporalRecovery(entry: Supervised): Promise<void> {
    const generation = entry.generation;
    const since = entry.startedAt;
    while (!stopping && entry.generation === generation && !entry.done) {
      if (await temporalAnswers()) {
        if (stopping || entry.generation !== generation) return;
        log(`Temporal is ready again at ${config.temporalAddress} (${((Date.now() - since) / 1000).toFixed(1)}s after its restart)`);
        for (const other of children) {
          if (other === entry || other.name === 'gateway' || !other.timer) continue;
          log(`starting ${other.name} now that Temporal answers`);
          other.consecutiveFailures = 0;
          scheduleRestart(other, 0);
        }
        return;
      }
      await sleep(300);
    }
  }

  function stop(reason: string, exitCode = 0): Promise<number> {
    stopped ??= (async () => {
      stopping = true;
      for (const child of children) {
        clearTimeout(child.timer);
        child.timer = undefined;
      }
      log(`stopping (${reason})`);
      const temporal = children.filter((c) => c.name === 'temporal');
      const others = children.filter((c) => c.name !== 'temporal').reverse();
      await Promise.all(others.map((c) => stopChild(c, 15_000)));
      await Promise.all(temporal.map((c) => stopChild(c, 15_000)));
      await readOnlyUi?.close();
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

  /** Whether the server answers for our namespace (with `check`, also looks at our search attributes). */
  async function temporalAnswers(check?: (connection: Connection) => Promise<void>): Promise<boolean> {
    let connection: Connection | undefined;
    try {
      connection = await Connection.connect({ ...temporalOptions, connectTimeout: 2_000 });
      await connection.workflowService.describeNamespace({ namespace: config.namespace });
      await check?.(connection);
      return true;
    } catch (err) {
      lastTemporalError = err;
      return false;
    } finally {
      await connection?.close().catch(() => undefined);
    }
  }
  let lastTemporalError: unknown;

  async function checkSearchAttributes(connection: Connection): Promise<void> {
    const { namespace } = config;
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
    const missing = Object.keys(SEARCH_ATTRIBUTE_REGISTRATIONS).filter((name) => !customAttributes?.[name]);
    if (missing.length === 0) return;
    const hint = missing
      .map((n) => `temporal operator search-attribute create --namespace ${namespace} --name ${n} --type ${SEARCH_ATTRIBUTE_REGISTRATIONS[n]}`)
      .join('\n  ');
    log(`warning: search attributes ${missing.join(', ')} are not registered in namespace ${namespace}; ` +
      `rollouts will fail to start until an operator registers them:\n  ${hint}`);
  }

  /** Waits until the server answers for the namespace, and checks our search attributes. */
  async function waitForTemporal(): Promise<boolean> {
    const deadline = Date.now() + (localTemporal ? 60_000 : 30_000);
    while (!stopping && Date.now() < deadline) {
      if (await temporalAnswers(checkSearchAttributes)) {
        log(`Temporal is ready at ${config.temporalAddress}`);
        return true;
      }
      await sleep(300);
    }
    if (stopping) return false;
    const why = lastTemporalError instanceof Error ? lastTemporalError.message : String(lastTemporalError);
    log(`Temporal at ${config.temporalAddress} did not answer: ${why}`);
    await stop('Temporal unavailable', 1);
    return false;
  }

  /** Waits until a worker polls the task queue for workflow tasks. */
  async function waitForWorker(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    const polled = async (connection: Connection) => {
      const { pollers } = await connection.workflowService.describeTaskQueue({
        namespace: config.namespace,
        taskQueue: { name: config.taskQueue },
        taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
      });
      if (!pollers || pollers.length === 0) throw new Error(`no worker polls task queue ${config.taskQueue} yet`);
    };
    while (!stopping && Date.now() < deadline) {
      if (await temporalAnswers(polled)) return true;
      await sleep(300);
    }
    if (stopping) return false;
    log(`no worker polled task queue ${config.taskQueue} within ${timeoutMs / 1000}s`);
    await stop('worker did not come up', 1);
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
    // ---- the gateway (data plane) first: it serves its persisted routes without the rest ----
    if (withGateway) startTs('gateway', gatewayMain);
    else log('src/gateway/main.ts not found: running without the gateway');

    if (localTemporal) {
      // Read-only UI: the dev server's own UI on a loopback port of its own (the same on every
      // restart), the read-only front on TEMPORAL_UI_PORT.
      const devUiPort = config.temporalUiWriteActions ? uiPort : await freeLoopbackPort();
      if (stopping) throw new Error('the stack stopped before Temporal was started');
      if (!config.temporalUiWriteActions) {
        readOnlyUi = await startReadOnlyUi({ host: '127.0.0.1', port: uiPort, upstreamHost: '127.0.0.1', upstreamPort: devUiPort }).catch((err: NodeJS.ErrnoException) => {
          throw new Error(`cannot serve the Temporal UI on 127.0.0.1:${uiPort} (${err.code ?? err.message}): set TEMPORAL_UI_PORT to a free port`);
        });
        if (stopping) await readOnlyUi.close();
      }
      const args = devServerArgs({
        dbFile: join(dataDir, 'temporal.sqlite'),
        port: temporalPort,
        uiPort: devUiPort,
        logLevel: env.TEMPORAL_LOG_LEVEL || 'error',
        namespace: config.namespace,
      });
      log(`starting Temporal dev server on ${config.temporalAddress} (UI ${config.temporalUiUrl}, ${uiWriteActions()}, data ${dataDir})`);
      // Its own process group: a Ctrl-C in the terminal reaches the others and the stack at once,
      // but the dev server only through stop(), after the others (a worker whose server died
      // under it hangs in its shutdown). serve.ts / start.ts stop the stack on SIGHUP as well, and
      // an exiting stack kills what is left (below), so it is not left behind.
      start('temporal', requireTemporalBinary('temporal'), args, true);
    } else {
      log(`using the Temporal cluster at ${config.temporalAddress} (namespace ${config.namespace}, ${describeTemporalSecurity(config)}); no dev server started`);
    }
    if (!(await waitForTemporal())) throw new Error('the stack stopped before Temporal was ready');
    if (stopping) throw new Error('the stack stopped before Temporal was ready');

    startTs('worker', join(PROJECT_ROOT, 'src/worker.ts'));
    startTs('api', join(PROJECT_ROOT, 'src/api/main.ts'));

    if (!(await waitForHttp(`${apiUrl}/healthz`, 60_000))) throw new Error('the stack stopped before the API was ready');
    if (stopping) throw new Error('the stack stopped before the API was ready');
    // Ready means a rollout started now runs: a worker polls the task queue (it bundles the workflows first).
    if (!(await waitForWorker(120_000))) throw new Error('the stack stopped before the worker polled its task queue');
    if (stopping) throw new Error('the stack stopped before the worker was ready');
    everReady = true;
  }

  // Last resort when the stack's process exits without stop() (an uncaught error, process.exit):
  // no child outlives it. (A SIGKILL of the stack cannot be caught: the children survive that.)
  const killLeftovers = () => {
    for (const child of children) if (!child.done) child.process.kill('SIGKILL');
  };
  process.once('exit', killLeftovers);
  void exited.then(() => process.removeListener('exit', killLeftovers));

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
      `Temporal UI  ${config.temporalUiUrl}/namespaces/${config.namespace}/workflows${localTemporal ? `  (${uiWriteActions()})` : ''}`,
      `Temporal     ${config.temporalAddress} (namespace ${config.namespace}, task queue ${config.taskQueue}${localTemporal ? ', 127.0.0.1 only, no authentication' : `, ${describeTemporalSecurity(config)}`})`,
      ...(children.some((c) => c.name === 'gateway') ? [`Gateway      ${config.gatewayUrl}`] : []),
      `Data         ${dataDir}`,
    ],
    log,
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A port free on 127.0.0.1 now. */
function freeLoopbackPort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolvePort(port));
    });
  });
}
