// A tiny DOM layer. Text always goes in as text nodes, never as HTML: torrent names, file paths and
// peer client names come from strangers.

/**
 * `h('a', { href: '#/', class: 'x', onclick: f }, 'text', child)`: an element. Attributes whose value
 * is false, null or undefined are left out; `true` sets an empty attribute.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

/** Sets an element's text only when it changed, so live regions do not repeat themselves. */
export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

/**
 * A table whose rows are kept by key across refreshes, so focus and selection inside a row survive
 * an update. `columns`: `[{ label, text(item) }]` for plain cells, `[{ label, render(td, item) }]` for
 * cells that update their own content in place.
 */
export class KeyedTable {
  #rows = new Map();
  #columns;
  #key;

  constructor({ caption, columns, key, empty }) {
    this.#columns = columns;
    this.#key = key;
    this.body = h('tbody');
    // Neither shows until the first update: before it, nothing is known.
    this.empty = h('p', { class: 'empty', hidden: true }, empty);
    this.table = h(
      'table',
      { hidden: true },
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', {}, h('tr', {}, ...columns.map((c) => h('th', { scope: 'col' }, c.label)))),
      this.body,
    );
    this.element = h('div', { class: 'table-wrap' }, this.table, this.empty);
  }

  update(items) {
    const seen = new Set();
    let before = this.body.firstElementChild;
    for (const item of items) {
      const k = this.#key(item);
      seen.add(k);
      let row = this.#rows.get(k);
      if (!row) {
        row = h('tr', {}, ...this.#columns.map((c) => h('td', { 'data-label': c.label })));
        this.#rows.set(k, row);
      }
      this.#columns.forEach((c, i) => {
        if (c.render) c.render(row.cells[i], item);
        else setText(row.cells[i], c.text(item));
      });
      if (row !== before) this.body.insertBefore(row, before);
      else before = before.nextElementSibling;
    }
    for (const [k, row] of this.#rows) {
      if (seen.has(k)) continue;
      row.remove();
      this.#rows.delete(k);
    }
    this.table.hidden = items.length === 0;
    this.empty.hidden = items.length !== 0;
  }
}
