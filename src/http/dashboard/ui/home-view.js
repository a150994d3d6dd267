// The front page: the add form, every torrent in the client and in the cache, and the cache's use.

import { addForm } from './add-form.js';
import { getJson, repeat } from './api.js';
import { h, KeyedTable, setText } from './dom.js';
import { bytes, percent, rate } from './format.js';
import { notify } from './notice.js';

const REFRESH_MS = 3000;

/** What a row needs, from a /status torrent or a /cache `torrents` entry (cached only). */
function fromStatus(t) {
  const sum = (key) => t.peers.reduce((n, p) => n + p[key], 0);
  return {
    infoHash: t.infoHash,
    name: t.name,
    size: t.totalLength,
    progress: t.pieceCount ? (t.piecesComplete ?? 0) / t.pieceCount : undefined,
    peers: t.peers.length,
    down: sum('downloadRate'),
    up: sum('uploadRate'),
    state: t.state,
  };
}

function fromCache(t) {
  return {
    infoHash: t.infoHash,
    name: t.name,
    size: t.totalLength,
    progress: t.pieceCount ? (t.piecesCached ?? 0) / t.pieceCount : undefined,
    state: 'cached',
  };
}

const COLUMNS = [
  {
    label: 'Name',
    render(td, row) {
      let a = td.firstElementChild;
      if (!a) {
        a = h('a', { class: 'torrent-name' });
        td.append(a);
      }
      a.href = `#/t/${row.infoHash}`;
      setText(a, row.name ?? row.infoHash);
    },
  },
  { label: 'Size', text: (row) => (row.size === undefined ? '–' : bytes(row.size)) },
  {
    label: 'Progress',
    render(td, row) {
      let bar = td.querySelector('progress');
      if (!bar) {
        bar = h('progress', { max: 1 });
        td.append(h('span', { class: 'progress' }, bar, h('span')));
      }
      bar.setAttribute('aria-label', `Progress of ${row.name ?? row.infoHash}`);
      if (row.progress === undefined) bar.removeAttribute('value');
      else bar.value = row.progress;
      setText(
        bar.nextElementSibling,
        row.progress === undefined ? 'waiting for info' : percent(row.progress),
      );
    },
  },
  { label: 'Peers', text: (row) => (row.peers === undefined ? '–' : String(row.peers)) },
  { label: 'Down', text: (row) => (row.down === undefined ? '–' : rate(row.down)) },
  { label: 'Up', text: (row) => (row.up === undefined ? '–' : rate(row.up)) },
  { label: 'State', text: (row) => row.state },
];

export function homeView(main) {
  const ac = new AbortController();
  const table = new KeyedTable({
    caption: 'Torrents',
    columns: COLUMNS,
    key: (row) => row.infoHash,
    empty: 'No torrents yet: add one above.',
  });
  const meter = h('meter', { min: 0, max: 1, value: 0, hidden: true, 'aria-labelledby': 'cache-heading' });
  const cacheText = h('p', { class: 'cache-text' }, 'Loading…');
  main.append(
    h('h1', { tabindex: -1, class: 'visually-hidden' }, 'confluence-ts dashboard'),
    h('div', { class: 'card' }, addForm({ onAdded: () => refreshNow() })),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'list-heading' },
      h('h2', { id: 'list-heading' }, 'Torrents'),
      table.element,
    ),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'cache-heading' },
      h('h2', { id: 'cache-heading' }, 'Cache'),
      meter,
      cacheText,
    ),
  );

  async function refresh() {
    const [status, cache] = await Promise.all([
      getJson('/status?format=json', { signal: ac.signal }),
      getJson('/cache', { signal: ac.signal }),
    ]);
    notify('');
    const live = status.torrents.map(fromStatus);
    const inClient = new Set(live.map((t) => t.infoHash));
    const cachedOnly = (cache.torrents ?? []).filter((t) => !inClient.has(t.infoHash)).map(fromCache);
    table.update([...live, ...cachedOnly]);
    showCache(cache);
  }

  function showCache(c) {
    const limited = typeof c.capacity === 'number' && c.capacity > 0;
    meter.hidden = !limited;
    if (limited) {
      meter.max = c.capacity;
      meter.value = c.bytes;
      meter.high = c.capacity * 0.9;
    }
    const use = limited
      ? `${bytes(c.bytes)} of ${bytes(c.capacity)} used`
      : `${bytes(c.bytes)} used (no limit)`;
    const ratio = c.hitRatio === null ? 'no reads yet' : `hit ratio ${percent(c.hitRatio)}`;
    setText(
      cacheText,
      `${use} · ${c.pieces} pieces · ${bytes(c.pinnedBytes)} pinned · ${c.evictions} evictions · ${ratio}`,
    );
  }

  const lost = (e) => notify(`Lost contact with the service (${e.message}); retrying.`);
  const refreshNow = () => refresh().catch((e) => e.name === 'AbortError' || lost(e));
  repeat(refresh, REFRESH_MS, ac.signal, lost);
  return { title: 'Torrents', dispose: () => ac.abort() };
}
