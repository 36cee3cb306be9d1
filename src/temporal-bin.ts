/**
 * Where the Temporal binaries are: an env var override, then the project's `.temporal-bin/`
 * (filled by `scripts/install-temporal.sh`), then `PATH`. Nothing here downloads anything.
 */
import { existsSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';

export const PROJECT_ROOT = resolve(__dirname, '..');
export const TEMPORAL_BIN_DIR = process.env.TEMPORAL_BIN_DIR ?? join(PROJECT_ROOT, '.temporal-bin');

type TemporalBinary = 'temporal' | 'temporal-test-server';
const OVERRIDE: Record<TemporalBinary, string> = {
  temporal: 'TEMPORAL_CLI_PATH',
  'temporal-test-server': 'TEMPORAL_TEST_SERVER_PATH',
};

/** The binary's path, or undefined when it is nowhere to be found. */
export function findTemporalBinary(name: TemporalBinary): string | undefined {
  const override = process.env[OVERRIDE[name]];
  if (override) return override;
  const local = join(TEMPORAL_BIN_DIR, name);
  if (existsSync(local)) return local;
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

export function requireTemporalBinary(name: TemporalBinary): string {
  const path = findTemporalBinary(name);
  if (!path) {
    throw new Error(`${name} binary not found: run \`bash scripts/install-temporal.sh\` or set ${OVERRIDE[name]}`);
  }
  return path;
}
