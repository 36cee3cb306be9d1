/**
 * The operator CLI, `model-canary` (bin/model-canary.js → src/cli/main.ts): the REST API from a
 * terminal or a CI pipeline. Commands: start, list, get [--watch], pause, resume, abort, promote,
 * approve, report [--html]. `--json` prints the API's JSON as it is; `--api URL` (else API_URL,
 * else http://127.0.0.1:3000) and API_TOKEN say where and how.
 *
 * Exit codes: 0 done (a watched rollout promoted), 1 an error (the message says which), and for a
 * watched rollout that ended otherwise 2 rolled_back, 3 aborted, 4 failed; 130 interrupted.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import {
  ApiResponseError,
  ApiUnreachableError,
  createClient,
  PHASES,
  rolloutId,
  watchRollout,
  type Action,
  type CanaryClient,
} from '../client';
import { API_ROLES, createApiToken, type ApiRole } from '../config';
import { isFinal, type Phase, type RolloutStatus } from '../workflows/status';
import { renderHtmlReport } from './html-report';
import { changeLines, clock, humanMs, phaseText, paint, renderList, renderReport, renderStatus, weightsText, stepText } from './render';
import { readSpecFile, SpecFileError } from './spec-file';

export const EXIT = { ok: 0, error: 1, rolled_back: 2, aborted: 3, failed: 4, interrupted: 130 } as const;

/** The exit code of a rollout's phase: 0 promoted, 2 rolled_back, 3 aborted, 4 failed (0 while it runs). */
export function exitCodeOf(phase: Phase | string): number {
  switch (phase) {
    case 'promoted':
      return EXIT.ok;
    case 'rolled_back':
      return EXIT.rolled_back;
    case 'aborted':
      return EXIT.aborted;
    case 'failed':
      return EXIT.failed;
    default:
      return EXIT.ok;
  }
}

export interface OutStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
  rows?: number;
}

export interface CliIo {
  stdout: OutStream;
  stderr: OutStream;
  env: NodeJS.ProcessEnv;
  /** Aborted on Ctrl-C: a watch stops and the CLI exits 130. */
  signal?: AbortSignal;
  /** For reading `-f -`. */
  readStdin?: () => string;
}

/** A failure with the one-line message the CLI prints (and more lines after it, such as a 400's issues). */
class CliError extends Error {
  constructor(
    message: string,
    readonly details: string[] = [],
    readonly exitCode: number = EXIT.error,
  ) {
    super(message);
  }
}

interface Globals {
  api?: string;
  color?: boolean;
}

/** Runs the CLI on `argv` (without node and the script); resolves with the exit code. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let code: number = EXIT.ok;
  const out = (line = '') => void io.stdout.write(`${line}\n`);
  const program = new Command('model-canary');
  const colorOf = (g: Globals, stream: OutStream) => g.color !== false && Boolean(stream.isTTY) && !io.env.NO_COLOR;

  program
    .description('Progressive delivery for AI model endpoints: start, watch and steer canary rollouts through the model-canary REST API.')
    .addOption(new Option('--api <url>', 'the REST API (default: $API_URL, else http://127.0.0.1:3000); API_TOKEN is sent as a bearer token'))
    .option('--no-color', 'no ANSI colours (also NO_COLOR)')
    .version(packageVersion(), '-V, --version')
    .showHelpAfterError('(model-canary --help lists the commands)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => void io.stdout.write(s), writeErr: (s) => void io.stderr.write(s) })
    .addHelpText(
      'after',
      `
A rollout is named by its target (chat) or its id (rollout-chat).
Exit codes: 0 ok (get --watch: promoted), 1 error, 2 rolled_back, 3 aborted, 4 failed, 130 interrupted.

Examples:
  model-canary start -f spec.yaml --watch
  model-canary get chat --watch        # CI: exits 0 only when chat is promoted
  model-canary abort chat --reason "bad answers"
  model-canary report chat --html report.html
  model-canary token create --name alice --role operator`,
    );

  const globals = (cmd: Command) => cmd.optsWithGlobals<Globals & { json?: boolean }>();
  const client = (cmd: Command): CanaryClient => {
    const g = globals(cmd);
    try {
      return createClient(g.api ? { baseUrl: g.api } : {}, io.env);
    } catch (err) {
      throw new CliError((err as Error).message);
    }
  };
  const jsonOut = (value: unknown) => out(JSON.stringify(value, null, 2));

  program
    .command('start')
    .description('start a rollout from a spec file (YAML or JSON; `-` reads stdin)')
    .requiredOption('-f, --file <spec>', 'the rollout spec: .yaml/.yml, .json, or told by its content')
    .option('-w, --watch', 'then watch it until it ends (exit code as get --watch)')
    .option('--json', 'print the API JSON')
    .option(
      '--idempotency-key <key>',
      'sent as Idempotency-Key (default: a new UUID, so its own retries are safe); give a stable one (e.g. the CI job id) and a re-run of the whole command gets the same rollout, not a second',
    )
    .action(async (opts: { file: string; watch?: boolean; json?: boolean; idempotencyKey?: string }, cmd: Command) => {
      const api = client(cmd);
      let spec: unknown;
      try {
        spec = readSpecFile(opts.file, io.readStdin).spec;
      } catch (err) {
        if (err instanceof SpecFileError) throw new CliError(err.message);
        throw err;
      }
      const { status, replayed } = await call(api, () => api.start(spec, opts.idempotencyKey ? { idempotencyKey: opts.idempotencyKey } : {}), { what: 'start' });
      if (opts.json && !opts.watch) return jsonOut(status);
      if (!opts.json) {
        const steps = status.spec.steps.map((s) => `${s.weight}%${s.bake ? ` (${humanMs(s.bake)})` : ''}`).join(' → ');
        // A key that started this rollout before: nothing new was started, say so (and where it is now).
        const versions = `${status.baseline.version} → ${status.candidate.version}, ${steps}`;
        out(replayed ? `${status.id} was already started by this Idempotency-Key (nothing new started), now ${status.phase}: ${versions}` : `started ${status.id}: ${versions}`);
        if (status.links?.temporalUi) out(`history: ${status.links.temporalUi}`);
      }
      if (opts.watch) code = await watch(api, status.id, { json: opts.json, color: colorOf(globals(cmd), io.stdout) });
    });

  program
    .command('list')
    .description('list rollouts (newest first)')
    .option('-t, --target <target>', 'only this target')
    .addOption(new Option('-p, --phase <phase>', 'only rollouts in this phase').choices(PHASES as string[]))
    .option('--limit <n>', 'at most n rollouts (1–1000)', positiveInt)
    .option('--json', 'print the API JSON')
    .action(async (opts: { target?: string; phase?: string; limit?: number; json?: boolean }, cmd: Command) => {
      const api = client(cmd);
      const filter = { ...(opts.target ? { target: opts.target } : {}), ...(opts.phase ? { phase: opts.phase } : {}), ...(opts.limit ? { limit: opts.limit } : {}) };
      const rollouts = await call(api, () => api.list(filter), { what: 'list' });
      if (opts.json) return jsonOut({ rollouts });
      for (const line of renderList(rollouts, { color: colorOf(globals(cmd), io.stdout) })) out(line);
    });

  program
    .command('get')
    .description("a rollout's status: phase, weights, steps and bake, evidence, the last decision, what it waits for")
    .argument('<rollout>', 'target (chat) or id (rollout-chat)')
    .option('-w, --watch', 'follow it until it ends: redraws on a terminal, one line per change otherwise; exit 0 promoted, 2 rolled_back, 3 aborted, 4 failed')
    .option('--run-id <runId>', 'a given run of the rollout (default: the latest)')
    .option('--poll <ms>', 'with --watch: time between polls (default 500)', positiveInt)
    .option('--json', 'print the API JSON (with --watch: one JSON status per line, per change)')
    .action(async (target: string, opts: { watch?: boolean; runId?: string; poll?: number; json?: boolean }, cmd: Command) => {
      const api = client(cmd);
      const id = rolloutId(target);
      const color = colorOf(globals(cmd), io.stdout);
      if (opts.watch) {
        code = await watch(api, id, { json: opts.json, color, ...(opts.runId ? { runId: opts.runId } : {}), ...(opts.poll ? { pollMs: opts.poll } : {}) });
        return;
      }
      const status = await call(api, () => api.get(id, opts.runId ? { runId: opts.runId } : {}), { id });
      if (opts.json) return jsonOut(status);
      for (const line of renderStatus(status, { color, ...(io.stdout.isTTY && io.stdout.columns ? { width: io.stdout.columns - 1 } : {}) })) out(line);
    });

  const actions: Array<{ action: Action; description: string; done: string }> = [
    { action: 'pause', description: 'pause a rollout: no checks, no bake time, weights stay', done: 'paused' },
    { action: 'resume', description: 'resume a paused rollout', done: 'resumed' },
    { action: 'abort', description: 'abort a rollout: traffic goes back to the baseline', done: 'aborted' },
    { action: 'promote', description: 'promote the candidate to 100% now, skipping the remaining steps', done: 'promoted' },
    { action: 'approve', description: 'approve a manual gate', done: 'approved' },
  ];
  for (const { action, description, done } of actions) {
    const command = program.command(action).description(description).argument('<rollout>', 'target (chat) or id (rollout-chat)');
    if (action === 'abort') command.option('-r, --reason <reason>', 'why (kept in the outcome and the events)');
    command.option('--json', 'print the API JSON').action(async (target: string, opts: { reason?: string; json?: boolean }, cmd: Command) => {
      const api = client(cmd);
      const id = rolloutId(target);
      const status = await call(api, () => api.act(action, id, opts.reason !== undefined ? { reason: opts.reason } : {}), { id, action });
      if (opts.json) return jsonOut(status);
      const p = paint(colorOf(globals(cmd), io.stdout));
      out(`${done} ${status.id}: phase ${phaseText(status.phase, p)} · ${stepText(status)} · ${weightsText(status)}${status.outcome ? ` · ${status.outcome.reason}` : ''}`);
    });
  }

  const token = program.command('token').description('API tokens: `token create` makes one for API_TOKENS_FILE / API_TOKENS');
  token
    .command('create')
    .description('print a new random API token, and the entry (name, role, sha256) to add to API_TOKENS_FILE or API_TOKENS; nothing is sent or stored')
    .requiredOption('-n, --name <name>', 'who the token is for: recorded as `by` in the rollouts it starts or steers')
    .addOption(new Option('-r, --role <role>', 'viewer: reads only; operator: also start and actions').choices(API_ROLES as unknown as string[]).makeOptionMandatory())
    .option('--json', 'print {token, entry} as JSON')
    .action((opts: { name: string; role: ApiRole; json?: boolean }) => {
      let made: ReturnType<typeof createApiToken>;
      try {
        made = createApiToken(opts.name, opts.role);
      } catch (err) {
        throw new CliError((err as Error).message);
      }
      const { token: secret, entry } = made;
      if (opts.json) return jsonOut({ token: secret, entry });
      out(`token for ${entry.name} (${entry.role}) — give it to them (API_TOKEN=… for the CLI); it is not stored anywhere and cannot be shown again:`);
      out(`  ${secret}`);
      out('');
      out('add this entry to the API_TOKENS_FILE list (YAML):');
      out(`  - name: ${entry.name}`);
      out(`    role: ${entry.role}`);
      out(`    sha256: ${entry.sha256}`);
      out('');
      out('or, for API_TOKENS (a JSON list):');
      out(`  [${JSON.stringify(entry)}]`);
      out('then restart the API.');
    });

  program
    .command('report')
    .description('a report of a rollout: every decision (seq, time, weight, verdict, action, summary); --html writes a page with charts')
    .argument('<rollout>', 'target (chat) or id (rollout-chat)')
    .option('--html <file>', 'write one self-contained HTML page (charts inlined, opens offline)')
    .option('--run-id <runId>', 'a given run of the rollout (default: the latest)')
    .option('--json', 'print the API JSON')
    .action(async (target: string, opts: { html?: string; runId?: string; json?: boolean }, cmd: Command) => {
      const api = client(cmd);
      const id = rolloutId(target);
      const status = await call(api, () => api.get(id, opts.runId ? { runId: opts.runId } : {}), { id });
      if (opts.html) {
        const file = resolve(opts.html);
        try {
          writeFileSync(file, renderHtmlReport(status));
        } catch (err) {
          throw new CliError(`cannot write ${opts.html}: ${(err as Error).message}`);
        }
        if (!opts.json) out(`wrote ${file} (${status.decisions.length} decisions; open it in a browser, no network needed)`);
      }
      if (opts.json) return jsonOut(status);
      if (!opts.html) for (const line of renderReport(status, { color: colorOf(globals(cmd), io.stdout) })) out(line);
    });

  /** Follows a rollout until it ends; the exit code of its final phase. */
  async function watch(api: CanaryClient, id: string, o: { json?: boolean; color: boolean; runId?: string; pollMs?: number }): Promise<number> {
    const tty = Boolean(io.stdout.isTTY) && !o.json;
    const events = watchRollout(api, id, { ...(io.signal ? { signal: io.signal } : {}), ...(o.runId ? { runId: o.runId } : {}), ...(o.pollMs ? { pollMs: o.pollMs } : {}) });
    const screen = tty ? new Screen(io.stdout) : undefined;
    let last: RolloutStatus | undefined;
    let trouble: string | undefined;
    const draw = () => {
      if (!screen || !last) return;
      const width = Math.max(40, (io.stdout.columns ?? 100) - 1);
      const lines = renderStatus(last, { color: o.color, width });
      if (trouble) lines.push(paint(o.color).yellow(`(${clock(Date.now())} ${trouble}; still trying)`));
      else if (!isFinal(last.phase)) lines.push(paint(o.color).dim('watching… Ctrl-C stops watching (the rollout goes on)'));
      screen.draw(lines);
    };
    const ticker = screen ? setInterval(draw, 1_000) : undefined;
    screen?.hideCursor();
    try {
      let first = true;
      for await (const event of events) {
        if (event.kind === 'trouble') {
          // Before the first status, an API that is not there is an error, not something to wait for.
          if (first) throw event.error;
          trouble = event.message;
          if (!screen && !o.json) io.stderr.write(`${clock(Date.now())} ${event.message}; still trying\n`);
          draw();
          continue;
        }
        trouble = undefined;
        const { status, changes } = event;
        last = status;
        if (o.json) out(JSON.stringify(status));
        else if (screen) draw();
        else if (first && changes.final) for (const line of renderStatus(status)) out(line);
        else for (const line of changeLines(status, changes, { color: o.color })) out(line);
        first = false;
      }
    } catch (err) {
      throw toCliError(err, { id });
    } finally {
      if (ticker) clearInterval(ticker);
      screen?.showCursor();
    }
    if (!last || !isFinal(last.phase)) {
      if (!o.json) io.stderr.write(`stopped watching ${id}${last ? ` (it is ${last.phase}; the rollout goes on)` : ''}\n`);
      return EXIT.interrupted;
    }
    if (!o.json) {
      const p = paint(o.color);
      out(`${last.id} ${phaseText(last.phase, p)}${last.outcome ? `: ${last.outcome.reason}` : ''} (exit ${exitCodeOf(last.phase)})`);
    }
    return exitCodeOf(last.phase);
  }

  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.error; // commander printed it
    const e = err instanceof CliError ? err : toCliError(err, {});
    io.stderr.write(`model-canary: ${e.message}\n`);
    for (const line of e.details) io.stderr.write(`  ${line}\n`);
    return e.exitCode;
  }
}

/** Calls the API, turning its errors into one clear line. */
async function call<T>(_api: CanaryClient, fn: () => Promise<T>, context: { id?: string; action?: string; what?: string }): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toCliError(err, context);
  }
}

function toCliError(err: unknown, context: { id?: string; action?: string; what?: string }): CliError {
  if (err instanceof CliError) return err;
  if (err instanceof ApiUnreachableError) return new CliError(err.message);
  if (err instanceof ApiResponseError) {
    const issues = err.issues.map((i) => `${i.path}: ${i.message}`);
    if (err.status === 404 && err.code === 'not_found' && context.id) {
      return new CliError(`no rollout ${context.id} (404; \`model-canary list\` shows the rollouts)`);
    }
    if (err.status === 401) return new CliError(`the API refused the request (401 ${err.code}: ${err.message}); set API_TOKEN to its token`);
    if (err.status === 403) return new CliError(`the API refused the request (403 ${err.code}: ${err.message}); use a token with that role (API_TOKEN)`);
    if (err.status === 400 && err.code === 'invalid_spec') return new CliError(`the API refused the spec (400 invalid_spec): ${err.issues.length} problem${err.issues.length === 1 ? '' : 's'}`, issues);
    const doing = context.action ? `cannot ${context.action} ${context.id}` : context.what === 'start' ? 'cannot start the rollout' : `${err.method} ${err.path}`;
    return new CliError(`${doing}: ${err.message} (${err.status} ${err.code})`, issues);
  }
  if (err instanceof Error) return new CliError(err.message);
  return new CliError(String(err));
}

function positiveInt(value: string): number {
  if (!/^[0-9]+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('must be a whole number ≥ 1');
  return Number(value);
}

function packageVersion(): string {
  try {
    return (require('../../package.json') as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

/**
 * Redraws a block of lines in place: the cursor goes back up over what was drawn before (ANSI
 * CSI n A), each row is rewritten and cleared to its end (CSI K), and the rows below are cleared
 * (CSI J). Lines are wrapped to the width beforehand, so
 * one line is one row; a block taller than the terminal is cut to fit.
 */
class Screen {
  private rows = 0;
  constructor(private readonly stream: OutStream) {}
  draw(lines: string[]): void {
    const height = this.stream.rows && this.stream.rows > 2 ? this.stream.rows - 1 : lines.length;
    const shown = lines.length > height ? [...lines.slice(0, height - 1), '…'] : lines;
    // Back up over the last block, overwrite each row (erasing its rest), then erase what is left
    // below. (Erasing from the top first would clear a whole screen when the block starts at the
    // top, which terminals such as tmux scroll into their history.)
    let text = this.rows > 0 ? `\x1b[${this.rows}A\r` : '';
    text += shown.map((l) => `${l}\x1b[K\n`).join('') + '\x1b[J';
    this.rows = shown.length;
    this.stream.write(text);
  }
  hideCursor(): void {
    this.stream.write('\x1b[?25l');
  }
  showCursor(): void {
    this.stream.write('\x1b[?25h');
  }
}
