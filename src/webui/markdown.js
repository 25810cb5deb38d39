// A small incremental Markdown renderer for streamed answers. It builds DOM nodes (never HTML
// strings, so model output cannot inject markup) for the common subset: paragraphs, headings,
// fenced code blocks (with a copy button), lists, block quotes, rules, and inline code,
// bold, italic, strikethrough and links (http, https and mailto only).
//
// Incremental: the text only grows while an answer streams. Blocks that are followed by the
// start of a complete next line can no longer change, so they are rendered once and kept; on
// each update only the last, still open block is parsed and rendered again. An update costs
// the size of that block, not of the whole answer.

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$/;
const HEADING = /^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$/;
const RULE = /^ {0,3}([-*_])([ \t]*\1){2,}[ \t]*$/;
const BULLET = /^( {0,3})([-*+])[ \t]+(.*)$/;
const ORDERED = /^( {0,3})(\d{1,9})[.)][ \t]+(.*)$/;
const QUOTE = /^ {0,3}> ?(.*)$/;
const BLANK = /^[ \t]*$/;

function listItem(line) {
  const b = BULLET.exec(line);
  if (b) return { ordered: false, text: b[3], start: 1 };
  const o = ORDERED.exec(line);
  if (o) return { ordered: true, text: o[3], start: Number(o[2]) };
  return null;
}

// Lines that end a paragraph when they appear in it.
function startsBlock(line) {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) ||
    listItem(line) !== null;
}

// Splits `lines` into blocks: { kind, from, to (exclusive line indexes), ... }.
export function parseBlocks(lines) {
  const blocks = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (BLANK.test(line)) { i++; continue; }
    const from = i;
    let m;
    if ((m = FENCE.exec(line))) {
      const marker = m[1];
      const close = new RegExp(`^ {0,3}${marker[0]}{${marker.length},}[ \\t]*$`);
      i++;
      while (i < lines.length && !close.test(lines[i])) i++;
      const closed = i < lines.length;
      blocks.push({ kind: 'code', from, to: closed ? i + 1 : i, lang: m[2],
        text: lines.slice(from + 1, i).join('\n'), closed });
      if (closed) i++;
    } else if ((m = HEADING.exec(line))) {
      blocks.push({ kind: 'heading', from, to: ++i, level: m[1].length, text: m[2] });
    } else if (RULE.test(line)) {
      blocks.push({ kind: 'rule', from, to: ++i });
    } else if (QUOTE.test(line)) {
      const inner = [];
      while (i < lines.length && (m = QUOTE.exec(lines[i]))) { inner.push(m[1]); i++; }
      blocks.push({ kind: 'quote', from, to: i, lines: inner });
    } else if (listItem(line)) {
      i = parseList(lines, i, blocks);
    } else {
      const text = [];
      while (i < lines.length && !BLANK.test(lines[i]) && (i === from || !startsBlock(lines[i]))) {
        text.push(lines[i].trim());
        i++;
      }
      blocks.push({ kind: 'paragraph', from, to: i, text: text.join('\n') });
    }
  }
  return blocks;
}

// One list: items of the same kind, each with its continuation lines (indented, or lazy
// paragraph lines). A blank line ends the list unless an item or an indented line follows.
function parseList(lines, i, blocks) {
  const from = i;
  const first = listItem(lines[i]);
  const items = [];
  while (i < lines.length) {
    const item = listItem(lines[i]);
    if (item && item.ordered === first.ordered) {
      items.push([item.text]);
      i++;
      continue;
    }
    if (BLANK.test(lines[i])) {
      let j = i;
      while (j < lines.length && BLANK.test(lines[j])) j++;
      const next = j < lines.length ? lines[j] : null;
      const goesOn = next !== null && (/^[ \t]{2,}/.test(next) ||
        (listItem(next) && listItem(next).ordered === first.ordered));
      if (!goesOn) break;
      items[items.length - 1].push('');
      i = j;
      continue;
    }
    if (item || (!/^[ \t]{2,}/.test(lines[i]) && startsBlock(lines[i]))) break;
    items[items.length - 1].push(lines[i].replace(/^[ \t]{1,4}/, ''));
    i++;
  }
  blocks.push({ kind: 'list', from, to: i, ordered: first.ordered, start: first.start, items });
  return i;
}

// ---- Inline ----------------------------------------------------------------------------

const INLINE = /(`+)([\s\S]*?[^`])\1(?!`)|\*\*(?=\S)([\s\S]*?\S)\*\*|__(?=\S)([\s\S]*?\S)__|\*(?=[^\s*])([\s\S]*?[^\s*])\*(?!\*)|(?<![\w])_(?=\S)([\s\S]*?\S)_(?![\w])|~~(?=\S)([\s\S]*?\S)~~|\[([^\]\n]+)\]\(([^)\s]+)\)|(https?:\/\/[^\s<>()]+[^\s<>().,;:!?'"])/;

function safeUrl(url) {
  try {
    const u = new URL(url, window.location.href);
    return ['http:', 'https:', 'mailto:'].includes(u.protocol) ? u.href : null;
  } catch {
    return null;
  }
}

function link(href, label) {
  const url = safeUrl(href);
  if (url === null) return document.createTextNode(label);
  const a = document.createElement('a');
  a.href = url;
  a.target = '_blank';
  a.rel = 'noopener noreferrer';
  a.textContent = label;
  return a;
}

function wrap(tag, children) {
  const el = document.createElement(tag);
  el.append(...children);
  return el;
}

// The nodes for one run of inline text.
export function inlineNodes(text) {
  const out = [];
  while (text.length > 0) {
    const m = INLINE.exec(text);
    if (!m) { out.push(document.createTextNode(text)); break; }
    if (m.index > 0) out.push(document.createTextNode(text.slice(0, m.index)));
    if (m[1] !== undefined) {
      const code = document.createElement('code');
      code.textContent = m[2].replace(/^ (.*) $/s, '$1');
      out.push(code);
    } else if (m[3] !== undefined || m[4] !== undefined) {
      out.push(wrap('strong', inlineNodes(m[3] ?? m[4])));
    } else if (m[5] !== undefined || m[6] !== undefined) {
      out.push(wrap('em', inlineNodes(m[5] ?? m[6])));
    } else if (m[7] !== undefined) {
      out.push(wrap('del', inlineNodes(m[7])));
    } else if (m[8] !== undefined) {
      out.push(link(m[9], m[8]));
    } else {
      out.push(link(m[10], m[10]));
    }
    text = text.slice(m.index + m[0].length);
  }
  return out;
}

// Inline text with its line breaks kept.
function lineNodes(text) {
  const out = [];
  text.split('\n').forEach((line, i) => {
    if (i > 0) out.push(document.createElement('br'));
    out.push(...inlineNodes(line));
  });
  return out;
}

// ---- Blocks ----------------------------------------------------------------------------

function codeBlock(block) {
  const figure = document.createElement('div');
  figure.className = 'code-block';
  const bar = document.createElement('div');
  bar.className = 'code-bar';
  const lang = document.createElement('span');
  lang.textContent = block.lang || 'text';
  const copy = document.createElement('button');
  copy.type = 'button';
  copy.className = 'copy';
  copy.textContent = 'Copy';
  copy.setAttribute('aria-label', `Copy ${block.lang || ''} code`.replace('  ', ' '));
  bar.append(lang, copy);
  const pre = document.createElement('pre');
  const code = document.createElement('code');
  code.textContent = block.text;
  pre.append(code);
  figure.append(bar, pre);
  return figure;
}

function listBlock(block) {
  const list = document.createElement(block.ordered ? 'ol' : 'ul');
  if (block.ordered && block.start !== 1) list.start = block.start;
  for (const lines of block.items) {
    const li = document.createElement('li');
    const inner = parseBlocks(lines);
    const tight = inner.length === 1 && inner[0].kind === 'paragraph';
    if (tight) li.append(...lineNodes(inner[0].text));
    else for (const b of inner) li.append(renderBlock(b));
    list.append(li);
  }
  return list;
}

export function renderBlock(block) {
  switch (block.kind) {
    case 'code': return codeBlock(block);
    case 'heading': return wrap(`h${Math.min(block.level + 2, 6)}`, inlineNodes(block.text));
    case 'rule': return document.createElement('hr');
    case 'quote': {
      const q = document.createElement('blockquote');
      for (const b of parseBlocks(block.lines)) q.append(renderBlock(b));
      return q;
    }
    case 'list': return listBlock(block);
    default: return wrap('p', lineNodes(block.text));
  }
}

// Renders a growing text into `root`. Thread: the page's; one instance per answer.
export class MarkdownView {
  constructor(root) {
    this.root = root;
    this.text = '';
    this.doneLines = 0;  // lines of `text` whose blocks are final and rendered
    this.live = [];      // nodes of the blocks after them, replaced on every update
  }

  // Shows `text` (the whole answer so far; it only grows while streaming).
  update(text) {
    if (!text.startsWith(this.text)) this.reset();
    this.text = text;
    const lines = text.split('\n');
    const tail = lines.slice(this.doneLines);
    const blocks = parseBlocks(tail);
    // A block is final once a later block starts on a complete line (one followed by '\n').
    const complete = tail.length - 1;
    let keep = 0;
    while (keep + 1 < blocks.length && blocks[keep + 1].from < complete) keep++;
    for (const n of this.live) n.remove();
    this.live = [];
    blocks.forEach((b, i) => {
      const node = renderBlock(b);
      this.root.append(node);
      if (i >= keep) this.live.push(node);
    });
    if (keep > 0) this.doneLines += blocks[keep].from;
  }

  reset() {
    this.root.replaceChildren();
    this.text = '';
    this.doneLines = 0;
    this.live = [];
  }
}

// Copies a code block's text when its Copy button is pressed (one listener for a whole list
// of messages, so that rendered blocks need none of their own).
export function handleCopyClicks(container) {
  container.addEventListener('click', async (e) => {
    const button = e.target.closest('button.copy');
    if (!button) return;
    const code = button.closest('.code-block')?.querySelector('code');
    if (!code) return;
    try {
      await navigator.clipboard.writeText(code.textContent);
      button.textContent = 'Copied';
    } catch {
      const range = document.createRange();
      range.selectNodeContents(code);
      getSelection().removeAllRanges();
      getSelection().addRange(range);
      button.textContent = 'Selected';
    }
  });
}
