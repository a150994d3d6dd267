// The dashboard's entry point: hash routing between the front page (#/) and a torrent (#/t/<ih>).
// Other hashes (#main from the skip link) are in-page anchors, not routes.

import { onUnauthorized } from './api.js';
import { h } from './dom.js';
import { homeView } from './home-view.js';
import { needLogin } from './notice.js';
import { torrentView } from './torrent-view.js';

const TORRENT_ROUTE = /^#\/t\/([0-9a-fA-F]{40})$/;
const main = document.getElementById('main');
let current;

function notFound(root) {
  root.append(
    h('h1', { tabindex: -1 }, 'Not found'),
    h('p', {}, 'Nothing lives at this address. ', h('a', { href: '#/' }, 'See all torrents.')),
  );
  return { title: 'Not found', dispose() {} };
}

function route() {
  const hash = location.hash;
  if (current && hash !== '' && !hash.startsWith('#/')) return;
  const first = current === undefined;
  current?.dispose();
  main.replaceChildren();
  const torrent = TORRENT_ROUTE.exec(hash);
  if (torrent) current = torrentView(main, torrent[1].toLowerCase());
  else if (hash === '' || hash === '#/' || !hash.startsWith('#/')) current = homeView(main);
  else current = notFound(main);
  document.title = `${current.title} — confluence-ts`;
  // Keyboard and screen-reader users land on the new view's heading; the first load keeps the
  // browser's own starting point (and the skip link).
  if (!first) main.querySelector('h1')?.focus();
}

onUnauthorized(needLogin);
window.addEventListener('hashchange', route);
route();
