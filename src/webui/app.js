// troupe's web chat: conversations kept in this browser (localStorage), answers streamed from
// this server's /v1/chat/completions and rendered as they arrive. No dependencies, nothing
// loaded from anywhere but this server.
//
// Rendering: each received event changes the answer's state and asks for one render at the
// next display frame; events that arrive within one frame share that render. Nothing renders
// on a timer.

import { MarkdownView, handleCopyClicks } from './markdown.js';

const $ = (id) => document.getElementById(id);
const emptyNode = $('empty');  // the greeting, shown while a conversation has no messages
const KEYS = { conversations: 'troupe.conversations', current: 'troupe.current',
  settings: 'troupe.settings', apiKey: 'troupe.apiKey', model: 'troupe.model' };
const SETTINGS = ['temperature', 'top_p', 'max_tokens', 'seed'];

const state = {
  conversations: [],
  current: null,    // the open conversation
  streaming: null,  // { abort: AbortController, view: AnswerView } while an answer streams
};

// ---- Storage ------------------------------------------------------------------------------

function load(key, fallback) {
  try {
    const v = localStorage.getItem(key);
    return v === null ? fallback : JSON.parse(v);
  } catch {
    return fallback;
  }
}

function store(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch (e) {
    showState(`Could not save in this browser: ${e.message}`, true);
  }
}

function saveConversations() {
  store(KEYS.conversations, state.conversations);
  store(KEYS.current, state.current?.id ?? null);
}

function newId() {
  return `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
}

function newConversation() {
  const c = { id: newId(), title: 'New chat', created: Date.now(), system: '', messages: [] };
  state.conversations.unshift(c);
  return c;
}

// A conversation read from storage or an import: the fields the page relies on, checked.
function validConversation(c) {
  return c && typeof c === 'object' && typeof c.id === 'string' && Array.isArray(c.messages) &&
    c.messages.every((m) => m && (m.role === 'user' || m.role === 'assistant') &&
      typeof m.content === 'string');
}

// ---- Server access ------------------------------------------------------------------------

function authHeaders() {
  const key = load(KEYS.apiKey, '');
  return key ? { Authorization: `Bearer ${key}` } : {};
}

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// The message of an OpenAI-shaped error body, or the status line.
async function errorOf(res) {
  const text = await res.text().catch(() => '');
  try {
    const e = JSON.parse(text).error;
    if (e?.message) return new HttpError(res.status, e.message);
  } catch { /* not JSON */ }
  return new HttpError(res.status, `${res.status} ${res.statusText || 'error'}${text ? `: ${text}` : ''}`);
}

async function getJson(path) {
  const res = await fetch(path, { headers: authHeaders() });
  if (!res.ok) throw await errorOf(res);
  return res.json();
}

// Resolves once a key is entered (after `reason` is shown); the key is kept in localStorage.
function askForKey(reason) {
  const dialog = $('key-dialog');
  $('key-reason').textContent = reason;
  $('key-input').value = load(KEYS.apiKey, '');
  $('change-key').hidden = false;
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(), { once: true });
    if (!dialog.open) dialog.showModal();
    $('key-input').focus();
  });
}

async function loadModels() {
  let models;
  for (;;) {
    try {
      models = (await getJson('/v1/models')).data ?? [];
      break;
    } catch (e) {
      if (e.status !== 401) {
        showState(`Cannot list models: ${e.message}`, true);
        return;
      }
      await askForKey(load(KEYS.apiKey, '')
        ? 'The server did not accept this key. Enter another one.'
        : 'This server needs an API key. It is kept in this browser only.');
    }
  }
  const select = $('model');
  select.replaceChildren(...models.map((m) => new Option(m.id, m.id)));
  const wanted = load(KEYS.model, '');
  if (models.some((m) => m.id === wanted)) select.value = wanted;
  select.disabled = models.length === 0;
  showState(models.length ? '' : 'No model is being served', models.length === 0);
}

function showState(text, bad = false) {
  const el = $('server-state');
  el.textContent = text;
  el.classList.toggle('bad', bad);
}

// ---- Streaming ----------------------------------------------------------------------------

// Yields each SSE event's data from a fetch Response as its bytes arrive.
async function* sseData(res) {
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event.split('\n').filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(l[5] === ' ' ? 6 : 5)).join('\n');
      if (data) yield data;
    }
  }
}

function requestBody(conversation) {
  const messages = [];
  if (conversation.system.trim()) messages.push({ role: 'system', content: conversation.system });
  for (const m of conversation.messages) {
    if (m.role === 'user') messages.push({ role: 'user', content: m.content });
    else if (m.content || m.tool_calls?.length) {
      const a = { role: 'assistant', content: m.content };
      if (m.tool_calls?.length) a.tool_calls = m.tool_calls;
      messages.push(a);
    }
  }
  const body = { model: $('model').value, messages, stream: true,
    stream_options: { include_usage: true } };
  const s = load(KEYS.settings, {});
  for (const name of SETTINGS) {
    if (s[name] !== undefined && s[name] !== '') body[name] = Number(s[name]);
  }
  return body;
}

// One streamed chunk into the answer: content, reasoning, tool call pieces, usage.
function applyChunk(answer, chunk) {
  if (chunk.usage) answer.usage = chunk.usage;
  const choice = chunk.choices?.[0];
  if (!choice) return;
  const d = choice.delta ?? {};
  if (d.content) answer.content += d.content;
  if (d.reasoning_content) answer.reasoning = (answer.reasoning ?? '') + d.reasoning_content;
  for (const t of d.tool_calls ?? []) {
    answer.tool_calls ??= [];
    const call = answer.tool_calls[t.index ?? 0] ??=
      { id: '', type: 'function', function: { name: '', arguments: '' } };
    if (t.id) call.id = t.id;
    if (t.function?.name) call.function.name += t.function.name;
    if (t.function?.arguments) call.function.arguments += t.function.arguments;
  }
  if (choice.finish_reason) answer.finish = choice.finish_reason;
  if (d.content || d.reasoning_content || d.tool_calls) answer.chunks = (answer.chunks ?? 0) + 1;
}

async function streamAnswer(conversation, answer, view) {
  const abort = new AbortController();
  state.streaming = { abort, view };
  setStreaming(true);
  const t0 = performance.now();
  let first = null;
  try {
    const res = await fetch('/v1/chat/completions', {
      method: 'POST', signal: abort.signal,
      headers: { 'Content-Type': 'application/json', ...authHeaders() },
      body: JSON.stringify(requestBody(conversation)),
    });
    if (!res.ok) throw await errorOf(res);
    let complete = false;
    for await (const data of sseData(res)) {
      if (data === '[DONE]') { complete = true; break; }
      const chunk = JSON.parse(data);
      if (chunk.error) throw new HttpError(0, chunk.error.message ?? 'The server failed');
      applyChunk(answer, chunk);
      if (first === null && answer.chunks) first = performance.now();
      view.changed();
    }
    if (!complete) throw new Error('The connection closed before the answer was complete');
  } catch (e) {
    if (abort.signal.aborted) answer.stopped = true;
    else answer.error = e.message || String(e);
    if (e.status === 401) askForKey('The server did not accept the API key. Enter it and send again.');
  } finally {
    finishStats(answer, t0, first, performance.now());
    state.streaming = null;
    view.finish();
    setStreaming(false);
    saveConversations();
  }
}

function finishStats(answer, t0, first, end) {
  if (first === null) return;
  const tokens = answer.usage?.completion_tokens ?? answer.chunks ?? 0;
  answer.stats = { ttft_ms: first - t0, tokens,
    tps: tokens > 1 && end > first ? (tokens - 1) / ((end - first) / 1000) : null };
}

// ---- Messages view ------------------------------------------------------------------------

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function statsText(m) {
  const parts = [];
  if (m.stats) {
    parts.push(`TTFT ${Math.round(m.stats.ttft_ms)} ms`);
    if (m.stats.tps !== null) parts.push(`${m.stats.tps.toFixed(1)} tokens/s`);
    parts.push(`${m.stats.tokens} tokens`);
  }
  if (m.stopped) parts.push('stopped');
  else if (m.finish === 'length') parts.push('cut at max tokens');
  return parts.join(' · ');
}

const ICONS = {
  rename: 'M4 20h4L19 9l-4-4L4 16v4zM13.5 6.5l4 4',
  delete: 'M4 7h16M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3',
};

function icon(name) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', ICONS[name]);
  svg.append(path);
  return svg;
}

function iconButton(name, label, onClick) {
  const b = el('button', 'act');
  b.type = 'button';
  b.setAttribute('aria-label', label);
  b.title = label;
  b.append(icon(name));
  b.addEventListener('click', onClick);
  return b;
}

function toolCallNode(call) {
  const box = el('div', 'tool-call');
  box.append(el('div', 'tool-name', `Tool call: ${call.function.name || '…'}`));
  let args = call.function.arguments;
  try { args = JSON.stringify(JSON.parse(args), null, 2); } catch { /* partial */ }
  box.append(el('pre', '', args));
  return box;
}

// An assistant message on screen. changed() asks for a render at the next frame; finish()
// renders at once and removes the cursor.
class AnswerView {
  constructor(message) {
    this.message = message;
    this.node = el('article', 'message assistant');
    this.node.append(el('div', 'who', 'Assistant'));
    this.reasoning = el('details', 'reasoning');
    this.reasoningLabel = el('summary', '', 'Reasoning');
    this.reasoningText = el('div', 'reasoning-text');
    this.reasoning.append(this.reasoningLabel, this.reasoningText);
    this.tools = el('div', 'tools');
    this.body = el('div', 'body');
    this.markdown = new MarkdownView(this.body);
    this.error = el('div', 'error');
    this.error.setAttribute('role', 'alert');
    this.stats = el('div', 'stats');
    this.node.append(this.reasoning, this.tools, this.body, this.error, this.stats);
    this.frame = 0;
    this.render(false);
  }

  changed() {
    if (this.frame === 0) this.frame = requestAnimationFrame(() => this.render(true));
  }

  finish() {
    if (this.frame !== 0) cancelAnimationFrame(this.frame);
    this.render(false);
  }

  render(live) {
    this.frame = 0;
    const m = this.message;
    const follow = nearBottom();
    this.reasoning.hidden = !m.reasoning;
    if (m.reasoning) {
      this.reasoningLabel.textContent = live && !m.content ? 'Thinking…' : 'Reasoning';
      if (this.reasoningText.textContent !== m.reasoning) this.reasoningText.textContent = m.reasoning;
    }
    this.tools.replaceChildren(...(m.tool_calls ?? []).map(toolCallNode));
    this.markdown.update(m.content);
    this.body.classList.toggle('cursor', live);
    this.error.hidden = !m.error;
    this.error.textContent = m.error ? `Error: ${m.error}` : '';
    this.stats.textContent = live ? '' : statsText(m);
    if (follow) scrollToBottom();
  }
}

function userNode(m) {
  const node = el('article', 'message user');
  node.append(el('div', 'who', 'You'), el('div', 'body', m.content));
  return node;
}

function nearBottom() {
  const list = $('messages');
  return list.scrollHeight - list.scrollTop - list.clientHeight < 80;
}

function scrollToBottom() {
  const list = $('messages');
  list.scrollTop = list.scrollHeight;
}

function renderMessages() {
  const list = $('messages');
  const nodes = state.current.messages.map((m) =>
    m.role === 'user' ? userNode(m) : new AnswerView(m).node);
  list.replaceChildren(...(nodes.length ? nodes : [emptyNode]));
  $('system').value = state.current.system;
  scrollToBottom();
}

// ---- Conversations list -------------------------------------------------------------------

function renderConversations() {
  const items = state.conversations.map((c) => {
    const li = el('li');
    if (c === state.current) li.setAttribute('aria-current', 'true');
    const open = el('button', 'open', c.title);
    open.type = 'button';
    open.title = c.title;
    open.addEventListener('click', () => { openConversation(c); closeSidebar(); });
    li.append(open, iconButton('rename', `Rename ${c.title}`, () => startRename(li, c)),
      iconButton('delete', `Delete ${c.title}`, () => deleteConversation(c)));
    return li;
  });
  $('conversations').replaceChildren(...items);
}

function startRename(li, c) {
  const input = el('input');
  input.value = c.title;
  input.setAttribute('aria-label', 'New name');
  let done = false;
  const finish = (save) => {
    if (done) return;
    done = true;
    if (save && input.value.trim()) c.title = input.value.trim().slice(0, 120);
    saveConversations();
    renderConversations();
  };
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') finish(true);
    if (e.key === 'Escape') finish(false);
  });
  input.addEventListener('blur', () => finish(true));
  li.replaceChildren(input);
  input.focus();
  input.select();
}

function deleteConversation(c) {
  if (!confirm(`Delete "${c.title}"?`)) return;
  if (state.streaming && c === state.current) state.streaming.abort.abort();
  state.conversations = state.conversations.filter((x) => x !== c);
  if (c === state.current) state.current = state.conversations[0] ?? newConversation();
  saveConversations();
  renderConversations();
  renderMessages();
}

function openConversation(c) {
  if (state.streaming) state.streaming.abort.abort();
  state.current = c;
  store(KEYS.current, c.id);
  renderConversations();
  renderMessages();
}

function exportConversations() {
  const blob = new Blob([JSON.stringify({ format: 'troupe-chat', version: 1,
    conversations: state.conversations }, null, 2)], { type: 'application/json' });
  const a = el('a');
  a.href = URL.createObjectURL(blob);
  a.download = `troupe-chats-${new Date().toISOString().slice(0, 10)}.json`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 0);
}

async function importConversations(file) {
  try {
    const data = JSON.parse(await file.text());
    const list = Array.isArray(data) ? data : data.conversations;
    if (!Array.isArray(list) || !list.every(validConversation)) {
      throw new Error('this is not a troupe chat export');
    }
    const known = new Set(state.conversations.map((c) => c.id));
    const fresh = list.filter((c) => !known.has(c.id))
      .map((c) => ({ title: 'Imported chat', created: Date.now(), system: '', ...c }));
    state.conversations.unshift(...fresh);
    saveConversations();
    renderConversations();
    showState(`Imported ${fresh.length} conversation${fresh.length === 1 ? '' : 's'}`);
  } catch (e) {
    showState(`Import failed: ${e.message}`, true);
  }
}

// ---- Composer -----------------------------------------------------------------------------

function setStreaming(on) {
  $('send').hidden = on;
  $('stop').hidden = !on;
  $('messages').setAttribute('aria-busy', on ? 'true' : 'false');
}

function send() {
  const text = $('input').value;
  if (!text.trim() || state.streaming) return;
  if (!$('model').value) {
    showState('No model to send to', true);
    return;
  }
  const c = state.current;
  c.messages.push({ role: 'user', content: text });
  if (c.title === 'New chat') c.title = text.trim().split('\n')[0].slice(0, 48);
  const answer = { role: 'assistant', content: '' };
  c.messages.push(answer);
  $('input').value = '';
  autosize();
  saveConversations();
  renderConversations();
  emptyNode.remove();
  $('messages').append(userNode(c.messages[c.messages.length - 2]));
  const view = new AnswerView(answer);
  $('messages').append(view.node);
  scrollToBottom();
  streamAnswer(c, answer, view);
}

function autosize() {
  const input = $('input');
  input.style.height = 'auto';
  input.style.height = `${Math.min(input.scrollHeight + 2, window.innerHeight * 0.4)}px`;
}

// ---- Settings and layout ------------------------------------------------------------------

function bindSettings() {
  const s = load(KEYS.settings, {});
  for (const name of SETTINGS) {
    const input = $(name);
    input.value = s[name] ?? '';
    input.addEventListener('input', () => {
      const now = load(KEYS.settings, {});
      if (input.value === '' || !input.checkValidity()) delete now[name];
      else now[name] = input.value;
      store(KEYS.settings, now);
    });
  }
  $('system').addEventListener('input', () => {
    state.current.system = $('system').value;
    saveConversations();
  });
  $('model').addEventListener('change', () => store(KEYS.model, $('model').value));
}

function toggle(button, panel, open) {
  button.setAttribute('aria-expanded', String(open));
  if (panel.id === 'settings') panel.hidden = !open;
}

function closeSidebar() {
  $('sidebar').classList.remove('open');
  $('scrim').hidden = true;
  toggle($('toggle-sidebar'), $('sidebar'), false);
}

function bindLayout() {
  $('toggle-settings').addEventListener('click', () =>
    toggle($('toggle-settings'), $('settings'), $('settings').hidden));
  $('toggle-sidebar').addEventListener('click', () => {
    const open = !$('sidebar').classList.contains('open');
    $('sidebar').classList.toggle('open', open);
    $('scrim').hidden = !open;
    toggle($('toggle-sidebar'), $('sidebar'), open);
    if (open) $('new-chat').focus();
  });
  $('scrim').addEventListener('click', closeSidebar);
  document.addEventListener('keydown', (e) => {
    if (e.key !== 'Escape') return;
    if (state.streaming) state.streaming.abort.abort();
    else closeSidebar();
  });
}

function bindActions() {
  $('composer').addEventListener('submit', (e) => { e.preventDefault(); send(); });
  $('input').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); send(); }
  });
  $('input').addEventListener('input', autosize);
  $('stop').addEventListener('click', () => state.streaming?.abort.abort());
  $('new-chat').addEventListener('click', () => {
    openConversation(state.current.messages.length ? newConversation() : state.current);
    saveConversations();
    closeSidebar();
    $('input').focus();
  });
  $('export').addEventListener('click', exportConversations);
  $('import').addEventListener('click', () => $('import-file').click());
  $('import-file').addEventListener('change', (e) => {
    if (e.target.files[0]) importConversations(e.target.files[0]);
    e.target.value = '';
  });
  $('key-form').addEventListener('submit', () => store(KEYS.apiKey, $('key-input').value.trim()));
  $('key-forget').addEventListener('click', () => {
    localStorage.removeItem(KEYS.apiKey);
    $('key-input').value = '';
  });
  $('change-key').addEventListener('click', async () => {
    await askForKey('The API key this browser sends to the server.');
    loadModels();
  });
  handleCopyClicks($('messages'));
}

function start() {
  state.conversations = load(KEYS.conversations, []).filter(validConversation);
  for (const c of state.conversations) c.system ??= '';
  const currentId = load(KEYS.current, null);
  state.current = state.conversations.find((c) => c.id === currentId) ??
    state.conversations[0] ?? newConversation();
  $('change-key').hidden = !load(KEYS.apiKey, '');
  bindSettings();
  bindLayout();
  bindActions();
  renderConversations();
  renderMessages();
  loadModels();
  $('input').focus();
}

start();
