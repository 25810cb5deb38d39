// End-to-end: fill in the middle through `troupe serve`, with the official openai npm client's
// completions.create({suffix}) and llama-server's POST /infill, on a model with StarCoder's
// vocabulary (its FIM tokens) and random weights. Environment (run.sh): TROUPE_BIN,
// TROUPE_E2E_FIM (that model), TROUPE_E2E_MODEL (a model without FIM tokens).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, stopServer } from './server.mjs';

const API_KEY = 'sk-e2e-fim';
const PREFIX = 'def add(a, b):\n    ';
const SUFFIX = '\n\nprint(add(1, 2))\n';
let fim;
let plain;
let client;

before(async () => {
  fim = await startServer({ apiKey: API_KEY, parallel: 2, ctxSize: 2048,
                            model: process.env.TROUPE_E2E_FIM, alias: 'fim' });
  client = new OpenAI({ apiKey: API_KEY, baseURL: `${fim.url}/v1`, maxRetries: 0 });
});

after(async () => {
  assert.equal(await stopServer(fim), 0);
  if (plain) assert.equal(await stopServer(plain), 0);
});

async function post(path, body) {
  const r = await fetch(`${fim.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
    body: JSON.stringify(body),
  });
  return { status: r.status, text: await r.text() };
}

async function tokenCount(text) {
  const r = await post('/tokenize', { content: text, add_special: false, parse_special: false });
  assert.equal(r.status, 200, r.text);
  return JSON.parse(r.text).tokens.length;
}

test('suffix: the prompt is the prefix and the three FIM tokens frame it', async () => {
  const r = await client.completions.create({
    model: 'fim', prompt: PREFIX, suffix: SUFFIX, max_tokens: 8, temperature: 0,
  });
  assert.equal(r.object, 'text_completion');
  assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 8);
  assert.equal(r.usage.prompt_tokens, (await tokenCount(PREFIX)) + (await tokenCount(SUFFIX)) + 3);

  // Streamed, the same greedy answer.
  const stream = await client.completions.create({
    model: 'fim', prompt: PREFIX, suffix: SUFFIX, max_tokens: 8, temperature: 0, stream: true,
  });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
  assert.equal(text, r.choices[0].text);

  // Without the suffix the prompt is another one.
  const bare = await client.completions.create({
    model: 'fim', prompt: PREFIX, max_tokens: 8, temperature: 0,
  });
  assert.notEqual(bare.usage.prompt_tokens, r.usage.prompt_tokens);
});

test('/infill answers what suffix answers, in llama-server\'s shape', async () => {
  const openai = await client.completions.create({
    model: 'fim', prompt: PREFIX, suffix: SUFFIX, max_tokens: 8, temperature: 0,
  });
  const r = await post('/infill', {
    input_prefix: PREFIX, input_suffix: SUFFIX, n_predict: 8, temperature: 0,
  });
  assert.equal(r.status, 200, r.text);
  const v = JSON.parse(r.text);
  assert.equal(v.content, openai.choices[0].text);
  assert.equal(v.stop, true);
  assert.equal(v.tokens_evaluated, openai.usage.prompt_tokens);
  assert.equal(v.truncated, false);
  assert.ok(['eos', 'limit'].includes(v.stop_type), v.stop_type);
  assert.equal(v.timings.predicted_n, v.tokens_predicted);

  // Other files come first: a longer prompt, still answered.
  const extra = await post('/infill', {
    input_prefix: PREFIX, input_suffix: SUFFIX, n_predict: 4, temperature: 0,
    input_extra: [{ filename: 'util.py', text: 'import os\n' }],
  });
  assert.equal(extra.status, 200, extra.text);
  assert.ok(JSON.parse(extra.text).tokens_evaluated > v.tokens_evaluated);

  // Streamed: pieces, then the whole answer's object; no [DONE].
  const s = await fetch(`${fim.url}/infill`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
    body: JSON.stringify({ input_prefix: PREFIX, input_suffix: SUFFIX, n_predict: 8,
                           temperature: 0, stream: true }),
  });
  assert.equal(s.status, 200);
  const events = (await s.text()).split('\n\n').filter((e) => e.startsWith('data: '))
    .map((e) => e.slice(6));
  assert.ok(!events.includes('[DONE]'));
  const objs = events.map((e) => JSON.parse(e));
  assert.equal(objs.at(-1).stop, true);
  assert.equal(objs.slice(0, -1).map((o) => o.content).join(''), v.content);
  assert.ok(objs.slice(0, -1).every((o) => o.stop === false));
});

test('a model without FIM tokens: a 400 that says so', async () => {
  plain = await startServer({ apiKey: API_KEY, parallel: 1, ctxSize: 512, alias: 'tiny' });
  const c = new OpenAI({ apiKey: API_KEY, baseURL: `${plain.url}/v1`, maxRetries: 0 });
  await assert.rejects(
    c.completions.create({ model: 'tiny', prompt: 'a', suffix: 'b', max_tokens: 2 }),
    (e) => e.status === 400 && /fill in the middle/.test(e.message));
});
