// End-to-end: `troupe serve` as a child process on an ephemeral port, driven by the official
// openai npm client. Environment: TROUPE_BIN (the troupe binary), TROUPE_E2E_MODEL (a GGUF).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startServer, stopServer } from './server.mjs';

const API_KEY = 'sk-e2e-test';
let server;
let client;
let baseURL;

before(async () => {
  server = await startServer({ apiKey: API_KEY, parallel: 4, ctxSize: 1024 });
  baseURL = server.url;
  client = new OpenAI({ apiKey: API_KEY, baseURL: `${baseURL}/v1`, maxRetries: 0 });
});

after(async () => {
  assert.equal(await stopServer(server), 0, 'graceful shutdown exits 0');
});

test('models list', async () => {
  const models = await client.models.list();
  const ids = models.data.map((m) => m.id);
  assert.deepEqual(ids, ['tiny']);
  assert.equal(models.data[0].object, 'model');
});

test('chat completion, not streamed', async () => {
  const r = await client.chat.completions.create({
    model: 'tiny', messages: [{ role: 'user', content: 'Hello there' }],
    max_tokens: 8, temperature: 0, ignore_eos: true,
  });
  assert.equal(r.object, 'chat.completion');
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 8);
  assert.ok(r.usage.prompt_tokens > 0);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 8);
});

test('chat completion, streamed with usage', async () => {
  const stream = await client.chat.completions.create({
    model: 'tiny', messages: [{ role: 'user', content: 'Count' }], max_tokens: 6,
    temperature: 0, ignore_eos: true, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let role;
  let finish;
  let usage;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) usage = chunk.usage;
    if (chunk.choices.length === 0) continue;
    const c = chunk.choices[0];
    if (c.delta.role) role = c.delta.role;
    if (c.delta.content) text += c.delta.content;
    if (c.finish_reason) finish = c.finish_reason;
  }
  assert.equal(role, 'assistant');
  assert.equal(finish, 'length');
  assert.ok(chunks >= 3);
  assert.equal(usage.completion_tokens, 6);
  // The same request not streamed gives the same text (greedy).
  const whole = await client.chat.completions.create({
    model: 'tiny', messages: [{ role: 'user', content: 'Count' }], max_tokens: 6,
    temperature: 0, ignore_eos: true,
  });
  assert.equal(text, whole.choices[0].message.content);
});

test('n choices, streamed and not', async () => {
  const ask = { model: 'tiny', messages: [{ role: 'user', content: 'Tell me something' }],
                max_tokens: 5, temperature: 1, seed: 11, ignore_eos: true, n: 3 };
  const whole = await client.chat.completions.create(ask);
  assert.deepEqual(whole.choices.map((c) => c.index), [0, 1, 2]);
  assert.ok(whole.choices.every((c) => c.finish_reason === 'length'));
  assert.equal(whole.usage.completion_tokens, 15);
  const stream = await client.chat.completions.create(
    { ...ask, stream: true, stream_options: { include_usage: true } });
  const deltas = [0, 0, 0];
  const finishes = [];
  let usage;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      deltas[c.index] += 1;
      if (c.finish_reason) finishes.push(c.index);
    }
  }
  assert.deepEqual(finishes.sort(), [0, 1, 2]);
  assert.ok(deltas.every((d) => d >= 2), JSON.stringify(deltas));  // a role and a finish at least
  assert.equal(usage.completion_tokens, 15);
});

test('text completion and stop', async () => {
  const r = await client.completions.create({
    model: 'tiny', prompt: 'Once upon a time', max_tokens: 12, temperature: 0, ignore_eos: true,
  });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.usage.completion_tokens, 12);
  const text = r.choices[0].text;
  assert.ok(text.length > 0);
  // Stop at a piece of the greedy output: the answer ends before it.
  const stop = text.trim().slice(0, 2);
  if (stop.length > 0) {
    const s = await client.completions.create({
      model: 'tiny', prompt: 'Once upon a time', max_tokens: 12, temperature: 0,
      ignore_eos: true, stop: [stop],
    });
    assert.equal(s.choices[0].finish_reason, 'stop');
    assert.ok(!s.choices[0].text.includes(stop));
    assert.ok(text.startsWith(s.choices[0].text));
  }
});

test('GET /props in llama-server\'s shape', async () => {
  const r = await fetch(`${baseURL}/props`, { headers: { authorization: `Bearer ${API_KEY}` } });
  assert.equal(r.status, 200);
  const props = await r.json();
  assert.equal(props.model_alias, 'tiny');
  assert.equal(props.total_slots, 4);
  assert.equal(props.default_generation_settings.n_ctx, 256);  // 1024 cells, 4 slots
  assert.ok(props.chat_template.length > 0);
  assert.match(props.build_info, /^troupe /);
  assert.ok(props.model_path.endsWith('.gguf'));
});

test('a list of prompts answers each as its own request would', async () => {
  const prompts = ['Once upon a time', 'The little dog', 'Far away'];
  const ask = { model: 'tiny', max_tokens: 6, temperature: 0, ignore_eos: true };
  const batch = await client.completions.create({ ...ask, prompt: prompts });
  assert.equal(batch.choices.length, 3);
  let promptTokens = 0;
  for (let i = 0; i < prompts.length; ++i) {
    const one = await client.completions.create({ ...ask, prompt: prompts[i] });
    const choice = batch.choices.find((c) => c.index === i);
    assert.equal(choice.text, one.choices[0].text, `prompt ${i}`);
    promptTokens += one.usage.prompt_tokens;
  }
  assert.equal(batch.usage.prompt_tokens, promptTokens);
  assert.equal(batch.usage.completion_tokens, 18);

  // Streamed: every prompt's chunks under its index, the same texts.
  const stream = await client.completions.create({ ...ask, prompt: prompts, stream: true });
  const texts = ['', '', ''];
  for await (const chunk of stream) {
    for (const c of chunk.choices) texts[c.index] += c.text;
  }
  assert.deepEqual(texts, [0, 1, 2].map((i) => batch.choices.find((c) => c.index === i).text));

  // llama-server's /completion: an array of its own objects, the same texts.
  const r = await fetch(`${baseURL}/completion`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${API_KEY}` },
    body: JSON.stringify({ prompt: prompts, n_predict: 6, temperature: 0, ignore_eos: true,
                           n_probs: 2, return_tokens: true }),
  });
  assert.equal(r.status, 200);
  const native = await r.json();
  assert.ok(Array.isArray(native));
  assert.deepEqual(native.map((a) => a.content), texts);
  for (const a of native) {
    assert.equal(a.tokens.length, 6);
    assert.equal(a.completion_probabilities.length, 6);
    assert.deepEqual(a.completion_probabilities.map((p) => p.id), a.tokens);
    for (const p of a.completion_probabilities) {
      assert.equal(p.top_logprobs.length, 2);
      // Greedy: the token drawn is the likeliest.
      assert.equal(p.top_logprobs[0].id, p.id);
      assert.ok(p.logprob <= 0);
    }
  }
});

test('errors surface as APIError with the right status', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'tiny', messages: [{ role: 'user', content: 'x' }],
                                     temperature: 5 }),
    (e) => e instanceof OpenAI.APIError && e.status === 400 && e.param === 'temperature');
  await assert.rejects(
    client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof OpenAI.NotFoundError && e.status === 404 && e.code === 'model_not_found');
  const wrongKey = new OpenAI({ apiKey: 'wrong', baseURL: `${baseURL}/v1`, maxRetries: 0 });
  await assert.rejects(wrongKey.models.list(),
    (e) => e instanceof OpenAI.AuthenticationError && e.status === 401);
  await assert.rejects(
    client.completions.create({ model: 'tiny', prompt: 'x', n: 129 }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'n');
});

const timeTool = {
  type: 'function',
  function: {
    name: 'get_time',
    description: 'The time in a city',
    parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
  },
};

// A tool-calling loop as an agent runs it: the model is asked with tools; whatever call it
// makes (a random-weight model rarely makes one, so the loop supplies one when it does not)
// goes back with the tool's result, and the model answers. Streamed and not.
test('tool-calling loop, streamed and not', async () => {
  const messages = [{ role: 'user', content: 'What time is it in Paris?' }];
  const first = await client.chat.completions.create({
    model: 'tiny', messages, tools: [timeTool], max_tokens: 8, temperature: 0,
  });
  const choice = first.choices[0];
  assert.ok(['stop', 'length', 'tool_calls'].includes(choice.finish_reason));
  let calls = choice.message.tool_calls ?? [];
  if (choice.finish_reason === 'tool_calls') assert.ok(calls.length > 0);
  for (const c of calls) {
    assert.equal(c.type, 'function');
    assert.ok(c.id.length > 0);
    JSON.parse(c.function.arguments);
  }
  if (calls.length === 0) {
    calls = [{ id: 'a1b2c3d4e', type: 'function',
               function: { name: 'get_time', arguments: '{"city":"Paris"}' } }];
  }
  messages.push({ role: 'assistant', content: null, tool_calls: calls });
  for (const c of calls) messages.push({ role: 'tool', tool_call_id: c.id, content: '10:30' });

  const answer = await client.chat.completions.create({
    model: 'tiny', messages, tools: [timeTool], max_tokens: 8, temperature: 0,
  });
  assert.ok(['stop', 'length', 'tool_calls'].includes(answer.choices[0].finish_reason));

  const stream = await client.chat.completions.create({
    model: 'tiny', messages, tools: [timeTool], max_tokens: 8, temperature: 0, stream: true,
  });
  let finish = null;
  const streamedCalls = new Map();
  for await (const chunk of stream) {
    const c = chunk.choices[0];
    for (const t of c?.delta?.tool_calls ?? []) {
      if (!streamedCalls.has(t.index)) {
        assert.ok(t.id && t.function?.name, 'the first delta of a call has its id and name');
        streamedCalls.set(t.index, '');
      }
      streamedCalls.set(t.index, streamedCalls.get(t.index) + (t.function?.arguments ?? ''));
    }
    if (c?.finish_reason) finish = c.finish_reason;
  }
  assert.ok(['stop', 'length', 'tool_calls'].includes(finish));
  for (const args of streamedCalls.values()) JSON.parse(args);
});

test('bad tools and tool messages are 400s with their param', async () => {
  const messages = [{ role: 'user', content: 'x' }];
  await assert.rejects(
    client.chat.completions.create({ model: 'tiny', messages, tools: [timeTool, timeTool] }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'tools[1].function.name');
  await assert.rejects(
    client.chat.completions.create({
      model: 'tiny', messages, tools: [timeTool],
      tool_choice: { type: 'function', function: { name: 'nope' } } }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'tool_choice');
  await assert.rejects(
    client.chat.completions.create({
      model: 'tiny', messages: [...messages, { role: 'tool', content: 'sunny' }] }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'messages[1].tool_call_id');
});

// --cache-ram (on by default): with one slot, a second conversation takes the slot, and the
// first one's next turn gets its earlier tokens back from host memory instead of computing them.
for (const [cacheRam, restores] of [['8192', true], ['0', false]]) {
  test(`a conversation displaced from the only slot, --cache-ram ${cacheRam}`, async () => {
    const server = await startServer({ apiKey: API_KEY, parallel: 1, ctxSize: 1024,
                                       extraArgs: ['--cache-ram', cacheRam] });
    try {
      const c = new OpenAI({ apiKey: API_KEY, baseURL: `${server.url}/v1`, maxRetries: 0 });
      const ask = (messages) => c.chat.completions.create({
        model: 'tiny', messages, max_tokens: 8, temperature: 0, ignore_eos: true });
      const first = [{ role: 'system', content: 'You answer questions about ships. '.repeat(12) },
                     { role: 'user', content: 'What is a keel?' }];
      const a = await ask(first);
      await ask([{ role: 'user', content: 'Something else entirely, about trains and stations.' }]);
      const again = await ask([...first, { role: 'assistant', content: a.choices[0].message.content },
                               { role: 'user', content: 'And a hull?' }]);
      const cached = again.usage.prompt_tokens_details.cached_tokens;
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      const restored = Number(metrics.match(/^troupe_host_cache_restores_total (\S+)$/m)[1]);
      if (restores) {
        // At least the first turn's prompt (its system prompt alone is 12 sentences).
        assert.ok(cached >= a.usage.prompt_tokens, `cached ${cached} of ${again.usage.prompt_tokens}`);
        assert.equal(restored, 1);
      } else {
        // What the slot still shares with the first turn: the template's first tokens.
        assert.ok(cached < a.usage.prompt_tokens / 2, `cached ${cached}`);
        assert.equal(restored, 0);
      }
    } finally {
      assert.equal(await stopServer(server), 0);
    }
  });
}

// --spec-type ngram-simple: a streamed answer and a schema-constrained one are the answers
// without speculation (token for token, or where a step of several rows tips a random model's
// near tie, each token among the other's top 5: vLLM's criterion), and drafted tokens were
// drawn (the answers of a random model fall into cycles, which the drafts follow).
// Speculative decoding (`spec`: the server flags) leaves a streamed greedy answer and a
// schema-constrained one as they were without it, and drafted tokens were kept.
async function sameAnswersWith(spec) {
  const servers = await Promise.all([
    startServer({ apiKey: API_KEY, parallel: 2, ctxSize: 1024, extraArgs: spec }),
    startServer({ apiKey: API_KEY, parallel: 2, ctxSize: 1024 })]);
  try {
    const answers = [];
    for (const s of servers) {
      const c = new OpenAI({ apiKey: API_KEY, baseURL: `${s.url}/v1`, maxRetries: 0 });
      const stream = await c.chat.completions.create({
        model: 'tiny', stream: true, max_tokens: 64, temperature: 0, ignore_eos: true,
        logprobs: true, top_logprobs: 5,
        messages: [{ role: 'user', content: 'Say it again: ' + 'a ship, a sail, a mast. '.repeat(6) }] });
      const tokens = [];
      for await (const chunk of stream)
        tokens.push(...(chunk.choices[0]?.logprobs?.content ?? []));
      const schema = { type: 'object', properties: { items: { type: 'array', minItems: 3,
        items: { type: 'object', properties: { name: { type: 'string', maxLength: 6 } },
                 required: ['name'], additionalProperties: false } } },
        required: ['items'], additionalProperties: false };
      const structured = await c.chat.completions.create({
        model: 'tiny', max_tokens: 200, temperature: 0, messages: [{ role: 'user', content: 'List.' }],
        response_format: { type: 'json_schema', json_schema: { name: 'list', strict: true, schema } } });
      const metrics = await (await fetch(`${s.url}/metrics`)).text();
      answers.push({ tokens, json: structured.choices[0].message.content,
                     accepted: Number(metrics.match(/^troupe_spec_accepted_tokens_total (\S+)$/m)[1]) });
    }
    const [withSpec, without] = answers;
    assert.equal(withSpec.tokens.length, 64);
    assert.equal(without.tokens.length, 64);
    const k = withSpec.tokens.findIndex((t, i) => t.token !== without.tokens[i].token);
    if (k >= 0) {
      const inTop = (a, b) => a.top_logprobs.some((x) => x.token === b.token);
      assert.ok(inTop(withSpec.tokens[k], without.tokens[k]) && inTop(without.tokens[k], withSpec.tokens[k]),
                `diverged at token ${k}`);
    } else {
      assert.equal(withSpec.json, without.json);
    }
    assert.ok(JSON.parse(withSpec.json).items.length >= 3, withSpec.json);
    assert.ok(withSpec.accepted > 0, `accepted ${withSpec.accepted}`);
    assert.equal(without.accepted, 0);
  } finally {
    for (const s of servers) assert.equal(await stopServer(s), 0);
  }
}

test('speculative decoding by n-gram lookup leaves the answers as they were', () => sameAnswersWith(
  ['--spec-type', 'ngram-simple', '--spec-ngram-simple-size-n', '2',
   '--spec-ngram-simple-size-m', '8', '--spec-draft-policy', 'all']));

// A draft model (here the model's own weights in a context of their own: its guesses are the
// answer's tokens, so nearly all are kept), llama-server's -md spelling.
test('speculative decoding with a draft model leaves the answers as they were', () => sameAnswersWith(
  ['-md', process.env.TROUPE_E2E_MODEL, '--spec-draft-n-max', '4', '--spec-draft-policy', 'all']));

// OpenAI's Predicted Outputs: the openai client's `prediction` (here the answer itself, as an
// editor sends the file it asks to change) is drafted from without --spec-type, and the answer
// is the one without it.
test('a prediction speeds the answer up and leaves it as it was', async () => {
  const server = await startServer({ apiKey: API_KEY, parallel: 1, ctxSize: 1024,
                                     extraArgs: ['--spec-draft-policy', 'all'] });
  try {
    const c = new OpenAI({ apiKey: API_KEY, baseURL: `${server.url}/v1`, maxRetries: 0 });
    const accepted = async () => Number((await (await fetch(`${server.url}/metrics`)).text())
      .match(/^troupe_spec_accepted_tokens_total (\S+)$/m)[1]);
    const ask = (prediction) => c.chat.completions.create({
      model: 'tiny', max_tokens: 40, temperature: 0, ignore_eos: true,
      messages: [{ role: 'user', content: 'Rewrite: the ship sails at dawn.' }],
      ...(prediction === undefined ? {} : { prediction: { type: 'content', content: prediction } }) });
    const plain = (await ask()).choices[0].message.content;
    assert.equal(await accepted(), 0);
    const predicted = await ask(plain);
    assert.equal(predicted.choices[0].message.content, plain);
    const kept = await accepted();
    assert.ok(kept >= 10, `accepted ${kept}`);
    assert.equal(predicted.usage.completion_tokens_details.accepted_prediction_tokens, kept);
    assert.equal(typeof predicted.usage.completion_tokens_details.rejected_prediction_tokens, 'number');
    await assert.rejects(ask(7), (e) => e instanceof OpenAI.BadRequestError && e.param === 'prediction');
  } finally {
    assert.equal(await stopServer(server), 0);
  }
});
