/**
 * The fault suite's tools (test/faults): a Temporal dev server as a process of its own on a
 * SQLite file (to kill -9 and start again on the same file), a TCP proxy that can hold back the
 * server's answers (an API that sent a start but never heard back), and the checks every fault
 * test ends with: the splits the router received, each once, and the history holding every
 * decision.
 */
import type { WorkflowHandle } from '@temporalio/client';
import { Connection } from '@temporalio/client';
import pino from 'pino';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startModelServer, type ModelServer } from '../../src/demo/model-server';
import { startTraffic, type TrafficRun } from '../../src/demo/traffic';
import { startGateway, type Gateway } from '../../src/gateway/server';
import { DEV_SERVER_TUNING_ARGS } from '../../scripts/stack';
import { requireTemporalBinary } from '../../src/temporal-bin';
import { SEARCH_ATTRIBUTE_REGISTRATIONS } from '../../src/workflows/search-attributes';
import type { Decision, RolloutStatus } from '../../src/workflows/status';
import { putRoute, recordingProxy, splitOf, type RecordingProxy } from './e2e';
import { eventually, freePorts } from './http';
import { uniqueTarget } from './specs';

export interface DataPlane {
  gateway: Gateway;
  /** The baseline and a healthy candidate (30 ms answers). */
  v1: ModelServer;
  v2: ModelServer;
  /** In front of the gateway: the control plane's router and metric source go through it. */
  proxy: RecordingProxy;
  dataDir: string;
  /** A new target on the baseline alone, with live traffic (40 req/s, 1,000 users) until stop(). */
  target(name: string): Promise<{ target: string; traffic: TrafficRun }>;
  stop(): Promise<void>;
}

/** The real gateway (routes in a temp dir), two demo model servers, a recording proxy; stop() ends the traffic too. */
export async function startDataPlane(name: string): Promise<DataPlane> {
  const dataDir = mkdtempSync(join(tmpdir(), `model-canary-${name}-`));
  const [gateway, v1, v2] = await Promise.all([
    startGateway({ port: 0, dataDir, logger: pino({ level: 'silent' }) }),
    startModelServer({ version: 'v1', latencyMs: 30, latencySpread: 0.1 }),
    startModelServer({ version: 'v2', latencyMs: 30, latencySpread: 0.1 }),
  ]);
  const proxy = await recordingProxy(gateway.url);
  const runs: TrafficRun[] = [];
  return {
    gateway,
    v1,
    v2,
    proxy,
    dataDir,
    async target(prefix) {
      const target = uniqueTarget(prefix);
      await putRoute(gateway.url, target, [{ name: 'v1', url: v1.url, weight: 100 }]);
      const traffic = startTraffic({ gatewayUrl: gateway.url, target, rate: 40, durationMs: Number.POSITIVE_INFINITY, users: 1000 });
      runs.push(traffic);
      return { target, traffic };
    },
    async stop() {
      await Promise.all(runs.map(async (r) => {
        r.stop();
        await r.done;
      }));
      await proxy.close();
      await gateway.close(1_000);
      await Promise.all([v1.close(), v2.close()]);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface DevServerProcess {
  address: string;
  port: number;
  dbFile: string;
  alive(): boolean;
  output(): string;
  /** SIGKILL: no shutdown at all, as a crashed host. */
  kill9(): Promise<void>;
  /** Starts it again on the same port and SQLite file; resolves once it answers. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** `temporal server start-dev` on 127.0.0.1, a free port and `dbFile`, headless, with our search attributes. */
export async function startDevServerProcess(dbFile: string): Promise<DevServerProcess> {
  const [port] = await freePorts(1);
  const address = `127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let running = false;
  const logs: string[] = [];
  const args = [
    'server', 'start-dev',
    '--db-filename', dbFile,
    '--ip', '127.0.0.1',
    '--port', String(port),
    '--headless',
    '--log-level', 'error',
    // As `npm run serve` runs it (WAL, no fsync per transaction): the kill -9 below tests that too.
    ...DEV_SERVER_TUNING_ARGS,
    ...Object.entries(SEARCH_ATTRIBUTE_REGISTRATIONS).flatMap(([name, type]) => ['--search-attribute', `${name}=${type}`]),
  ];
  const server: DevServerProcess = {
    address,
    port: port!,
    dbFile,
    alive: () => running,
    output: () => logs.join('').slice(-4000),
    async kill9() {
      child?.kill('SIGKILL');
      await exited;
    },
    async start() {
      child = spawn(requireTemporalBinary('temporal'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
      running = true;
      child.stdout!.on('data', (c: Buffer) => logs.push(c.toString()));
      child.stderr!.on('data', (c: Buffer) => logs.push(c.toString()));
      exited = new Promise((resolve) => child!.once('exit', () => {
        running = false;
        resolve();
      }));
      await eventually(async () => {
        if (!running) throw new Error(`the dev server exited:\n${server.output()}`);
        const connection = await Connection.connect({ address, connectTimeout: 1_000 }).catch(() => undefined);
        if (!connection) return undefined;
        try {
          await connection.workflowService.getSystemInfo({});
          return true;
        } catch {
          return undefined;
        } finally {
          await connection.close();
        }
      }, 60_000, `the dev server on ${address}`);
    },
    async stop() {
      if (!running) return;
      child?.kill('SIGTERM');
      const timer = setTimeout(() => child?.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
  await server.start();
  return server;
}

export interface HoldingTcpProxy {
  address: string;
  /** From now on, what the server sends back is held (not lost) until `release()`. */
  hold(): void;
  /**
   * Holds the server's answers from the moment a request carrying `marker` (e.g. a task queue's
   * name, which a StartWorkflowExecution request holds in plain bytes) has been sent on to it.
   */
  holdAfter(marker: string): void;
  release(): void;
  close(): Promise<void>;
}

/**
 * A TCP proxy to `upstream` (host:port) whose server-to-client direction can be held back: the
 * requests reach the server, their answers wait. In front of Temporal's gRPC port, a start is
 * made by the server while the client that sent it has not heard of it yet.
 */
export async function holdingTcpProxy(upstream: string): Promise<HoldingTcpProxy> {
  const [host, portText] = upstream.split(':');
  let holding = false;
  let marker: Buffer | undefined;
  const held: Array<() => void> = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const remote = connect(Number(portText), host!);
    sockets.add(client).add(remote);
    let tail = Buffer.alloc(0);
    client.on('data', (chunk: Buffer) => {
      remote.write(chunk);
      if (!marker) return;
      // The marker may straddle two chunks: look in the end of the last one too.
      const seen = Buffer.concat([tail, chunk]);
      if (seen.includes(marker)) {
        holding = true;
        marker = undefined;
      }
      tail = seen.subarray(Math.max(0, seen.length - 256));
    });
    remote.on('data', (chunk: Buffer) => {
      const send = () => client.write(chunk);
      if (holding || held.length > 0) held.push(send);
      else send();
    });
    const end = () => {
      client.destroy();
      remote.destroy();
      sockets.delete(client);
      sockets.delete(remote);
    };
    client.on('error', end).on('close', end);
    remote.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    address: `127.0.0.1:${port}`,
    hold: () => {
      holding = true;
    },
    holdAfter: (text) => {
      marker = Buffer.from(text);
    },
    release: () => {
      holding = false;
      for (const send of held.splice(0)) send();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** The splits (`v1=75 v2=25`) that reached the router for `target`, in order. */
export function splitsReceived(proxy: RecordingProxy, target: string): string[] {
  return proxy.requests.filter((r) => r.method === 'PUT' && r.url === `/admin/routes/${target}`).map((r) => splitOf(r.body));
}

/**
 * No step's weights were applied twice: the router received exactly `expected`, in order
 * (each step's split once, then the restore or the promotion).
 */
export function expectSplits(proxy: RecordingProxy, target: string, expected: string[]): void {
  expect(splitsReceived(proxy, target)).toEqual(expected);
}

/**
 * The history holds every decision: the run's result (its completion event) lists checks 1..n
 * with nothing missing, among them every check the API showed while the rollout ran, unchanged;
 * and every check read the metric source once (one collectMetrics scheduled per check, plus the
 * reading when the candidate was attached).
 */
export async function expectHistoryHoldsDecisions(handle: WorkflowHandle, seen: Decision[][]): Promise<RolloutStatus> {
  const events = (await handle.fetchHistory()).events ?? [];
  const result = (await handle.result()) as RolloutStatus;
  const decisions = result.decisions;
  expect(result.decisionPage.total).toBe(decisions.length);
  expect(decisions.map((d) => d.seq)).toEqual(decisions.map((_, i) => i + 1));
  const bySeq = new Map(decisions.map((d) => [d.seq, d]));
  for (const d of seen.flat()) expect(bySeq.get(d.seq)).toEqual(d);
  const reads = events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'collectMetrics').length;
  expect(reads).toBe(decisions.length + 1);
  return result;
}
