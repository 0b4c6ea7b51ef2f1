// The client's Server-Sent Events parser on hand-made streams: fields,
// multi-line data, comments, CRLF and CR line ends, chunks split anywhere
// (even inside a CRLF or a UTF-8 character), and the last id kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSse, type SseMessage } from '../../src/client/sse.js';

function stream(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(c) {
      for (const x of chunks) c.enqueue(x);
      c.close();
    },
  });
}

async function collect(chunks: Uint8Array[], onRetry?: (ms: number) => void): Promise<SseMessage[]> {
  const out: SseMessage[] = [];
  for await (const m of parseSse(stream(chunks), onRetry)) out.push(m);
  return out;
}

const text = 'retry: 2500\n\n: heartbeat\n\nid: 1\nevent: queued\ndata: {"a":1}\n\nid: 2\r\nevent: round\r\ndata: line one\r\ndata: line two\r\n\r\ndata: ünïcode\r\r: x\n\nid: 3\ndata:no-space\n\n';
const expected: SseMessage[] = [
  { id: '1', event: 'queued', data: '{"a":1}' },
  { id: '2', event: 'round', data: 'line one\nline two' },
  { id: '2', event: 'message', data: 'ünïcode' },
  { id: '3', event: 'message', data: 'no-space' },
];

test('parses a whole stream', async () => {
  const retries: number[] = [];
  assert.deepEqual(await collect([new TextEncoder().encode(text)], (ms) => retries.push(ms)), expected);
  assert.deepEqual(retries, [2500]);
});

test('gives the same messages whatever the chunking, byte by byte included', async () => {
  const bytes = new TextEncoder().encode(text);
  for (const size of [1, 2, 3, 7, 64]) {
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.slice(i, i + size));
    assert.deepEqual(await collect(chunks), expected, `chunks of ${size}`);
  }
});

test('an unterminated last event is not dispatched', async () => {
  assert.deepEqual(await collect([new TextEncoder().encode('id: 9\ndata: partial')]), []);
});
