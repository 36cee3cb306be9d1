/** LLM metering (src/gateway/llm.ts): SSE and JSON answers, whatever the chunk boundaries. */
import { LlmResponseMeter, llmKindOf, llmOutcome, parseLlmRequest, type LlmAnswer, type LlmKind } from '../../src/gateway/llm';

const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
  `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }] })}`;

/** A chat stream: a role-only chunk, a keep-alive comment, content with multi-byte characters, usage, [DONE]. */
function chatStream(eol: string, usage = true): string {
  const events = [
    chunk({ role: 'assistant' }),
    ': keep-alive',
    chunk({ content: 'Héllo' }),
    // One event over two data lines (joined by '\n', which JSON allows between tokens).
    chunk({ content: ' wör' }).replace('"c1",', `"c1",${eol}data: `),
    chunk({ content: 'ld 世界 🎉' }),
    chunk({}, 'stop'),
    ...(usage ? [`data: ${JSON.stringify({ choices: [], usage: { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 } })}`] : []),
    'data: [DONE]',
  ];
  return events.map((e) => `${e}${eol}${eol}`).join('');
}

/** Meters `pieces` arriving at times 1, 2, 3... (start 0). */
function meter(pieces: Buffer[], kind: LlmKind = 'chat', sse = true): LlmAnswer | undefined {
  const m = new LlmResponseMeter(kind, sse, 0);
  pieces.forEach((piece, i) => m.push(piece, i + 1));
  return m.end(pieces.length + 1);
}

/** What must not depend on where the chunks were cut. */
const content = (a: LlmAnswer | undefined) =>
  a && { content: a.content, words: a.contentWords, input: a.inputTokens, output: a.outputTokens, truncated: a.truncated, gaps: a.interTokenGapsMs.length };

describe.each([
  ['LF', '\n'],
  ['CRLF', '\r\n'],
  ['CR', '\r'],
])('an SSE chat stream framed with %s', (_name, eol) => {
  const bytes = Buffer.from(chatStream(eol), 'utf8');
  const whole = meter([bytes]);

  it('is read whole: content, usage, one gap per content chunk after the first', () => {
    expect(content(whole)).toEqual({ content: 'Héllo wörld 世界 🎉', words: 4, input: 12, output: 7, truncated: false, gaps: 2 });
    expect(whole!.timeToFirstTokenMs).toBe(1);
  });

  it('gives the same answer split at every byte boundary (inside multi-byte characters and line ends too)', () => {
    for (let at = 0; at <= bytes.length; at++) {
      expect({ at, ...content(meter([bytes.subarray(0, at), bytes.subarray(at)])) }).toEqual({ at, ...content(whole) });
    }
  });

  it('gives the same answer one byte at a time', () => {
    const bytewise = Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1));
    expect(content(meter(bytewise))).toEqual(content(whole));
  });
});

it('times the first content chunk and each gap between content chunks, not the role-only or usage chunks', () => {
  const m = new LlmResponseMeter('chat', true, 10);
  const [role, , a, b, c, stop, usage, done] = chatStream('\n').split('\n\n');
  m.push(Buffer.from(`${role}\n\n`), 50);
  m.push(Buffer.from(`${a}\n\n`), 100);
  m.push(Buffer.from(`${b}\n\n${c}\n\n`), 150); // two events in one chunk: a gap of 0
  m.push(Buffer.from(`${stop}\n\n${usage}\n\n${done}\n\n`), 400);
  const answer = m.end(401)!;
  expect(answer.timeToFirstTokenMs).toBe(90);
  expect(answer.interTokenGapsMs).toEqual([50, 0]);
  expect(answer.generationMs).toBe(50);
});

it('without usage: tokens are approximated as words (prompt words in, content words out)', () => {
  const request = parseLlmRequest('chat', Buffer.from(JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: [{ type: 'text', text: 'say hello world' }] }] })))!;
  const answer = meter([Buffer.from(chatStream('\n', false))])!;
  expect(answer.inputTokens).toBeUndefined();
  expect(answer.outputTokens).toBeUndefined();
  expect(llmOutcome(request, answer)).toMatchObject({ inputTokens: 5, outputTokens: 4, structured: false, invalidStructured: false });
});

it('a stream without a final blank line or [DONE] still counts its last event', () => {
  const answer = meter([Buffer.from(`${chunk({ content: 'a b' })}\n\n${chunk({ content: ' c' }, 'length')}`)])!;
  expect(answer).toMatchObject({ content: 'a b c', contentWords: 3, truncated: true });
});

it('joins an event split over several data lines', () => {
  const json = JSON.stringify({ choices: [{ delta: { content: 'x' } }] });
  const answer = meter([Buffer.from(`data: ${json.slice(0, 10)}\ndata:${json.slice(10)}\n\n`)])!;
  // Joined with "\n" (EventSource rule), which JSON allows between tokens.
  expect(answer.content).toBe('x');
});

it('skips events that are not JSON, and counts no content for them', () => {
  const answer = meter([Buffer.from(`event: ping\ndata: not json\n\nretry: 10\n\n${chunk({ content: 'ok' })}\n\n`)])!;
  expect(answer).toMatchObject({ content: 'ok', interTokenGapsMs: [] });
});

it('reads completions streams by choices[].text', () => {
  const events = ['Once', ' upon', ' a time'].map((text) => `data: ${JSON.stringify({ choices: [{ text, finish_reason: null }] })}\n\n`).join('');
  expect(meter([Buffer.from(`${events}data: [DONE]\n\n`)], 'completion')).toMatchObject({ content: 'Once upon a time', contentWords: 4 });
});

describe('a JSON answer', () => {
  const body = (content: string, finish = 'stop', usage = true) =>
    Buffer.from(
      JSON.stringify({
        object: 'chat.completion',
        choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: finish }],
        ...(usage ? { usage: { prompt_tokens: 3, completion_tokens: 9 } } : {}),
      }),
    );

  it('gives its usage, and its time to first token is when the whole body arrived', () => {
    const bytes = body('hello there');
    const m = new LlmResponseMeter('chat', false, 0);
    m.push(bytes.subarray(0, 7), 5);
    m.push(bytes.subarray(7), 8);
    const answer = m.end(12)!;
    expect(answer).toMatchObject({ timeToFirstTokenMs: 12, interTokenGapsMs: [], generationMs: 0, inputTokens: 3, outputTokens: 9, content: 'hello there', truncated: false });
  });

  it('says when it was cut at max tokens', () => {
    expect(meter([body('hello', 'length')], 'chat', false)!.truncated).toBe(true);
  });

  it('structured output: counted, and invalid when the content does not parse', () => {
    const request = parseLlmRequest('chat', Buffer.from(JSON.stringify({ messages: [], response_format: { type: 'json_object' } })))!;
    expect(request.structured).toBe(true);
    expect(llmOutcome(request, meter([body('{"a": 1}')], 'chat', false)!)).toMatchObject({ structured: true, invalidStructured: false });
    expect(llmOutcome(request, meter([body('{"a": 1')], 'chat', false)!)).toMatchObject({ structured: true, invalidStructured: true });
    const schema = parseLlmRequest('chat', Buffer.from(JSON.stringify({ messages: [], response_format: { type: 'json_schema', json_schema: {} } })))!;
    expect(schema.structured).toBe(true);
    const plain = parseLlmRequest('chat', Buffer.from(JSON.stringify({ messages: [], response_format: { type: 'text' } })))!;
    expect(llmOutcome(plain, meter([body('not json')], 'chat', false)!)).toMatchObject({ structured: false, invalidStructured: false });
  });

  it('structured output streamed: the concatenated deltas are what must parse', () => {
    const request = parseLlmRequest('chat', Buffer.from(JSON.stringify({ messages: [], response_format: { type: 'json_object' } })))!;
    const stream = (parts: string[]) => Buffer.from(parts.map((content) => `${chunk({ content })}\n\n`).join('') + 'data: [DONE]\n\n');
    expect(llmOutcome(request, meter([stream(['{"a"', ': [1,', ' 2]}'])])!).invalidStructured).toBe(false);
    expect(llmOutcome(request, meter([stream(['{"a"', ': [1,'])])!).invalidStructured).toBe(true);
  });

  it('a body that is not JSON is not metered', () => {
    expect(meter([Buffer.from('<html>oops</html>')], 'chat', false)).toBeUndefined();
  });
});

describe('which traffic is LLM traffic', () => {
  it('only POSTs to .../chat/completions or .../completions', () => {
    expect(llmKindOf('POST', '/v1/chat/completions')).toBe('chat');
    expect(llmKindOf('POST', '/chat/completions?debug=1')).toBe('chat');
    expect(llmKindOf('POST', '/v1/completions')).toBe('completion');
    expect(llmKindOf('GET', '/v1/chat/completions')).toBeUndefined();
    expect(llmKindOf('POST', '/v1/embeddings')).toBeUndefined();
    expect(llmKindOf('POST', '/v1/completions/x')).toBeUndefined();
    expect(llmKindOf('POST', '/v1/x?next=/completions')).toBeUndefined();
  });

  it('and whose body is a JSON object', () => {
    expect(parseLlmRequest('chat', Buffer.from('not json'))).toBeUndefined();
    expect(parseLlmRequest('chat', Buffer.from('[1, 2]'))).toBeUndefined();
    expect(parseLlmRequest('completion', Buffer.from('{"prompt": ["a b", "c"]}'))).toMatchObject({ kind: 'completion', structured: false, approxInputTokens: 3 });
  });
});
