/**
 * docker-compose.yml, deploy/ and the Dockerfile, checked without a Docker engine:
 * - `docker-compose config` (Debian's docker-compose, installed by scripts/install-debian.sh when
 *   missing: this suite never skips) accepts the file with the required variables set, and
 *   refuses it, naming the variable, when a token or password is missing;
 * - every environment variable the file sets for a model-canary service (one built from the
 *   Dockerfile) is one its code reads: the names are scanned from the service's entry point and
 *   everything it imports, not listed here;
 * - ports, URLs and addresses agree: what is published is what the service listens on, the
 *   worker and API call the gateway and Temporal where they listen, Prometheus scrapes the
 *   gateway's /metrics at its port, services reached from others listen on 0.0.0.0;
 * - the Temporal setup registers the search attributes the workflow uses;
 * - the Dockerfile's runtime stage runs as a non-root user with production dependencies only.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { parse } from 'yaml';
import { loadConfig } from '../../src/config';
import { optionsFromArgs } from '../../src/demo/model-server';
import { SEARCH_ATTRIBUTE_REGISTRATIONS } from '../../src/workflows/search-attributes';

const ROOT = resolve(__dirname, '../..');
const COMPOSE_FILE = join(ROOT, 'docker-compose.yml');
const composeText = readFileSync(COMPOSE_FILE, 'utf8');

interface Healthcheck {
  test: string[] | string;
}
interface Service {
  image?: string;
  build?: unknown;
  command?: string[] | string;
  entrypoint?: string[] | string;
  environment?: Record<string, string | number | boolean | null>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: Healthcheck;
  profiles?: string[];
  restart?: string;
}
const compose = parse(composeText, { merge: true }) as { services: Record<string, Service>; volumes?: Record<string, unknown> };
const services = compose.services;

/** The services that run this project's code: built from ./Dockerfile. */
const ours = Object.entries(services).filter(([, s]) => s.build !== undefined);
const oursByName = Object.fromEntries(ours);

function env(service: string): Record<string, string> {
  const e = services[service]?.environment ?? {};
  return Object.fromEntries(Object.entries(e).map(([k, v]) => [k, String(v ?? '')]));
}
function argv(value: string[] | string | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : value.split(/\s+/);
}

// ---------------------------------------------------------------- docker-compose config

/** Variables the file interpolates: `${NAME}`, `${NAME:-default}`, `${NAME:?message}`. */
const interpolated = [...composeText.matchAll(/\$\{([A-Z_][A-Z0-9_]*)(:?[-?][^}]*)?\}/g)].map((m) => ({ name: m[1]!, rest: m[2] ?? '' }));
const required = [...new Set(interpolated.filter((v) => v.rest.startsWith(':?')).map((v) => v.name))];
const requiredValues = Object.fromEntries(required.map((n) => [n, `test-${n.toLowerCase()}`]));

let dockerCompose: string;
let scratch: string;
let configMs = 0;

/** docker-compose on PATH, or installed from Debian (scripts/install-debian.sh). */
function findDockerCompose(): string {
  const probe = () => spawnSync('docker-compose', ['version'], { stdio: 'ignore' });
  if (probe().error) {
    const install = spawnSync('bash', [join(ROOT, 'scripts/install-debian.sh')], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
    if (install.status !== 0) throw new Error(`scripts/install-debian.sh failed (${install.status ?? install.signal}): docker-compose is needed`);
    if (probe().error) throw new Error('docker-compose is not on PATH after scripts/install-debian.sh');
  }
  return 'docker-compose';
}

/** `docker-compose -f docker-compose.yml config` with exactly `vars` set (no .env, nothing inherited). */
function composeConfig(vars: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('COMPOSE_') && !interpolated.some((v) => v.name === k)),
  );
  const started = Date.now();
  const result = spawnSync(dockerCompose, ['--env-file', join(scratch, 'empty.env'), '-f', COMPOSE_FILE, 'config'], {
    cwd: scratch,
    env: { ...base, ...vars },
    encoding: 'utf8',
  });
  configMs = Math.max(configMs, Date.now() - started);
  if (result.error) throw result.error;
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

beforeAll(() => {
  dockerCompose = findDockerCompose();
  scratch = mkdtempSync(join(tmpdir(), 'mc-compose-'));
  writeFileSync(join(scratch, 'empty.env'), '');
}, 600_000);

afterAll(() => {
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  if (configMs) console.log(`docker-compose config: slowest run ${configMs} ms`);
});

describe('docker-compose config', () => {
  test('accepts the file with the required variables set, and resolves them', () => {
    const result = composeConfig(requiredValues);
    expect(result.stderr).not.toMatch(/error/i);
    expect(result.status).toBe(0);
    const resolved = parse(result.stdout) as { services: Record<string, Service> };
    expect(Object.keys(resolved.services).sort()).toEqual(Object.keys(services).sort());
    expect(resolved.services.api?.environment?.API_TOKEN).toBe(requiredValues.API_TOKEN);
    expect(resolved.services.worker?.environment?.GATEWAY_ADMIN_TOKEN).toBe(requiredValues.GATEWAY_ADMIN_TOKEN);
  });

  test('tokens and the database password are required, never defaulted', () => {
    expect(required).toEqual(expect.arrayContaining(['API_TOKEN', 'GATEWAY_ADMIN_TOKEN', 'POSTGRES_PASSWORD']));
    for (const v of interpolated) {
      if (/TOKEN|PASSWORD|SECRET/.test(v.name)) expect(`${v.name}${v.rest}`).toMatch(/^[A-Z_]+:\?/);
    }
  });

  test("Temporal's frontend and UI resolve to ports on 127.0.0.1 only; the UI's write actions are off unless TEMPORAL_DISABLE_WRITE_ACTIONS=false", () => {
    const resolve = (vars: Record<string, string>) => {
      const result = composeConfig({ ...requiredValues, ...vars });
      expect([result.status, result.stderr]).toEqual([0, expect.not.stringMatching(/error/i)]);
      return (parse(result.stdout) as { services: Record<string, { environment?: Record<string, unknown>; ports?: unknown[] }> }).services;
    };
    const byDefault = resolve({});
    for (const name of ['temporal', 'temporal-ui']) {
      const ports = byDefault[name]!.ports ?? [];
      expect([name, ports.length]).toEqual([name, 1]);
      // docker-compose 1.x resolves the short syntax as it is, 2.x to {host_ip, target, published}
      for (const p of ports) expect([name, typeof p === 'string' ? portMapping(p).ip : (p as { host_ip?: string }).host_ip]).toEqual([name, '127.0.0.1']);
    }
    expect(String(byDefault['temporal-ui']!.environment!.TEMPORAL_DISABLE_WRITE_ACTIONS)).toBe('true');
    expect(String(resolve({ TEMPORAL_DISABLE_WRITE_ACTIONS: 'false' })['temporal-ui']!.environment!.TEMPORAL_DISABLE_WRITE_ACTIONS)).toBe('false');
  });

  test('URL_ALLOW_LIST reaches the worker and the API (empty by default: any URL)', () => {
    const list = 'http://model-v1:9001, http://model-v2:9002';
    for (const [vars, expected] of [[{}, ''], [{ URL_ALLOW_LIST: list }, list]] as const) {
      const result = composeConfig({ ...requiredValues, ...vars });
      expect(result.status).toBe(0);
      const resolved = parse(result.stdout) as { services: Record<string, { environment?: Record<string, unknown> }> };
      for (const name of ['worker', 'api']) expect([name, String(resolved.services[name]!.environment!.URL_ALLOW_LIST ?? '')]).toEqual([name, expected]);
    }
  });

  test.each(required)('without %s it refuses, naming the variable', (name) => {
    const { [name]: _missing, ...rest } = requiredValues;
    const result = composeConfig(rest);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain(name);
  });
});

// ---------------------------------------------------------------- what the code reads

/** A source file's local imports (relative specifiers), resolved to files. */
function localImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [
    ...text.matchAll(/\bfrom\s+['"](\.{1,2}\/[^'"]+)['"]/g),
    ...text.matchAll(/\bimport\s+['"](\.{1,2}\/[^'"]+)['"]/g),
    ...text.matchAll(/\b(?:require|require\.resolve|import)\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g),
  ].map((m) => m[1]!);
  const out: string[] = [];
  for (const spec of specs) {
    const base = resolve(dirname(file), spec);
    const found = [base, `${base}.ts`, join(base, 'index.ts')].find((p) => p.endsWith('.ts') && existsSync(p));
    if (found) out.push(found);
  }
  return out;
}

/** Every .ts file an entry point reaches through local imports. */
function reachable(entry: string): string[] {
  const seen = new Set<string>();
  const stack = [entry];
  while (stack.length > 0) {
    const file = stack.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    stack.push(...localImports(file));
  }
  return [...seen];
}

/**
 * Environment variable names a file reads: `env.NAME`, `process.env.NAME`, `env['NAME']`, and,
 * in a file that reads its environment at all, NAME-shaped string literals (`int(env, 'API_PORT')`,
 * `num(flag, 'MODEL_PORT')`).
 */
function envNamesIn(file: string): Set<string> {
  const text = readFileSync(file, 'utf8').replace(/^\s*(\/\/|\*).*$/gm, ''); // not in comments
  const names = new Set<string>();
  for (const m of text.matchAll(/\benv\.([A-Z][A-Z0-9_]*)\b/g)) names.add(m[1]!);
  for (const m of text.matchAll(/\benv\[\s*['"`]([A-Z][A-Z0-9_]*)['"`]\s*\]/g)) names.add(m[1]!);
  if (/\benv\b/.test(text)) {
    for (const m of text.matchAll(/['"`]([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)['"`]/g)) names.add(m[1]!);
  }
  return names;
}

/** The TypeScript entry point of a service's `node dist/…js` command (tsconfig.build.json: rootDir ., outDir dist). */
function entryPoint(name: string): string {
  const [node, script] = argv(services[name]!.command);
  expect(node).toBe('node');
  expect(script).toMatch(/^dist\/.+\.js$/);
  const source = join(ROOT, script!.replace(/^dist\//, '').replace(/\.js$/, '.ts'));
  expect(existsSync(source)).toBe(true);
  return source;
}

function namesRead(name: string): Set<string> {
  const names = new Set<string>();
  for (const file of reachable(entryPoint(name))) for (const n of envNamesIn(file)) names.add(n);
  return names;
}

/** What `read(env)` reads of an environment that has nothing set. */
function recordReads(read: (env: NodeJS.ProcessEnv) => unknown): string[] {
  const seen = new Set<string>();
  const probe = new Proxy({} as NodeJS.ProcessEnv, {
    get(_target, key) {
      if (typeof key === 'string') seen.add(key);
      return undefined;
    },
  });
  read(probe);
  return [...seen];
}

describe('every variable set for a model-canary service is one its code reads', () => {
  test('the model-canary services are the worker, the API, the gateway and the demo ones', () => {
    expect(Object.keys(oursByName).sort()).toEqual(['api', 'demo-traffic', 'gateway', 'model-v1', 'model-v2', 'model-v3', 'worker']);
  });

  test('the scan finds every name loadConfig and the demo model read (checked by running them)', () => {
    const configNames = envNamesIn(join(ROOT, 'src/config.ts'));
    expect(recordReads((e) => loadConfig(e)).filter((n) => !configNames.has(n))).toEqual([]);
    const modelNames = envNamesIn(join(ROOT, 'src/demo/model-server.ts'));
    expect(recordReads((e) => optionsFromArgs([], e)).filter((n) => !modelNames.has(n))).toEqual([]);
  });

  test.each(ours.map(([name]) => name))('%s', (name) => {
    const read = namesRead(name);
    const unknown = Object.keys(env(name)).filter((n) => !read.has(n));
    expect(unknown).toEqual([]);
  });

  test('the control plane gets what it needs to reach Temporal and the gateway', () => {
    for (const name of ['worker', 'api']) {
      expect(Object.keys(env(name))).toEqual(
        expect.arrayContaining(['TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'TASK_QUEUE', 'GATEWAY_URL', 'GATEWAY_ADMIN_TOKEN']),
      );
    }
    expect(Object.keys(env('api'))).toEqual(expect.arrayContaining(['API_TOKEN', 'API_HOST', 'API_PORT', 'TEMPORAL_UI_URL']));
    expect(Object.keys(env('gateway'))).toEqual(expect.arrayContaining(['GATEWAY_HOST', 'GATEWAY_PORT', 'GATEWAY_ADMIN_TOKEN', 'DATA_DIR']));
    // One token and one namespace for all of them (the same interpolation everywhere).
    const raw = (service: string, key: string) => services[service]!.environment![key];
    expect(raw('worker', 'GATEWAY_ADMIN_TOKEN')).toBe(raw('gateway', 'GATEWAY_ADMIN_TOKEN'));
    expect(raw('api', 'GATEWAY_ADMIN_TOKEN')).toBe(raw('gateway', 'GATEWAY_ADMIN_TOKEN'));
    expect(raw('api', 'TEMPORAL_NAMESPACE')).toBe(raw('worker', 'TEMPORAL_NAMESPACE'));
    expect(raw('temporal-setup', 'TEMPORAL_NAMESPACE')).toBe(raw('worker', 'TEMPORAL_NAMESPACE'));
    expect(raw('api', 'TASK_QUEUE')).toBe(raw('worker', 'TASK_QUEUE'));
  });

  test("the gateway's routes live on a volume at its DATA_DIR", () => {
    const volumes = services.gateway!.volumes ?? [];
    const dataDir = env('gateway').DATA_DIR;
    const mount = volumes.map((v) => v.split(':')).find(([, target]) => target === dataDir);
    expect(mount).toBeDefined();
    expect(Object.keys(compose.volumes ?? {})).toContain(mount![0]);
  });
});

// ---------------------------------------------------------------- ports and addresses

/** "[ip:]published:target[/proto]" */
function portMapping(spec: string): { ip?: string; published: number; target: number } {
  const parts = spec.replace(/\/(tcp|udp)$/, '').split(':');
  const target = Number(parts.pop());
  const published = Number(parts.pop());
  return { ...(parts.length > 0 ? { ip: parts.join(':') } : {}), published, target };
}
function healthcheckText(name: string): string {
  return argv(services[name]!.healthcheck?.test).join(' ');
}
function hostPort(address: string): { host: string; port: number } {
  const [host, port] = address.split(':');
  return { host: host!, port: Number(port) };
}

describe('ports and addresses agree', () => {
  test.each([
    ['api', 'API_PORT', 'API_HOST'],
    ['gateway', 'GATEWAY_PORT', 'GATEWAY_HOST'],
  ])('%s: published and target ports are its %s, it listens on 0.0.0.0, its healthcheck asks that port', (name, portVar, hostVar) => {
    const port = Number(env(name)[portVar]);
    expect(Number.isInteger(port) && port > 0).toBe(true);
    expect(env(name)[hostVar]).toBe('0.0.0.0');
    const ports = (services[name]!.ports ?? []).map(portMapping);
    expect(ports.length).toBeGreaterThan(0);
    for (const p of ports) expect([p.published, p.target]).toEqual([port, port]);
    expect(healthcheckText(name)).toContain(`http://127.0.0.1:${port}/healthz`);
  });

  test('the demo models listen on 0.0.0.0 at their MODEL_PORT and check their own /healthz', () => {
    for (const name of ['model-v1', 'model-v2', 'model-v3']) {
      expect(env(name).MODEL_HOST).toBe('0.0.0.0');
      expect(Number(env(name).MODEL_PORT)).toBeGreaterThan(0);
      expect(healthcheckText(name)).toContain('process.env.MODEL_PORT');
      for (const p of (services[name]!.ports ?? []).map(portMapping)) expect(p.target).toBe(Number(env(name).MODEL_PORT));
    }
  });

  test('GATEWAY_URL names the gateway service at its GATEWAY_PORT', () => {
    const gatewayUrl = `http://gateway:${env('gateway').GATEWAY_PORT}`;
    expect(env('worker').GATEWAY_URL).toBe(gatewayUrl);
    expect(env('api').GATEWAY_URL).toBe(gatewayUrl);
    const traffic = argv(services['demo-traffic']!.command);
    expect(traffic[traffic.indexOf('--gateway') + 1]).toBe(gatewayUrl);
  });

  test('TEMPORAL_ADDRESS names the Temporal service at its frontend port', () => {
    const frontend = (services.temporal!.ports ?? []).map(portMapping).map((p) => p.target);
    expect(frontend).toEqual([7233]); // the frontend's grpcPort in the auto-setup image
    for (const name of ['worker', 'api', 'temporal-setup', 'temporal-ui']) {
      const { host, port } = hostPort(env(name).TEMPORAL_ADDRESS!);
      expect(host).toBe('temporal');
      expect(port).toBe(7233);
    }
  });

  test('Temporal, its UI and Prometheus are published on 127.0.0.1 only (no authentication of their own)', () => {
    for (const name of ['temporal', 'temporal-ui', 'prometheus']) {
      expect([name, (services[name]!.ports ?? []).length]).toEqual([name, 1]);
      for (const p of (services[name]!.ports ?? []).map(portMapping)) expect(p.ip).toBe('127.0.0.1');
    }
    expect(services.postgres!.ports).toBeUndefined();
  });
});

// ---------------------------------------------------------------- Prometheus

interface ScrapeConfig {
  job_name: string;
  metrics_path?: string;
  static_configs?: { targets: string[] }[];
}

describe('Prometheus', () => {
  const prometheus = services.prometheus!;
  const configArg = argv(prometheus.command).find((a) => a.startsWith('--config.file='))!;
  const configPath = configArg?.slice('--config.file='.length);
  const mount = (prometheus.volumes ?? []).map((v) => v.split(':')).find(([, target]) => target === configPath);

  test('runs deploy/prometheus.yml (mounted where --config.file says)', () => {
    expect(configPath).toBeDefined();
    expect(mount).toBeDefined();
    expect(relative(ROOT, resolve(ROOT, mount![0]!))).toBe('deploy/prometheus.yml');
  });

  test("scrapes the gateway's /metrics at the port the gateway listens on, and Temporal's", () => {
    const config = parse(readFileSync(join(ROOT, 'deploy/prometheus.yml'), 'utf8')) as { scrape_configs: ScrapeConfig[] };
    const targetsOf = (job: ScrapeConfig) => (job.static_configs ?? []).flatMap((s) => s.targets);
    const gatewayTarget = `gateway:${env('gateway').GATEWAY_PORT}`;
    const gatewayJob = config.scrape_configs.find((j) => targetsOf(j).includes(gatewayTarget));
    expect(gatewayJob).toBeDefined();
    expect(gatewayJob!.metrics_path ?? '/metrics').toBe('/metrics');
    // …which is where the gateway serves Prometheus text.
    expect(readFileSync(join(ROOT, 'src/gateway/server.ts'), 'utf8')).toContain("pathname === '/metrics'");

    const temporalEndpoint = env('temporal').PROMETHEUS_ENDPOINT!;
    const temporalJob = config.scrape_configs.find((j) => targetsOf(j).includes(`temporal:${hostPort(temporalEndpoint).port}`));
    expect(temporalJob).toBeDefined();
  });
});

// ---------------------------------------------------------------- start order and Temporal setup

describe('start order and Temporal setup', () => {
  test('the setup registers exactly the search attributes the workflow uses', () => {
    const listed = env('temporal-setup').SEARCH_ATTRIBUTES!.split(/\s+/).filter(Boolean);
    const expected = Object.entries(SEARCH_ATTRIBUTE_REGISTRATIONS).map(([name, type]) => `${name}=${type}`);
    expect(listed.sort()).toEqual(expected.sort());
    const entrypoint = argv(services['temporal-setup']!.entrypoint);
    const script = entrypoint.find((a) => a.endsWith('.sh'))!;
    const mount = (services['temporal-setup']!.volumes ?? []).map((v) => v.split(':')).find(([, target]) => target === script);
    expect(relative(ROOT, resolve(ROOT, mount![0]!))).toBe('deploy/temporal-setup.sh');
    expect(spawnSync('bash', ['-n', join(ROOT, 'deploy/temporal-setup.sh')]).status).toBe(0);
  });

  test('the worker and the API start after the setup; every service waited for as healthy has a healthcheck', () => {
    for (const name of ['worker', 'api']) {
      expect(services[name]!.depends_on?.['temporal-setup']?.condition).toBe('service_completed_successfully');
    }
    for (const [name, service] of Object.entries(services)) {
      for (const [dependency, { condition }] of Object.entries(service.depends_on ?? {})) {
        expect(services[dependency]).toBeDefined();
        if (condition === 'service_healthy') expect([name, dependency, services[dependency]!.healthcheck]).toEqual([name, dependency, expect.anything()]);
      }
    }
  });

  test('long-running services restart; the demo is a profile of its own', () => {
    for (const [name, service] of Object.entries(services)) {
      if (name === 'temporal-setup') expect(service.restart).toBe('no');
      else expect([name, service.restart]).toEqual([name, 'unless-stopped']);
      const demo = name.startsWith('model-') || name.startsWith('demo-');
      expect([name, service.profiles]).toEqual([name, demo ? ['demo'] : undefined]);
    }
  });

  test('third-party images are pinned to a version', () => {
    for (const [name, service] of Object.entries(services)) {
      if (service.build !== undefined) continue;
      expect([name, service.image]).toEqual([name, expect.stringMatching(/^[\w./-]+:v?\d+\.\d+(\.\d+)?(-[\w.]+)?$/)]);
    }
  });
});

// ---------------------------------------------------------------- the Dockerfile

interface Stage {
  from: string;
  name?: string;
  lines: string[];
}

/** Stages of a Dockerfile, with continuation lines joined and comments dropped. */
function dockerStages(text: string): Stage[] {
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const stages: Stage[] = [];
  for (const line of lines) {
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) stages.push({ from: from[1]!, ...(from[2] ? { name: from[2] } : {}), lines: [] });
    else stages.at(-1)?.lines.push(line);
  }
  return stages;
}

describe('Dockerfile', () => {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const stages = dockerStages(text);
  const runtime = stages.at(-1)!;
  const build = stages.find((s) => s.name === 'build')!;
  const instructions = (stage: Stage, op: string) => stage.lines.filter((l) => l.toUpperCase().startsWith(`${op} `)).map((l) => l.slice(op.length + 1).trim());

  test('multi-stage: the build stage compiles with `npm run build` (tsconfig.build.json: src → dist/src)', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(build).toBeDefined();
    expect(instructions(build, 'RUN').join('\n')).toMatch(/npm ci\b/);
    expect(instructions(build, 'RUN').join('\n')).toMatch(/npm run build\b/);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.build).toBe('tsc -p tsconfig.build.json');
    const tsconfig = JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8')) as {
      compilerOptions: { rootDir: string; outDir: string };
      include: string[];
    };
    expect([tsconfig.compilerOptions.rootDir, tsconfig.compilerOptions.outDir, tsconfig.include]).toEqual(['.', 'dist', ['src']]);
  });

  test('the runtime stage runs as a non-root user, NODE_ENV=production', () => {
    const users = instructions(runtime, 'USER');
    expect(users.length).toBeGreaterThan(0);
    expect(users.at(-1)).not.toMatch(/^(root|0)(:|$)/);
    // USER comes before CMD, and nothing runs after it as root.
    const lastUser = runtime.lines.findIndex((l) => /^USER /i.test(l) && l.endsWith(users.at(-1)!));
    expect(runtime.lines.slice(lastUser).some((l) => /^RUN /i.test(l))).toBe(false);
    expect(instructions(runtime, 'ENV').join(' ')).toMatch(/\bNODE_ENV=production\b/);
  });

  test('the runtime stage installs production dependencies only and takes nothing but dist from the build', () => {
    const installs = instructions(runtime, 'RUN')
      .flatMap((r) => r.split(/&&|;/))
      .map((c) => c.trim())
      .filter((c) => /^npm (ci|install|i)\b/.test(c));
    expect(installs.length).toBe(1);
    expect(installs[0]).toMatch(/^npm ci\b.*--omit=dev\b/);
    const fromBuild = instructions(runtime, 'COPY').filter((c) => c.startsWith('--from='));
    expect(fromBuild.length).toBeGreaterThan(0);
    for (const copy of fromBuild) expect(copy).toMatch(/^--from=build\s+\/app\/dist\s+\S*dist\/?$/);
  });

  test("every model-canary service's command is a compiled entry point; the default command is one of them", () => {
    const commands = ours.map(([name]) => argv(services[name]!.command).slice(0, 2).join(' '));
    for (const c of commands) expect(c).toMatch(/^node dist\/src\/.+\.js$/);
    const cmd = JSON.parse(instructions(runtime, 'CMD').at(-1)!) as string[];
    expect(commands).toContain(cmd.join(' '));
  });

  test('.dockerignore keeps everything but the sources out of the build context (.env and its tokens too)', () => {
    const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    expect(ignore[0]).toBe('*');
    for (const kept of ignore.slice(1)) expect(kept).toMatch(/^!(src|package\.json|package-lock\.json|tsconfig(\.build)?\.json)$/);
    // what the build stage copies is all kept
    for (const copy of instructions(build, 'COPY')) {
      for (const source of copy.split(/\s+/).slice(0, -1)) expect(ignore).toContain(`!${source.replace(/\/$/, '')}`);
    }
  });
});
