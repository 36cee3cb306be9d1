/**
 * A real NGINX for tests (Debian `nginx`, pinned in scripts/install-debian.sh and installed by it
 * when missing): a master in the foreground (a child of the test process), everything it writes
 * (pid, error log, temp files) in a temp dir, and a main config whose `http {}` includes
 * `<configDir>/*.conf`: the NGINX router (src/activities/routers/nginx.ts) renders the server of
 * the targets there, listening on `port`.
 *
 *   const nginx = await startNginx({ configDir });       // beforeAll
 *   const router = nginxTrafficRouter(nginx.routing);    // or a spec's `routing: nginx.routing`
 *   await router.setWeights(route, { rolloutId });       // then: fetch(`${nginx.url}/<target>/...`)
 *   await nginx.stop();                                  // afterAll
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { NginxOptions } from '../../src/activities/routers/nginx';
import { alive, freePorts } from './http';

const ROOT = resolve(__dirname, '../..');

export interface NginxInstance {
  /** http://127.0.0.1:<port>: where the router's server serves `/{target}/...` once a route is set. */
  url: string;
  port: number;
  /** The main config (`nginx -c`). */
  mainConfig: string;
  /** The nginx binary. */
  bin: string;
  /** The master's pid. */
  pid: number;
  /** `routing` options for this instance: `{ kind: "nginx", configDir, listen, nginx, nginxConfig }`. */
  routing: NginxOptions;
  /** The error log so far (where a refused reload says why). */
  errorLog(): string;
  stop(): Promise<void>;
}

/** The nginx binary: on PATH, or Debian's; installed by scripts/install-debian.sh when missing (never skipped). */
export function ensureNginx(): string {
  const found = () => (existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : onPath('nginx'));
  let bin = found();
  if (!bin) {
    const result = spawnSync('bash', [join(ROOT, 'scripts/install-debian.sh')], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
    if (result.status !== 0) throw new Error(`scripts/install-debian.sh failed (${result.status ?? result.signal}): nginx is needed`);
    bin = found();
    if (!bin) throw new Error('nginx is not installed after scripts/install-debian.sh');
  }
  return bin;
}

export async function startNginx({ configDir, port: wantedPort }: { configDir: string; port?: number }): Promise<NginxInstance> {
  const bin = ensureNginx();
  const dir = mkdtempSync(join(tmpdir(), 'nginx-'));
  mkdirSync(configDir, { recursive: true });
  const port = wantedPort ?? (await freePorts(1))[0]!;
  const mainConfig = join(dir, 'nginx.conf');
  const pidFile = join(dir, 'nginx.pid');
  const errorLogPath = join(dir, 'error.log');
  const root = process.getuid?.() === 0;
  writeFileSync(
    mainConfig,
    [
      // In the foreground, so the master is this process's child; `-t` and `-s reload` ignore it.
      'daemon off;',
      // As root, workers would run as `nobody`, who cannot write the temp dir (mode 0700).
      ...(root ? ['user root root;'] : []),
      'worker_processes 1;',
      `pid ${pidFile};`,
      `error_log ${errorLogPath} notice;`,
      'events { worker_connections 1024; }',
      'http {',
      '    access_log off;',
      `    client_body_temp_path ${join(dir, 'body')};`,
      `    proxy_temp_path ${join(dir, 'proxy')};`,
      `    fastcgi_temp_path ${join(dir, 'fastcgi')};`,
      `    uwsgi_temp_path ${join(dir, 'uwsgi')};`,
      `    scgi_temp_path ${join(dir, 'scgi')};`,
      `    include ${join(resolve(configDir), '*.conf')};`,
      '}',
      '',
    ].join('\n'),
  );
  const errorLog = () => {
    try {
      return readFileSync(errorLogPath, 'utf8');
    } catch {
      return '';
    }
  };

  let output = '';
  const child: ChildProcess = spawn(bin, ['-c', mainConfig], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const running = () => child.exitCode === null && child.signalCode === null;
  // SIGTERM: the master stops its workers (SIGKILL would leave them running, orphaned).
  const terminate = () => {
    if (running()) child.kill('SIGTERM');
  };
  // Also when the test process ends without afterAll: no orphan nginx.
  process.once('exit', terminate);

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    process.removeListener('exit', terminate);
    if (running()) {
      terminate(); // fast shutdown: the master ends its workers
      const timer = setTimeout(() => running() && child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };

  // Ready once the master wrote its pid (after it opened its config and logs).
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await stop();
      throw new Error(`nginx exited at start (${child.exitCode ?? child.signalCode}): ${output}${errorLog()}`);
    }
    const pid = existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8').trim()) : NaN;
    if (pid === child.pid && alive(pid)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`nginx did not write its pid file within 10 s: ${output}${errorLog()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    mainConfig,
    bin,
    pid: child.pid!,
    routing: { kind: 'nginx', configDir: resolve(configDir), listen: `127.0.0.1:${port}`, nginx: bin, nginxConfig: mainConfig },
    errorLog,
    stop,
  };
}

function onPath(command: string): string | undefined {
  const result = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
  return result.status === 0 ? result.stdout.trim() || undefined : undefined;
}
