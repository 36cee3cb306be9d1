/**
 * Metering of OpenAI-compatible LLM traffic (chat completions and completions, JSON or SSE).
 * Pure: no I/O, no clock — the proxy passes each response chunk through to the client first and
 * then hands it here with its arrival time, so nothing here ever holds the response back.
 *
 * What is measured, per request:
 *  - time to first token: request start → the first SSE event carrying content
 *    (`choices[].delta.content`, or `.text` for completions); for a JSON answer, the time its
 *    whole body arrived;
 *  - inter-token latency: the gap between successive content events (one observation per gap);
 *  - tokens: `usage.prompt_tokens` / `usage.completion_tokens` when the answer gives them (the JSON
 *    body, or the stream's chunk sent with `stream_options.include_usage`); otherwise an
 *    APPROXIMATION: whitespace-separated words (of the request's message contents or prompt, and
 *    of the answer's content). Real tokenizers give roughly 1.3 tokens per English word, so the
 *    two versions compare fairly only when both answers carry usage or neither does;
 *  - generation time (first → last content event; 0 for a JSON answer), truncation
 *    (`finish_reason: "length"`), and structured output: a request asking for
 *    `response_format.type` json_object or json_schema, and whether the answer's content (the
 *    concatenated deltas) parses as JSON.
 */

export type LlmKind = 'chat' | 'completion';

/** Largest SSE line (and JSON answer) parsed; beyond, the answer is not metered (a runaway or not an LLM stream). */
const MAX_PARSED_BYTES = 1 << 20;
/** Answer content kept for the structured-output check and the evaluator; beyond, it is not kept. */
const MAX_CONTENT_CHARS = 1 << 20;

/** The LLM endpoint a request is for, from its method and path (query included or not); undefined for any other traffic. */
export function llmKindOf(method: string | undefined, path: string): LlmKind | undefined {
  if (method !== 'POST') return undefined;
  const queryAt = path.indexOf('?');
  const pathname = queryAt === -1 ? path : path.slice(0, queryAt);
  if (!pathname.endsWith('/completions')) return undefined;
  return pathname.endsWith('/chat/completions') ? 'chat' : 'completion';
}

/** What metering needs of the request body. */
export interface LlmRequest {
  kind: LlmKind;
  /** The request body, parsed (sent to the evaluator as the prompt). */
  body: Record<string, unknown>;
  /** Asked for `response_format` json_object or json_schema. */
  structured: boolean;
  /** Approximate input tokens (words of the messages' contents or the prompt), used when the answer has no usage. */
  approxInputTokens: number;
}

/** The request body as an LLM request, or undefined when it is not a JSON object. */
export function parseLlmRequest(kind: LlmKind, body: Buffer): LlmRequest | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  if (!isRecord(parsed)) return undefined;
  const format = isRecord(parsed.response_format) ? parsed.response_format.type : undefined;
  return {
    kind,
    body: parsed,
    structured: format === 'json_object' || format === 'json_schema',
    approxInputTokens: kind === 'chat' ? messagesWords(parsed.messages) : textWords(parsed.prompt),
  };
}

/** What one answer held, once its body ended. */
export interface LlmAnswer {
  /** From the request's start; undefined when no content arrived. */
  timeToFirstTokenMs?: number;
  /** One per gap between successive content events. */
  interTokenGapsMs: number[];
  /** First → last content event (0 for a JSON answer). */
  generationMs: number;
  /** From `usage` when given, else undefined (the caller approximates). */
  inputTokens?: number;
  outputTokens?: number;
  /** Whitespace-separated words of the content: the output-token approximation. */
  contentWords: number;
  truncated: boolean;
  /** The concatenated content; undefined when it was too large to keep. */
  content?: string;
}

/** The counts a request adds to its version: usage when the answer has it, else the approximations. */
export interface LlmOutcome {
  answer: LlmAnswer;
  inputTokens: number;
  outputTokens: number;
  structured: boolean;
  /** Structured and the content does not parse as JSON (unknown — false — when the content was too large to keep). */
  invalidStructured: boolean;
}

export function llmOutcome(request: LlmRequest, answer: LlmAnswer): LlmOutcome {
  return {
    answer,
    inputTokens: answer.inputTokens ?? request.approxInputTokens,
    outputTokens: answer.outputTokens ?? answer.contentWords,
    structured: request.structured,
    invalidStructured: request.structured && answer.content !== undefined && !parsesAsJson(answer.content),
  };
}

/**
 * Reads one response as it streams: SSE when `sse` (the response's content type), else a JSON
 * body (a bounded copy, parsed at the end). Times are the caller's clock (ms), from the same
 * origin as `startedAt`.
 */
export class LlmResponseMeter {
  private readonly lines: LineSplitter | undefined;
  private json: Buffer[] | undefined;
  private jsonBytes = 0;
  /** The current SSE event's data lines, joined by '\n'. */
  private data: string | undefined = undefined;
  private firstAt = -1;
  private lastAt = -1;
  private readonly gaps: number[] = [];
  private content: string | undefined = '';
  private words = 0;
  /** The content so far ends inside a word (so a delta starting with a letter continues it). */
  private inWord = false;
  private truncated = false;
  private inputTokens: number | undefined = undefined;
  private outputTokens: number | undefined = undefined;
  /** Not metered after all: a line or body too large. */
  private broken = false;
  /** The arrival time of the chunk being split. */
  private now = 0;

  constructor(
    private readonly kind: LlmKind,
    sse: boolean,
    private readonly startedAt: number,
  ) {
    if (sse) this.lines = new LineSplitter((line) => this.line(line));
    else this.json = [];
  }

  push(chunk: Buffer, now: number): void {
    if (this.broken) return;
    if (this.lines) {
      this.now = now;
      if (!this.lines.push(chunk)) this.broken = true;
      return;
    }
    this.jsonBytes += chunk.length;
    if (this.jsonBytes > MAX_PARSED_BYTES) {
      this.broken = true;
      this.json = undefined;
    } else this.json!.push(chunk);
  }

  /** The body ended at `now`: what it held, or undefined when it could not be metered. */
  end(now: number): LlmAnswer | undefined {
    if (this.broken) return undefined;
    if (this.lines) {
      this.now = now;
      this.lines.end();
      this.dispatch(); // an event not followed by a blank line still counts
    } else {
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(this.json!, this.jsonBytes).toString('utf8'));
      } catch {
        return undefined;
      }
      if (!isRecord(body)) return undefined;
      this.chunk(body, 'message', now);
    }
    const answer: LlmAnswer = {
      interTokenGapsMs: this.gaps,
      generationMs: this.lines && this.firstAt >= 0 ? this.lastAt - this.firstAt : 0,
      contentWords: this.words,
      truncated: this.truncated,
    };
    if (this.firstAt >= 0) answer.timeToFirstTokenMs = this.firstAt - this.startedAt;
    if (this.inputTokens !== undefined) answer.inputTokens = this.inputTokens;
    if (this.outputTokens !== undefined) answer.outputTokens = this.outputTokens;
    if (this.content !== undefined) answer.content = this.content;
    return answer;
  }

  /** One SSE line (without its end of line), per the EventSource rules: only `data` matters here. */
  private line(line: string): void {
    if (line === '') return this.dispatch();
    if (line.charCodeAt(0) === 58 /* : */) return; // a comment (keep-alive)
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    if (field !== 'data') return;
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    this.data = this.data === undefined ? value : `${this.data}\n${value}`;
  }

  private dispatch(): void {
    const data = this.data;
    this.data = undefined;
    if (data === undefined || data === '[DONE]') return;
    let event: unknown;
    try {
      event = JSON.parse(data);
    } catch {
      return; // not a JSON event: nothing to meter in it
    }
    if (isRecord(event)) this.chunk(event, 'delta', this.now);
  }

  /** One streamed chunk (`delta` choices) or the whole JSON answer (`message` choices). */
  private chunk(body: Record<string, unknown>, field: 'delta' | 'message', now: number): void {
    const usage = body.usage;
    if (isRecord(usage)) {
      if (typeof usage.prompt_tokens === 'number') this.inputTokens = usage.prompt_tokens;
      if (typeof usage.completion_tokens === 'number') this.outputTokens = usage.completion_tokens;
    }
    const choices = body.choices;
    if (!Array.isArray(choices)) return;
    let carried = false;
    for (const choice of choices) {
      if (!isRecord(choice)) continue;
      if (choice.finish_reason === 'length') this.truncated = true;
      const holder = this.kind === 'chat' ? choice[field] : choice;
      const text = isRecord(holder) ? (this.kind === 'chat' ? holder.content : holder.text) : undefined;
      if (typeof text === 'string' && text !== '') {
        carried = true;
        this.addContent(text);
      }
    }
    if (!carried) return;
    if (this.firstAt < 0) this.firstAt = now;
    else this.gaps.push(now - this.lastAt);
    this.lastAt = now;
  }

  private addContent(text: string): void {
    if (this.content !== undefined) this.content = this.content.length + text.length > MAX_CONTENT_CHARS ? undefined : this.content + text;
    const scan = scanWords(text, this.inWord);
    this.words += scan.words;
    this.inWord = scan.inWord;
  }
}

/**
 * Splits a byte stream into lines at LF, CRLF or a lone CR, whatever the chunk boundaries: bytes
 * are kept until their line is complete, so a multi-byte UTF-8 character or a CRLF split across
 * chunks is whole when decoded.
 */
export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** The previous chunk ended with CR: an LF starting this one belongs to it. */
  private afterCr = false;

  constructor(private readonly onLine: (line: string) => void) {}

  /** False when a line grew beyond MAX_PARSED_BYTES (the stream is then not split further). */
  push(chunk: Buffer): boolean {
    let start = 0;
    if (this.afterCr && chunk.length > 0) {
      this.afterCr = false;
      if (chunk[0] === 10) start = 1;
    }
    for (let i = start; i < chunk.length; i++) {
      const byte = chunk[i];
      if (byte !== 10 && byte !== 13) continue;
      this.emit(chunk.subarray(start, i));
      if (byte === 13) {
        if (i + 1 === chunk.length) this.afterCr = true;
        else if (chunk[i + 1] === 10) i++;
      }
      start = i + 1;
    }
    if (start < chunk.length) {
      this.pending.push(chunk.subarray(start));
      this.pendingBytes += chunk.length - start;
      if (this.pendingBytes > MAX_PARSED_BYTES) return false;
    }
    return true;
  }

  /** The stream ended: a last line without an end of line is a line too. */
  end(): void {
    if (this.pendingBytes > 0) this.emit(Buffer.alloc(0));
  }

  private emit(tail: Buffer): void {
    let bytes = tail;
    if (this.pendingBytes > 0) {
      this.pending.push(tail);
      bytes = Buffer.concat(this.pending, this.pendingBytes + tail.length);
      this.pending = [];
      this.pendingBytes = 0;
    }
    this.onLine(bytes.toString('utf8'));
  }
}

export function parsesAsJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isSpace(code: number): boolean {
  return code === 32 || (code >= 9 && code <= 13) || code === 0xa0 || code === 0x3000 || (code >= 0x2000 && code <= 0x200a);
}

/**
 * Words starting in `text` (one continuing from an earlier piece, when `inWord`, is not counted
 * again), and whether `text` ends inside a word: so deltas split mid-word count as one.
 */
function scanWords(text: string, inWord: boolean): { words: number; inWord: boolean } {
  let words = 0;
  for (let i = 0; i < text.length; i++) {
    const space = isSpace(text.charCodeAt(i));
    if (!space && !inWord) words++;
    inWord = !space;
  }
  return { words, inWord };
}

/** Whitespace-separated words of a prompt (a string or an array of strings): the token approximation. */
export function textWords(text: unknown): number {
  if (Array.isArray(text)) return text.reduce((n: number, part: unknown) => n + textWords(part), 0);
  return typeof text === 'string' ? scanWords(text, false).words : 0;
}

/** Words of chat messages' contents: a string, or parts `{type: "text", text}`. */
function messagesWords(messages: unknown): number {
  if (!Array.isArray(messages)) return 0;
  let words = 0;
  for (const message of messages) {
    if (!isRecord(message)) continue;
    const content = message.content;
    if (typeof content === 'string') words += textWords(content);
    else if (Array.isArray(content)) for (const part of content) if (isRecord(part) && part.type === 'text') words += textWords(part.text);
  }
  return words;
}
