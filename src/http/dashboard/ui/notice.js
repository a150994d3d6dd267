// The one place that tells the person about the connection to the service (lost, or a login needed).

import { h } from './dom.js';

let loginShown = false;

function region() {
  return document.getElementById('notice');
}

/**
 * Shows `text`, or clears the notice when it is empty (a request succeeded). While the login prompt
 * is up, other problems are not shown: they are its consequences.
 */
export function notify(text) {
  if (loginShown && text) return;
  loginShown = false;
  const el = region();
  if (el.textContent !== text) el.textContent = text;
}

export function needLogin() {
  if (loginShown) return;
  loginShown = true;
  const next = encodeURIComponent(`/${location.hash}`);
  region().replaceChildren(
    'This service needs a login: ',
    h('a', { href: `/login?next=${next}` }, 'Log in'),
    '.',
  );
}
