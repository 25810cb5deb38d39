// End-to-end Anthropic Messages API: `troupe serve` on a random-weight model with Qwen 2.5's
// template (a tool-capable family), driven by the official @anthropic-ai/sdk client.
// Environment: TROUPE_BIN (the troupe binary), TROUPE_E2E_MODEL (a GGUF).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import Anthropic from '@anthropic-ai/sdk';
import Ajv2020 from 'ajv/dist/2020.js';
import { startServer, stopServer } from './server.mjs';

const API_KEY = 'sk-e2e-anthropic';
let server;
let client;

const QWEN_TEMPLATE = fileURLToPath(new URL(
  '../../third_party/llama/testdata/templates/Qwen-Qwen2.5-7B-Instruct.jinja', import.meta.url));

// Temperature 1 over the whole vocabulary: the flattest distribution a grammar can meet.
const FLAT = { temperature: 1, top_k: 0, top_p: 1 };

before(async () => {
  server = await startServer({ apiKey: API_KEY, parallel: 2, ctxSize: 4096,
                               extraArgs: ['--chat-template-file', QWEN_TEMPLATE] });
  client = new Anthropic({ apiKey: API_KEY, baseURL: server.url, maxRetries: 0 });
});

after(async () => {
  assert.equal(await stopServer(server), 0, 'graceful shutdown exits 0');
});

test('messages.create answers with a message object', async () => {
  const m = await client.messages.create({
    model: 'tiny',
    max_tokens: 5,
    system: 'Be brief.',
    messages: [{ role: 'user', content: 'Hello' }],
    temperature: 0,
    metadata: { user_id: 'e2e' },
  });
  assert.equal(m.type, 'message');
  assert.equal(m.role, 'assistant');
  assert.match(m.id, /^msg_/);
  assert.equal(m.model, 'tiny');
  assert.equal(m.content[0].type, 'text');
  assert.ok(['end_turn', 'max_tokens', 'stop_sequence'].includes(m.stop_reason), m.stop_reason);
  assert.ok(m.usage.input_tokens > 0);
  assert.ok(m.usage.output_tokens > 0 && m.usage.output_tokens <= 5);
  assert.equal(typeof m.usage.cache_read_input_tokens, 'number');
});

test('messages.create streamed: the SDK assembles the same kind of message', async () => {
  const stream = client.messages.stream({
    model: 'tiny',
    max_tokens: 6,
    messages: [{ role: 'user', content: 'Tell me a story' }],
    temperature: 0,
  });
  const types = [];
  let text = '';
  stream.on('streamEvent', (e) => types.push(e.type));
  stream.on('text', (t) => { text += t; });
  const m = await stream.finalMessage();
  assert.equal(types[0], 'message_start');
  assert.equal(types.at(-1), 'message_stop');
  assert.equal(types.at(-2), 'message_delta');
  assert.equal(m.content[0].type, 'text');
  assert.equal(m.content[0].text, text);
  assert.ok(m.usage.output_tokens > 0 && m.usage.output_tokens <= 6);
  // The same request not streamed gives the same text (greedy).
  const plain = await client.messages.create({
    model: 'tiny', max_tokens: 6, messages: [{ role: 'user', content: 'Tell me a story' }],
    temperature: 0,
  });
  assert.equal(plain.content[0].text, text);
  assert.equal(plain.stop_reason, m.stop_reason);
});

test('a tool-use round trip with tool_choice any, streamed and not', async () => {
  const input_schema = {
    type: 'object',
    properties: {
      days: { type: 'integer', minimum: 1, maximum: 7 },
      unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
    },
    required: ['days', 'unit'],
    additionalProperties: false,
  };
  const validate = new Ajv2020({ strict: false }).compile(input_schema);
  const tools = [{ name: 'forecast', description: 'The weather forecast', input_schema }];
  for (const stream of [false, true]) {
    const question = { role: 'user', content: 'What is the weather this week?' };
    const request = {
      model: 'tiny', max_tokens: 1000, tools, tool_choice: { type: 'any', disable_parallel_tool_use: true },
      messages: [question], ...FLAT,
    };
    const first = stream ? await client.messages.stream(request).finalMessage()
                         : await client.messages.create(request);
    assert.equal(first.stop_reason, 'tool_use', `stream=${stream}: ${JSON.stringify(first)}`);
    const use = first.content.find((b) => b.type === 'tool_use');
    assert.ok(use, JSON.stringify(first.content));
    assert.equal(use.name, 'forecast');
    assert.ok(validate(use.input), `input ${JSON.stringify(use.input)}: ${JSON.stringify(validate.errors)}`);
    const second = await client.messages.create({
      model: 'tiny', max_tokens: 8, tools, temperature: 0,
      messages: [question, { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'sunny' }] }],
    });
    assert.equal(second.type, 'message');
    assert.ok(['end_turn', 'max_tokens', 'tool_use'].includes(second.stop_reason));
  }
});

test('count_tokens counts the rendered prompt', async () => {
  const body = { model: 'tiny', system: 'Be brief.', messages: [{ role: 'user', content: 'Hello' }] };
  const { input_tokens } = await client.messages.countTokens(body);
  assert.ok(input_tokens > 5);
  const m = await client.messages.create({ ...body, max_tokens: 1, temperature: 0 });
  assert.equal(m.usage.input_tokens + m.usage.cache_read_input_tokens, input_tokens);
  const more = await client.messages.countTokens({
    ...body, messages: [{ role: 'user', content: 'Hello there, how are you today?' }] });
  assert.ok(more.input_tokens > input_tokens);
});

test('errors come back as the SDK\'s error classes', async () => {
  const ask = (c, extra = {}) => c.messages.create({
    model: 'tiny', max_tokens: 4, messages: [{ role: 'user', content: 'hi' }], ...extra });
  await assert.rejects(ask(client, { model: 'no-such-model' }),
    (e) => e instanceof Anthropic.NotFoundError && e.status === 404 && e.error?.error?.type === 'not_found_error');
  const wrong = new Anthropic({ apiKey: 'sk-wrong', baseURL: server.url, maxRetries: 0 });
  await assert.rejects(ask(wrong),
    (e) => e instanceof Anthropic.AuthenticationError && e.status === 401 && e.error?.error?.type === 'authentication_error');
  const long = 'word '.repeat(6000);
  await assert.rejects(ask(client, { messages: [{ role: 'user', content: long }] }),
    (e) => e instanceof Anthropic.BadRequestError && e.error?.error?.type === 'invalid_request_error');
  await assert.rejects(ask(client, {
    messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'AA==' } }] }] }),
  (e) => e instanceof Anthropic.BadRequestError && /image/.test(e.message));
  // Streamed requests are refused the same way before any event.
  await assert.rejects(client.messages.stream({
    model: 'no-such-model', max_tokens: 4, messages: [{ role: 'user', content: 'hi' }] }).finalMessage(),
  (e) => e instanceof Anthropic.NotFoundError);
});
