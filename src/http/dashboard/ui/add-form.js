// The form that adds a torrent: a magnet link or a bare infohash (GET /info?…&nowait=1 adds it
// without waiting for its info), or a .torrent file (POST /metainfo with its bytes). Input the page
// can judge itself is checked here; everything else is the server's call, and its one-line error is
// shown as it is.

import { ApiError, request } from './api.js';
import { h, setText } from './dom.js';

const HEX_INFOHASH = /^[0-9a-f]{40}$/i;
const BASE32_INFOHASH = /^[a-z2-7]{32}$/i;
const BASE32_ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

/** 40 lower-case hex digits from a hex or base32 infohash, or undefined. */
export function parseInfoHash(text) {
  if (HEX_INFOHASH.test(text)) return text.toLowerCase();
  if (!BASE32_INFOHASH.test(text)) return undefined;
  let bits = 0;
  let value = 0;
  let hex = '';
  for (const c of text.toLowerCase()) {
    value = ((value << 5) | BASE32_ALPHABET.indexOf(c)) & 0x1ff;
    bits += 5;
    while (bits >= 4) {
      bits -= 4;
      hex += ((value >> bits) & 0xf).toString(16);
    }
  }
  return hex;
}

/** The infohash of a magnet link's `xt=urn:btih:…`, or undefined. */
export function magnetInfoHash(text) {
  let url;
  try {
    url = new URL(text);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'magnet:') return undefined;
  for (const xt of url.searchParams.getAll('xt')) {
    if (xt.toLowerCase().startsWith('urn:btih:')) return parseInfoHash(xt.slice('urn:btih:'.length));
  }
  return undefined;
}

/** `onAdded(infoHash)` runs after the service has taken a torrent. */
export function addForm({ onAdded }) {
  const uri = h('input', {
    id: 'add-uri',
    name: 'uri',
    type: 'text',
    inputmode: 'url',
    autocomplete: 'off',
    autocapitalize: 'off',
    spellcheck: 'false',
    placeholder: 'magnet:?xt=urn:btih:…',
    'aria-describedby': 'add-uri-help add-error',
  });
  const file = h('input', {
    id: 'add-file',
    name: 'torrent',
    type: 'file',
    accept: '.torrent,application/x-bittorrent',
    'aria-describedby': 'add-error',
  });
  const button = h('button', { type: 'submit' }, 'Add');
  const error = h('p', { id: 'add-error', class: 'error', role: 'alert' });
  const done = h('p', { class: 'done', role: 'status' });
  const form = h(
    'form',
    { 'aria-labelledby': 'add-heading', novalidate: true },
    h('h2', { id: 'add-heading' }, 'Add a torrent'),
    h(
      'div',
      { class: 'field' },
      h('label', { for: 'add-uri' }, 'Magnet link or infohash'),
      uri,
      h('p', { id: 'add-uri-help', class: 'help' }, '40 hex digits or 32 base32 characters also work.'),
    ),
    h('div', { class: 'field' }, h('label', { for: 'add-file' }, 'or a .torrent file'), file),
    h('div', {}, button),
    error,
    done,
  );

  const fail = (message, input) => {
    setText(error, message);
    for (const el of [uri, file]) {
      if (el === input) el.setAttribute('aria-invalid', 'true');
      else el.removeAttribute('aria-invalid');
    }
  };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    fail('');
    setText(done, '');
    const text = uri.value.trim();
    const torrentFile = file.files[0];
    if (text && torrentFile)
      return fail('Give a magnet link or infohash, or a .torrent file: not both.', uri);
    if (!text && !torrentFile)
      return fail('Enter a magnet link or an infohash, or choose a .torrent file.', uri);
    let send;
    if (torrentFile) {
      send = async () => {
        const res = await request('/metainfo', {
          method: 'POST',
          body: await torrentFile.arrayBuffer(),
          headers: { 'Content-Type': 'application/x-bittorrent' },
        });
        return (await res.text()).trim();
      };
    } else if (/^magnet:/i.test(text)) {
      const ih = magnetInfoHash(text);
      if (!ih) return fail('That magnet link has no BitTorrent infohash (xt=urn:btih:…).', uri);
      send = () => request(`/info?magnet=${encodeURIComponent(text)}&nowait=1`).then(() => ih);
    } else {
      const ih = parseInfoHash(text);
      if (!ih) return fail(`“${text}” is not a magnet link or an infohash.`, uri);
      send = () => request(`/info?ih=${ih}&nowait=1`).then(() => ih);
    }
    button.disabled = true;
    form.setAttribute('aria-busy', 'true');
    try {
      const ih = await send();
      form.reset();
      done.replaceChildren('Added ', h('a', { href: `#/t/${ih}` }, ih), '.');
      onAdded(ih);
    } catch (e) {
      fail(`Could not add it: ${e instanceof ApiError ? e.message : String(e)}`, torrentFile ? file : uri);
    } finally {
      button.disabled = false;
      form.removeAttribute('aria-busy');
    }
  });
  return form;
}
