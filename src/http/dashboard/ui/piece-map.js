// The live piece map: one cell per piece on a <canvas>, a legend with a count per state, and text
// counters ("37/64 pieces complete") that say the same thing to people who cannot see the canvas.
// States arrive in /events' shape ({ Complete, Partial, Hashing, Priority, … }); drawing happens at
// most once per animation frame however many changes arrive.

import { h, setText } from './dom.js';

/** Drawing order and legend order; a piece is in the first state that applies. */
const KINDS = [
  { name: 'complete', label: 'Complete' },
  { name: 'hashing', label: 'Hashing' },
  { name: 'partial', label: 'Partial' },
  { name: 'wanted', label: 'Wanted (has priority)' },
  { name: 'missing', label: 'Missing' },
];
const COMPLETE = 0;
const HASHING = 1;
const PARTIAL = 2;
const WANTED = 3;
const MISSING = 4;
/** The map aims to be about this tall (CSS px); cells stay within the sizes below. */
const TARGET_HEIGHT = 220;
const MIN_CELL = 2;
const MAX_CELL = 16;
/** Pieces outside the highlighted file are drawn this faint. */
const DIMMED_ALPHA = 0.3;

function kindOf(s) {
  if (s.Complete) return COMPLETE;
  if (s.Hashing || s.Checking) return HASHING;
  if (s.Partial) return PARTIAL;
  if (s.Priority > 0) return WANTED;
  return MISSING;
}

/** A counter's text, and the same numbers as data-complete / data-total for scripts and tests. */
function setCount(el, text, complete, total) {
  setText(el, text);
  if (el.dataset.complete !== String(complete)) el.dataset.complete = String(complete);
  if (el.dataset.total !== String(total)) el.dataset.total = String(total);
}

export class PieceMap {
  /** null until the first snapshot. */
  #kinds = null;
  #counts = new Array(KINDS.length).fill(0);
  /** Pieces changed since the last frame; every piece when #full. */
  #dirty = new Set();
  #full = true;
  #highlight;
  #colors = [];
  #width = 0;
  #cell = MAX_CELL;
  #cols = 1;
  #frame = 0;
  #canvas;
  #counter;
  #fileCounter;
  #legendCounts;
  #resize;
  #scheme;
  #onScheme = () => this.#redraw();

  constructor() {
    this.#canvas = h('canvas', {
      class: 'piece-map',
      role: 'img',
      'aria-label': 'Piece map: waiting for the torrent’s info',
    });
    this.#counter = h(
      'p',
      { class: 'piece-counter', 'data-testid': 'piece-counter' },
      'Waiting for the torrent’s info…',
    );
    this.#fileCounter = h('p', { class: 'piece-counter', 'data-testid': 'file-piece-counter', hidden: true });
    this.#legendCounts = KINDS.map(() => h('span', { class: 'legend-count' }, '0'));
    const legend = h(
      'ul',
      { class: 'legend', 'aria-label': 'Legend' },
      KINDS.map((k, i) =>
        h(
          'li',
          {},
          h('span', { class: `swatch swatch-${k.name}`, 'aria-hidden': 'true' }),
          `${k.label} `,
          this.#legendCounts[i],
        ),
      ),
    );
    this.element = h('div', {}, this.#counter, this.#fileCounter, this.#canvas, legend);
    // Only width changes matter: height changes are this map's own doing.
    this.#resize = new ResizeObserver(() => {
      if (this.#canvas.clientWidth !== this.#width) this.#redraw();
    });
    this.#resize.observe(this.#canvas);
    this.#scheme = matchMedia('(prefers-color-scheme: dark)');
    this.#scheme.addEventListener('change', this.#onScheme);
  }

  /** Replaces every piece's state (an /events Snapshot). */
  reset(states) {
    this.#kinds = Uint8Array.from(states, kindOf);
    this.#counts.fill(0);
    for (const kind of this.#kinds) this.#counts[kind]++;
    this.#redraw();
  }

  set(index, state) {
    if (!this.#kinds || index < 0 || index >= this.#kinds.length) return;
    const kind = kindOf(state);
    const was = this.#kinds[index];
    if (kind === was) return;
    this.#kinds[index] = kind;
    this.#counts[was]--;
    this.#counts[kind]++;
    this.#dirty.add(index);
    this.#schedule();
  }

  /** Dims every piece outside [first, last] and counts that range's pieces under `label`; undefined clears. */
  highlight(range) {
    this.#highlight = range;
    this.#redraw();
  }

  dispose() {
    cancelAnimationFrame(this.#frame);
    this.#resize.disconnect();
    this.#scheme.removeEventListener('change', this.#onScheme);
  }

  #schedule() {
    if (this.#frame === 0) this.#frame = requestAnimationFrame(() => this.#draw());
  }

  #redraw() {
    if (!this.#kinds) return;
    this.#layout();
    this.#full = true;
    this.#schedule();
  }

  #layout() {
    const n = Math.max(1, this.#kinds.length);
    this.#width = this.#canvas.clientWidth;
    const width = Math.max(1, this.#width);
    const ideal = Math.floor(Math.sqrt((width * TARGET_HEIGHT) / n));
    this.#cell = Math.min(MAX_CELL, Math.max(MIN_CELL, ideal));
    this.#cols = Math.max(1, Math.floor(width / this.#cell));
    const rows = Math.ceil(this.#kinds.length / this.#cols);
    const ratio = window.devicePixelRatio || 1;
    this.#canvas.style.height = `${rows * this.#cell}px`;
    this.#canvas.width = Math.round(width * ratio);
    this.#canvas.height = Math.round(rows * this.#cell * ratio);
    const style = getComputedStyle(this.#canvas);
    this.#colors = KINDS.map((k) => style.getPropertyValue(`--piece-${k.name}`).trim() || 'gray');
  }

  #draw() {
    this.#frame = 0;
    const ctx = this.#canvas.getContext('2d');
    const ratio = this.#canvas.width / Math.max(1, this.#width);
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    if (this.#full) {
      ctx.clearRect(0, 0, this.#canvas.width, this.#canvas.height);
      for (let i = 0; i < this.#kinds.length; i++) this.#drawPiece(ctx, i);
    } else {
      for (const i of this.#dirty) this.#drawPiece(ctx, i);
    }
    this.#full = false;
    this.#dirty.clear();
    this.#describe();
  }

  #drawPiece(ctx, i) {
    const cell = this.#cell;
    const gap = cell >= 6 ? 1 : 0;
    const x = (i % this.#cols) * cell;
    const y = Math.floor(i / this.#cols) * cell;
    const hl = this.#highlight;
    ctx.clearRect(x, y, cell, cell);
    ctx.globalAlpha = !hl || (i >= hl.first && i <= hl.last) ? 1 : DIMMED_ALPHA;
    ctx.fillStyle = this.#colors[this.#kinds[i]];
    ctx.fillRect(x, y, cell - gap, cell - gap);
  }

  #describe() {
    const total = this.#kinds.length;
    const done = this.#counts[COMPLETE];
    setCount(this.#counter, `${done}/${total} pieces complete`, done, total);
    this.#legendCounts.forEach((el, i) => {
      setText(el, String(this.#counts[i]));
    });
    const parts = KINDS.map((k, i) => `${this.#counts[i]} ${k.name}`).join(', ');
    this.#canvas.setAttribute('aria-label', `Piece map of ${total} pieces: ${parts}`);
    const hl = this.#highlight;
    this.#fileCounter.hidden = !hl;
    if (!hl) return;
    let fileDone = 0;
    for (let i = hl.first; i <= hl.last; i++) if (this.#kinds[i] === COMPLETE) fileDone++;
    const fileTotal = hl.last - hl.first + 1;
    setCount(this.#fileCounter, `${hl.label}: ${fileDone}/${fileTotal} pieces complete`, fileDone, fileTotal);
  }
}
