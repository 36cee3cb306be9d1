/**
 * DEMO ONLY — a rule-based stand-in for an answer evaluator ("LLM as a judge"), for demos and
 * tests of answer-quality comparison. It reads no model and knows nothing of quality: a few
 * surface rules decide. Never a production path.
 *
 * `POST /evaluate` with `{prompt, baseline, candidate}` — `prompt` the OpenAI chat request body,
 * `baseline` and `candidate` the two answers' text — answers `{verdict, reason, baseline,
 * candidate}`: `verdict` is "better" | "same" | "worse" (the candidate against the baseline),
 * `reason` says which rules decided, and `baseline` / `candidate` list each answer's defects.
 * Each answer is scored by its defects, the heavier the worse:
 *  - `empty` (3): nothing but whitespace;
 *  - `truncated` (2): looks cut off — the request asked for JSON (response_format json_object /
 *    json_schema) and it does not parse; or its brackets or quotes do not balance; or it ends in a
 *    space or tab, a comma, colon, semicolon, hyphen or an opening bracket (a cut between tokens);
 *  - `off-topic` (1): the last user message has keywords (words of 4+ letters that are not
 *    stop words) and the answer contains none of them;
 *  - `much longer` / `much shorter` (1, candidate only, when neither answer is empty or
 *    truncated): over 1.5× or under 0.67× the baseline's words — the baseline is the reference.
 * Lower total wins; equal totals are "same". `GET /healthz` answers `{status: "ok"}`.
 *
 * CLI: `tsx src/demo/evaluator-main.ts --port 9100` (src/demo/evaluator-main.ts).
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { jsonAnswerKey } from './model-server';

export type Verdict = 'better' | 'same' | 'worse';

export interface Evaluation {
  verdict: Verdict;
  reason: string;
  /** Each answer's defects (rule names). */
  baseline: string[];
  candidate: string[];
}

const WEIGHTS: Record<string, number> = { empty: 3, truncated: 2, 'off-topic': 1, 'much longer': 1, 'much shorter': 1 };

const STOP_WORDS = new Set(
  'about above after again against also because been before being below between both could does doing down during each from further have having here into itself just more most other over same should some such than that their theirs them then there these they this those through under until very were what when where which while whom with would your yours please tell explain give make write'.split(
    ' ',
  ),
);

/** The text of a message's content (a string, or the text parts of an array). */
function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return (content as unknown[])
      .map((part) => (part as { text?: unknown } | null)?.text)
      .filter((t): t is string => typeof t === 'string')
      .join(' ');
  }
  return '';
}

/** Keywords of the prompt's last user message: lower-case words of 4+ letters, no stop words. */
export function promptKeywords(prompt: unknown): string[] {
  const messages = (prompt as { messages?: unknown } | null)?.messages;
  if (!Array.isArray(messages)) return [];
  const lastUser = [...(messages as unknown[])].reverse().find((m) => (m as { role?: unknown } | null)?.role === 'user') as { content?: unknown } | undefined;
  const words = contentText(lastUser?.content).toLowerCase().match(/\p{L}{4,}/gu) ?? [];
  return [...new Set(words.filter((w) => !STOP_WORDS.has(w)))];
}

function wordCount(text: string): number {
  return text.split(/\s+/).filter(Boolean).length;
}

/** Whether `text` looks cut off (module doc, `truncated`). */
export function looksTruncated(text: string, wantsJson: boolean): boolean {
  if (wantsJson) {
    try {
      JSON.parse(text);
    } catch {
      return true;
    }
    return false;
  }
  if (/[ \t,:;\-([{]$/.test(text)) return true;
  const count = (re: RegExp) => (text.match(re) ?? []).length;
  if (count(/\(/g) !== count(/\)/g) || count(/\[/g) !== count(/\]/g) || count(/\{/g) !== count(/\}/g)) return true;
  if (count(/```/g) % 2 === 1 || count(/"/g) % 2 === 1) return true;
  return false;
}

function defectsOf(text: string, wantsJson: boolean, keywords: string[]): string[] {
  if (text.trim() === '') return ['empty'];
  const defects: string[] = [];
  if (looksTruncated(text, wantsJson)) defects.push('truncated');
  const lower = text.toLowerCase();
  if (keywords.length > 0 && !keywords.some((k) => lower.includes(k))) defects.push('off-topic');
  return defects;
}

const score = (defects: string[]) => defects.reduce((sum, d) => sum + (WEIGHTS[d] ?? 1), 0);

/** The candidate answer against the baseline's, by the rules of the module doc. */
export function evaluate(prompt: unknown, baseline: string, candidate: string): Evaluation {
  const wantsJson = jsonAnswerKey((prompt as { response_format?: unknown } | null)?.response_format) !== undefined;
  const keywords = promptKeywords(prompt);
  const b = defectsOf(baseline, wantsJson, keywords);
  const c = defectsOf(candidate, wantsJson, keywords);
  const broken = (d: string[]) => d.includes('empty') || d.includes('truncated');
  if (!broken(b) && !broken(c)) {
    const ratio = wordCount(candidate) / Math.max(1, wordCount(baseline));
    if (ratio > 1.5) c.push('much longer');
    else if (ratio < 0.67) c.push('much shorter');
  }
  const sb = score(b);
  const sc = score(c);
  const verdict: Verdict = sc < sb ? 'better' : sc > sb ? 'worse' : 'same';
  const list = (d: string[]) => (d.length ? d.join(', ') : 'no defects');
  const reason =
    verdict === 'same' && sb === 0
      ? 'neither answer has a defect'
      : `candidate: ${list(c)}; baseline: ${list(b)}${verdict === 'same' ? ' (as bad as each other)' : ''}`;
  return { verdict, reason, baseline: b, candidate: c };
}

export interface EvaluatorOptions {
  port?: number;
  host?: string;
}

export interface Evaluator {
  url: string;
  port: number;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 1024 * 1024;

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export async function startEvaluator(options: EvaluatorOptions = {}): Promise<Evaluator> {
  const host = options.host ?? '127.0.0.1';
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method === 'GET' && path === '/healthz') return send(res, 200, { status: 'ok' });
    if (path !== '/evaluate') return send(res, 404, { error: { message: `no route ${req.method} ${path}`, type: 'invalid_request_error' } });
    if (req.method !== 'POST') return send(res, 405, { error: { message: 'use POST', type: 'invalid_request_error' } });
    const chunks: Buffer[] = [];
    let bytes = 0;
    let tooLarge = false;
    req.on('data', (c: Buffer) => {
      bytes += c.length;
      if (bytes > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(c);
    });
    req.on('error', () => res.destroy());
    req.on('end', () => {
      if (tooLarge) return send(res, 413, { error: { message: `body over ${MAX_BODY_BYTES} bytes`, type: 'invalid_request_error' } });
      let body: { prompt?: unknown; baseline?: unknown; candidate?: unknown };
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof body;
      } catch {
        return send(res, 400, { error: { message: 'body is not JSON', type: 'invalid_request_error' } });
      }
      if (body === null || typeof body !== 'object' || typeof body.baseline !== 'string' || typeof body.candidate !== 'string') {
        return send(res, 400, { error: { message: 'give {prompt, baseline, candidate}: baseline and candidate are the answers\u2019 text', type: 'invalid_request_error' } });
      }
      if (body.prompt !== undefined && (body.prompt === null || typeof body.prompt !== 'object')) {
        return send(res, 400, { error: { message: 'prompt must be the chat request body (an object)', type: 'invalid_request_error' } });
      }
      send(res, 200, evaluate(body.prompt, body.baseline, body.candidate));
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}
