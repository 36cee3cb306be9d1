/** A tiny OpenAI-compatible upstream for the gateway's LLM tests: SSE or JSON answers with controlled delays. */
import type { IncomingMessage } from 'node:http';
import { listen, type TestServer } from './helpers';

export interface LlmServerOptions {
  version: string;
  /** Delay before the first content chunk (a JSON answer: before the answer). */
  ttftMs: number;
  /** Delay between content chunks. */
  gapMs: number;
  /** The content, one piece per chunk. */
  pieces?: string[];
  finishReason?: string;
  /** Leave usage out of JSON answers (streams carry it only with stream_options.include_usage). */
  noUsage?: boolean;
}

export interface Received {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
}

export interface LlmServer extends TestServer {
  received: Received[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export const PROMPT_TOKENS = 11;

export async function llmServer(options: LlmServerOptions): Promise<LlmServer> {
  const received: Received[] = [];
  const pieces = options.pieces ?? ['Hello', ' there', ' my', ' friend'];
  const server = await listen((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(chunks).toString('utf8');
        received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
        if (!(req.url ?? '').split('?')[0]!.endsWith('/completions')) {
          const text = JSON.stringify({ version: options.version, bytes: Buffer.byteLength(body), body });
          res.writeHead(200, { 'content-type': 'application/json' }).end(text);
          return;
        }
        let request: { stream?: boolean; stream_options?: { include_usage?: boolean } } = {};
        try {
          request = JSON.parse(body) as typeof request;
        } catch {
          // not JSON: answered like any other
        }
        const usage = { prompt_tokens: PROMPT_TOKENS, completion_tokens: pieces.length, total_tokens: PROMPT_TOKENS + pieces.length };
        if (request.stream !== true) {
          await sleep(options.ttftMs);
          const answer = {
            object: 'chat.completion',
            model: options.version,
            choices: [{ index: 0, message: { role: 'assistant', content: pieces.join('') }, finish_reason: options.finishReason ?? 'stop' }],
            ...(options.noUsage ? {} : { usage }),
          };
          res.writeHead(200, { 'content-type': 'application/json', 'x-model': options.version }).end(JSON.stringify(answer));
          return;
        }
        res.writeHead(200, { 'content-type': 'text/event-stream', 'x-model': options.version });
        res.flushHeaders();
        const event = (data: unknown) => res.write(`data: ${JSON.stringify(data)}\n\n`);
        event({ choices: [{ index: 0, delta: { role: 'assistant' }, finish_reason: null }] });
        for (let i = 0; i < pieces.length; i++) {
          await sleep(i === 0 ? options.ttftMs : options.gapMs);
          res.write(': keep-alive\n\n');
          event({ choices: [{ index: 0, delta: { content: pieces[i] }, finish_reason: null }] });
        }
        event({ choices: [{ index: 0, delta: {}, finish_reason: options.finishReason ?? 'stop' }] });
        if (request.stream_options?.include_usage) event({ choices: [], usage });
        res.end('data: [DONE]\n\n');
      })();
    });
  });
  return Object.assign(server, { received });
}

export function chatBody(extra: Record<string, unknown> = {}, content = 'say hello to my friend'): string {
  return JSON.stringify({ model: 'm', messages: [{ role: 'user', content }], ...extra });
}
