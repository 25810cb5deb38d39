// End-to-end: Ollama's API of `troupe serve`, with the official ollama npm client (list, chat
// and generate streamed and not, show, ps, version, embed, errors). A client leaving a stream:
// tests/server/ollama_server_test.cpp.
// Environment (run.sh): TROUPE_BIN, TROUPE_E2E_MODEL (a generative tiny model), TROUPE_E2E_BERT.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Ollama } from 'ollama';
import { startServer, stopServer } from './server.mjs';

const API_KEY = 'sk-e2e-ollama';
const headers = { Authorization: `Bearer ${API_KEY}` };
let tiny;
let bert;
let ollama;
let embedder;

before(async () => {
  tiny = await startServer({ apiKey: API_KEY });
  bert = await startServer({ apiKey: API_KEY, model: process.env.TROUPE_E2E_BERT, alias: 'bert' });
  ollama = new Ollama({ host: tiny.url, headers });
  embedder = new Ollama({ host: bert.url, headers });
});

after(async () => {
  assert.equal(await stopServer(tiny), 0);
  assert.equal(await stopServer(bert), 0);
});

const greedy = { temperature: 0, num_predict: 8 };
const messages = [{ role: 'user', content: 'Once upon a time' }];

test('list, ps, show and version', async () => {
  const list = await ollama.list();
  assert.equal(list.models.length, 1);
  assert.equal(list.models[0].name, 'tiny');
  assert.equal(list.models[0].details.format, 'gguf');
  assert.equal(list.models[0].details.family, 'llama');
  assert.ok(list.models[0].size > 0);
  const ps = await ollama.ps();
  assert.equal(ps.models[0].name, 'tiny');
  const show = await ollama.show({ model: 'tiny:latest' });
  assert.ok(show.capabilities.includes('completion'));
  assert.ok(show.template.length > 0);
  assert.equal(show.model_info['llama.context_length'], 256);
  const version = await ollama.version();
  assert.equal(typeof version.version, 'string');
});

test('a streamed chat is the same answer as one not streamed', async () => {
  const parts = [];
  for await (const part of await ollama.chat({ model: 'tiny', messages, options: greedy,
                                                stream: true })) {
    parts.push(part);
  }
  const last = parts.at(-1);
  assert.equal(last.done, true);
  assert.equal(last.done_reason, 'length');
  assert.equal(last.eval_count, 8);
  assert.ok(last.prompt_eval_count > 0);
  assert.ok(last.total_duration > 0);
  assert.ok(parts.slice(0, -1).every((p) => p.done === false && p.message.role === 'assistant'));
  const streamed = parts.map((p) => p.message.content).join('');
  const whole = await ollama.chat({ model: 'tiny', messages, options: greedy });
  assert.equal(whole.done, true);
  assert.equal(whole.message.content, streamed);
  assert.equal(whole.eval_count, 8);
});

test('generate, raw and templated, streamed and not', async () => {
  const r = await ollama.generate({ model: 'tiny', prompt: 'Once upon a time', options: greedy });
  assert.equal(r.done, true);
  assert.equal(r.eval_count, 8);
  assert.ok(r.response.length > 0);
  let text = '';
  for await (const part of await ollama.generate({ model: 'tiny', prompt: 'Once upon a time',
                                                    options: greedy, stream: true })) {
    text += part.response;
  }
  assert.equal(text, r.response);
  const raw = await ollama.generate({ model: 'tiny', prompt: 'Once upon a time', raw: true,
                                      options: { ...greedy, num_predict: 4 } });
  assert.equal(raw.eval_count, 4);
  assert.ok(raw.prompt_eval_count < r.prompt_eval_count);  // no chat template around it
  const load = await ollama.generate({ model: 'tiny', prompt: '' });
  assert.equal(load.done_reason, 'load');
});

test('errors arrive as the client\'s ResponseError with the status', async () => {
  await assert.rejects(ollama.chat({ model: 'nope', messages }), (e) => {
    assert.equal(e.status_code, 404);
    assert.match(e.error, /nope/);
    return true;
  });
  await assert.rejects(
    ollama.chat({ model: 'tiny', messages: [{ role: 'user', content: 'x', images: ['aGk='] }] }),
    (e) => e.status_code === 400 && /images/.test(e.error));
  const keyless = new Ollama({ host: tiny.url });
  await assert.rejects(keyless.list(), (e) => e.status_code === 401);
});

test('embed and the legacy embeddings', async () => {
  const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  const r = await embedder.embed({ model: 'bert', input: ['The cat sat on the mat.', 'Tim ran.'] });
  assert.equal(r.model, 'bert');
  assert.equal(r.embeddings.length, 2);
  for (const v of r.embeddings) {
    assert.equal(v.length, 128);
    assert.ok(Math.abs(norm(v) - 1) < 1e-4);
  }
  assert.ok(r.prompt_eval_count > 4);
  const cut = await embedder.embed({ model: 'bert', input: 'The cat sat on the mat.',
                                     dimensions: 32 });
  assert.equal(cut.embeddings[0].length, 32);
  assert.ok(Math.abs(norm(cut.embeddings[0]) - 1) < 1e-4);
  const legacy = await embedder.embeddings({ model: 'bert', prompt: 'The cat sat on the mat.' });
  assert.equal(legacy.embedding.length, 128);
  const unit = legacy.embedding.map((x) => x / norm(legacy.embedding));
  assert.ok(unit.every((x, i) => Math.abs(x - r.embeddings[0][i]) < 1e-4));
});
