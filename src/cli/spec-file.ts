/**
 * A rollout spec from a file (or stdin, `-`): JSON or YAML, told by the extension (.json,
 * .yaml/.yml) or else by the content (a `{` first: JSON). The spec itself is validated by the
 * API, which names every invalid field; this only turns text into a value, with the line and
 * column of a syntax error.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import YAML from 'yaml';

export type SpecFormat = 'json' | 'yaml';

export class SpecFileError extends Error {
  override name = 'SpecFileError';
}

/** JSON or YAML: by extension first, else by content. */
export function specFormat(file: string, text: string): SpecFormat {
  const ext = extname(file).toLowerCase();
  if (ext === '.json') return 'json';
  if (ext === '.yaml' || ext === '.yml') return 'yaml';
  return /^\s*[{[]/.test(text.replace(/^\uFEFF/, '')) ? 'json' : 'yaml';
}

/** Parses `text` (the content of `file`, for messages and the format) into the spec value. */
export function parseSpecText(file: string, text: string): { format: SpecFormat; spec: unknown } {
  const body = text.replace(/^\uFEFF/, '');
  const format = specFormat(file, body);
  if (!body.trim()) throw new SpecFileError(`${file} is empty: expected a rollout spec (YAML or JSON)`);
  if (format === 'json') {
    try {
      return { format, spec: JSON.parse(body) };
    } catch (err) {
      throw new SpecFileError(`${file} is not valid JSON: ${jsonErrorWhere(body, err as Error)}`);
    }
  }
  const doc = YAML.parseDocument(body, { uniqueKeys: true, prettyErrors: true });
  const problem = doc.errors[0];
  if (problem) {
    const at = problem.linePos?.[0];
    throw new SpecFileError(`${file}${at ? `:${at.line}:${at.col}` : ''} is not valid YAML: ${problem.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`);
  }
  if (doc.contents === null) throw new SpecFileError(`${file} holds no YAML document: expected a rollout spec`);
  return { format, spec: doc.toJS({ maxAliasCount: 100 }) };
}

/** Reads and parses a spec file (`-`: stdin). */
export function readSpecFile(file: string, readStdin: () => string = () => readFileSync(0, 'utf8')): { format: SpecFormat; spec: unknown } {
  let text: string;
  try {
    text = file === '-' ? readStdin() : readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : code === 'EACCES' ? 'permission denied' : (err as Error).message;
    throw new SpecFileError(`cannot read ${file}: ${why}`);
  }
  return parseSpecText(file === '-' ? '(stdin)' : file, text);
}

/** `Unexpected token } in JSON at position 42` → with line:column. */
function jsonErrorWhere(text: string, err: Error): string {
  const match = /position (\d+)/.exec(err.message);
  if (!match) return err.message;
  const pos = Number(match[1]);
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const col = pos - before.lastIndexOf('\n');
  return `${err.message.replace(/\s*\(line \d+ column \d+\)/, '')} (line ${line}, column ${col})`;
}
