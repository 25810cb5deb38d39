// End-to-end: embeddings and rerank through `troupe serve --embeddings`, with the official
// openai npm client's embeddings.create. Environment (run.sh): TROUPE_BIN, TROUPE_E2E_MODEL
// (a generative tiny model), TROUPE_E2E_BERT (a generated BERT, cls pooling),
// TROUPE_E2E_RERANK (a generated BERT reranker), TROUPE_E2E_STORIES (the real stories260K
// model, or empty when ../shared/models is absent).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, stopServer } from './server.mjs';

const API_KEY = 'sk-e2e-embed';
const N_EMBD = 128; // the tiny shape
let bert;
let client;

const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const cosine = (a, b) => a.reduce((s, x, i) => s + x * b[i], 0) / (norm(a) * norm(b));
const maxDiff = (a, b) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
const decodeBase64 = (s) => {
  const buf = Buffer.from(s, 'base64');
  return Array.from(new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4));
};

before(async () => {
  bert = await startServer({ apiKey: API_KEY, parallel: 16, ctxSize: 8192,
                             model: process.env.TROUPE_E2E_BERT, alias: 'bert' });
  client = new OpenAI({ apiKey: API_KEY, baseURL: `${bert.url}/v1`, maxRetries: 0 });
});

after(async () => {
  assert.equal(await stopServer(bert), 0);
});

test('float vectors of the model size with norm 1', async () => {
  const r = await client.embeddings.create({
    model: 'bert', input: ['The cat sat on the mat.', 'Tim ran.'], encoding_format: 'float',
  });
  assert.equal(r.object, 'list');
  assert.equal(r.model, 'bert');
  assert.equal(r.data.length, 2);
  for (const [i, d] of r.data.entries()) {
    assert.equal(d.object, 'embedding');
    assert.equal(d.index, i);
    assert.equal(d.embedding.length, N_EMBD);
    assert.ok(Math.abs(norm(d.embedding) - 1) < 1e-4);
  }
  assert.ok(r.usage.prompt_tokens > 4);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens);
});

test('base64 (explicit and the client default) decodes to the float vectors', async () => {
  const input = 'Embeddings through base64.';
  const f = await client.embeddings.create({ model: 'bert', input, encoding_format: 'float' });
  const b = await client.embeddings.create({ model: 'bert', input, encoding_format: 'base64' });
  assert.equal(typeof b.data[0].embedding, 'string');
  const decoded = decodeBase64(b.data[0].embedding);
  assert.equal(decoded.length, N_EMBD);
  assert.ok(maxDiff(decoded, f.data[0].embedding) < 1e-6);
  const d = await client.embeddings.create({ model: 'bert', input }); // the client asks base64
  assert.equal(d.data[0].embedding.length, N_EMBD);
  assert.ok(maxDiff(d.data[0].embedding, f.data[0].embedding) < 1e-6);
});

test('a batch of 64 inputs equals 64 single calls', async () => {
  const inputs = Array.from({ length: 64 }, (_, i) =>
    `input number ${i}: ${'word '.repeat(1 + (i * 7) % 23)}end`);
  const batch = await client.embeddings.create({ model: 'bert', input: inputs });
  assert.equal(batch.data.length, 64);
  for (let i = 0; i < 64; i++) {
    const one = await client.embeddings.create({ model: 'bert', input: inputs[i] });
    assert.equal(batch.data[i].index, i);
    assert.ok(maxDiff(batch.data[i].embedding, one.data[0].embedding) < 1e-4, `input ${i}`);
  }
});

test('token-array input equals the same text', async () => {
  const text = 'The cat sat on the mat.';
  const tok = await fetch(`${bert.url}/tokenize`, {
    method: 'POST', headers: { Authorization: `Bearer ${API_KEY}` },
    body: JSON.stringify({ content: text, add_special: true }),
  }).then((r) => r.json());
  const a = await client.embeddings.create({ model: 'bert', input: text });
  const b = await client.embeddings.create({ model: 'bert', input: tok.tokens });
  const c = await client.embeddings.create({ model: 'bert', input: [tok.tokens] });
  assert.ok(maxDiff(a.data[0].embedding, b.data[0].embedding) < 1e-6);
  assert.ok(maxDiff(a.data[0].embedding, c.data[0].embedding) < 1e-6);
});

test('bad input is a 400 naming the field', async () => {
  for (const [body, param] of [
    [{ model: 'bert', input: '' }, 'input'],
    [{ model: 'bert', input: [] }, 'input'],
    [{ model: 'bert', input: 'x', dimensions: 7 }, 'dimensions'],
    [{ model: 'bert', input: 'word '.repeat(700) }, 'input'],
  ]) {
    await assert.rejects(client.embeddings.create(body), (e) => {
      assert.equal(e.status, 400);
      assert.equal(e.param, param);
      return true;
    });
  }
});

test('rerank orders documents, top_n cuts, bad input is a 400', async () => {
  const server = await startServer({ apiKey: API_KEY, parallel: 4, ctxSize: 4096,
                                     model: process.env.TROUPE_E2E_RERANK, alias: 'rr' });
  try {
    const post = (path, body) => fetch(`${server.url}${path}`, {
      method: 'POST', headers: { Authorization: `Bearer ${API_KEY}` }, body: JSON.stringify(body),
    });
    const documents = ['a cat', 'a dog', { text: 'the mat' }, 'red ball'];
    const all = await (await post('/v1/rerank', { model: 'rr', query: 'cat', documents })).json();
    assert.equal(all.results.length, 4);
    const scores = all.results.map((r) => r.relevance_score);
    assert.deepEqual(scores, [...scores].sort((x, y) => y - x));
    const top = await (await post('/rerank', {
      query: 'cat', documents, top_n: 2, return_documents: true,
    })).json();
    assert.deepEqual(top.results.map((r) => r.index), all.results.slice(0, 2).map((r) => r.index));
    assert.equal(typeof top.results[0].document.text, 'string');
    assert.equal((await post('/v1/rerank', { query: 'cat', documents: [] })).status, 400);
    assert.equal((await post('/v1/rerank', { documents })).status, 400);
  } finally {
    assert.equal(await stopServer(server), 0);
  }
});

test('a server without --embeddings names the flag', async () => {
  const server = await startServer({ apiKey: API_KEY, parallel: 2, ctxSize: 1024 });
  try {
    const c = new OpenAI({ apiKey: API_KEY, baseURL: `${server.url}/v1`, maxRetries: 0 });
    await assert.rejects(c.embeddings.create({ model: 'tiny', input: 'hello' }), (e) => {
      assert.equal(e.status, 400);
      assert.match(e.message, /--embeddings/);
      return true;
    });
  } finally {
    assert.equal(await stopServer(server), 0);
  }
});

test('stories260K with mean pooling ranks the similar sentence first', async (t) => {
  if (!process.env.TROUPE_E2E_STORIES) {
    t.skip('../shared/models is absent');
    return;
  }
  const server = await startServer({ apiKey: API_KEY, parallel: 4, ctxSize: 2048,
                                     model: process.env.TROUPE_E2E_STORIES, alias: 'stories',
                                     extraArgs: ['--embeddings', '--pooling', 'mean'] });
  try {
    const c = new OpenAI({ apiKey: API_KEY, baseURL: `${server.url}/v1`, maxRetries: 0 });
    const r = await c.embeddings.create({
      model: 'stories',
      input: ['The cat sat on the mat.', 'A cat was sitting on a mat.',
              'Tim ran to the big red ball.'],
    });
    const [a, b, x] = r.data.map((d) => d.embedding);
    assert.equal(a.length, 64);
    assert.ok(cosine(a, b) > cosine(a, x), `${cosine(a, b)} vs ${cosine(a, x)}`);
  } finally {
    assert.equal(await stopServer(server), 0);
  }
});
