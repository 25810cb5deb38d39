// End-to-end structured output: `troupe serve` on a random-weight model (flat distributions,
// the hardest case for a grammar) constrained by JSON schemas, JSON mode and GBNF, checked
// with an independent validator (ajv) and the openai client's own zod helpers.
// Environment: TROUPE_BIN (the troupe binary), TROUPE_E2E_MODEL (a GGUF).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { zodResponseFormat } from 'openai/helpers/zod';
import { z } from 'zod';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { startServer, stopServer } from './server.mjs';

const API_KEY = 'sk-e2e-structured';
let server;
let client;

// Qwen 2.5's real template (the release's test data that bootstrap installs): its tool-call
// format is one llama.cpp can force; the tiny model's own ChatML is not.
const QWEN_TEMPLATE = fileURLToPath(new URL(
  '../../third_party/llama/testdata/templates/Qwen-Qwen2.5-7B-Instruct.jinja', import.meta.url));

before(async () => {
  server = await startServer({ apiKey: API_KEY, parallel: 4, ctxSize: 8192,
                               extraArgs: ['--chat-template-file', QWEN_TEMPLATE] });
  client = new OpenAI({ apiKey: API_KEY, baseURL: `${server.url}/v1`, maxRetries: 0 });
});

after(async () => {
  assert.equal(await stopServer(server), 0, 'graceful shutdown exits 0');
});

// Temperature 1 over the whole vocabulary, not the server's default filters: the flattest
// distribution a grammar can meet, and what makes a random model's strings end.
const FLAT = { temperature: 1, top_k: 0, top_p: 1, min_p: 0 };

// ------------------------------------------------------------------ varied schemas

// A small deterministic generator (mulberry32), so every run asks the same 200 schemas.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// A random schema of the shapes the converter honours. Strings are bounded (maxLength,
// pattern, enum or format) so that a random model finishes them within the token budget.
function randomSchema(r, depth = 0) {
  const pick = (xs) => xs[Math.floor(r() * xs.length)];
  const leaves = [
    // Lengths alone (no pattern) are left out: llama.cpp's grammar counts a stray UTF-8
    // continuation byte of a random-weight model's token as a character (docs/API.md).
    () => ({ type: 'string', pattern: '^[a-zA-Z ]{0,12}$' }),
    () => ({ type: 'string', pattern: pick(['^[a-z]{2,5}$', '^[A-Z][0-9]{3}$', '^(yes|no)-[0-9]$']) }),
    () => ({ type: 'string', format: pick(['date', 'time', 'date-time', 'uuid']) }),
    () => ({ enum: pick([['red', 'green', 'blue'], [1, 2, 3, 'many'], [true, null, 'x']]) }),
    () => ({ const: pick(['fixed', 42, { k: [1, 'two'] }]) }),
    () => ({ type: 'integer' }),
    () => ({ type: 'integer', minimum: -5 + Math.floor(r() * 10), maximum: 20 + Math.floor(r() * 200) }),
    () => ({ type: 'integer', exclusiveMinimum: 0, exclusiveMaximum: 10 }),
    () => ({ type: 'number' }),
    () => ({ type: 'boolean' }),
    () => ({ type: 'null' }),
    () => ({ type: ['integer', 'null'] }),
  ];
  if (depth >= 3 || r() < 0.35) return pick(leaves)();
  const kind = pick(['object', 'object', 'array', 'tuple', 'anyOf']);
  if (kind === 'array') {
    const min = Math.floor(r() * 2);
    return { type: 'array', items: randomSchema(r, depth + 1), minItems: min, maxItems: min + 1 + Math.floor(r() * 3) };
  }
  if (kind === 'tuple') {
    return { type: 'array', prefixItems: [randomSchema(r, depth + 1), randomSchema(r, depth + 1)] };
  }
  if (kind === 'anyOf') {
    return { anyOf: [randomSchema(r, depth + 1), randomSchema(r, depth + 1)] };
  }
  const properties = {};
  const required = [];
  const n = 1 + Math.floor(r() * 4);
  for (let i = 0; i < n; i++) {
    const name = `${pick(['id', 'name', 'size', 'tags', 'when', 'ok', 'kind'])}_${i}`;
    properties[name] = randomSchema(r, depth + 1);
    if (r() < 0.6) required.push(name);
  }
  return { type: 'object', properties, required, additionalProperties: false };
}

// A schema with shared definitions through $ref.
function refSchema(r) {
  const s = randomSchema(r, 2);
  return {
    $defs: { part: s, pair: { type: 'array', items: { $ref: '#/$defs/part' }, minItems: 2, maxItems: 2 } },
    type: 'object',
    properties: { first: { $ref: '#/$defs/part' }, both: { $ref: '#/$defs/pair' } },
    required: ['first', 'both'],
    additionalProperties: false,
  };
}

const ajv = new Ajv2020({ strict: false, allErrors: true });
// Formats are checked for their shape (ajv-formats' "fast" mode): the converter's date grammar
// is lexical and accepts e.g. April 31 (docs/API.md says so).
addFormats(ajv, { mode: 'fast' });

async function constrained(kind, schema, seed, stream) {
  const common = { model: 'tiny', max_tokens: 1500, seed, ...FLAT };
  if (kind === 'chat') {
    const body = {
      ...common,
      messages: [{ role: 'user', content: 'Answer in JSON.' }],
      response_format: { type: 'json_schema', json_schema: { name: 'answer', strict: true, schema } },
    };
    if (!stream) {
      const r = await client.chat.completions.create(body);
      return { text: r.choices[0].message.content, finish: r.choices[0].finish_reason };
    }
    let text = '';
    let finish = null;
    for await (const chunk of await client.chat.completions.create({ ...body, stream: true })) {
      text += chunk.choices[0]?.delta?.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    return { text, finish };
  }
  // Text completions take llama-server's json_schema field.
  const body = { ...common, prompt: 'JSON:', json_schema: schema };
  if (!stream) {
    const r = await client.completions.create(body);
    return { text: r.choices[0].text, finish: r.choices[0].finish_reason };
  }
  let text = '';
  let finish = null;
  for await (const chunk of await client.completions.create({ ...body, stream: true })) {
    text += chunk.choices[0]?.text ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  return { text, finish };
}

test('200 varied schemas: every answer parses and validates, chat and text, streamed and not', async () => {
  const r = rng(2026);
  const cases = [];
  for (let i = 0; i < 200; i++) {
    const schema = i % 10 === 9 ? refSchema(r) : randomSchema(r);
    cases.push({ i, schema, kind: i % 2 ? 'chat' : 'text', stream: i % 4 >= 2 });
  }
  const failures = [];
  let next = 0;
  // Four at a time: the server batches them.
  await Promise.all([0, 1, 2, 3].map(async () => {
    while (next < cases.length) {
      const c = cases[next++];
      const { text, finish } = await constrained(c.kind, c.schema, 1000 + c.i, c.stream);
      let value;
      try {
        value = JSON.parse(text);
      } catch (e) {
        failures.push(`#${c.i} (${c.kind}, finish ${finish}) not JSON: ${text.slice(0, 200)}`);
        continue;
      }
      if (finish !== 'stop') failures.push(`#${c.i} finished with ${finish}`);
      const validate = ajv.compile(c.schema);
      if (!validate(value)) {
        failures.push(`#${c.i} invalid: ${JSON.stringify(validate.errors).slice(0, 300)}\n` +
                      `  schema ${JSON.stringify(c.schema)}\n  value ${text.slice(0, 300)}`);
      }
    }
  }));
  assert.deepEqual(failures, []);
});

// ------------------------------------------------------------------ the client's helpers

test('chat.completions.parse with a zod schema returns the parsed object', async () => {
  // Patterns rather than .max(): zod counts UTF-16 units, JSON Schema (and the grammar) code
  // points, so a random model's astral characters would tell them apart.
  const Person = z.object({
    name: z.string().regex(/^[A-Z][a-z]{1,8}$/),
    age: z.number().int().min(0).max(120),
    role: z.enum(['admin', 'user']),
    nickname: z.string().regex(/^[a-z]{1,6}$/).nullable(),
    tags: z.array(z.enum(['a', 'b', 'c'])).max(3),
  });
  const completion = await client.chat.completions.parse({
    model: 'tiny',
    messages: [{ role: 'user', content: 'Describe a person.' }],
    response_format: zodResponseFormat(Person, 'person'),
    max_tokens: 400,
    seed: 5,
    ...FLAT,
  });
  const message = completion.choices[0].message;
  assert.equal(completion.choices[0].finish_reason, 'stop');
  assert.ok(message.parsed, `parsed: ${message.content}`);
  assert.deepEqual(Person.parse(message.parsed), message.parsed);
});

test('JSON mode returns one JSON object', async () => {
  for (const seed of [1, 2, 3]) {
    const r = await client.chat.completions.create({
      model: 'tiny', messages: [{ role: 'user', content: 'JSON please' }],
      response_format: { type: 'json_object' }, max_tokens: 1500, seed, ...FLAT,
    });
    const value = JSON.parse(r.choices[0].message.content);
    assert.equal(typeof value, 'object');
    assert.ok(value !== null && !Array.isArray(value));
  }
});

test('a GBNF grammar constrains the output; a broken one is a 400', async () => {
  const grammar = [
    'root ::= expr',
    'expr ::= term (("+" | "-") term){0,3}',
    'term ::= num (("*" | "/") num){0,2}',
    'num ::= [1-9] [0-9]{0,2} | "(" expr ")"',
  ].join('\n');
  for (const seed of [1, 2, 3, 4]) {
    const r = await client.completions.create({
      model: 'tiny', prompt: 'An expression:', grammar, max_tokens: 200, seed, ...FLAT,
    });
    const text = r.choices[0].text;
    // The same language, checked by evaluating it as arithmetic.
    assert.match(text, /^[0-9+\-*/()]+$/, text);
    assert.doesNotThrow(() => Function(`"use strict"; return (${text});`)(), text);
    assert.equal(r.choices[0].finish_reason, 'stop');
  }
  await assert.rejects(
    client.completions.create({ model: 'tiny', prompt: 'x', grammar: 'root ::= ("a"' }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'grammar');
});

test('schemas that cannot be honoured are 400s naming the param and the reason', async () => {
  const messages = [{ role: 'user', content: 'x' }];
  const cases = [
    [{ type: 'json_schema', json_schema: { name: 'a', schema: { type: 'string', format: 'email' } } },
     'response_format.json_schema.schema', /format 'email'/],
    [{ type: 'json_schema', json_schema: { name: 'a', schema: { type: 'object', not: {} } } },
     'response_format.json_schema.schema', /'not'/],
    [{ type: 'sound' }, 'response_format.type', /sound/],
  ];
  for (const [format, param, reason] of cases) {
    await assert.rejects(
      client.chat.completions.create({ model: 'tiny', messages, response_format: format }),
      (e) => e instanceof OpenAI.BadRequestError && e.param === param && reason.test(e.message));
  }
});

// ------------------------------------------------------------------ forced tool calls

// The openai client's own agent loop: the named tool is forced, so even a random-weight model
// calls it with arguments that parse and validate; the runner calls the function with them,
// sends its result back and stops (a named choice ends the loop after its call). Streamed and not.
test('runTools with a forced function calls it with valid arguments, streamed and not', async () => {
  const parameters = {
    type: 'object',
    properties: {
      days: { type: 'integer', minimum: 1, maximum: 7 },
      unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
    },
    required: ['days', 'unit'],
    additionalProperties: false,
  };
  const validate = ajv.compile(parameters);
  for (const stream of [false, true]) {
    const calls = [];
    const forecast = (args) => {
      calls.push(args);
      return JSON.stringify({ forecast: 'sunny', days: args.days });
    };
    const runner = client.chat.completions.runTools({
      model: 'tiny',
      messages: [{ role: 'user', content: 'What is the weather this week?' }],
      tools: [{ type: 'function', function: { function: forecast, parse: JSON.parse, name: 'forecast', parameters } }],
      tool_choice: { type: 'function', function: { name: 'forecast' } },
      // The call's grammar (llama.cpp's) allows whitespace between every element, which a
      // random model spends tokens on.
      max_tokens: 1000,
      seed: 11,
      ...FLAT,
      stream,
    });
    const messages = [];
    runner.on('message', (m) => messages.push(m));
    await runner.done();
    assert.equal(calls.length, 1, `stream=${stream}: the function ran once`);
    assert.ok(validate(calls[0]), `arguments ${JSON.stringify(calls[0])}: ${JSON.stringify(validate.errors)}`);
    const assistant = messages.find((m) => m.role === 'assistant' && m.tool_calls?.length);
    assert.equal(assistant.tool_calls[0].function.name, 'forecast');
    const result = messages.find((m) => m.role === 'tool');
    assert.equal(result.tool_call_id, assistant.tool_calls[0].id);
  }
});
