// One torrent: its facts, file tree (play or download each file), the live piece map from
// /events?state=1 (server-sent events), and the readers, peers and trackers from /status.
//
// The /events stream holds a reference on the torrent, so it stays in the client while the page is
// open. Its Snapshot also says the info is known, which is when /files can answer at once.

import { getJson, repeat } from './api.js';
import { h, KeyedTable, setText } from './dom.js';
import { bytes, percent, rate, when } from './format.js';
import { notify } from './notice.js';
import { PieceMap } from './piece-map.js';

const REFRESH_MS = 2000;
const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

const READER_COLUMNS = [
  { label: 'Byte range', text: (r) => `${r.start.toLocaleString()}–${r.end.toLocaleString()}` },
  { label: 'Position', text: (r) => r.position.toLocaleString() },
  {
    label: 'Window (pieces)',
    text: (r) => (r.endPiece > r.firstPiece ? `${r.firstPiece}–${r.endPiece - 1}` : 'none'),
  },
];

const PEER_COLUMNS = [
  { label: 'Address', text: (p) => p.address },
  { label: 'Client', text: (p) => p.client || '–' },
  { label: 'Transport', text: (p) => p.transport.toUpperCase() },
  { label: 'Encryption', text: (p) => (p.encrypted ? 'encrypted' : 'plain') },
  { label: 'Down', text: (p) => rate(p.downloadRate) },
  { label: 'Up', text: (p) => rate(p.uploadRate) },
  { label: 'Has pieces', text: (p) => String(p.piecesHave) },
];

const TRACKER_COLUMNS = [
  { label: 'URL', text: (t) => t.url },
  { label: 'Tier', text: (t) => String(t.tier) },
  { label: 'State', text: (t) => t.state ?? '–' },
  { label: 'Last announce', text: (t) => when(t.lastAnnounce) },
  {
    label: 'Result',
    text: (t) =>
      t.lastError
        ? `error: ${t.lastError}`
        : t.lastPeerCount === undefined
          ? '–'
          : `${t.lastPeerCount} peers`,
  },
];

function section(id, title, ...content) {
  return h('section', { class: 'card', 'aria-labelledby': id }, h('h2', { id }, title), ...content);
}

export function torrentView(main, infoHash) {
  const ac = new AbortController();
  const view = { title: infoHash, dispose };
  const heading = h('h1', { tabindex: -1 }, infoHash);
  const fact = { state: h('dd'), size: h('dd'), pieces: h('dd'), rates: h('dd') };
  const torrentLink = h(
    'a',
    { href: `/metainfo?ih=${infoHash}`, download: `${infoHash}.torrent` },
    'Download .torrent',
  );
  const facts = h(
    'dl',
    { class: 'facts' },
    h('dt', {}, 'Infohash'),
    h('dd', {}, h('code', {}, infoHash)),
    h('dt', {}, 'State'),
    fact.state,
    h('dt', {}, 'Size'),
    fact.size,
    h('dt', {}, 'Pieces'),
    fact.pieces,
    h('dt', {}, 'Rates'),
    fact.rates,
    h('dt', {}, 'Metainfo'),
    h('dd', {}, torrentLink),
  );
  const map = new PieceMap();
  const mapStatus = h('p', { class: 'help', role: 'status' });
  const filesBox = h('div', { class: 'files' }, h('p', { class: 'help' }, 'Waiting for the torrent’s info…'));
  const player = new Player(map);
  const readers = new KeyedTable({
    caption: 'Readers',
    columns: READER_COLUMNS,
    key: (r) => `${r.start}-${r.end}-${r.position}`,
    empty: 'Nobody is reading this torrent now.',
  });
  const peers = new KeyedTable({
    caption: 'Peers',
    columns: PEER_COLUMNS,
    key: (p) => p.address,
    empty: 'No peers.',
  });
  const trackers = new KeyedTable({
    caption: 'Trackers',
    columns: TRACKER_COLUMNS,
    key: (t) => `${t.tier} ${t.url}`,
    empty: 'No trackers.',
  });
  main.append(
    h('nav', { class: 'crumbs', 'aria-label': 'Breadcrumbs' }, h('a', { href: '#/' }, '← All torrents')),
    heading,
    facts,
    section('files-heading', 'Files', filesBox),
    player.element,
    section('map-heading', 'Pieces', mapStatus, map.element),
    section('readers-heading', 'Readers', readers.element),
    section('peers-heading', 'Peers', peers.element),
    section('trackers-heading', 'Trackers', trackers.element),
  );

  let filesLoaded = false;
  const events = new EventSource(`/events?ih=${infoHash}&state=1`);
  events.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.Snapshot) {
      setText(mapStatus, '');
      map.reset(m.Snapshot);
      if (!filesLoaded) loadFiles();
    } else if (m.State) map.set(m.PieceChanged, m.State);
  };
  events.onerror = () => {
    setText(
      mapStatus,
      events.readyState === EventSource.CLOSED
        ? 'The live piece map is unavailable.'
        : 'Reconnecting the piece map…',
    );
  };

  async function loadFiles() {
    filesLoaded = true;
    try {
      const listing = await getJson(`/files?ih=${infoHash}`, { signal: ac.signal });
      filesBox.replaceChildren(fileTree(listing.files, (f) => player.play(f)));
    } catch (e) {
      if (e.name === 'AbortError') return;
      filesLoaded = false;
      filesBox.replaceChildren(
        h('p', { class: 'error', role: 'alert' }, `Could not list the files: ${e.message}`),
      );
    }
  }

  async function refresh() {
    const status = await getJson('/status?format=json', { signal: ac.signal });
    notify('');
    const t = status.torrents.find((x) => x.infoHash === infoHash);
    if (!t) return;
    const name = t.name ?? infoHash;
    setText(heading, name);
    if (view.title !== name) {
      view.title = name;
      document.title = `${name} — confluence-ts`;
    }
    showFacts(t);
    readers.update(t.readers);
    peers.update(t.peers);
    trackers.update(t.trackers);
  }

  function showFacts(t) {
    const sum = (key) => t.peers.reduce((n, p) => n + p[key], 0);
    setText(fact.state, t.state);
    setText(fact.size, t.totalLength === undefined ? 'waiting for info' : bytes(t.totalLength));
    setText(
      fact.pieces,
      t.pieceCount === undefined
        ? '–'
        : `${t.piecesComplete} of ${t.pieceCount} complete (${percent(t.piecesComplete / t.pieceCount)}), ${bytes(t.pieceLength)} each`,
    );
    setText(fact.rates, `${rate(sum('downloadRate'))} down, ${rate(sum('uploadRate'))} up`);
    torrentLink.download = `${t.name ?? infoHash}.torrent`;
  }

  repeat(refresh, REFRESH_MS, ac.signal, (e) =>
    notify(`Lost contact with the service (${e.message}); retrying.`),
  );

  function dispose() {
    ac.abort();
    events.close();
    player.stop();
    map.dispose();
  }
  return view;
}

/**
 * The page's own origin with the link's path and query: /files links name the service as the
 * request's Host said, which behind a proxy may not be the address this page came from. Signatures
 * cover only the path and query, so they still hold.
 */
function local(url) {
  const u = new URL(url, location.href);
  return `${u.pathname}${u.search}`;
}

/** A nested list of directories (collapsible) and files, each file with Play (media) and Download. */
function fileTree(files, onPlay) {
  const root = { dirs: new Map(), files: [] };
  for (const f of files) {
    const parts = f.path.split('/');
    let node = root;
    for (const dir of parts.slice(0, -1)) {
      if (!node.dirs.has(dir)) node.dirs.set(dir, { dirs: new Map(), files: [] });
      node = node.dirs.get(dir);
    }
    node.files.push({ name: parts.at(-1), file: f.url === null ? f : { ...f, url: local(f.url) } });
  }
  const list = (node) =>
    h(
      'ul',
      { class: 'tree' },
      [...node.dirs]
        .sort(([a], [b]) => collator.compare(a, b))
        .map(([name, child]) =>
          h('li', {}, h('details', { open: true }, h('summary', {}, `${name}/`), list(child))),
        ),
      node.files
        .sort((a, b) => collator.compare(a.name, b.name))
        .map(({ name, file }) => fileItem(name, file, onPlay)),
    );
  return list(root);
}

function fileItem(name, f, onPlay) {
  const playable = f.url !== null && f.length > 0 && /^(audio|video)\//.test(f.contentType);
  const where = f.length === 0 ? 'empty' : `pieces ${f.firstPiece}–${f.lastPiece}`;
  return h(
    'li',
    { class: 'file' },
    h('span', { class: 'file-name' }, name),
    h('span', { class: 'file-meta' }, `${bytes(f.length)} · ${where}`),
    f.url === null
      ? h('span', { class: 'file-meta' }, 'hidden by an earlier file with the same path')
      : h(
          'span',
          { class: 'file-actions' },
          playable &&
            h('button', { type: 'button', 'aria-label': `Play ${f.path}`, onclick: () => onPlay(f) }, 'Play'),
          h('a', { href: f.url, download: name, 'aria-label': `Download ${f.path}` }, 'Download'),
        ),
  );
}

/** The one <video> or <audio> element of the page, and the piece range it highlights on the map. */
class Player {
  #map;
  #media;
  #title = h('h2', { id: 'player-heading' }, 'Player');
  #box = h('div', { class: 'player-box' });
  #error = h('p', { class: 'error', role: 'alert' });

  constructor(map) {
    this.#map = map;
    this.element = h(
      'section',
      { class: 'card', 'aria-labelledby': 'player-heading', hidden: true },
      this.#title,
      this.#box,
      this.#error,
    );
  }

  play(f) {
    this.stop();
    const kind = f.contentType.startsWith('video/') ? 'video' : 'audio';
    const media = h(kind, { controls: true, preload: 'auto', src: f.url, 'aria-label': f.path });
    media.addEventListener('error', () => {
      if (media !== this.#media) return;
      this.#error.replaceChildren(
        `This browser cannot play ${f.path} (${f.contentType}): `,
        h('a', { href: f.url, download: f.path.split('/').at(-1) }, 'download it'),
        ' instead.',
      );
    });
    this.#media = media;
    setText(this.#title, `Playing ${f.path}`);
    this.#box.replaceChildren(media);
    this.element.hidden = false;
    this.#map.highlight({ first: f.firstPiece, last: f.lastPiece, label: f.path });
    media.focus();
    // A failed start is reported by the element's error event; a refused autoplay leaves the
    // controls to the person.
    media.play().catch(() => undefined);
  }

  /** Stops playback and ends the element's request, so the service drops its reader. */
  stop() {
    const media = this.#media;
    this.#media = undefined;
    setText(this.#error, '');
    if (!media) return;
    media.pause();
    media.removeAttribute('src');
    media.load();
  }
}
