// End-to-end: troupe's web chat page in a real browser (Debian's chromium driven by
// playwright-core) against `troupe serve`: the real stories model when ../shared/models has it
// (else a generated one) for loading, streaming and reloading; the simulated engine, slowed
// down and behind an API key, for the key dialog and for Stop (an answer that is still
// running when Stop is pressed). Screenshots at desktop and phone widths go to
// TROUPE_E2E_SHOTS for the record.
// Environment: TROUPE_BIN, TROUPE_E2E_MODEL, TROUPE_E2E_STORIES (may be empty),
// TROUPE_CHROMIUM (the browser), TROUPE_E2E_SHOTS (a folder).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startServer, stopServer } from './server.mjs';

const KEY = 'sk-webui-e2e';
const shots = process.env.TROUPE_E2E_SHOTS;
const stories = process.env.TROUPE_E2E_STORIES || '';
let real;     // stories (or generated) model, no key
let slow;     // simulated engine, 20 tokens/s, with a key
let browser;

before(async () => {
  mkdirSync(shots, { recursive: true });
  real = await startServer({ apiKey: null, parallel: 1, ctxSize: 2048,
    model: stories || process.env.TROUPE_E2E_MODEL, alias: 'stories' });
  slow = await startServer({ apiKey: KEY, model: null, alias: 'slow', parallel: 2,
    extraArgs: ['--engine', 'sim', '--sim-decode-tps', '20'] });
  browser = await chromium.launch({
    executablePath: process.env.TROUPE_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // CI runs as root, where Chromium's sandbox cannot start.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
});

after(async () => {
  await browser?.close();
  assert.equal(await stopServer(real), 0, 'graceful shutdown exits 0');
  assert.equal(await stopServer(slow), 0, 'graceful shutdown exits 0');
});

// A page that records console errors and uncaught exceptions into `errors`.
async function openPage(context, url, errors) {
  const page = await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url);
  return page;
}

async function modelListed(page, id) {
  await page.locator(`#model option[value="${id}"]`).waitFor({ state: 'attached' });
}

async function setSetting(page, id, value) {
  if (await page.locator('#settings').isHidden()) await page.click('#toggle-settings');
  await page.fill(`#${id}`, value);
}

async function metric(url, name) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = text.match(new RegExp(`^${name}\\s+(\\S+)`, 'm'));
  return m ? Number(m[1]) : NaN;
}

// Records the length of the newest answer's text each time the page changes it.
async function watchAnswer(page) {
  await page.evaluate(() => {
    window.seenLengths = [];
    new MutationObserver(() => {
      const bodies = document.querySelectorAll('.message.assistant .body');
      const n = bodies.length ? bodies[bodies.length - 1].textContent.length : 0;
      if (n !== window.seenLengths.at(-1)) window.seenLengths.push(n);
    }).observe(document.getElementById('messages'), { childList: true, subtree: true,
      characterData: true });
  });
}

const lastAnswer = (page) => page.locator('.message.assistant').last();

test('web chat: loads without console errors, streams an answer, keeps it on reload', async (t) => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const errors = [];
  const page = await openPage(context, real.url, errors);
  await modelListed(page, 'stories');
  assert.equal(await page.title(), 'troupe chat');

  await setSetting(page, 'temperature', '0');
  // Long enough to span many display frames even when the model decodes fast.
  await setSetting(page, 'max_tokens', '1500');
  await page.click('#toggle-settings');
  await watchAnswer(page);
  await page.fill('#input', 'Once upon a time');
  await page.press('#input', 'Enter');
  const stats = lastAnswer(page).locator('.stats');
  await stats.filter({ hasText: 'tokens/s' }).waitFor();
  const answer = await lastAnswer(page).locator('.body').innerText();
  assert.ok(answer.length > 40, `an answer came: ${JSON.stringify(answer)}`);
  const seen = await page.evaluate(() => window.seenLengths);
  const growing = seen.filter((n) => n > 0);
  t.diagnostic(`answer lengths as rendered: ${seen.join(' ')}`);
  assert.ok(growing.length >= 2, `the answer grew across renders: ${JSON.stringify(seen)}`);
  for (let i = 1; i < growing.length; i++) assert.ok(growing[i] > growing[i - 1], String(seen));
  assert.match(await stats.innerText(), /TTFT \d+ ms · [0-9.]+ tokens\/s · \d+ tokens/);
  await page.screenshot({ path: join(shots, 'webui-desktop.png') });

  await page.reload();
  await modelListed(page, 'stories');
  assert.equal(await page.locator('.message.user .body').innerText(), 'Once upon a time');
  assert.equal(await lastAnswer(page).locator('.body').innerText(), answer);
  assert.match(await page.locator('.conversations li[aria-current="true"]').innerText(),
    /Once upon a time/);

  // At phone width the conversation list is a drawer, off screen until the menu opens it.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForFunction(() =>
    document.getElementById('sidebar').getBoundingClientRect().right <= 0);
  await page.screenshot({ path: join(shots, 'webui-phone.png') });
  await page.click('#toggle-sidebar');
  await page.waitForFunction(() =>
    document.getElementById('sidebar').getBoundingClientRect().left === 0);
  await page.screenshot({ path: join(shots, 'webui-phone-conversations.png') });
  assert.deepEqual(errors, []);
  await context.close();
});

test('web chat: asks for the API key, keeps it, and Stop ends the generation on the server', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const errors = [];
  const page = await openPage(context, slow.url, errors);
  await page.locator('#key-dialog[open]').waitFor();
  await page.screenshot({ path: join(shots, 'webui-key.png') });
  await page.fill('#key-input', KEY);
  await page.click('#key-save');
  await modelListed(page, 'slow');

  await setSetting(page, 'max_tokens', '2000');
  await page.fill('#input', 'Tell me a long story');
  await page.click('#send');
  await lastAnswer(page).locator('.body').filter({ hasText: /\S/ }).waitFor();
  assert.equal(await metric(slow.url, 'troupe_requests_running'), 1);
  await page.click('#stop');
  await lastAnswer(page).locator('.stats').filter({ hasText: 'stopped' }).waitFor();
  assert.ok(await page.locator('#send').isVisible());
  const stopped = await lastAnswer(page).locator('.body').innerText();
  // The server hears the closed connection and cancels: nothing is left running.
  let running = NaN;
  for (let i = 0; i < 200 && running !== 0; i++) {
    running = await metric(slow.url, 'troupe_requests_running');
    if (running !== 0) await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(running, 0, 'troupe_requests_running returns to 0');
  assert.equal(await lastAnswer(page).locator('.body').innerText(), stopped, 'no text after Stop');

  // The key stays in the browser: a reload asks for nothing and lists the model.
  await page.reload();
  await modelListed(page, 'slow');
  assert.equal(await page.locator('#key-dialog[open]').count(), 0);
  assert.match(await lastAnswer(page).locator('.stats').innerText(), /stopped/);
  assert.deepEqual(errors.filter((e) => !e.includes('401')), []);
  await context.close();
});

test('web chat: the incremental markdown renderer equals a whole render at every prefix', async () => {
  const context = await browser.newContext();
  const errors = [];
  const page = await openPage(context, real.url, errors);
  const result = await page.evaluate(async () => {
    const { MarkdownView } = await import('/webui/markdown.js');
    const text = [
      '## Plan', '', 'Some **bold**, *em*, `code` and ~~old~~ with a [link](https://example.com/a).',
      'Second line <img src=x onerror="window.bad=1">', '', '1. one', '2. two', '   still two', '',
      '- a', '- b', '', '> quoted', '> more', '', '```js', 'const x = 1 < 2;', '', 'x;', '```',
      '', '---', 'tail `open'].join('\n');
    const fresh = (prefix) => {
      const root = document.createElement('div');
      new MarkdownView(root).update(prefix);
      return root.innerHTML;
    };
    const root = document.createElement('div');
    const view = new MarkdownView(root);
    const mismatches = [];
    for (let n = 1; n <= text.length; n++) {
      view.update(text.slice(0, n));
      if (root.innerHTML !== fresh(text.slice(0, n))) mismatches.push(n);
    }
    return { mismatches, html: root.innerHTML, bad: window.bad === 1,
      kept: view.doneLines };
  });
  assert.deepEqual(result.mismatches, []);
  assert.equal(result.bad, false);
  assert.ok(result.kept > 10, 'finished blocks are kept, not re-rendered');
  for (const part of ['<h4>Plan</h4>', '<strong>bold</strong>', '<em>em</em>', '<code>code</code>',
    '<del>old</del>', 'rel="noopener noreferrer"', '&lt;img src=x', '<ol>', '<ul>', '<blockquote>',
    'class="code-block"', '>Copy</button>', 'const x = 1 &lt; 2;\n\nx;', '<hr>']) {
    assert.ok(result.html.includes(part), `${part} in ${result.html}`);
  }
  assert.deepEqual(errors, []);
  await context.close();
});

test('web chat: conversations are renamed, exported, imported and deleted', async () => {
  const errors = [];
  const a = await browser.newContext({ acceptDownloads: true });
  const page = await openPage(a, real.url, errors);
  await modelListed(page, 'stories');
  await setSetting(page, 'max_tokens', '8');
  const ask = async (text, n) => {
    await page.fill('#input', text);
    await page.press('#input', 'Enter');
    await page.locator('.message.assistant .stats').nth(n).filter({ hasText: 'tokens' }).waitFor();
  };
  await ask('First question', 0);
  await page.click('#new-chat');
  await ask('Second question', 0);
  const items = page.locator('.conversations li');
  assert.equal(await items.count(), 2);

  await page.click('.conversations li[aria-current="true"] button[aria-label^="Rename"]');
  await page.fill('.conversations input', 'Renamed chat');
  await page.press('.conversations input', 'Enter');
  assert.deepEqual(await items.allInnerTexts(), ['Renamed chat', 'First question']);

  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export')]);
  const file = await download.path();
  const exported = JSON.parse(readFileSync(file, 'utf8'));
  assert.equal(exported.format, 'troupe-chat');
  assert.deepEqual(exported.conversations.map((c) => c.title), ['Renamed chat', 'First question']);
  assert.equal(exported.conversations[1].messages[0].content, 'First question');

  const b = await browser.newContext();
  const other = await openPage(b, real.url, errors);
  await modelListed(other, 'stories');
  await other.setInputFiles('#import-file', file);
  await other.locator('.conversations li').nth(2).waitFor();
  assert.deepEqual(await other.locator('.conversations li').allInnerTexts(),
    ['Renamed chat', 'First question', 'New chat']);
  await other.click('.conversations li:nth-child(2) .open');
  assert.equal(await other.locator('.message.user .body').innerText(), 'First question');

  other.once('dialog', (d) => d.accept());
  await other.click('.conversations li button[aria-label="Delete Renamed chat"]');
  await other.reload();
  await modelListed(other, 'stories');
  assert.deepEqual(await other.locator('.conversations li').allInnerTexts(),
    ['First question', 'New chat']);
  assert.deepEqual(errors, []);
  await a.close();
  await b.close();
});

// The model here neither reasons nor calls tools, so this one answer is played by the browser
// itself (a routed request): the stream troupe sends for such a model, in OpenAI's shape.
test('web chat: reasoning is folded, tool calls and server errors are shown as such', async () => {
  const context = await browser.newContext();
  const errors = [];
  const page = await openPage(context, real.url, errors);
  await modelListed(page, 'stories');
  const event = (delta, extra = {}) =>
    `data: ${JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta, ...extra }] })}\n\n`;
  await page.route('**/v1/chat/completions', (route) => {
    const body = JSON.parse(route.request().postData());
    if (body.messages.at(-1).content === 'fail') {
      return route.fulfill({ status: 400, contentType: 'application/json',
        body: JSON.stringify({ error: { message: "'temperature' must be at most 2", type: 'invalid_request_error' } }) });
    }
    return route.fulfill({ status: 200, contentType: 'text/event-stream', body: [
      event({ role: 'assistant', content: '' }),
      event({ reasoning_content: 'The user wants ' }), event({ reasoning_content: 'the weather.' }),
      event({ tool_calls: [{ index: 0, id: 'call_1', type: 'function',
        function: { name: 'forecast', arguments: '{"days":' } }] }),
      event({ tool_calls: [{ index: 0, function: { arguments: ' 3}' } }] }),
      event({}, { finish_reason: 'tool_calls' }),
      `data: ${JSON.stringify({ choices: [], usage: { completion_tokens: 12 } })}\n\n`,
      'data: [DONE]\n\n'].join('') });
  });
  await page.fill('#input', 'Weather?');
  await page.press('#input', 'Enter');
  const answer = lastAnswer(page);
  await answer.locator('.stats').filter({ hasText: '12 tokens' }).waitFor();
  const reasoning = answer.locator('details.reasoning');
  assert.equal(await reasoning.getAttribute('open'), null, 'folded');
  assert.equal(await reasoning.locator('.reasoning-text').textContent(), 'The user wants the weather.');
  assert.equal(await answer.locator('.tool-call .tool-name').innerText(), 'Tool call: forecast');
  assert.deepEqual(JSON.parse(await answer.locator('.tool-call pre').innerText()), { days: 3 });

  await page.fill('#input', 'fail');
  await page.press('#input', 'Enter');
  await lastAnswer(page).locator('.error').filter({ hasText: 'must be at most 2' }).waitFor();
  assert.deepEqual(errors.filter((e) => !e.includes('400')), []);
  await context.close();
});
