/**
 * `model-canary get --watch` on a real pseudo-terminal: the CLI runs inside tmux (a 120×40
 * pane) against the real stack, and the test reads the screen with `tmux capture-pane`. On a
 * terminal the view is redrawn in place (one status block, never appended), shows the progress
 * bar, the phase and what the step waits for (a manual gate), and the command's exit code is
 * that of the outcome: 0 once approved and promoted, 2 for a rolled-back candidate.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, request } from '../helpers/http';
import { uniqueTarget } from '../helpers/specs';
import { CLI_BIN, cliEnv, elsewhere, Fleet, requireBinary, runCli, startStack, type Stack } from './support';

const socket = `mc-cli-${process.pid}`;
let tmux: string;
let stack: Stack;
let fleet: Fleet;
let dir: string;

beforeAll(async () => {
  tmux = requireBinary('tmux');
  stack = await startStack();
  fleet = new Fleet(stack.gatewayUrl);
  dir = elsewhere();
  writeFileSync(join(dir, 'tmux.conf'), 'set -g history-limit 2000\n'); // and no user config
}, 180_000);

afterAll(async () => {
  if (tmux) {
    try {
      execFileSync(tmux, ['-L', socket, 'kill-server'], { stdio: 'ignore' });
    } catch {
      // no server was started
    }
    rmSync(join(process.env.TMUX_TMPDIR || '/tmp', `tmux-${process.getuid?.() ?? 0}`, socket), { force: true });
  }
  await fleet?.close();
  await stack?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Runs `model-canary get <target> --watch` in a new tmux session; its exit code goes to `<name>.rc`. */
function watchInTmux(name: string, target: string): { rcFile: string } {
  const rcFile = join(dir, `${name}.rc`);
  const script = join(dir, `${name}.sh`);
  writeFileSync(
    script,
    [
      `cd ${JSON.stringify(dir)}`,
      'unset API_TOKEN NO_COLOR',
      `export API_URL=${JSON.stringify(stack.apiUrl)} LANG=C.UTF-8`,
      `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI_BIN)} get ${target} --watch`,
      `echo $? > ${JSON.stringify(rcFile)}`,
      // The pane stays as the CLI left it (the test reads the last screen) until kill-server.
      `${JSON.stringify(tmux)} wait-for ${name}-never`,
      '',
    ].join('\n'),
  );
  execFileSync(tmux, ['-L', socket, '-f', join(dir, 'tmux.conf'), '-u', 'new-session', '-d', '-x', '120', '-y', '40', '-s', name, `sh ${JSON.stringify(script)}`]);
  return { rcFile };
}

/** The pane's visible screen, as text. */
function screen(name: string): string {
  // -J: a line the terminal wrapped comes back whole (with its trailing blanks, dropped here).
  const text = execFileSync(tmux, ['-L', socket, 'capture-pane', '-p', '-J', '-t', name], { encoding: 'utf8' });
  return text.split('\n').map((line) => line.trimEnd()).join('\n');
}

async function screenShowing(name: string, pattern: RegExp, what: string): Promise<string> {
  let last = '';
  return eventually(
    async () => {
      last = screen(name);
      return pattern.test(last) ? last : undefined;
    },
    45_000,
    what,
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n--- screen ---\n${last}\n--- serve output ---\n${stack.output.join('').slice(-2000)}`);
  });
}

async function exitCode(rcFile: string): Promise<number> {
  const raw = await eventually(async () => (existsSync(rcFile) ? readFileSync(rcFile, 'utf8').trim() || undefined : undefined), 45_000, `${rcFile}`);
  return Number(raw);
}

/** Rows where a status block starts (its header line). */
const headerRows = (text: string, id: string) => text.split('\n').flatMap((line, i) => (line.startsWith(`${id}  `) ? [i] : []));

test('redraws in place on a terminal: progress bar, phase, waiting; exits 0 promoted, 2 rolled back', async () => {
  const [v1, v2, faulty] = await Promise.all([
    fleet.model({ version: 'v1', latencyMs: 15, latencySpread: 0.2 }),
    fleet.model({ version: 'v2', latencyMs: 15, latencySpread: 0.2 }),
    fleet.model({ version: 'v3', latencyMs: 15, latencySpread: 0.2, errorRate: 0.5 }),
  ]);
  const gated = uniqueTarget('tty-gate');
  const broken = uniqueTarget('tty-bad');
  await Promise.all([fleet.serve(gated, v1), fleet.serve(broken, v1)]);
  const analysis = { interval: '1s', minRequests: 5, readiness: 'advisory' };
  const start = async (body: unknown) => {
    const res = await request(stack.apiUrl, 'POST', '/v1/rollouts', { body });
    if (res.status !== 201) throw new Error(`start: ${res.status} ${JSON.stringify(res.body)}`);
  };
  await start({ target: gated, baseline: { version: 'v1', url: v1.url }, candidate: { version: 'v2', url: v2.url }, steps: [{ weight: 30, bake: '2s', gate: 'manual' }, { weight: 100 }], analysis });

  const gate = watchInTmux('gate', gated);
  const id = `rollout-${gated}`;

  // While it progresses: the progress bar and the bake.
  const baking = await screenShowing('gate', new RegExp(`^${id} {2}(progressing|awaiting_approval) .*\\n(.*\\n)*progress {4}\\[[█▌·]{30}\\] step 1/2 · v2 at 30%`, 'm'), 'the progress bar at 30%');
  expect(baking).toMatch(/^steps {7}▶30% {2}100%$/m);
  expect(baking).toMatch(/^bake {8}\[[█▌·]{20}\] \S+ of 2s \(\d+%\).* · then a manual gate \(approve\)$/m);

  // At the gate: phase and waiting, redrawn over the earlier frames (one block, at the same row).
  const waiting = await screenShowing('gate', /^waiting {5}awaiting_approval: /m, 'the manual gate');
  expect(waiting).toMatch(new RegExp(`^${id} {2}awaiting_approval {2}updated \\d\\d:\\d\\d:\\d\\d \\(.+ ago\\)$`, 'm'));
  expect(waiting).toMatch(/^waiting {5}awaiting_approval: step 1 has baked; it waits for an operator to approve/m);
  expect(waiting).toMatch(/^last check {2}#\d+ at \d\d:\d\d:\d\d · step 1 @30% · PASS · then end/m);
  expect(waiting).toMatch(/^summary {5}v2 at 30%: /m);
  expect(waiting).toMatch(/^watching… Ctrl-C stops watching \(the rollout goes on\)$/m);
  expect(headerRows(waiting, id)).toEqual(headerRows(baking, id));
  expect(headerRows(waiting, id)).toHaveLength(1);
  expect(existsSync(gate.rcFile)).toBe(false); // still watching

  // The rolled-back one, in a second session, meanwhile.
  await start({ target: broken, baseline: { version: 'v1', url: v1.url }, candidate: { version: 'v3', url: faulty.url }, steps: [{ weight: 50, bake: '30s' }, { weight: 100 }], analysis });
  const bad = watchInTmux('bad', broken);

  const approved = await runCli(['approve', gated], { env: cliEnv({ API_URL: stack.apiUrl }), cwd: dir });
  expect(approved.code).toBe(0);

  expect(await exitCode(gate.rcFile)).toBe(0);
  const done = screen('gate');
  expect(done).toMatch(new RegExp(`^${id} {2}promoted {2}updated`, 'm'));
  expect(done).toMatch(/^progress {4}\[█{30}\] all 2 steps done · v2 at 100%$/m);
  expect(done).toMatch(/^steps {7}✓30% ✓100%$/m);
  expect(done).toMatch(/^outcome {5}promoted at \d\d:\d\d:\d\d: every step passed$/m);
  // The stack's API has no token: the audit names nobody in particular.
  expect(done).toMatch(/^last action approve via update by anonymous at \d\d:\d\d:\d\d: applied/m);
  expect(done).toMatch(new RegExp(`^${id} promoted: every step passed \\(exit 0\\)$`, 'm'));
  expect(done).not.toMatch(/^watching…/m); // the block's last redraw replaced the footer
  expect(headerRows(done, id)).toEqual(headerRows(baking, id));

  expect(await exitCode(bad.rcFile)).toBe(2);
  const badScreen = screen('bad');
  const badId = `rollout-${broken}`;
  expect(badScreen).toMatch(new RegExp(`^${badId} {2}rolled_back {2}updated`, 'm'));
  expect(badScreen).toMatch(/^steps {7}✗50% {2}100%$/m);
  expect(badScreen).toMatch(/^evidence {4}errors +e=\S+ +\[[█▌·]{10}\] (below|reached) rollback at 166\.7 · /m);
  expect(badScreen).toMatch(new RegExp(`^${badId} rolled_back: the sequential judge failed the candidate: .* \\(exit 2\\)$`, 'm'));
  expect(headerRows(badScreen, badId)).toHaveLength(1);
  console.log(`tmux screen at the manual gate:\n${waiting.trimEnd()}`);
}, 90_000);
