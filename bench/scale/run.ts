/**
 * Scale benchmark: `npm run bench:scale` — N concurrent rollouts on ONE worker (default N = 100,
 * 300, 1000), each baking with a metric check every 2 s, on a real stack:
 *
 *  - the Temporal dev server (`.temporal-bin/temporal server start-dev`, a fresh SQLite file in a
 *    temp dir, 127.0.0.1, free ports, headless), its own process;
 *  - the data plane (bench/scale/dataplane.ts), its own process: the real gateway with N targets
 *    t0…t{N-1}, two demo model servers shared by them, and light traffic (`--rate`, 300 req/s in
 *    all, round-robin over the targets, so every check has some data);
 *  - the real worker (`node --import tsx src/worker.ts`), its own process, so that its CPU is its own;
 *  - the real REST API (createApp) in this process: rollouts are started and read through it.
 *
 * Each rollout: v1 → v2, steps [50% bake 30m, 100%], analysis interval 2s (`--interval`), minRequests 5,
 * inconclusiveLimit 100000 (thin traffic must not end it). Once all N are started and baking,
 * a warm-up (`--warmup`, 15 s), then the measurement window (`--window`, 90 s), during which:
 *  - GET /v1/rollouts/:id of a random rollout, back to back from 4 clients (status latency);
 *  - GET /v1/rollouts (the list) every 2 s; POST pause then resume every 3 s on one of 8
 *    reserved rollouts (left out of the lag figures: a pause moves their schedule);
 *  - the worker's, the dev server's and the data plane's CPU (/proc), their RSS every second.
 * Then every rollout's history is read, and the check lag computed from it (see `lagsOf`):
 *  - check lag: a check is due when its timer is: TimerStarted time + the timer's duration. It
 *    has run when its collectMetrics activity has completed and the workflow task that records
 *    the decision has completed (WorkflowTaskCompleted after ActivityTaskCompleted). lag =
 *    done − due. Also its parts: timer fired − due (the server), activity started − due.
 *  - check spacing: time between consecutive decisions of a rollout (should be 2 s).
 * Only checks due inside the window count. History events per rollout-hour: events in the
 * history divided by the rollout's age when read.
 *
 * Options: --rollouts 100,300,1000  --interval 2 (seconds between checks)  --window 90  --warmup 15  --rate 300  --profile (worker
 * under `node --cpu-prof`, profiles and a top-functions summary kept in bench/results/scale-prof/)
 * --worker-env K=V,K=V (extra env for the worker, e.g. WORKER_MAX_CACHED_WORKFLOWS=2000)
 * --label NAME (written into the results) --out FILE (default bench/results/scale.json).
 * Everything it starts is stopped, and its temp dirs removed, on exit, error and Ctrl-C.
 */
import { DEV_SERVER_DYNAMIC_CONFIG as STACK_DYNAMIC_CONFIG, DEV_SERVER_SQLITE_PRAGMAS as STACK_SQLITE_PRAGMAS } from '../../scripts/stack';
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { freePort } from '../free-port';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { Server } from 'node:http';
import { Client, Connection } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import pino from 'pino';
import { Agent, request } from 'undici';
import { registryRouters } from '../../src/activities';
import { createApp } from '../../src/api/app';
import { requireTemporalBinary } from '../../src/temporal-bin';
import { SEARCH_ATTRIBUTE_REGISTRATIONS } from '../../src/workflows/search-attributes';

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;

const ROOT = path.resolve(__dirname, '../..');
/** The dev server's settings as `npm run serve` has them (scripts/stack.ts); `--temporal-config ''` / `--sqlite-pragma ''` measure its defaults. */
const DEV_SERVER_DYNAMIC_CONFIG = STACK_DYNAMIC_CONFIG.join(',');
const DEV_SERVER_SQLITE_PRAGMAS = STACK_SQLITE_PRAGMAS.join(',');
const { values: args } = parseArgs({
  options: {
    rollouts: { type: 'string', default: '100,300,1000' },
    interval: { type: 'string', default: '2' },
    window: { type: 'string', default: '90' },
    warmup: { type: 'string', default: '15' },
    rate: { type: 'string', default: '300' },
    profile: { type: 'boolean', default: false },
    'worker-env': { type: 'string', default: '' },
    label: { type: 'string', default: '' },
    db: { type: 'string', default: 'file' },
    'temporal-config': { type: 'string', default: DEV_SERVER_DYNAMIC_CONFIG },
    'sqlite-pragma': { type: 'string', default: DEV_SERVER_SQLITE_PRAGMAS },
    out: { type: 'string', default: path.join(ROOT, 'bench/results/scale.json') },
  },
  allowPositionals: false,
});
const SIZES = args.rollouts!.split(',').map((s) => Number(s.trim())).filter((n) => n > 0);
const WINDOW_S = Number(args.window);
const WARMUP_S = Number(args.warmup);
const RATE = Number(args.rate);
const WORKER_ENV = Object.fromEntries(
  args['worker-env']!
    .split(',')
    .filter(Boolean)
    .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
);
const INTERVAL_MS = Math.round(Number(args.interval) * 1000);
if (!(INTERVAL_MS >= 1000)) throw new Error(`--interval must be a number of seconds, at least 1, got ${args.interval}`);
const RESERVED = 8; // rollouts that get pause/resume: not in the lag figures
const STATUS_CLIENTS = 2;
const CLK_TCK = 100;
const PROF_DIR = path.join(ROOT, 'bench/results/scale-prof');
/**
 * Scheduling priority (nice) of this process and so of everything it starts (children inherit
 * it): on a shared machine other people's builds and tests otherwise decide the tail latency, as
 * in bench/gateway. Default -5 as root, 0 otherwise; BENCH_NICE=0 turns it off.
 */
const NICE = Number(process.env.BENCH_NICE ?? (process.getuid?.() === 0 ? -5 : 0));

// ---- processes and cleanup ----

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let cleaningUp = false;

function cleanupSync(): void {
  for (const child of children) {
    try {
      if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL');
    } catch {
      try {
        child.kill('SIGKILL');
      } catch {
        // gone
      }
    }
  }
  children.clear();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  tempDirs.clear();
}
process.on('exit', cleanupSync);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    if (cleaningUp) return;
    cleaningUp = true;
    console.error(`\n[scale] ${signal}: stopping everything`);
    cleanupSync();
    process.exit(130);
  });
}

/** A child in its own process group (so that its own children go with it), output to a log file. */
function startChild(name: string, command: string, argv: string[], env: NodeJS.ProcessEnv, logFile: string, stdin: 'ignore' | 'pipe' = 'ignore'): ChildProcess {
  const fd = openSync(logFile, 'a');
  const child = spawn(command, argv, { cwd: ROOT, env: { ...process.env, ...env }, stdio: [stdin, name === 'dataplane' ? 'pipe' : fd, fd], detached: true });
  closeSync(fd);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

async function stopChild(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    process.kill(-child.pid!, 'SIGTERM');
  } catch {
    child.kill('SIGTERM');
  }
  const timer = setTimeout(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      child.kill('SIGKILL');
    }
  }, graceMs);
  await exited;
  clearTimeout(timer);
}


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`${what}: not ready after ${timeoutMs / 1000} s`);
    await sleep(250);
  }
}

function waitForLine(child: ChildProcess, prefix: string, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    const timer = setTimeout(() => reject(new Error(`no "${prefix}" line after ${timeoutMs / 1000} s`)), timeoutMs);
    const onData = (c: Buffer) => {
      buffer += c.toString();
      const line = buffer.split('\n').find((l) => l.startsWith(prefix));
      if (line) {
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        resolve(line.slice(prefix.length).trim());
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited (${code}) before "${prefix}"`));
    });
  });
}

// ---- /proc ----

/** CPU seconds (user + system, all threads) of a process. */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

function memoryMiB(pid: number): { rss: number; hwm: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
    return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
  } catch {
    return { rss: NaN, hwm: NaN };
  }
}

/** CPU seconds per thread name (comm) of a process: which of its threads does the work. */
function threadCpu(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
        const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')).replace(/[0-9]+$/, '#');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        out[name] = (out[name] ?? 0) + (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
      } catch {
        // thread gone
      }
    }
  } catch {
    // process gone
  }
  return out;
}

/** CPU seconds the whole machine spent busy (all cores), from /proc/stat. */
function machineBusySeconds(): number {
  const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1).map(Number);
  const idle = (cpu[3] ?? 0) + (cpu[4] ?? 0);
  return (cpu.reduce((a, b) => a + b, 0) - idle) / CLK_TCK;
}

// ---- figures ----

function quantile(sorted: number[], q: number): number | null {
  if (sorted.length === 0) return null;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i]!;
}

function stats(values: number[]): { n: number; p50: number | null; p99: number | null; max: number | null; mean: number | null } {
  const sorted = [...values].sort((a, b) => a - b);
  const r = (x: number | null) => (x === null ? null : Math.round(x * 10) / 10);
  return {
    n: sorted.length,
    p50: r(quantile(sorted, 0.5)),
    p99: r(quantile(sorted, 0.99)),
    max: r(sorted.length ? sorted[sorted.length - 1]! : null),
    mean: r(sorted.length ? sorted.reduce((a, b) => a + b, 0) / sorted.length : null),
  };
}

const ms = (t: { seconds?: unknown; nanos?: number | null } | null | undefined) => (t ? Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : NaN);
const at = (e: HistoryEvent) => ms(e.eventTime as never);

interface CheckTiming {
  dueMs: number;
  firedMs: number;
  /** The workflow task the timer woke: scheduled, started; then the activity it scheduled. */
  task1ScheduledMs: number;
  task1StartedMs: number;
  activityScheduledMs: number;
  activityStartedMs: number;
  activityCompletedMs: number;
  /** The workflow task that recorded the decision. */
  task2ScheduledMs: number;
  task2StartedMs: number;
  doneMs: number;
}

/**
 * The checks in one history: each fired timer followed by a collectMetrics activity. due = timer
 * started + its duration; done = the workflow task completed after the activity completed.
 */
function lagsOf(events: HistoryEvent[]): { checks: CheckTiming[]; decisionTimes: number[] } {
  const timers = new Map<string, number>(); // timerId → due
  const activities = new Map<string, CheckTiming>(); // scheduled event id → its check
  const checks: CheckTiming[] = [];
  let fired: Partial<CheckTiming> | undefined;
  let awaitingTask: CheckTiming | undefined;
  let taskScheduled = NaN;
  let taskStarted = NaN;
  let previousDue: number | undefined;
  let taskCompleted = NaN;
  const decisionTimes: number[] = [];
  for (const e of events) {
    if (e.workflowTaskScheduledEventAttributes) taskScheduled = at(e);
    else if (e.workflowTaskStartedEventAttributes) taskStarted = at(e);
    else if (e.workflowTaskCompletedEventAttributes) taskCompleted = at(e);
    if (e.timerStartedEventAttributes) {
      const a = e.timerStartedEventAttributes;
      timers.set(a.timerId!, at(e) + ms(a.startToFireTimeout as never));
    } else if (e.timerFiredEventAttributes) {
      const due = timers.get(e.timerFiredEventAttributes.timerId!);
      if (due !== undefined) fired = { dueMs: due, firedMs: at(e), task1ScheduledMs: NaN };
    } else if (e.workflowTaskScheduledEventAttributes) {
      if (fired && Number.isNaN(fired.task1ScheduledMs)) fired.task1ScheduledMs = at(e);
      if (awaitingTask) awaitingTask.task2ScheduledMs = at(e);
    } else if (e.workflowTaskStartedEventAttributes) {
      if (fired && fired.task1StartedMs === undefined) fired.task1StartedMs = at(e);
      if (awaitingTask) awaitingTask.task2StartedMs = at(e);
    } else if (e.activityTaskScheduledEventAttributes) {
      // A check that follows the previous one without a timer (that one ran an interval late or
      // more: the workflow starts the next check at once) was due an interval after the previous one.
      if (e.activityTaskScheduledEventAttributes.activityType?.name === 'collectMetrics' && !fired && previousDue !== undefined) {
        fired = { dueMs: previousDue + INTERVAL_MS, firedMs: NaN, task1ScheduledMs: taskScheduled, task1StartedMs: taskStarted };
      }
      if (e.activityTaskScheduledEventAttributes.activityType?.name === 'collectMetrics' && fired) {
        previousDue = fired.dueMs!;
        activities.set(String(e.eventId), { ...(fired as CheckTiming), task1ScheduledMs: fired.task1ScheduledMs ?? taskScheduled, task1StartedMs: fired.task1StartedMs ?? taskStarted, activityScheduledMs: at(e), activityStartedMs: NaN, activityCompletedMs: NaN, task2ScheduledMs: NaN, task2StartedMs: NaN, doneMs: NaN });
      }
      fired = undefined;
    } else if (e.activityTaskStartedEventAttributes) {
      const check = activities.get(String(e.activityTaskStartedEventAttributes.scheduledEventId));
      if (check) check.activityStartedMs = at(e);
    } else if (e.activityTaskCompletedEventAttributes) {
      const check = activities.get(String(e.activityTaskCompletedEventAttributes.scheduledEventId));
      if (check) {
        check.activityCompletedMs = at(e);
        awaitingTask = check;
      }
    } else if (e.workflowTaskCompletedEventAttributes) {
      if (awaitingTask && !Number.isNaN(awaitingTask.task2StartedMs)) {
        awaitingTask.doneMs = at(e);
        checks.push(awaitingTask);
        decisionTimes.push(at(e));
        awaitingTask = undefined;
      }
    } else if (e.markerRecordedEventAttributes?.markerName === 'core_local_activity') {
      // A check read by a local activity: done in the workflow task that recorded its marker.
      if (!fired && previousDue !== undefined) fired = { dueMs: previousDue + INTERVAL_MS, firedMs: NaN, task1ScheduledMs: taskScheduled, task1StartedMs: taskStarted };
      if (fired) {
        previousDue = fired.dueMs!;
        const none = NaN;
        const check: CheckTiming = { ...(fired as CheckTiming), task1ScheduledMs: fired.task1ScheduledMs ?? taskScheduled, task1StartedMs: fired.task1StartedMs ?? taskStarted, activityScheduledMs: none, activityStartedMs: none, activityCompletedMs: none, task2ScheduledMs: none, task2StartedMs: none, doneMs: taskCompleted };
        checks.push(check);
        decisionTimes.push(taskCompleted);
        fired = undefined;
      }
    } else if (e.activityTaskFailedEventAttributes || e.activityTaskTimedOutEventAttributes) {
      awaitingTask = undefined;
    }
  }
  return { checks, decisionTimes };
}

/** Where a check's lag went, stage by stage (ms). */
const STAGES: Record<string, (c: CheckTiming) => number> = {
  timerFired: (c) => c.firedMs - c.dueMs,
  task1Queued: (c) => c.task1StartedMs - c.task1ScheduledMs,
  task1Ran: (c) => (Number.isNaN(c.activityScheduledMs) ? c.doneMs : c.activityScheduledMs) - c.task1StartedMs,
  activityQueued: (c) => c.activityStartedMs - c.activityScheduledMs,
  activityRan: (c) => c.activityCompletedMs - c.activityStartedMs,
  task2Queued: (c) => c.task2StartedMs - c.task2ScheduledMs,
  task2Ran: (c) => c.doneMs - c.task2StartedMs,
};

// ---- the run ----

interface Timed {
  ms: number;
  status: number;
}

async function timed(agent: Agent, url: string, method: 'GET' | 'POST', body?: unknown): Promise<Timed & { json?: unknown }> {
  const started = performance.now();
  const res = await request(url, {
    method,
    dispatcher: agent,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.body.text();
  const took = performance.now() - started;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { ms: took, status: res.statusCode, json };
}

async function runOne(n: number) {
  const dir = mkdtempSync(path.join(os.tmpdir(), `scale-${n}-`));
  tempDirs.add(dir);
  const log = (m: string) => console.log(`[scale ${n}] ${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s ${m}`);
  const t0 = Date.now();
  const [temporalPort, uiPort, httpPort, metricsPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const address = `127.0.0.1:${temporalPort}`;
  const taskQueue = `scale-${n}`;
  const procs: Record<string, ChildProcess> = {};
  let server: Server | undefined;
  let connection: Connection | undefined;
  const agent = new Agent({ connections: 32, keepAliveTimeout: 30_000 });
  try {
    // Temporal dev server, a fresh SQLite file.
    procs.temporal = startChild(
      'temporal',
      requireTemporalBinary('temporal'),
      [
        'server', 'start-dev', '--headless',
        ...(args.db === 'memory' ? [] : ['--db-filename', path.join(dir, 'temporal.sqlite')]),
        '--ip', '127.0.0.1', '--port', String(temporalPort), '--ui-port', String(uiPort), '--http-port', String(httpPort), '--metrics-port', String(metricsPort),
        '--log-level', 'error',
        ...args['temporal-config']!.split(',').filter(Boolean).flatMap((kv) => ['--dynamic-config-value', kv]),
        ...args['sqlite-pragma']!.split(',').filter(Boolean).flatMap((kv) => ['--sqlite-pragma', kv]),
        ...Object.entries(SEARCH_ATTRIBUTE_REGISTRATIONS).flatMap(([name, type]) => ['--search-attribute', `${name}=${type}`]),
      ],
      {},
      path.join(dir, 'temporal.log'),
    );
    // The data plane.
    mkdirSync(path.join(dir, 'gateway'));
    procs.dataplane = startChild('dataplane', process.execPath, ['--import', 'tsx', path.join(__dirname, 'dataplane.ts')], { SCALE_TARGETS: String(n), SCALE_RATE: String(RATE), SCALE_DATA_DIR: path.join(dir, 'gateway'), LOG_LEVEL: 'silent' }, path.join(dir, 'dataplane.log'), 'pipe');
    const plane = JSON.parse(await waitForLine(procs.dataplane, 'ready ', 120_000)) as { gatewayUrl: string; v1: string; v2: string };
    log(`gateway ${plane.gatewayUrl} with ${n} targets, traffic ${RATE} req/s`);

    connection = await waitFor('Temporal dev server', 60_000, () => Connection.connect({ address, connectTimeout: 2_000 }));
    const client = new Client({ connection, namespace: 'default' });
    log(`Temporal dev server ${address}`);

    // The worker, its own process.
    if (args.profile) {
      rmSync(PROF_DIR, { recursive: true, force: true });
      mkdirSync(PROF_DIR, { recursive: true });
    }
    const workerArgs = [...(args.profile ? ['--cpu-prof', '--cpu-prof-dir', PROF_DIR, '--cpu-prof-interval', '2000'] : []), '--import', 'tsx', 'src/worker.ts'];
    const workerLog = path.join(dir, 'worker.log');
    procs.worker = startChild(
      'worker',
      process.execPath,
      workerArgs,
      {
        TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: 'default',
        TEMPORAL_TLS: '', TEMPORAL_TLS_CA: '', TEMPORAL_TLS_CERT: '', TEMPORAL_TLS_KEY: '', TEMPORAL_TLS_SERVER_NAME: '', TEMPORAL_API_KEY: '',
        TASK_QUEUE: taskQueue, GATEWAY_URL: plane.gatewayUrl, GATEWAY_ADMIN_TOKEN: '',
        ...WORKER_ENV,
      },
      workerLog,
    );
    await waitFor('worker', 180_000, async () => {
      if (procs.worker!.exitCode !== null) throw Object.assign(new Error(`worker exited:\n${readFileSync(workerLog, 'utf8').slice(-3000)}`), { fatal: true });
      return readFileSync(workerLog, 'utf8').includes('worker polling') ? true : undefined;
    }).catch((err: Error & { fatal?: boolean }) => {
      throw err.fatal ? err : new Error(`${err.message}\n${existsSync(workerLog) ? readFileSync(workerLog, 'utf8').slice(-3000) : ''}`);
    });
    log(`worker pid ${procs.worker.pid} polling ${taskQueue}`);

    // The API, in this process.
    const app = createApp({
      client,
      config: { namespace: 'default', taskQueue, temporalUiUrl: `http://127.0.0.1:${uiPort}` },
      routerFor: registryRouters({ gatewayUrl: plane.gatewayUrl }),
      logger: pino({ level: 'silent' }),
    });
    const apiPort = await freePort();
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(apiPort, '127.0.0.1', () => resolve(s));
    });
    const api = `http://127.0.0.1:${apiPort}`;

    // Start N rollouts through the API.
    const ids: string[] = [];
    const startLatencies: number[] = [];
    let nextTarget = 0;
    const startedAll = Date.now();
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (nextTarget < n) {
          const i = nextTarget++;
          const spec = {
            target: `t${i}`,
            baseline: { version: 'v1', url: plane.v1 },
            candidate: { version: 'v2', url: plane.v2 },
            steps: [{ weight: 50, bake: '30m' }, { weight: 100 }],
            analysis: { interval: `${INTERVAL_MS / 1000}s`, minRequests: 5, inconclusiveLimit: 100000 },
          };
          for (let attempt = 0; ; attempt++) {
            const res = await timed(agent, `${api}/v1/rollouts`, 'POST', spec);
            if (res.status === 201) {
              startLatencies.push(res.ms);
              ids[i] = (res.json as { id: string }).id;
              break;
            }
            if (attempt >= 3) throw new Error(`start t${i}: ${res.status} ${JSON.stringify(res.json).slice(0, 300)}`);
            await sleep(1_000);
          }
        }
      }),
    );
    log(`${n} rollouts started in ${((Date.now() - startedAll) / 1000).toFixed(1)} s`);
    // Every rollout baking (weights set): from the list's CanaryWeight search attribute.
    await waitFor('all rollouts baking', 300_000, async () => {
      const res = await timed(agent, `${api}/v1/rollouts?limit=${n}`, 'GET');
      const list = (res.json as { rollouts: { phase: string; canaryWeight?: number }[] }).rollouts;
      const baking = list.filter((r) => r.phase === 'progressing' && r.canaryWeight === 50).length;
      return baking >= n ? true : undefined;
    }).catch(async (err: Error) => {
      log(`warning: ${err.message}; measuring anyway`);
    });
    log(`all baking; warm-up ${WARMUP_S} s`);
    await sleep(WARMUP_S * 1000);

    // ---- the window ----
    const windowStart = Date.now();
    const windowEnd = windowStart + WINDOW_S * 1000;
    const cpu0 = { worker: cpuSeconds(procs.worker.pid!), temporal: cpuSeconds(procs.temporal.pid!), dataplane: cpuSeconds(procs.dataplane.pid!), bench: process.cpuUsage(), machine: machineBusySeconds() };
    const threads0 = threadCpu(procs.worker.pid!);
    const rssPeak = { worker: 0, temporal: 0, dataplane: 0 };
    const sampler = setInterval(() => {
      for (const key of ['worker', 'temporal', 'dataplane'] as const) rssPeak[key] = Math.max(rssPeak[key], memoryMiB(procs[key]!.pid!).rss || 0);
    }, 1_000);
    const statusMs: number[] = [];
    const statusErrors: string[] = [];
    const listMs: number[] = [];
    const actionMs: Record<'pause' | 'resume', number[]> = { pause: [], resume: [] };
    const actionErrors: string[] = [];
    const measured = ids.slice(Math.min(RESERVED, Math.floor(n / 10)));
    const reserved = ids.slice(0, Math.min(RESERVED, Math.floor(n / 10)));
    const loops: Promise<void>[] = [];
    for (let c = 0; c < STATUS_CLIENTS; c++) {
      loops.push(
        (async () => {
          while (Date.now() < windowEnd) {
            const id = measured[Math.floor(Math.random() * measured.length)]!;
            const res = await timed(agent, `${api}/v1/rollouts/${id}`, 'GET').catch((err: Error) => ({ ms: NaN, status: 0, json: err.message }));
            if (res.status === 200 && !(res.json as { stale?: string }).stale) statusMs.push(res.ms);
            else statusErrors.push(`${res.status} ${JSON.stringify(res.json).slice(0, 200)}`);
            await sleep(200);
          }
        })(),
      );
    }
    loops.push(
      (async () => {
        while (Date.now() < windowEnd) {
          const started = Date.now();
          const res = await timed(agent, `${api}/v1/rollouts?limit=100`, 'GET');
          if (res.status === 200) listMs.push(res.ms);
          await sleep(Math.max(0, 2_000 - (Date.now() - started)));
        }
      })(),
    );
    if (reserved.length > 0) {
      loops.push(
        (async () => {
          let k = 0;
          while (Date.now() < windowEnd - 3_000) {
            const id = reserved[k++ % reserved.length]!;
            for (const action of ['pause', 'resume'] as const) {
              const res = await timed(agent, `${api}/v1/rollouts/${id}/${action}`, 'POST', {});
              if (res.status === 202) actionMs[action].push(res.ms);
              else actionErrors.push(`${action} ${res.status} ${JSON.stringify(res.json).slice(0, 200)}`);
            }
            await sleep(3_000);
          }
        })(),
      );
    }
    await Promise.all(loops);
    await sleep(Math.max(0, windowEnd - Date.now()));
    clearInterval(sampler);
    const wall = (Date.now() - windowStart) / 1000;
    const benchCpu = process.cpuUsage(cpu0.bench);
    const cpu = {
      worker: (cpuSeconds(procs.worker.pid!) - cpu0.worker) / wall,
      temporal: (cpuSeconds(procs.temporal.pid!) - cpu0.temporal) / wall,
      dataplane: (cpuSeconds(procs.dataplane.pid!) - cpu0.dataplane) / wall,
      benchAndApi: (benchCpu.user + benchCpu.system) / 1e6 / wall,
      machine: (machineBusySeconds() - cpu0.machine) / wall,
    };
    const threads1 = threadCpu(procs.worker.pid!);
    const workerThreads = Object.fromEntries(
      Object.entries(threads1)
        .map(([name, sec]) => [name, Math.round(((sec - (threads0[name] ?? 0)) / wall) * 100) / 100] as const)
        .filter(([, cores]) => cores > 0)
        .sort((a, b) => b[1] - a[1]),
    );
    const workerMem = memoryMiB(procs.worker.pid!);
    const temporalMem = memoryMiB(procs.temporal.pid!);
    log(`window done (${wall.toFixed(1)} s): worker CPU ${cpu.worker.toFixed(2)}, dev server ${cpu.temporal.toFixed(2)}, status p99 ${stats(statusMs).p99} ms; reading ${n} histories`);

    // ---- histories ----
    const readAt = Date.now();
    const lag: number[] = [];
    const stageLags: Record<string, number[]> = Object.fromEntries(Object.keys(STAGES).map((k) => [k, []]));
    const spacing: number[] = [];
    const eventsPerHour: number[] = [];
    let totalEvents = 0;
    const measuredSet = new Set(measured);
    let nextHistory = 0;
    let dumped = false;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (nextHistory < ids.length) {
          const id = ids[nextHistory++]!;
          const history = await client.workflow.getHandle(id).fetchHistory();
          const events = history.events ?? [];
          totalEvents += events.length;
          const startedMs = events.length ? at(events[0]!) : readAt;
          eventsPerHour.push(events.length / ((readAt - startedMs) / 3_600_000));
          if (!measuredSet.has(id)) continue;
          if (process.env.SCALE_DUMP_HISTORY && !dumped) {
            dumped = true;
            writeFileSync(process.env.SCALE_DUMP_HISTORY, JSON.stringify({ windowStart, windowEnd, events }));
          }
          const { checks, decisionTimes } = lagsOf(events);
          for (const c of checks) {
            if (c.dueMs < windowStart || c.dueMs > windowEnd) continue;
            lag.push(c.doneMs - c.dueMs);
            for (const [k, f] of Object.entries(STAGES)) stageLags[k]!.push(f(c));
          }
          for (let i = 1; i < decisionTimes.length; i++) {
            if (decisionTimes[i - 1]! >= windowStart && decisionTimes[i]! <= windowEnd) spacing.push(decisionTimes[i]! - decisionTimes[i - 1]!);
          }
        }
      }),
    );
    const result = {
      rollouts: n,
      windowSeconds: Math.round(wall * 10) / 10,
      checksInWindow: lag.length,
      checksExpected: Math.round((measured.length * wall * 1000) / INTERVAL_MS),
      checkLagMs: stats(lag),
      checkStagesMs: Object.fromEntries(Object.entries(stageLags).map(([k, v]) => [k, stats(v.filter(Number.isFinite))])),
      checkSpacingMs: stats(spacing),
      statusMs: stats(statusMs),
      statusErrors: statusErrors.length,
      statusErrorSamples: statusErrors.slice(0, 3),
      listMs: stats(listMs),
      pauseMs: stats(actionMs.pause),
      resumeMs: stats(actionMs.resume),
      actionErrors: actionErrors.length,
      actionErrorSamples: actionErrors.slice(0, 3),
      startMs: stats(startLatencies),
      cpu: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, Math.round(v * 100) / 100])),
      workerThreadsCpu: workerThreads,
      machineCores: os.cpus().length,
      workerRssPeakMiB: Math.round(Math.max(rssPeak.worker, workerMem.hwm || 0)),
      workerRssEndMiB: Math.round(workerMem.rss),
      temporalRssPeakMiB: Math.round(Math.max(rssPeak.temporal, temporalMem.hwm || 0)),
      historyEventsPerRolloutHour: stats(eventsPerHour),
      historyEventsTotal: totalEvents,
    };
    log(`check lag p50 ${result.checkLagMs.p50} p99 ${result.checkLagMs.p99} ms (${lag.length} checks of ~${result.checksExpected} expected)`);

    // Terminate the rollouts: quicker than letting the server wind down with them running.
    await Promise.all(
      Array.from({ length: 8 }, async (_, k) => {
        for (let i = k; i < ids.length; i += 8) await client.workflow.getHandle(ids[i]!).terminate('bench done').catch(() => undefined);
      }),
    );
    return result;
  } finally {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server?.closeAllConnections?.();
    await agent.close().catch(() => undefined);
    if (procs.worker) await stopChild(procs.worker, 15_000); // lets --cpu-prof write its profile
    await connection?.close().catch(() => undefined);
    await Promise.all([procs.dataplane && stopChild(procs.dataplane), procs.temporal && stopChild(procs.temporal)]);
    if (process.env.SCALE_KEEP_LOGS) {
      mkdirSync(process.env.SCALE_KEEP_LOGS, { recursive: true });
      for (const f of ['worker.log', 'temporal.log', 'dataplane.log']) {
        if (existsSync(path.join(dir, f))) writeFileSync(path.join(process.env.SCALE_KEEP_LOGS, `${n}-${f}`), readFileSync(path.join(dir, f)));
      }
    }
    rmSync(dir, { recursive: true, force: true });
    tempDirs.delete(dir);
  }
}

// ---- the profile summary ----

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

/** Self time per function across the worker's .cpuprofile files (each thread writes one). */
function summarizeProfiles(): { file: string; samples: number; top: { fn: string; selfPct: number }[] }[] {
  if (!existsSync(PROF_DIR)) return [];
  const out = [];
  for (const file of readdirSync(PROF_DIR).filter((f) => f.endsWith('.cpuprofile'))) {
    const profile = JSON.parse(readFileSync(path.join(PROF_DIR, file), 'utf8')) as { nodes: ProfileNode[]; samples: number[] };
    const byId = new Map(profile.nodes.map((node) => [node.id, node]));
    const self = new Map<string, number>();
    for (const sample of profile.samples) {
      const node = byId.get(sample);
      if (!node) continue;
      const f = node.callFrame;
      const key = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*node_modules\//, '').replace(ROOT + '/', '')}:${f.lineNumber + 1}`;
      self.set(key, (self.get(key) ?? 0) + 1);
    }
    const total = profile.samples.length;
    const top = [...self.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 25)
      .map(([fn, count]) => ({ fn, selfPct: Math.round((count / total) * 1000) / 10 }));
    out.push({ file, samples: total, top });
  }
  return out;
}

// ---- main ----

function row(r: Awaited<ReturnType<typeof runOne>>): string {
  const f = (x: number | null) => (x === null ? '—' : String(Math.round(x)));
  return [
    String(r.rollouts).padStart(5),
    `${f(r.checkLagMs.p50)} / ${f(r.checkLagMs.p99)}`.padStart(13),
    `${f(r.checkSpacingMs.p50)} / ${f(r.checkSpacingMs.p99)}`.padStart(13),
    `${f(r.statusMs.p50)} / ${f(r.statusMs.p99)}`.padStart(13),
    `${f(r.listMs.p50)} / ${f(r.listMs.p99)}`.padStart(13),
    `${f(r.pauseMs.p50)} / ${f(r.pauseMs.p99)}`.padStart(13),
    r.cpu.worker!.toFixed(2).padStart(7),
    String(r.workerRssPeakMiB).padStart(8),
    r.cpu.temporal!.toFixed(2).padStart(7),
    f(r.historyEventsPerRolloutHour.p50).padStart(9),
  ].join(' ');
}

async function main(): Promise<void> {
  if (NICE !== 0) {
    try {
      os.setPriority(NICE);
    } catch (err) {
      console.warn(`[scale] cannot set nice ${NICE}: ${(err as Error).message}`);
    }
  }
  console.log(`[scale] rollouts ${SIZES.join(', ')}; window ${WINDOW_S} s after ${WARMUP_S} s warm-up; traffic ${RATE} req/s; checks every ${INTERVAL_MS / 1000} s${args.profile ? '; worker profiled' : ''}${Object.keys(WORKER_ENV).length ? `; worker env ${JSON.stringify(WORKER_ENV)}` : ''}`);
  const started = Date.now();
  const loadAverageAtStart = os.loadavg();
  const results = [];
  for (const n of SIZES) results.push(await runOne(n));
  const header = `${'N'.padStart(5)} ${'lag p50/p99'.padStart(13)} ${'spacing'.padStart(13)} ${'status ms'.padStart(13)} ${'list ms'.padStart(13)} ${'pause ms'.padStart(13)} ${'wCPU'.padStart(7)} ${'wRSS MiB'.padStart(8)} ${'tCPU'.padStart(7)} ${'ev/r·h'.padStart(9)}`;
  console.log('\ncheck lag: decision recorded − due (timer started + duration), ms; spacing: between decisions, ms; CPU: cores (CPU s / wall s)');
  console.log(header);
  for (const r of results) console.log(row(r));
  const profile = args.profile ? summarizeProfiles() : undefined;
  if (profile) {
    for (const p of profile) {
      console.log(`\nprofile ${p.file} (${p.samples} samples), top self time:`);
      for (const t of p.top.slice(0, 15)) console.log(`  ${t.selfPct.toFixed(1).padStart(5)}%  ${t.fn}`);
    }
    writeFileSync(path.join(PROF_DIR, 'summary.json'), JSON.stringify(profile, null, 2) + '\n');
  }
  const out = {
    at: new Date().toISOString(),
    ...(args.label ? { label: args.label } : {}),
    seconds: Math.round((Date.now() - started) / 1000),
    environment: { node: process.version, cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, loadAverageAtStart, temporal: readFileSync(path.join(ROOT, '.temporal-bin/temporal.version'), 'utf8').trim() },
    settings: {
      windowSeconds: WINDOW_S,
      warmupSeconds: WARMUP_S,
      trafficReqPerSec: RATE,
      checkIntervalMs: INTERVAL_MS,
      spec: `v1 → v2, steps [50% bake 30m, 100%], analysis {interval ${INTERVAL_MS / 1000}s, minRequests 5, inconclusiveLimit 100000}, sequential judge`,
      nice: NICE,
      workerEnv: WORKER_ENV,
      temporalStore: args.db === 'memory' ? 'in-memory SQLite' : 'SQLite file in a temp dir',
      temporalDynamicConfig: args['temporal-config'] || undefined,
      sqlitePragmas: args['sqlite-pragma'] || undefined,
      profiled: args.profile,
      checkLag: 'decision recorded (WorkflowTaskCompleted after the collectMetrics ActivityTaskCompleted) − due (TimerStarted time + its duration); checkStages: the parts of the lag (timer fired − due, each workflow task: schedule→start (queued) and start→completion (ran), likewise the activity); checks due in the window, reserved (paused/resumed) rollouts left out',
      status: `GET /v1/rollouts/:id of a random rollout, ${STATUS_CLIENTS} clients, 200 ms between answer and next request`,
      list: 'GET /v1/rollouts?limit=100 every 2 s',
      actions: 'POST pause then resume on one of 8 reserved rollouts every 3 s',
    },
    results,
    ...(profile ? { profile: profile.map((p) => ({ ...p, top: p.top.slice(0, 15) })) } : {}),
  };
  mkdirSync(path.dirname(args.out!), { recursive: true });
  writeFileSync(args.out!, JSON.stringify(out, null, 2) + '\n');
  console.log(`\nwrote ${path.relative(ROOT, args.out!)}`);
}

main()
  .then(() => {
    cleanupSync();
    process.exit(0);
  })
  .catch((err) => {
    console.error(err);
    cleanupSync();
    process.exit(1);
  });
