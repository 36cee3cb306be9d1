/**
 * A real Temporal cluster for tests, as production runs one: PostgreSQL for persistence and
 * (advanced, SQL) visibility, and the four services — frontend, history, matching, worker — as
 * separate `temporal-server` processes on 127.0.0.1, each with gRPC and membership ports of its
 * own (free ones below 32768, found at start). Binaries from scripts/install-temporal-cluster.sh
 * (.temporal-bin/cluster/), PostgreSQL from Debian (scripts/install-debian.sh).
 *
 *   const cluster = await startTemporalCluster();
 *   const env = await TestWorkflowEnvironment.createFromExistingServer({ address: cluster.address, namespace: cluster.namespace });
 *   ... await cluster.restart('matching') ...
 *   await env.teardown(); await cluster.stop();
 *
 * Everything lives in one temp folder (PostgreSQL's data dir and unix socket, the server config,
 * each process's log), removed by stop(). PostgreSQL refuses to run as root: as root, initdb and
 * the server run as the `postgres` user (runuser), which owns the temp folder.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, chownSync, writeFileSync } from 'node:fs';
import { createServer, connect, type AddressInfo, type Server } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { temporal } from '@temporalio/proto';
import { PROJECT_ROOT, TEMPORAL_BIN_DIR } from '../../src/temporal-bin';
import { SEARCH_ATTRIBUTE_REGISTRATIONS } from '../../src/workflows/search-attributes';
import { freePorts } from './http';

export const TEMPORAL_SERVICES = ['history', 'matching', 'frontend', 'worker'] as const;
export type TemporalService = (typeof TEMPORAL_SERVICES)[number];

export interface TemporalCluster {
  /** The frontend's gRPC address, host:port. */
  address: string;
  namespace: string;
  /** Each service's ports (gRPC, membership; the frontend's HTTP API too), and PostgreSQL's. */
  ports: Record<TemporalService, { grpc: number; membership: number; http?: number }> & { postgres: number };
  /** The temp folder holding everything (removed by stop()). */
  dir: string;
  /** The last `lines` lines of a process's log (a service, or 'postgres'). */
  logTail(name: TemporalService | 'postgres', lines?: number): string;
  /** Whether a service's process is running. */
  alive(service: TemporalService): boolean;
  /** SIGTERM (SIGKILL when `kill`) the service's process, start it again on the same ports, wait until it serves. */
  restart(service: TemporalService, options?: { kill?: boolean }): Promise<void>;
  /** Stops every process and removes the temp folder; safe to call twice. */
  stop(): Promise<void>;
}

export interface TemporalClusterOptions {
  namespace?: string;
  /** Bound on the whole start (PostgreSQL, schemas, four services, namespace), in ms. */
  startTimeoutMs?: number;
}

const CLUSTER_BIN_DIR = process.env.TEMPORAL_CLUSTER_BIN_DIR ?? join(TEMPORAL_BIN_DIR, 'cluster');
const INSTALL_HINT = 'run `bash scripts/install-temporal-cluster.sh` (and scripts/install-debian.sh for PostgreSQL)';

/**
 * The cluster's binaries and PostgreSQL, installed by the project's scripts when missing (never
 * skipped): Debian's postgresql, then temporal-server built from Go modules (minutes when cold).
 */
export function ensureTemporalClusterInstalled(): void {
  const installed = ['temporal-server', 'temporal-sql-tool', 'schema.dir'].every((f) => existsSync(join(CLUSTER_BIN_DIR, f))) && existsSync('/usr/lib/postgresql');
  if (installed) return;
  for (const script of ['scripts/install-debian.sh', 'scripts/install-temporal-cluster.sh']) {
    const result = spawnSync('bash', [join(PROJECT_ROOT, script)], { stdio: 'inherit' });
    if (result.status !== 0) throw new Error(`${script} failed (exit ${result.status ?? result.signal})`);
  }
}

function clusterBinary(name: 'temporal-server' | 'temporal-sql-tool'): string {
  const path = join(CLUSTER_BIN_DIR, name);
  if (!existsSync(path)) throw new Error(`${path} not found: ${INSTALL_HINT}`);
  return path;
}

function schemaDir(): string {
  const stamp = join(CLUSTER_BIN_DIR, 'schema.dir');
  const dir = existsSync(stamp) ? readFileSync(stamp, 'utf8').trim() : '';
  if (!dir || !existsSync(join(dir, 'postgresql/v12/temporal/versioned'))) throw new Error(`no Temporal SQL schema recorded in ${stamp}: ${INSTALL_HINT}`);
  return join(dir, 'postgresql/v12');
}

/** Debian's PostgreSQL server binaries (/usr/lib/postgresql/<major>/bin), the newest major. */
function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  const majors = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin/pg_ctl'))).sort((a, b) => Number(b) - Number(a)) : [];
  if (majors.length === 0) throw new Error(`PostgreSQL's pg_ctl not found under ${root}: run scripts/install-debian.sh (Debian postgresql)`);
  return join(root, majors[0]!, 'bin');
}

function tail(file: string, lines = 40): string {
  try {
    // Server lines are JSON with whole stack traces: each cut to its first 600 characters.
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).map((l) => (l.length > 600 ? `${l.slice(0, 600)}…` : l)).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Runs a command to its end; throws with its output when it fails or outlasts `timeoutMs`. */
function run(what: string, cmd: string, args: string[], options: { cwd?: string; timeoutMs?: number } = {}): string {
  const res = spawnSync(cmd, args, { cwd: options.cwd, encoding: 'utf8', timeout: options.timeoutMs ?? 60_000 });
  const output = `${res.stdout ?? ''}${res.stderr ?? ''}`.trim();
  if (res.error || res.status !== 0) {
    const why = res.error ? String(res.error) : `exit ${res.status}${res.signal ? ` (${res.signal})` : ''}`;
    throw new Error(`${what} failed: ${why}\n$ ${cmd} ${args.join(' ')}\n${output.split('\n').slice(-30).join('\n')}`);
  }
  return output;
}

/** Thrown by a check to stop waiting at once (a process died). */
class Fatal extends Error {}

async function waitUntil<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined>, diagnostics: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      if (err instanceof Fatal) throw new Error(`Temporal cluster: while waiting for ${what}: ${err.message}\n${diagnostics()}`);
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`Temporal cluster: timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}\n${diagnostics()}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

function serverConfig(o: { pgPort: number; ports: TemporalCluster['ports']; dynamicConfig: string }): string {
  const store = (db: string, maxConns: number) => `
      sql:
        pluginName: postgres12
        databaseName: ${db}
        connectAddr: "127.0.0.1:${o.pgPort}"
        connectProtocol: tcp
        user: temporal
        password: temporal
        maxConns: ${maxConns}
        maxIdleConns: ${maxConns}
        maxConnLifetime: 1h`;
  const service = (name: TemporalService) => {
    const p = o.ports[name];
    return `
  ${name}:
    rpc:
      grpcPort: ${p.grpc}
      membershipPort: ${p.membership}
      bindOnIP: 127.0.0.1${p.http ? `\n      httpPort: ${p.http}` : ''}`;
  };
  return `# model-canary test cluster (test/helpers/temporal-cluster.ts)
log:
  stdout: true
  level: warn

persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: 4
  datastores:
    default:${store('temporal', 10)}
    visibility:${store('temporal_visibility', 4)}

global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1

services:${TEMPORAL_SERVICES.map(service).join('')}

clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: "127.0.0.1:${o.ports.frontend.grpc}"
      httpAddress: "127.0.0.1:${o.ports.frontend.http}"

dcRedirectionPolicy:
  policy: noop

publicClient:
  hostPort: "127.0.0.1:${o.ports.frontend.grpc}"

dynamicConfigClient:
  filepath: "${o.dynamicConfig}"
  pollInterval: 10s
`;
}

const DYNAMIC_CONFIG = `# model-canary test cluster: search attributes seen at once after registration
system.forceSearchAttributesCacheRefreshOnRead:
  - value: true
    constraints: {}
limit.maxIDLength:
  - value: 255
    constraints: {}
frontend.enableUpdateWorkflowExecution:
  - value: true
    constraints: {}
frontend.enableUpdateWorkflowExecutionAsyncAccepted:
  - value: true
    constraints: {}
`;

/** `n` ports from 20000–32767 that are free on 127.0.0.1 now (held open together while found). */
async function lowFreePorts(n: number): Promise<number[]> {
  const held: Server[] = [];
  const bind = (port: number) => new Promise<Server | undefined>((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(undefined));
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
  try {
    for (let tries = 0; held.length < n && tries < 500; tries++) {
      const s = await bind(20_000 + Math.floor(Math.random() * 12_700));
      if (s) held.push(s);
    }
    if (held.length < n) throw new Error(`found only ${held.length} free ports below 32768 on 127.0.0.1`);
    return held.map((s) => (s.address() as AddressInfo).port);
  } finally {
    await Promise.all(held.map((s) => new Promise((r) => s.close(r))));
  }
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

/**
 * Calls that go through every service: the frontend itself, matching (a task queue's pollers),
 * history (a workflow that does not exist: history's NotFound is an answer), visibility.
 */
async function serving(conn: Connection, namespace: string): Promise<void> {
  await conn.workflowService.getSystemInfo({});
  await conn.workflowService.describeTaskQueue({ namespace, taskQueue: { name: 'model-canary-cluster-probe' } });
  await conn.workflowService.listWorkflowExecutions({ namespace, pageSize: 1 });
  try {
    await conn.workflowService.describeWorkflowExecution({ namespace, execution: { workflowId: 'model-canary-cluster-probe' } });
  } catch (err) {
    if ((err as { code?: number }).code !== 5 /* NOT_FOUND */) throw err;
  }
}

/** Starts PostgreSQL and a four-service Temporal cluster on it; see the file's comment. */
export async function startTemporalCluster(options: TemporalClusterOptions = {}): Promise<TemporalCluster> {
  ensureTemporalClusterInstalled();
  const namespace = options.namespace ?? 'default';
  const startDeadline = Date.now() + (options.startTimeoutMs ?? 150_000);
  const remaining = () => Math.max(1_000, startDeadline - Date.now());
  const server = clusterBinary('temporal-server');
  const sqlTool = clusterBinary('temporal-sql-tool');
  const schema = schemaDir();
  const pgBin = postgresBinDir();

  const dir = mkdtempSync(join(tmpdir(), 'model-canary-temporal-cluster-'));
  const pgData = join(dir, 'pg');
  const pgLog = join(dir, 'postgres.log');
  const logOf = (name: TemporalService | 'postgres') => (name === 'postgres' ? pgLog : join(dir, `${name}.log`));
  const children = new Map<TemporalService, { child: ChildProcess; exited: boolean; exit: Promise<void> }>();
  let pgStarted = false;
  let stopped: Promise<void> | undefined;

  // As root, PostgreSQL runs as `postgres` (initdb: "cannot be run as root"), owning the folder.
  const asRoot = userInfo().uid === 0;
  const asPostgres = (cmd: string, args: string[]): [string, string[]] => (asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]);
  if (asRoot) {
    const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    if (id.status !== 0) throw new Error('running as root, and there is no `postgres` user to run PostgreSQL as: run scripts/install-debian.sh');
    chownSync(dir, Number(id.stdout.trim()), Number(gid.stdout.trim()));
  }

  // The services' ports below 32768: the schema stores a member's port as SMALLINT
  // (cluster_membership.rpc_port), and an ephemeral port (32768 and up) fails every service's
  // membership heartbeat ("value \"34461\" is out of range for type smallint").
  const [pgPort] = await freePorts(1);
  const p = await lowFreePorts(9);
  const ports = {
    postgres: pgPort!,
    frontend: { grpc: p[0]!, membership: p[1]!, http: p[2]! },
    history: { grpc: p[3]!, membership: p[4]! },
    matching: { grpc: p[5]!, membership: p[6]! },
    worker: { grpc: p[7]!, membership: p[8]! },
  };
  const address = `127.0.0.1:${ports.frontend.grpc}`;

  const diagnostics = () =>
    (['postgres', ...TEMPORAL_SERVICES] as const)
      .map((name) => {
        const c = name === 'postgres' ? undefined : children.get(name);
        const state = name === 'postgres' ? '' : c ? (c.exited ? ` (exited: ${c.child.exitCode ?? c.child.signalCode})` : ' (running)') : ' (not started)';
        return `--- ${name}${state}: last lines of ${logOf(name)} ---\n${tail(logOf(name), 25)}`;
      })
      .join('\n');

  const startService = (service: TemporalService) => {
    const fd = openSync(logOf(service), 'a');
    const child = spawn(server, ['--root', dir, '--config', 'config', '--env', 'development', '--allow-no-auth', 'start', '--service', service], {
      cwd: dir,
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    const entry = { child, exited: false, exit: Promise.resolve() };
    entry.exit = new Promise<void>((resolve) => child.once('exit', () => { entry.exited = true; resolve(); }));
    child.once('error', () => { entry.exited = true; });
    children.set(service, entry);
  };

  const stopService = async (service: TemporalService, signal: NodeJS.Signals, graceMs: number) => {
    const c = children.get(service);
    if (!c || c.exited) return;
    c.child.kill(signal);
    const timer = setTimeout(() => c.child.kill('SIGKILL'), graceMs);
    await c.exit;
    clearTimeout(timer);
  };

  const stop = () => {
    stopped ??= (async () => {
      await Promise.all(TEMPORAL_SERVICES.map((s) => stopService(s, 'SIGTERM', 5_000)));
      if (pgStarted) {
        const [cmd, args] = asPostgres(join(pgBin, 'pg_ctl'), ['-D', pgData, '-m', 'immediate', '-w', '-t', '20', 'stop']);
        spawnSync(cmd, args, { cwd: dir, timeout: 30_000 });
      }
      rmSync(dir, { recursive: true, force: true });
    })();
    return stopped;
  };

  let connection: Connection | undefined;
  try {
    // PostgreSQL: a throwaway cluster, trust auth (loopback and the socket in the temp folder
    // only), superuser `temporal`; durability off, as nothing outlives the test.
    const [initCmd, initArgs] = asPostgres(join(pgBin, 'initdb'), ['-D', pgData, '-U', 'temporal', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync']);
    run('initdb', initCmd, initArgs, { cwd: dir, timeoutMs: remaining() });
    const pgOptions = `-p ${ports.postgres} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`;
    const [ctlCmd, ctlArgs] = asPostgres(join(pgBin, 'pg_ctl'), ['-D', pgData, '-l', pgLog, '-o', pgOptions, '-w', '-t', '60', 'start']);
    pgStarted = true;
    run('PostgreSQL start (pg_ctl)', ctlCmd, ctlArgs, { cwd: dir, timeoutMs: Math.min(remaining(), 70_000) });

    // Databases and schemas: the main store, and visibility (advanced visibility on PostgreSQL:
    // custom search attributes map onto its typed columns).
    const base = ['--plugin', 'postgres12', '--ep', '127.0.0.1', '--port', String(ports.postgres), '--user', 'temporal', '--password', 'temporal'];
    for (const [db, folder] of [['temporal', 'temporal'], ['temporal_visibility', 'visibility']] as const) {
      const opts = { cwd: dir, timeoutMs: remaining() };
      run(`create database ${db}`, sqlTool, [...base, '--db', db, 'create-database'], opts);
      run(`setup-schema ${db}`, sqlTool, [...base, '--db', db, 'setup-schema', '-v', '0.0'], opts);
      run(`update-schema ${db}`, sqlTool, [...base, '--db', db, 'update-schema', '-d', join(schema, folder, 'versioned')], opts);
    }

    mkdirSync(join(dir, 'config'));
    const dynamicConfig = join(dir, 'dynamicconfig.yaml');
    writeFileSync(dynamicConfig, DYNAMIC_CONFIG);
    writeFileSync(join(dir, 'config', 'development.yaml'), serverConfig({ pgPort: ports.postgres, ports, dynamicConfig }));

    const anyExited = () => {
      const dead = TEMPORAL_SERVICES.filter((s) => children.get(s)?.exited);
      if (dead.length > 0) throw new Fatal(`${dead.join(', ')} exited`);
    };
    // History first, alone: each process writes the cluster metadata record at start, and
    // processes starting together race on it ("Failed to apply cluster metadata": one exits).
    startService('history');
    await waitUntil('history to listen', remaining(), async () => {
      anyExited();
      return (await listening(ports.history.grpc)) || undefined;
    }, diagnostics);
    for (const service of TEMPORAL_SERVICES) if (service !== 'history') startService(service);

    connection = await waitUntil('the frontend to answer', remaining(), async () => {
      anyExited();
      const c = await Connection.connect({ address, connectTimeout: 2_000 });
      try {
        await c.workflowService.getSystemInfo({});
        return c;
      } catch (err) {
        await c.close();
        throw err;
      }
    }, diagnostics);
    const conn = connection;

    await waitUntil(`the namespace ${namespace} to be registered`, remaining(), async () => {
      anyExited();
      try {
        await conn.workflowService.describeNamespace({ namespace });
        return true;
      } catch {
        try {
          await conn.workflowService.registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs('1 day') });
        } catch (err) {
          if (!/already (exists|registered)/i.test(String(err))) throw err;
        }
        return undefined;
      }
    }, diagnostics);

    const { INDEXED_VALUE_TYPE_KEYWORD: keyword, INDEXED_VALUE_TYPE_INT: int } = temporal.api.enums.v1.IndexedValueType;
    const types: Record<string, temporal.api.enums.v1.IndexedValueType> = { Keyword: keyword, Int: int };
    const wanted = Object.fromEntries(Object.entries(SEARCH_ATTRIBUTE_REGISTRATIONS).map(([name, type]) => {
      const t = types[type];
      if (t === undefined) throw new Error(`search attribute ${name}: type ${type} not mapped in temporal-cluster.ts`);
      return [name, t];
    }));
    await waitUntil('the rollout search attributes to be registered', remaining(), async () => {
      anyExited();
      const listed = await conn.operatorService.listSearchAttributes({ namespace });
      const missing = Object.keys(wanted).filter((n) => !(n in (listed.customAttributes ?? {})));
      if (missing.length === 0) return true;
      await conn.operatorService.addSearchAttributes({
        namespace,
        searchAttributes: Object.fromEntries(missing.map((n) => [n, wanted[n]!])),
      });
      return undefined;
    }, diagnostics);

    // Matching and history serve the namespace too (a task queue answers through them).
    await waitUntil('history and matching to serve the namespace', remaining(), async () => {
      anyExited();
      await serving(conn, namespace);
      return true;
    }, diagnostics);
  } catch (err) {
    await connection?.close().catch(() => undefined);
    const message = err instanceof Error ? err.message : String(err);
    const full = message.includes('--- postgres') ? message : `${message}\n${diagnostics()}`;
    await stop();
    throw new Error(`could not start the Temporal cluster: ${full}`);
  }
  await connection.close().catch(() => undefined);

  return {
    address,
    namespace,
    ports,
    dir,
    logTail: (name, lines = 40) => tail(logOf(name), lines),
    alive: (service) => children.get(service)?.exited === false,
    async restart(service, restartOptions = {}) {
      await stopService(service, restartOptions.kill ? 'SIGKILL' : 'SIGTERM', 10_000);
      startService(service);
      const c = children.get(service)!;
      // Serving again: the frontend answers, and a call that needs this service goes through.
      await waitUntil(`${service} to serve again after its restart`, 90_000, async () => {
        if (c.exited) throw new Fatal(`${service} exited`);
        const conn = await Connection.connect({ address, connectTimeout: 2_000 });
        try {
          await serving(conn, namespace);
          return true;
        } finally {
          await conn.close().catch(() => undefined);
        }
      }, diagnostics);
    },
    stop,
  };
}
