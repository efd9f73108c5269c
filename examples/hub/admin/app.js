// The admin page: the key, the hash router (`#/`, `#/service/<name>`), the status line, focus on navigation.
import { apiKey, call, detailOf, whenUnauthorized } from './api.js';
import { fill, h } from './dom.js';
import { listView } from './list.js';
import { serviceView } from './service.js';

const main = document.getElementById('main');
const status = document.getElementById('status');
const alertBox = document.getElementById('alert');
const forget = document.getElementById('forget');
let view = null;

/** The status line (`role="status"`), or the alert line for failures; both are live regions. */
function say(message, isAlert = false) {
  fill(isAlert ? alertBox : status, message);
  fill(isAlert ? status : alertBox);
}

function stopView() {
  view?.destroy();
  view = null;
}

function keyForm(message) {
  stopView();
  forget.hidden = true;
  const input = h('input', { id: 'api-key', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false' });
  // POST, never GET: should the handler not run, the key still goes in no URL.
  const form = h(
    'form',
    { method: 'post', class: 'panel key-form', 'aria-labelledby': 'key-h' },
    h('h1', { id: 'key-h', tabindex: -1 }, 'Central Hub admin'),
    h('p', {}, 'Enter an API key. It stays in this tab (session storage) and is sent with every request to the hub.'),
    h('label', { for: 'api-key' }, 'API key'),
    input,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Use key')),
  );
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const key = input.value.trim();
    input.value = '';
    if (key === '') return;
    apiKey.set(key);
    const r = await call('GET', '').catch((error) => ({ ok: false, status: 0, data: { detail: error.message } }));
    if (r.status === 401) return;
    if (!r.ok) say(`The hub answered: ${detailOf(r)}`, true);
    route();
  });
  fill(main, form);
  if (message) say(message, true);
  input.focus();
}

function route() {
  if (!apiKey.get()) {
    keyForm();
    return;
  }
  forget.hidden = false;
  stopView();
  const match = /^#\/service\/([^/]+)$/.exec(location.hash);
  let name = null;
  if (match) {
    try {
      name = decodeURIComponent(match[1]);
    } catch {
      name = null;
    }
  }
  view = name === null ? listView(main, { say }) : serviceView(main, name, { say });
  document.title = `${name ?? 'Services'} · Central Hub admin`;
  // Focus the new view's heading, so keyboard and screen-reader users land on it.
  view.heading.focus();
}

whenUnauthorized(() => {
  if (!apiKey.get()) return;
  apiKey.forget();
  keyForm('The hub refused the key (401). Enter a valid key.');
});

forget.addEventListener('click', () => {
  apiKey.forget();
  keyForm();
  say('Key forgotten.');
});

window.addEventListener('hashchange', route);
route();
