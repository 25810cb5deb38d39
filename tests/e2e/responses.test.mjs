// End-to-end OpenAI Responses API: `troupe serve` on a random-weight model with Qwen 2.5's
// template (a tool-capable family), driven by the official openai client's `responses`.
// Environment: TROUPE_BIN (the troupe binary), TROUPE_E2E_MODEL (a GGUF).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import Ajv2020 from 'ajv/dist/2020.js';
import { startServer, stopServer } from './server.mjs';

const API_KEY = 'sk-e2e-responses';
let server;
let client;

const QWEN_TEMPLATE = fileURLToPath(new URL(
  '../../third_party/llama/testdata/templates/Qwen-Qwen2.5-7B-Instruct.jinja', import.meta.url));

const FLAT = { temperature: 1, top_p: 1 };

// The text of a response's message items (what the SDK's output_text holds for create()).
function outputText(r) {
  return r.output.filter((i) => i.type === 'message')
    .flatMap((i) => i.content).filter((c) => c.type === 'output_text').map((c) => c.text).join('');
}

before(async () => {
  server = await startServer({ apiKey: API_KEY, parallel: 2, ctxSize: 4096,
                               extraArgs: ['--chat-template-file', QWEN_TEMPLATE] });
  client = new OpenAI({ apiKey: API_KEY, baseURL: `${server.url}/v1`, maxRetries: 0 });
});

after(async () => {
  assert.equal(await stopServer(server), 0, 'graceful shutdown exits 0');
});

test('responses.create streamed and not give the same text', async () => {
  const r = await client.responses.create({
    model: 'tiny', input: 'Tell me a story', instructions: 'Be brief.', max_output_tokens: 6,
    temperature: 0,
  });
  assert.equal(r.object, 'response');
  assert.match(r.id, /^resp_/);
  assert.ok(['completed', 'incomplete'].includes(r.status));
  assert.equal(r.output.at(-1).type, 'message');
  assert.equal(typeof r.output_text, 'string');
  assert.ok(r.usage.output_tokens > 0 && r.usage.output_tokens <= 6);
  assert.equal(r.instructions, 'Be brief.');

  const stream = await client.responses.create({
    model: 'tiny', input: 'Tell me a story', instructions: 'Be brief.', max_output_tokens: 6,
    temperature: 0, stream: true,
  });
  const types = [];
  let text = '';
  let final;
  let seq = 0;
  for await (const ev of stream) {
    types.push(ev.type);
    assert.equal(ev.sequence_number, seq++);
    if (ev.type === 'response.output_text.delta') text += ev.delta;
    if (ev.type === 'response.completed' || ev.type === 'response.incomplete') final = ev.response;
  }
  assert.deepEqual(types.slice(0, 4), ['response.created', 'response.in_progress',
    'response.output_item.added', 'response.content_part.added']);
  assert.ok(types.includes('response.output_text.done'));
  assert.equal(text, r.output_text);
  assert.equal(outputText(final), text);
});

test('a function-call round trip, and previous_response_id continues it', async () => {
  const parameters = {
    type: 'object',
    properties: { days: { type: 'integer', minimum: 1, maximum: 7 } },
    required: ['days'],
    additionalProperties: false,
  };
  const validate = new Ajv2020({ strict: false }).compile(parameters);
  const tools = [{ type: 'function', name: 'forecast', description: 'weather', parameters, strict: true }];
  for (const stream of [false, true]) {
    // One call: with parallel calls a random model may start a second one that max_output_tokens
    // cuts, and a cut call's arguments are not JSON, which the next turn rightly refuses.
    const request = { model: 'tiny', input: 'Weather this week?', tools, tool_choice: 'required',
                      parallel_tool_calls: false, max_output_tokens: 400, ...FLAT };
    let first;
    if (stream) {
      const s = client.responses.stream(request);
      first = await s.finalResponse();
    } else {
      first = await client.responses.create(request);
    }
    const call = first.output.find((i) => i.type === 'function_call');
    assert.ok(call, JSON.stringify(first.output));
    assert.equal(first.output.filter((i) => i.type === 'function_call').length, 1);
    assert.equal(call.name, 'forecast');
    assert.ok(validate(JSON.parse(call.arguments)), call.arguments);
    // The response echoes the request's tool settings.
    assert.equal(first.tool_choice, 'required');
    assert.equal(first.parallel_tool_calls, false);
    assert.deepEqual(first.tools.map((t) => t.name), ['forecast']);
    // Continue from the stored response: only the function's output is sent.
    const second = await client.responses.create({
      model: 'tiny', previous_response_id: first.id, tools, max_output_tokens: 8, temperature: 0,
      input: [{ type: 'function_call_output', call_id: call.call_id, output: '{"forecast":"sunny"}' }],
    });
    assert.equal(second.previous_response_id, first.id);
    assert.ok(second.usage.input_tokens > first.usage.input_tokens);
    // The same round trip with the whole history sent again.
    const again = await client.responses.create({
      model: 'tiny', tools, max_output_tokens: 8, temperature: 0, store: false,
      input: [{ role: 'user', content: 'Weather this week?' }, ...first.output,
        { type: 'function_call_output', call_id: call.call_id, output: '{"forecast":"sunny"}' }],
    });
    assert.equal(again.usage.input_tokens, second.usage.input_tokens);
  }
});

test('stored responses can be read back and deleted; unknown ids are 404', async () => {
  const r = await client.responses.create({ model: 'tiny', input: 'hi', max_output_tokens: 2 });
  const got = await client.responses.retrieve(r.id);
  assert.equal(got.id, r.id);
  assert.deepEqual(got.output, r.output);
  await client.responses.delete(r.id);
  await assert.rejects(client.responses.retrieve(r.id), (e) => e instanceof OpenAI.NotFoundError);
  await assert.rejects(client.responses.create({
    model: 'tiny', input: 'hi', previous_response_id: 'resp_missing', max_output_tokens: 2 }),
  (e) => e instanceof OpenAI.NotFoundError && e.param === 'previous_response_id');
  const unstored = await client.responses.create({ model: 'tiny', input: 'hi', max_output_tokens: 2, store: false });
  await assert.rejects(client.responses.retrieve(unstored.id), (e) => e instanceof OpenAI.NotFoundError);
  await assert.rejects(client.responses.create({
    model: 'tiny', input: 'hi', tools: [{ type: 'web_search' }] }),
  (e) => e instanceof OpenAI.BadRequestError && e.param === 'tools[0].type');
});

test('text.format json_schema output validates', async () => {
  const schema = {
    type: 'object',
    properties: { n: { type: 'integer', minimum: 1, maximum: 9 }, ok: { type: 'boolean' } },
    required: ['n', 'ok'],
    additionalProperties: false,
  };
  const validate = new Ajv2020({ strict: false }).compile(schema);
  for (const stream of [false, true]) {
    const request = { model: 'tiny', input: 'JSON please', max_output_tokens: 300, ...FLAT,
                      text: { format: { type: 'json_schema', name: 'x', schema, strict: true } } };
    const r = stream ? await client.responses.stream(request).finalResponse()
                     : await client.responses.create(request);
    const text = outputText(r);
    const value = JSON.parse(text);
    assert.ok(validate(value), `stream=${stream}: ${text}: ${JSON.stringify(validate.errors)}`);
  }
});
