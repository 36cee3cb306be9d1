/**
 * Gateway overhead benchmark: `npm run bench:gateway`.
 *
 * One fast upstream (bench/gateway/upstream.ts), this gateway, NGINX (1 worker, keep-alive
 * upstream pool) and Portkey's AI gateway (npm `@portkey-ai/gateway`, its Node server,
 * `x-portkey-provider: openai` + `x-portkey-custom-host` pointing at the upstream), each in its
 * own process, all loaded by the same tool (bench/gateway/loadgen.ts, own process, µs
 * resolution): (a) direct to the upstream, (b) through the gateway, (c) through NGINX, (d)
 * through Portkey — with small chat requests (POST, a JSON body), at a fixed, smooth 2,000 req/s
 * (open loop) and at saturation (closed loop). The paths are run in turn, BENCH_REPEAT times
 * (default 2) to show the variance; the summary takes the median of the repeats. NGINX and
 * Portkey are optional: without them, (c) / (d) are skipped with a message saying why.
 *
 * Streaming case: the upstream streams SSE for a request with `"stream": true` (first content
 * chunk after 20 ms, then 19 more every 5 ms: bench/gateway/upstream.ts), and the load generator
 * records the client-seen time to the first content chunk (TTFT) and to the stream's end, at
 * BENCH_STREAM_RATE streams/s (default 40, open loop), for each path — NGINX here with
 * `proxy_buffering off` — in BENCH_STREAM_ROUNDS rounds (default 3, the order rotated each
 * round, so that the machine's noise is spread over the paths) of BENCH_STREAM_DURATION_S
 * (default 3 s) each; p50/p99 are over every round's streams pooled, and the added TTFT is
 * against direct's in the same run. BENCH_STREAM_ROUNDS=0 skips it.
 *
 * Prints tables and writes bench/results/gateway.json.
 *
 * CPU placement: every process shares the machine's cores, so by default (BENCH_PIN=1, with
 * taskset and >= 2 CPUs) the proxy under test (gateway or NGINX) gets CPU 1 to itself and the
 * load generator and upstream share CPU 0 — the same arrangement for both proxies, and for the
 * direct path (whose CPU 1 is then idle). Per-process CPU use is reported so that it is visible
 * which process limits a saturation run. BENCH_PIN=0 leaves placement to the scheduler.
 *
 * Shared machine: before each measured run the bench waits (up to BENCH_QUIET_WAIT_S, default 15) for the
 * rest of the machine to be quiet, runs its processes at nice BENCH_NICE (default -5 as root),
 * and reports per run how much CPU everything else used meanwhile ("other cores").
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { freePort } from '../free-port';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const ROOT = path.resolve(__dirname, '../..');
const RESULTS = path.join(ROOT, 'bench/results/gateway.json');
const RATE = Number(process.env.BENCH_RATE ?? 2000);
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 6);
const REPEAT = Number(process.env.BENCH_REPEAT ?? 2);
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',')) : undefined;
/** Optional: another gateway build (e.g. a checkout of an older commit) to measure alongside, as "baseline". */
const BASELINE_GATEWAY = process.env.BENCH_BASELINE_GATEWAY;
const GATEWAY_NODE_ARGS = process.env.BENCH_GATEWAY_NODE_ARGS ? process.env.BENCH_GATEWAY_NODE_ARGS.split(' ') : [];
const WARMUP_S = 3;
const RATE_CONNECTIONS = 64;
const SATURATION_CONNECTIONS = 64;
const NGINX_WORKERS = 1;
const STREAM_RATE = Number(process.env.BENCH_STREAM_RATE ?? 40);
const STREAM_DURATION_S = Number(process.env.BENCH_STREAM_DURATION_S ?? 3);
const STREAM_ROUNDS = Number(process.env.BENCH_STREAM_ROUNDS ?? 3);
const STREAM_CONNECTIONS = 32;
/** The plain requests' body, and the streamed ones' (the upstream streams on `"stream":true`). */
const PLAIN_BODY = JSON.stringify({ model: 'bench', messages: [{ role: 'user', content: 'hi' }] });
const STREAM_BODY = JSON.stringify({ model: 'bench', messages: [{ role: 'user', content: 'hi' }], stream: true });
const PORTKEY_DIR = path.join(ROOT, 'node_modules/@portkey-ai/gateway');
/** Makes a server that listens on every interface (Portkey's has no host option) listen on 127.0.0.1. */
const LOOPBACK_PRELOAD = pathToFileURL(path.join(__dirname, 'loopback-only.mjs')).href;
const CLK_TCK = 100;
/** Longest wait for a quiet machine before a measured run (the streaming rounds wait at most 5 s: they interleave instead). */
const QUIET_WAIT_S = Number(process.env.BENCH_QUIET_WAIT_S ?? 15);
const QUIET_CORES = Number(process.env.BENCH_QUIET_CORES ?? 0.3);
/**
 * Scheduling priority (nice) of the bench's processes while they are measured: on a shared
 * machine, other people's builds and tests otherwise decide the tail latency. Default -5 when
 * running as root (others then still get ~25% of a contended core), 0 otherwise; BENCH_NICE=0 turns it off.
 */
const NICE = Number(process.env.BENCH_NICE ?? (process.getuid?.() === 0 ? -5 : 0));
const CAN_PIN = process.env.BENCH_PIN !== '0' && os.cpus().length >= 2 && spawnSync('sh', ['-c', 'command -v taskset']).status === 0;
const PLACEMENT: Placement = CAN_PIN ? { loadgen: '0', upstream: '0', proxy: '1' } : {};

const children: ChildProcess[] = [];

function start(command: string, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return child;
}

function waitForLine(child: ChildProcess, match: (line: string) => boolean, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start in 30 s:\n${out}\n${err}`)), 30_000);
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const line = out.split('\n').find(match);
      if (line) {
        clearTimeout(timer);
        resolve(line);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}):\n${out}\n${err}`));
    });
  });
}


async function waitForHttp(url: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** CPU seconds (user+system) of a process and its direct children, from /proc. */
function cpuSeconds(pid: number | undefined): number | undefined {
  if (!pid || !existsSync(`/proc/${pid}/stat`)) return undefined;
  const one = (p: string) => {
    try {
      const fields = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
    } catch {
      return 0;
    }
  };
  let total = one(String(pid));
  try {
    for (const child of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) total += one(child);
  } catch {
    // no children file: the process alone
  }
  return total;
}

interface Percentiles {
  p50Us: number;
  p90Us: number;
  p99Us: number;
  p999Us: number;
  maxUs: number;
  meanUs: number;
}

interface LoadResult {
  reqPerSec: number;
  /** Dispatch to last byte, µs. */
  service: Percentiles;
  /** Open loop only: scheduled send time to last byte, µs (includes the generator's timer lateness). */
  scheduled?: Percentiles;
  maxSendLagUs?: number;
  errors: number;
  non2xx: number;
  /** CPU used during the run, in cores (CPU seconds / load seconds), per process; the load generator's includes its start-up. */
  cpuCores: { proxy?: number; upstream?: number; loadgen?: number };
  /**
   * CPU used by everything else on the machine during the run (all CPUs' busy time minus the
   * three bench processes), in cores: the shared machine's noise.
   */
  otherCpuCores?: number;
  /** Busy CPU of the machine over the second before the run (after waiting for it to be quiet). */
  otherCpuCoresBefore?: number;
  /** Proxy CPU time per request, µs. */
  proxyCpuUsPerRequest?: number;
  /** Streamed: dispatch to the first content chunk, µs. */
  ttft?: Percentiles;
  /** Streamed answers without any content chunk. */
  noContent?: number;
  /** With `raw`: every counted request's times, µs. */
  samples?: { totalUs: number[]; ttftUs?: number[] };
}

/** What the load generator sends (loadgen.ts settings). */
interface RequestShape {
  method?: string;
  body?: string;
  headers?: Record<string, string>;
  stream?: boolean;
  raw?: boolean;
}

/** The pinning: which CPUs each role may use (taskset -c), or undefined to leave it to the scheduler. */
interface Placement {
  loadgen?: string;
  upstream?: string;
  proxy?: string;
}

function pinned(cpus: string | undefined, command: string, args: string[]): [string, string[]] {
  return cpus === undefined ? [command, args] : ['taskset', ['-c', cpus, command, ...args]];
}

async function load(
  url: string,
  mode: 'rate' | 'saturation',
  durationS: number,
  connections: number,
  pids: { proxy?: number; upstream?: number },
  rate?: number,
  /** Wait for a quiet machine first (true: up to QUIET_WAIT_S; a number: up to that many seconds). */
  quiet: boolean | number = true,
  shape: RequestShape = {},
): Promise<LoadResult> {
  const otherCpuCoresBefore = quiet !== false ? await waitForQuiet(typeof quiet === 'number' ? quiet : QUIET_WAIT_S) : undefined;
  const proxyBefore = cpuSeconds(pids.proxy);
  const upstreamBefore = cpuSeconds(pids.upstream);
  const busyBefore = machineBusySeconds();
  const began = process.hrtime.bigint();
  const [command, args] = pinned(PLACEMENT.loadgen, process.execPath, ['--import', 'tsx', 'bench/gateway/loadgen.ts', JSON.stringify({ url, mode, rate, durationS, connections, ...shape })]);
  const child = start(command, args);
  prioritize([child.pid]);
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  let loadgenCpu: number | undefined;
  const sampler = setInterval(() => (loadgenCpu = cpuSeconds(child.pid) ?? loadgenCpu), 50);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearInterval(sampler);
  if (code !== 0) throw new Error(`loadgen exited ${code}: ${err}`);
  const wallS = Number(process.hrtime.bigint() - began) / 1e9;
  const proxyAfter = cpuSeconds(pids.proxy);
  const upstreamAfter = cpuSeconds(pids.upstream);
  const busyAfter = machineBusySeconds();
  const r = JSON.parse(out.trim().split('\n').pop()!) as Omit<LoadResult, 'cpuCores'> & { requests: number };
  const cores = (before?: number, after?: number) => (before !== undefined && after !== undefined ? round((after - before) / durationS) : undefined);
  const proxyCpu = proxyBefore !== undefined && proxyAfter !== undefined ? proxyAfter - proxyBefore : undefined;
  return {
    reqPerSec: r.reqPerSec,
    service: r.service,
    ...(r.scheduled ? { scheduled: r.scheduled, maxSendLagUs: r.maxSendLagUs } : {}),
    errors: r.errors,
    non2xx: r.non2xx,
    cpuCores: { proxy: cores(proxyBefore, proxyAfter), upstream: cores(upstreamBefore, upstreamAfter), loadgen: loadgenCpu !== undefined ? round(loadgenCpu / durationS) : undefined },
    otherCpuCoresBefore,
    otherCpuCores: round(
      Math.max(0, busyAfter - busyBefore - (proxyAfter ?? 0) + (proxyBefore ?? 0) - (upstreamAfter ?? 0) + (upstreamBefore ?? 0) - (loadgenCpu ?? 0)) / wallS,
    ),
    ...(proxyCpu !== undefined && r.requests > 0 ? { proxyCpuUsPerRequest: Math.round((proxyCpu * 1e6) / r.requests) } : {}),
    ...(r.ttft ? { ttft: r.ttft, noContent: r.noContent } : {}),
    ...(r.samples ? { samples: r.samples } : {}),
  };
}

/** The pid and its direct children (NGINX's workers). */
function withChildren(pid: number | undefined): number[] {
  if (!pid) return [];
  try {
    return [pid, ...readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)];
  } catch {
    return [pid];
  }
}

function prioritize(pids: Array<number | undefined>): void {
  if (NICE === 0) return;
  for (const pid of pids.flatMap(withChildren)) {
    try {
      os.setPriority(pid, NICE);
    } catch {
      // not permitted: measured at normal priority
    }
  }
}

/** Busy CPU seconds of the whole machine (all CPUs, everything but idle and iowait), from /proc/stat. */
function machineBusySeconds(): number {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
    return (user + nice + system + irq + softirq + steal) / CLK_TCK;
  } catch {
    return 0;
  }
}

/**
 * Waits (up to QUIET_WAIT_S) until the rest of the machine is quiet: busy CPU over a 1 s window
 * below QUIET_CORES (the bench's own idle processes use ~0). On a shared machine this keeps
 * other people's test runs out of most measurements; what remains is reported per run.
 */
async function waitForQuiet(maxWaitS = QUIET_WAIT_S): Promise<number> {
  const deadline = Date.now() + maxWaitS * 1000;
  for (;;) {
    const before = machineBusySeconds();
    await new Promise((r) => setTimeout(r, 1000));
    const busy = machineBusySeconds() - before;
    if (busy < QUIET_CORES || Date.now() > deadline) return round(busy);
  }
}

const round = (x: number) => Math.round(x * 100) / 100;

function nginxBinary(): string | undefined {
  for (const candidate of ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx', '/usr/local/bin/nginx']) if (existsSync(candidate)) return candidate;
  const which = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' });
  return which.status === 0 && which.stdout.trim() ? which.stdout.trim() : undefined;
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** The q-quantile of µs samples, in ms (3 decimals). */
function quantileMs(sorted: number[], q: number): number {
  if (!sorted.length) return NaN;
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!) / 1000;
}

/** Keeps reading a child's output (a full pipe would stall it) and remembers its last 4 kB. */
function drain(child: ChildProcess): () => string {
  let tail = '';
  const keep = (c: Buffer) => (tail = (tail + c.toString()).slice(-4096));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => tail.replace(/\x1b\[[0-9;]*m/g, '');
}

/**
 * Portkey's AI gateway (its Node build, `build/start-server.js --port=N --headless`, NODE_ENV
 * production: no console UI), on a free port of 127.0.0.1, checked with one chat request to the
 * upstream through it. Undefined and why when it is not installed or does not work.
 */
async function startPortkey(upstreamUrl: string): Promise<{ url: string; pid?: number; version: string; headers: Record<string, string> } | { skipped: string }> {
  const entry = path.join(PORTKEY_DIR, 'build/start-server.js');
  if (!existsSync(entry)) return { skipped: 'portkey: @portkey-ai/gateway is not installed (npm ci installs it, a devDependency)' };
  const version = (JSON.parse(readFileSync(path.join(PORTKEY_DIR, 'package.json'), 'utf8')) as { version: string }).version;
  const port = await freePort();
  const child = start(...pinned(PLACEMENT.proxy, process.execPath, ['--import', LOOPBACK_PRELOAD, entry, `--port=${port}`, '--headless']), { NODE_ENV: 'production' });
  const output = drain(child);
  const url = `http://127.0.0.1:${port}`;
  const headers = { 'x-portkey-provider': 'openai', 'x-portkey-custom-host': `${upstreamUrl}/v1`, authorization: 'Bearer bench' };
  try {
    await Promise.race([
      waitForHttp(`${url}/`),
      new Promise((_, reject) => child.once('exit', (code, signal) => reject(new Error(`exited (${signal ?? code})`)))),
    ]);
    const probe = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: PLAIN_BODY });
    const text = await probe.text();
    if (probe.status !== 200) throw new Error(`a chat request through it answered ${probe.status}: ${text.slice(0, 300)}`);
  } catch (err) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    return { skipped: `portkey ${version}: ${err instanceof Error ? err.message : String(err)}; its output: ${output().slice(-1000)}` };
  }
  prioritize([child.pid]);
  return { url, pid: child.pid, version, headers };
}

interface StreamSummary {
  streams: number;
  ttftP50Ms: number;
  ttftP99Ms: number;
  totalP50Ms: number;
  totalP99Ms: number;
  /** Streams that ended without any content chunk (their TTFT counted as their end). */
  noContent: number;
  errors: number;
  /** Each round's p50 TTFT, ms, in round order: the spread between rounds. */
  roundTtftP50Ms: number[];
}

async function main(): Promise<void> {
  const began = Date.now();
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'bench-gateway-'));
  const tsx = ['--import', 'tsx'];
  try {
    // (a) the upstream
    const upstream = start(...pinned(PLACEMENT.upstream, process.execPath, [...tsx, 'bench/gateway/upstream.ts']));
    const upstreamPort = (JSON.parse(await waitForLine(upstream, (l) => l.includes('upstream listening'), 'upstream')) as { port: number }).port;
    const upstreamUrl = `http://127.0.0.1:${upstreamPort}`;

    // (b) the gateway (and, optionally, a baseline build of it)
    const startGatewayProcess = async (main: string, name: string) => {
      const child = start(...pinned(PLACEMENT.proxy, process.execPath, [...GATEWAY_NODE_ARGS, ...tsx, main]), {
        GATEWAY_PORT: '0',
        DATA_DIR: path.join(tmp, `data-${name}`),
        LOG_LEVEL: 'info',
        GATEWAY_ADMIN_TOKEN: '',
      });
      const url = (JSON.parse(await waitForLine(child, (l) => l.includes('gateway listening'), name)) as { url: string }).url;
      const put = await fetch(`${url}/admin/routes/bench`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ versions: [{ name: 'v1', url: upstreamUrl, weight: 100 }] }),
      });
      if (put.status !== 200) throw new Error(`route PUT failed: ${put.status} ${await put.text()}`);
      prioritize([child.pid]);
      return { url, pid: child.pid };
    };
    const gateway = await startGatewayProcess('src/gateway/main.ts', 'gateway');
    prioritize([upstream.pid]);
    const baseline = BASELINE_GATEWAY ? await startGatewayProcess(BASELINE_GATEWAY, 'baseline') : undefined;

    // (c) NGINX, if installed
    const nginx = nginxBinary();
    let nginxUrl: string | undefined;
    let nginxVersion: string | undefined;
    let nginxProcess: ChildProcess | undefined;
    if (nginx) {
      nginxVersion = spawnSync(nginx, ['-v'], { encoding: 'utf8' }).stderr.trim().replace(/^nginx version: /, '');
      const port = await freePort();
      const prefix = path.join(tmp, 'nginx');
      await mkdir(path.join(prefix, 'logs'), { recursive: true });
      const conf = path.join(prefix, 'nginx.conf');
      await writeFile(
        conf,
        `worker_processes ${NGINX_WORKERS};
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  keepalive_requests 100000;
  upstream model { server 127.0.0.1:${upstreamPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location /bench/ {
      proxy_pass http://model/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
    location /bench-stream/ {
      proxy_pass http://model/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
`,
      );
      nginxProcess = start(...pinned(PLACEMENT.proxy, nginx, ['-p', prefix, '-c', conf, '-e', path.join(prefix, 'logs/error.log'), '-g', 'daemon off;']));
      nginxUrl = `http://127.0.0.1:${port}`;
      await waitForHttp(`${nginxUrl}/bench/v1/chat/completions`);
      prioritize([nginxProcess.pid]);
    } else {
      console.log('nginx is not installed (Debian: apt-get install -y nginx): skipping (c) through NGINX.');
    }

    // (d) Portkey's AI gateway, if installed and working
    const portkeyStarted = ONLY && !ONLY.has('portkey') ? ({ skipped: 'portkey: not in BENCH_ONLY' } as const) : await startPortkey(upstreamUrl);
    const portkey = 'url' in portkeyStarted ? portkeyStarted : undefined;
    const skipped = [...(nginx ? [] : ['nginx: not installed']), ...('skipped' in portkeyStarted ? [portkeyStarted.skipped] : [])];
    if ('skipped' in portkeyStarted) console.log(`skipping (d) through Portkey: ${portkeyStarted.skipped}`);

    const targets: Array<{ name: string; url: string; pid?: number; headers?: Record<string, string> }> = [
      { name: 'direct', url: `${upstreamUrl}/v1/chat/completions` },
      ...(baseline ? [{ name: 'baseline', url: `${baseline.url}/bench/v1/chat/completions`, pid: baseline.pid }] : []),
      { name: 'gateway', url: `${gateway.url}/bench/v1/chat/completions`, pid: gateway.pid },
      // The same body to a path that is not a completion: not metered (src/gateway/llm.ts), so the
      // two gateway rows side by side show what metering an LLM request costs, and that other traffic pays nothing.
      { name: 'gateway-non-llm', url: `${gateway.url}/bench/v1/echo`, pid: gateway.pid },
    ];
    if (nginxUrl) targets.push({ name: 'nginx', url: `${nginxUrl}/bench/v1/chat/completions`, pid: nginxProcess?.pid });
    if (portkey) targets.push({ name: 'portkey', url: `${portkey.url}/v1/chat/completions`, pid: portkey.pid, headers: portkey.headers });

    const runs: Record<string, Array<{ rate: LoadResult; saturation: LoadResult }>> = {};
    for (let repeat = 0; repeat < REPEAT; repeat++) {
      for (const target of targets) {
        if (ONLY && !ONLY.has(target.name) && target.name !== 'direct') continue;
        process.stdout.write(`[${repeat + 1}/${REPEAT}] ${target.name}: warm-up ${WARMUP_S}s, ${RATE} req/s ${DURATION_S}s, saturation ${DURATION_S}s...\n`);
        const pids = { proxy: target.pid, upstream: upstream.pid };
        const shape: RequestShape = { method: 'POST', body: PLAIN_BODY, headers: target.headers };
        await load(target.url, 'saturation', WARMUP_S, SATURATION_CONNECTIONS, pids, undefined, false, shape);
        const rate = await load(target.url, 'rate', DURATION_S, RATE_CONNECTIONS, pids, RATE, true, shape);
        const saturation = await load(target.url, 'saturation', DURATION_S, SATURATION_CONNECTIONS, pids, undefined, true, shape);
        (runs[target.name] ??= []).push({ rate, saturation });
        const us = (x: number) => (x / 1000).toFixed(3);
        process.stdout.write(
          `    @${RATE}/s p50 ${us(rate.service.p50Us)} ms p99 ${us(rate.service.p99Us)} ms | sat ${saturation.reqPerSec} req/s p50 ${us(saturation.service.p50Us)} ms, cpu ${JSON.stringify(saturation.cpuCores)} other ${rate.otherCpuCores}/${saturation.otherCpuCores}\n`,
        );
      }
    }

    // The streaming case: every path in turn, the order rotated each round; samples pooled per path.
    const streamTargets = targets
      .filter((t) => (t.name !== 'baseline' || BASELINE_GATEWAY) && t.name !== 'gateway-non-llm')
      .map((t) => (t.name === 'nginx' ? { ...t, url: `${nginxUrl}/bench-stream/v1/chat/completions` } : t))
      .filter((t) => !ONLY || ONLY.has(t.name) || t.name === 'direct');
    const streamRuns: Record<string, LoadResult[]> = {};
    for (let round = 0; round < STREAM_ROUNDS; round++) {
      const order = streamTargets.map((_, i) => streamTargets[(i + round) % streamTargets.length]!);
      process.stdout.write(`[stream ${round + 1}/${STREAM_ROUNDS}] ${order.map((t) => t.name).join(', ')}: ${STREAM_RATE} streams/s ${STREAM_DURATION_S}s each...\n`);
      for (const target of order) {
        const r = await load(target.url, 'rate', STREAM_DURATION_S, STREAM_CONNECTIONS, { proxy: target.pid, upstream: upstream.pid }, STREAM_RATE, 5, {
          method: 'POST',
          body: STREAM_BODY,
          headers: target.headers,
          stream: true,
          raw: true,
        });
        (streamRuns[target.name] ??= []).push(r);
        process.stdout.write(
          `    ${target.name}: ttft p50 ${(r.ttft!.p50Us / 1000).toFixed(2)} p99 ${(r.ttft!.p99Us / 1000).toFixed(2)} ms, total p50 ${(r.service.p50Us / 1000).toFixed(2)} ms, other ${r.otherCpuCores}\n`,
        );
      }
    }
    const streaming: Record<string, StreamSummary> = {};
    for (const [name, list] of Object.entries(streamRuns)) {
      const ttft = list.flatMap((r) => r.samples?.ttftUs ?? []).sort((x, y) => x - y);
      const total = list.flatMap((r) => r.samples?.totalUs ?? []).sort((x, y) => x - y);
      streaming[name] = {
        streams: total.length,
        ttftP50Ms: quantileMs(ttft, 0.5),
        ttftP99Ms: quantileMs(ttft, 0.99),
        totalP50Ms: quantileMs(total, 0.5),
        totalP99Ms: quantileMs(total, 0.99),
        noContent: list.reduce((n, r) => n + (r.noContent ?? 0), 0),
        errors: list.reduce((n, r) => n + r.errors + r.non2xx, 0),
        roundTtftP50Ms: list.map((r) => Math.round(r.ttft!.p50Us) / 1000),
      };
    }
    const direct = streaming.direct;
    const addedTtft: Record<string, { p50Ms: number; p99Ms: number }> = {};
    if (direct) {
      for (const [name, x] of Object.entries(streaming)) {
        if (name !== 'direct') addedTtft[name] = { p50Ms: round(x.ttftP50Ms - direct.ttftP50Ms), p99Ms: round(x.ttftP99Ms - direct.ttftP99Ms) };
      }
    }
    // Samples are in the JSON only as their summary (they are thousands of numbers).
    for (const list of Object.values(streamRuns)) for (const r of list) delete r.samples;

    // Per path, the median over the repeats.
    const summary: Record<
      string,
      {
        rateP50Us: number;
        rateP99Us: number;
        rateScheduledP99Us: number;
        /** Whether the path kept up with the fixed rate (answered at least 90% of it): if not, its latencies there are a queue's. */
        rateSustained: boolean;
        saturationReqPerSec: number;
        saturationP50Us: number;
        saturationP99Us: number;
        proxyCpuUsPerRequest?: number;
      }
    > = {};
    for (const [name, list] of Object.entries(runs)) {
      const cpu = list.map((r) => r.saturation.proxyCpuUsPerRequest).filter((x): x is number => x !== undefined);
      summary[name] = {
        rateP50Us: median(list.map((r) => r.rate.service.p50Us)),
        rateP99Us: median(list.map((r) => r.rate.service.p99Us)),
        rateScheduledP99Us: median(list.map((r) => r.rate.scheduled!.p99Us)),
        rateSustained: median(list.map((r) => r.rate.reqPerSec)) >= 0.9 * RATE,
        saturationReqPerSec: median(list.map((r) => r.saturation.reqPerSec)),
        saturationP50Us: median(list.map((r) => r.saturation.service.p50Us)),
        saturationP99Us: median(list.map((r) => r.saturation.service.p99Us)),
        ...(cpu.length ? { proxyCpuUsPerRequest: median(cpu) } : {}),
      };
    }
    const a = summary.direct!;
    const b = summary.gateway;
    const c = summary.nginx;
    const ms = (us: number) => Math.round(us) / 1000;
    const added = (x: typeof a) =>
      x.rateSustained ? { p50Ms: ms(x.rateP50Us - a.rateP50Us), p99Ms: ms(x.rateP99Us - a.rateP99Us) } : { overloaded: true as const, p50Ms: null, p99Ms: null };
    const d = summary.portkey;
    const comparison = {
      addedLatencyAtRate: {
        ...(summary.baseline ? { baseline: added(summary.baseline) } : {}),
        ...(b ? { gateway: added(b) } : {}),
        ...(summary['gateway-non-llm'] ? { 'gateway-non-llm': added(summary['gateway-non-llm']) } : {}),
        ...(c ? { nginx: added(c) } : {}),
        ...(d ? { portkey: added(d) } : {}),
      },
      ...(b && d
        ? {
            gatewayOverPortkey: {
              saturationReqPerSec: round(b.saturationReqPerSec / d.saturationReqPerSec),
              proxyCpuPerRequest: b.proxyCpuUsPerRequest && d.proxyCpuUsPerRequest ? round(b.proxyCpuUsPerRequest / d.proxyCpuUsPerRequest) : null,
            },
          }
        : {}),
      ...(Object.keys(addedTtft).length ? { addedTtftStreaming: addedTtft } : {}),
      // What metering an LLM request costs the gateway: the same body to a completion path vs another path.
      ...(b && summary['gateway-non-llm']
        ? {
            llmOverNonLlm: {
              saturationReqPerSec: round(b.saturationReqPerSec / summary['gateway-non-llm'].saturationReqPerSec),
              proxyCpuPerRequest: b.proxyCpuUsPerRequest && summary['gateway-non-llm'].proxyCpuUsPerRequest ? round(b.proxyCpuUsPerRequest / summary['gateway-non-llm'].proxyCpuUsPerRequest) : null,
            },
          }
        : {}),
      ...(b && c
        ? {
            gatewayOverNginx: {
              saturationReqPerSec: round(b.saturationReqPerSec / c.saturationReqPerSec),
              proxyCpuPerRequest: b.proxyCpuUsPerRequest && c.proxyCpuUsPerRequest ? round(b.proxyCpuUsPerRequest / c.proxyCpuUsPerRequest) : null,
            },
          }
        : {}),
      ...(summary.baseline && c
        ? {
            baselineOverNginx: {
              saturationReqPerSec: round(summary.baseline.saturationReqPerSec / c.saturationReqPerSec),
              proxyCpuPerRequest:
                summary.baseline.proxyCpuUsPerRequest && c.proxyCpuUsPerRequest ? round(summary.baseline.proxyCpuUsPerRequest / c.proxyCpuUsPerRequest) : null,
            },
          }
        : {}),
    };

    const rows: string[][] = [];
    for (const [name, list] of Object.entries(runs)) {
      list.forEach((r, i) =>
        rows.push([
          `${name}#${i + 1}`,
          String(r.rate.reqPerSec),
          r.rate.reqPerSec >= 0.9 * RATE ? (r.rate.service.p50Us / 1000).toFixed(3) : 'overloaded',
          r.rate.reqPerSec >= 0.9 * RATE ? (r.rate.service.p99Us / 1000).toFixed(3) : 'overloaded',
          String(r.saturation.reqPerSec),
          (r.saturation.service.p50Us / 1000).toFixed(3),
          (r.saturation.service.p99Us / 1000).toFixed(3),
          r.saturation.cpuCores.proxy !== undefined ? r.saturation.cpuCores.proxy.toFixed(2) : '-',
          r.saturation.proxyCpuUsPerRequest !== undefined ? String(r.saturation.proxyCpuUsPerRequest) : '-',
          `${r.saturation.cpuCores.upstream?.toFixed(2)}/${r.saturation.cpuCores.loadgen?.toFixed(2)}`,
          `${r.rate.otherCpuCores?.toFixed(2)}/${r.saturation.otherCpuCores?.toFixed(2)}`,
          String(r.rate.errors + r.rate.non2xx + r.saturation.errors + r.saturation.non2xx),
        ]),
      );
    }
    const header = ['path', `@${RATE}/s req/s`, 'p50 ms', 'p99 ms', 'sat req/s', 'p50 ms', 'p99 ms', 'proxy cores', 'proxy cpu µs/req', 'upstream/loadgen cores', 'other cores rate/sat', 'errors'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]) => cells.map((cell, i) => cell.padStart(widths[i]!)).join('  ');
    console.log('');
    console.log(line(header));
    for (const row of rows) console.log(line(row));
    console.log('');
    const addedText = Object.entries(comparison.addedLatencyAtRate)
      .map(([name, x]) => ('overloaded' in x ? `${name} overloaded (below ${RATE} req/s)` : `${name} +${x.p50Ms}/+${x.p99Ms}`))
      .join(', ');
    console.log(`added latency at ${RATE} req/s vs direct (median p50/p99 ms): ${addedText}`);
    if (comparison.gatewayOverNginx) {
      const g = comparison.gatewayOverNginx;
      console.log(`gateway / nginx: saturation req/s ${g.saturationReqPerSec}, proxy CPU per request ${g.proxyCpuPerRequest}`);
    }
    if (comparison.llmOverNonLlm) {
      const g = comparison.llmOverNonLlm;
      console.log(`gateway, LLM request / non-LLM request (metering's cost): saturation req/s ${g.saturationReqPerSec}, proxy CPU per request ${g.proxyCpuPerRequest}`);
    }
    if (comparison.baselineOverNginx) {
      const g = comparison.baselineOverNginx;
      console.log(`baseline / nginx: saturation req/s ${g.saturationReqPerSec}, proxy CPU per request ${g.proxyCpuPerRequest}`);
    }
    if (comparison.gatewayOverPortkey) {
      const g = comparison.gatewayOverPortkey;
      console.log(`gateway / portkey: saturation req/s ${g.saturationReqPerSec}, proxy CPU per request ${g.proxyCpuPerRequest}`);
    }

    if (Object.keys(streaming).length) {
      const streamHeader = ['stream path', 'streams', 'TTFT p50 ms', 'TTFT p99 ms', 'total p50 ms', 'total p99 ms', '+TTFT p50', '+TTFT p99', 'TTFT p50 per round', 'errors'];
      const streamRows = Object.entries(streaming).map(([name, x]) => [
        name === 'nginx' ? 'nginx (proxy_buffering off)' : name,
        String(x.streams),
        x.ttftP50Ms.toFixed(3),
        x.ttftP99Ms.toFixed(3),
        x.totalP50Ms.toFixed(3),
        x.totalP99Ms.toFixed(3),
        addedTtft[name] ? addedTtft[name].p50Ms.toFixed(2) : '-',
        addedTtft[name] ? addedTtft[name].p99Ms.toFixed(2) : '-',
        x.roundTtftP50Ms.map((v) => v.toFixed(2)).join('/'),
        String(x.errors + x.noContent),
      ]);
      const sw = streamHeader.map((h, i) => Math.max(h.length, ...streamRows.map((r) => r[i]!.length)));
      const sline = (cells: string[]) => cells.map((cell, i) => cell.padStart(sw[i]!)).join('  ');
      console.log('');
      console.log(`streaming: ${STREAM_RATE} streams/s, ${STREAM_ROUNDS} rounds × ${STREAM_DURATION_S}s per path; upstream first chunk after ${process.env.BENCH_STREAM_FIRST_MS ?? 20} ms, ${process.env.BENCH_STREAM_CHUNKS ?? 20} chunks ${process.env.BENCH_STREAM_GAP_MS ?? 5} ms apart`);
      console.log(sline(streamHeader));
      for (const row of streamRows) console.log(sline(row));
      console.log('');
    }
    for (const reason of skipped) console.log(`skipped: ${reason}`);

    const report = {
      at: new Date().toISOString(),
      environment: {
        node: process.version,
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model,
        loadAverageAtStart: os.loadavg().map(round),
        nginx: nginxVersion ?? null,
        nginxWorkerProcesses: nginx ? NGINX_WORKERS : null,
        portkey: portkey
          ? { version: portkey.version, run: 'node --import bench/gateway/loopback-only.mjs node_modules/@portkey-ai/gateway/build/start-server.js --port=<free> --headless (NODE_ENV=production), on the proxy CPU; requests carry x-portkey-provider: openai and x-portkey-custom-host: <upstream>/v1' }
          : null,
        loadTool: 'bench/gateway/loadgen.ts (undici Pool, own process, hrtime µs; open loop at a fixed rate paced by a 1 ms timer, closed loop at saturation)',
        placement: CAN_PIN
          ? 'taskset: proxy under test alone on CPU 1; load generator and upstream share CPU 0 (same for direct, gateway and nginx)'
          : 'not pinned: upstream, proxy under test and load generator share all cores',
        nice: NICE,
        gatewayNodeArgs: GATEWAY_NODE_ARGS,
        ...(BASELINE_GATEWAY ? { baselineGateway: BASELINE_GATEWAY } : {}),
      },
      settings: {
        rate: RATE,
        durationSeconds: DURATION_S,
        warmupSeconds: WARMUP_S,
        repeat: REPEAT,
        rateConnections: RATE_CONNECTIONS,
        saturationConnections: SATURATION_CONNECTIONS,
        request: 'POST /v1/chat/completions with a small JSON chat body',
        streaming: {
          rate: STREAM_RATE,
          durationSeconds: STREAM_DURATION_S,
          rounds: STREAM_ROUNDS,
          connections: STREAM_CONNECTIONS,
          upstream: { firstChunkMs: Number(process.env.BENCH_STREAM_FIRST_MS ?? 20), chunks: Number(process.env.BENCH_STREAM_CHUNKS ?? 20), gapMs: Number(process.env.BENCH_STREAM_GAP_MS ?? 5) },
          ttft: 'client-seen: dispatch to the first body bytes holding "content" (the first token event); total: dispatch to the last byte',
          nginx: 'location with proxy_buffering off',
        },
      },
      summary,
      streaming,
      comparison,
      runs,
      streamRuns,
      ...(skipped.length ? { skipped } : {}),
      elapsedSeconds: Math.round((Date.now() - began) / 1000),
    };
    if (process.env.BENCH_NO_WRITE !== '1') {
      await mkdir(path.dirname(RESULTS), { recursive: true });
      await writeFile(RESULTS, JSON.stringify(report, null, 2) + '\n');
      console.log(`wrote ${path.relative(ROOT, RESULTS)} (${report.elapsedSeconds}s)`);
    } else {
      console.log(JSON.stringify({ summary, streaming, comparison }));
    }
  } finally {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await rm(tmp, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
