// The hub's API as the page uses it. The key lives in sessionStorage only (this tab, until it closes or
// "Forget key"), is sent as X-API-Key and never put in a URL.

const KEY_ITEM = 'central-hub-admin.api-key';
export const API = '/api/v1/config';

export const apiKey = {
  get: () => sessionStorage.getItem(KEY_ITEM),
  set: (key) => sessionStorage.setItem(KEY_ITEM, key),
  forget: () => sessionStorage.removeItem(KEY_ITEM),
};

let onUnauthorized = () => {};
/** Called on every 401 (the key is wrong or gone). */
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

export const svc = (name) => `/${encodeURIComponent(name)}`;

/**
 * One API call: `{ status, ok, etag, data }` (data: parsed JSON, or `{ detail }` for a non-JSON body);
 * rejects only on a network error or an abort.
 */
export async function call(method, path, { body, ifMatch, ifNoneMatch, query, signal } = {}) {
  const headers = { accept: 'application/json' };
  const key = apiKey.get();
  if (key) headers['x-api-key'] = key;
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (ifMatch !== undefined) headers['if-match'] = `"${ifMatch}"`;
  if (ifNoneMatch) headers['if-none-match'] = ifNoneMatch;
  const qs = query ? new URLSearchParams(Object.entries(query).filter(([, v]) => v !== undefined && v !== '')).toString() : '';
  const res = await fetch(`${API}${path}${qs ? `?${qs}` : ''}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store',
    credentials: 'omit',
    signal,
  });
  const text = res.status === 304 ? '' : await res.text();
  let data = null;
  if (text !== '') {
    try {
      data = JSON.parse(text);
    } catch {
      data = { detail: text.slice(0, 200) };
    }
  }
  if (res.status === 401) onUnauthorized(data);
  return { status: res.status, ok: res.ok, etag: res.headers.get('etag'), data };
}

export const detailOf = (r) => (typeof r.data?.detail === 'string' ? r.data.detail : `HTTP ${r.status}`);

/** A 404/405 from the router (not from a route): the hub does not have this route (an older hub). */
export const noRoute = (r) => (r.status === 404 || r.status === 405) && /^no route /.test(r.data?.detail ?? '');
