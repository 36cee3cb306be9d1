/**
 * Gateway overhead benchmark: `npm run bench:gateway`.
 *
 * One fast upstream (bench/gateway/upstream.ts, own process), this gateway (own process) and
 * NGINX (1 worker, keep-alive upstream pool, own process), all loaded by the same tool
 * (autocannon, own process): (a) direct to the upstream, (b) through the gateway, (c) through
 * NGINX — at a fixed 2,000 req/s and at saturation. Prints a table and writes
 * bench/results/gateway.json. NGINX is optional: without it, (c) is skipped with a message.
 * Keep in mind the machine: every process here shares the same cores.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '../..');
const RESULTS = path.join(ROOT, 'bench/results/gateway.json');
const RATE = Number(process.env.BENCH_RATE ?? 2000);
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 8);
const WARMUP_S = 2;
const RATE_CONNECTIONS = 50;
const SATURATION_CONNECTIONS = 100;
const NGINX_WORKERS = 1;
const CLK_TCK = 100;

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

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
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

interface LoadResult {
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  avgMs: number;
  errors: number;
  non2xx: number;
  proxyCpuSeconds?: number;
}

async function autocannon(url: string, connections: number, durationS: number, rate?: number, cpuPid?: number): Promise<LoadResult> {
  const args = [require.resolve('autocannon/autocannon.js'), '-j', '-n', '-c', String(connections), '-d', String(durationS)];
  if (rate) args.push('-R', String(rate));
  args.push(url);
  const cpuBefore = cpuSeconds(cpuPid);
  const child = start(process.execPath, args);
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`autocannon exited ${code}`);
  const cpuAfter = cpuSeconds(cpuPid);
  const r = JSON.parse(out.trim().split('\n').pop()!) as {
    duration: number;
    errors: number;
    non2xx: number;
    latency: { p50: number; p99: number; average: number };
    requests: { total: number };
  };
  const result: LoadResult = {
    reqPerSec: Math.round(r.requests.total / r.duration),
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    avgMs: Math.round(r.latency.average * 100) / 100,
    errors: r.errors,
    non2xx: r.non2xx,
  };
  if (cpuBefore !== undefined && cpuAfter !== undefined) result.proxyCpuSeconds = Math.round((cpuAfter - cpuBefore) * 100) / 100;
  return result;
}

function nginxBinary(): string | undefined {
  for (const candidate of ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx', '/usr/local/bin/nginx']) if (existsSync(candidate)) return candidate;
  const which = spawnSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' });
  return which.status === 0 && which.stdout.trim() ? which.stdout.trim() : undefined;
}

async function main(): Promise<void> {
  const began = Date.now();
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'bench-gateway-'));
  const tsx = ['--import', 'tsx'];
  try {
    // (a) the upstream
    const upstream = start(process.execPath, [...tsx, 'bench/gateway/upstream.ts']);
    const upstreamPort = (JSON.parse(await waitForLine(upstream, (l) => l.includes('upstream listening'), 'upstream')) as { port: number }).port;
    const upstreamUrl = `http://127.0.0.1:${upstreamPort}`;

    // (b) the gateway
    const gateway = start(process.execPath, [...tsx, 'src/gateway/main.ts'], { GATEWAY_PORT: '0', DATA_DIR: path.join(tmp, 'data'), LOG_LEVEL: 'info', GATEWAY_ADMIN_TOKEN: '' });
    const gatewayUrl = (JSON.parse(await waitForLine(gateway, (l) => l.includes('gateway listening'), 'gateway')) as { url: string }).url;
    const put = await fetch(`${gatewayUrl}/admin/routes/bench`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ versions: [{ name: 'v1', url: upstreamUrl, weight: 100 }] }),
    });
    if (put.status !== 200) throw new Error(`route PUT failed: ${put.status} ${await put.text()}`);

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
  }
}
`,
      );
      nginxProcess = start(nginx, ['-p', prefix, '-c', conf, '-e', path.join(prefix, 'logs/error.log'), '-g', 'daemon off;']);
      nginxUrl = `http://127.0.0.1:${port}`;
      await waitForHttp(`${nginxUrl}/bench/v1/chat/completions`);
    } else {
      console.log('nginx is not installed (Debian: apt-get install -y nginx): skipping (c) through NGINX.');
    }

    const targets: Array<{ name: string; url: string; pid?: number }> = [
      { name: 'direct', url: `${upstreamUrl}/v1/chat/completions` },
      { name: 'gateway', url: `${gatewayUrl}/bench/v1/chat/completions`, pid: gateway.pid },
    ];
    if (nginxUrl) targets.push({ name: 'nginx', url: `${nginxUrl}/bench/v1/chat/completions`, pid: nginxProcess?.pid });

    const results: Record<string, { rate: LoadResult; saturation: LoadResult }> = {};
    for (const target of targets) {
      process.stdout.write(`${target.name}: warm-up ${WARMUP_S}s, ${RATE} req/s ${DURATION_S}s, saturation ${DURATION_S}s...\n`);
      await autocannon(target.url, SATURATION_CONNECTIONS, WARMUP_S);
      const rate = await autocannon(target.url, RATE_CONNECTIONS, DURATION_S, RATE, target.pid);
      const saturation = await autocannon(target.url, SATURATION_CONNECTIONS, DURATION_S, undefined, target.pid);
      results[target.name] = { rate, saturation };
    }

    const a = results.direct!;
    const b = results.gateway!;
    const c = results.nginx;
    const round = (x: number) => Math.round(x * 100) / 100;
    const comparison = {
      addedLatencyAtRateMs: {
        gateway: { p50: round(b.rate.p50Ms - a.rate.p50Ms), p99: round(b.rate.p99Ms - a.rate.p99Ms) },
        ...(c ? { nginx: { p50: round(c.rate.p50Ms - a.rate.p50Ms), p99: round(c.rate.p99Ms - a.rate.p99Ms) } } : {}),
      },
      ...(c
        ? {
            gatewayOverNginx: {
              saturationReqPerSec: round(b.saturation.reqPerSec / c.saturation.reqPerSec),
              rateP50: round(b.rate.p50Ms / c.rate.p50Ms),
              rateP99: round(b.rate.p99Ms / c.rate.p99Ms),
              saturationP99: round(b.saturation.p99Ms / c.saturation.p99Ms),
            },
          }
        : {}),
    };

    const rows = Object.entries(results).map(([name, r]) => [
      name,
      String(r.rate.reqPerSec),
      `${r.rate.p50Ms}`,
      `${r.rate.p99Ms}`,
      String(r.saturation.reqPerSec),
      `${r.saturation.p50Ms}`,
      `${r.saturation.p99Ms}`,
      r.saturation.proxyCpuSeconds !== undefined ? String(r.saturation.proxyCpuSeconds) : '-',
      String(r.rate.errors + r.rate.non2xx + r.saturation.errors + r.saturation.non2xx),
    ]);
    const header = ['path', `@${RATE}/s req/s`, 'p50 ms', 'p99 ms', 'sat req/s', 'p50 ms', 'p99 ms', 'proxy cpu s', 'errors'];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]) => cells.map((cell, i) => cell.padStart(widths[i]!)).join('  ');
    console.log('');
    console.log(line(header));
    for (const row of rows) console.log(line(row));
    console.log('');
    console.log(`added latency at ${RATE} req/s (p50/p99 ms): gateway ${comparison.addedLatencyAtRateMs.gateway.p50}/${comparison.addedLatencyAtRateMs.gateway.p99}` +
      (c ? `, nginx ${comparison.addedLatencyAtRateMs.nginx!.p50}/${comparison.addedLatencyAtRateMs.nginx!.p99}` : ''));
    if (comparison.gatewayOverNginx) {
      const g = comparison.gatewayOverNginx;
      console.log(`gateway / nginx: saturation req/s ${g.saturationReqPerSec}, p50 at rate ${g.rateP50}, p99 at rate ${g.rateP99}`);
    }

    const report = {
      at: new Date().toISOString(),
      environment: {
        node: process.version,
        cpus: os.cpus().length,
        cpuModel: os.cpus()[0]?.model,
        nginx: nginxVersion ?? null,
        nginxWorkerProcesses: nginx ? NGINX_WORKERS : null,
        loadTool: `autocannon ${(require('autocannon/package.json') as { version: string }).version} (own process)`,
        note: 'upstream, proxy under test and load tool each run in their own process and share all cores',
      },
      settings: { rate: RATE, durationSeconds: DURATION_S, warmupSeconds: WARMUP_S, rateConnections: RATE_CONNECTIONS, saturationConnections: SATURATION_CONNECTIONS },
      results,
      comparison,
      ...(nginx ? {} : { skipped: ['nginx: not installed'] }),
      elapsedSeconds: Math.round((Date.now() - began) / 1000),
    };
    await mkdir(path.dirname(RESULTS), { recursive: true });
    await writeFile(RESULTS, JSON.stringify(report, null, 2) + '\n');
    console.log(`wrote ${path.relative(ROOT, RESULTS)} (${report.elapsedSeconds}s)`);
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
