/**
 * The admin page (`/admin`, issue 12) end to end: headless Chromium (Debian's, through playwright-core)
 * against the real reference hub on PGlite, with real ConfigClients running and reporting to it.
 */
import net from 'node:net';
import type { Page, Request } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { KEYS, startHub, uniqueService, waitFor } from '../helpers/hub-fixtures.js';
import { AdminLab, openService, signIn } from './admin-lab.js';
import { type Browser, launchChromium } from './chromium.js';

const slow = { timeout: 8000 };

describe('admin page', () => {
  let lab: AdminLab;
  let browser: Browser;
  let page: Page;
  let pageErrors: string[];
  let answeredBefore: number;

  beforeAll(async () => {
    [lab, browser] = await Promise.all([
      AdminLab.start({ hub: async () => (await startHub('pglite')).hub, keys: { admin: KEYS.admin.key, reader: KEYS.reader.key } }),
      launchChromium(),
    ]);
  });
  afterAll(async () => {
    await browser?.close();
    await lab?.close();
  });
  beforeEach(async () => {
    answeredBefore = lab.answered;
    pageErrors = [];
    page = await browser.context.newPage();
    // A CSP violation, a failed module or an uncaught error shows here.
    // (Chromium logs every 4xx answer to fetch(); the refusals the tests provoke are expected.)
    page.on('console', (m) => {
      if (m.type() === 'error' && !/status of (401|412|422) /.test(m.text())) pageErrors.push(m.text());
    });
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });
  afterEach(async () => {
    await page.close();
    await Promise.all(lab.clients.splice(0).map((c) => c.close()));
    expect(pageErrors).toEqual([]);
    // Liveness: the hub answered this test's requests.
    expect(lab.answered).toBeGreaterThan(answeredBefore);
  });

  const editor = () => page.getByLabel('Config (JSON)');
  const statusText = () => page.getByRole('status').textContent();
  const service3 = async (prefix = 'admin') => {
    const service = uniqueService(prefix);
    expect((await lab.api('POST', `/${service}`, { operational: { batch_size: 10, mode: 'fast' } })).status).toBe(201);
    return service;
  };
  const editTo = async (config: unknown) => editor().fill(JSON.stringify(config, null, 2));

  it('a config saved on the page (If-Match on the revision it was based on) reaches a running client: onChange fires with the new value', async () => {
    const service = await service3();
    const client = await lab.consumer(service);
    const seen: unknown[] = [];
    client.onChange(service as never, (next) => {
      seen.push(next);
    });
    const writes: Request[] = [];
    page.on('request', (r) => {
      if (r.method() === 'POST' && new URL(r.url()).pathname === `/api/v1/config/${service}`) writes.push(r);
    });
    await signIn(page, lab.url, KEYS.admin.key);
    await openService(page, service);
    expect(JSON.parse(await editor().inputValue())).toEqual({ operational: { batch_size: 10, mode: 'fast' } });

    await editTo({ operational: { batch_size: 25, mode: 'fast' } });
    // The diff of the edit against revision 1, before saving.
    const diff = page.getByRole('figure').filter({ hasText: 'Your edit against revision 1' });
    await diff.getByText('+     "batch_size": 25,').waitFor();
    await diff.getByText('-     "batch_size": 10,').waitFor();
    await page.getByLabel('Change reason (optional)').fill('bigger batches');
    await page.getByRole('button', { name: 'Save' }).click();
    await expect.poll(statusText, slow).toBe('Saved: revision 2.');

    expect(writes).toHaveLength(1);
    expect(writes[0]!.headers()['if-match']).toBe('"1"');
    await waitFor(() => seen.length > 0, 5000);
    expect(seen.at(-1)).toEqual({ operational: { batch_size: 25, mode: 'fast' } });
    expect(client.status(service as never).revision).toBe(2);
    const history = await lab.api('GET', `/history/${service}?limit=1`);
    expect(history.body.history[0]).toMatchObject({ revision: 2, changed_by: 'admin', change_reason: 'bigger batches' });
  });

  it("an edit a running consumer would reject shows the consumer's issue (dry run, then the 422) and saves nothing", async () => {
    const service = await service3();
    const client = await lab.consumer(service, { instanceId: 'admin-e2e-consumer' });
    await lab.fleetKnows(service);
    let changes = 0;
    client.onChange(service as never, () => {
      changes++;
    });
    await signIn(page, lab.url, KEYS.admin.key);
    // The list counts the running instance: on latest 1, behind 0, rejected 0.
    const listed = page.getByRole('row').filter({ has: page.getByRole('link', { name: service, exact: true }) });
    await expect.poll(async () => (await listed.getByRole('cell').allTextContents()).slice(3), slow).toEqual(['1', '0', '0']);
    await openService(page, service);
    // The current config passes the consumer's schema.
    await expect.poll(() => page.locator('#check').textContent(), slow).toContain('accepted by 1 consumer schema(s) (1 instance(s))');

    await editTo({ operational: { batch_size: -5, mode: 'fast' } });
    // The dry run (debounced) names the path and the consumer.
    const check = page.locator('#check');
    await check.getByText('operational.batch_size').waitFor();
    expect(await check.textContent()).toContain('admin-e2e-consumer');
    // Saving anyway: the hub refuses with 422; the page shows the issues.
    await page.getByRole('button', { name: 'Save' }).click();
    const refusal = page.getByRole('alert').filter({ hasText: 'Not saved.' });
    await refusal.waitFor();
    expect(await refusal.textContent()).toContain('operational.batch_size');
    expect(await refusal.textContent()).toContain('1 instance(s): admin-e2e-consumer');

    const after = await lab.api('GET', `/${service}`);
    expect(after.body.revision).toBe(1);
    expect(after.body.config).toEqual({ operational: { batch_size: 10, mode: 'fast' } });
    expect((await lab.api('GET', `/history/${service}`)).body.total).toBe(1);
    expect(changes).toBe(0);
    // The instances table lists the consumer.
    const row = page.getByRole('row').filter({ hasText: 'admin-e2e-consumer' });
    await row.waitFor();
    expect(await row.textContent()).toContain(String(process.pid));
  });

  it('a write by someone else under an unsaved edit shows the banner, the save gets 412 with what changed, and the rebased edit saves both', async () => {
    // polygon-*: "someone else" is the polygon key, so the page can name who wrote.
    const service = await service3('polygon-admin');
    const saves: { status: number; ifMatch: string | undefined }[] = [];
    page.on('response', (r) => {
      if (r.request().method() === 'POST' && new URL(r.url()).pathname === `/api/v1/config/${service}`) {
        saves.push({ status: r.status(), ifMatch: r.request().headers()['if-match'] });
      }
    });
    await signIn(page, lab.url, KEYS.admin.key);
    await openService(page, service);
    await editTo({ operational: { batch_size: 30, mode: 'fast' } });

    const other = await lab.api('PATCH', `/${service}`, { operational: { mode: 'safe' } }, KEYS.polygon.key);
    expect(other.body.revision).toBe(2);
    // The 2 s poll notices the change under the unsaved edit.
    const banner = page.getByRole('region', { name: /Changed by someone else: revision 2 was saved by polygon-rw/ });
    await banner.waitFor({ timeout: 6000 });
    // The edit is untouched.
    expect(JSON.parse(await editor().inputValue()).operational.batch_size).toBe(30);

    await page.getByRole('button', { name: 'Save' }).click();
    const conflict = page.getByRole('region', { name: /Not saved: revision 2 was saved by polygon-rw meanwhile/ });
    await conflict.waitFor();
    const changed = conflict.getByRole('figure').filter({ hasText: 'Revision 1 → revision 2' });
    await changed.getByText('-     "mode": "fast"').waitFor();
    await changed.getByText('+     "mode": "safe"').waitFor();
    expect(saves).toEqual([{ status: 412, ifMatch: '"1"' }]);
    expect((await lab.api('GET', `/${service}`)).body.config).toEqual({ operational: { batch_size: 10, mode: 'safe' } });

    await conflict.getByRole('button', { name: 'Rebase my edit onto revision 2' }).click();
    expect(JSON.parse(await editor().inputValue())).toEqual({ operational: { batch_size: 30, mode: 'safe' } });
    await page.getByRole('figure').filter({ hasText: 'Your edit against revision 2' }).waitFor();
    await page.getByRole('button', { name: 'Save' }).click();
    await expect.poll(statusText, slow).toBe('Saved: revision 3.');
    expect(saves.at(-1)).toEqual({ status: 200, ifMatch: '"2"' });
    expect((await lab.api('GET', `/${service}`)).body).toMatchObject({ revision: 3, config: { operational: { batch_size: 30, mode: 'safe' } } });
  });

  it('a change made elsewhere shows without a reload; restoring an earlier revision from the history (after comparing two revisions) writes it back as a new revision', async () => {
    const service = await service3();
    await lab.api('PATCH', `/${service}`, { operational: { batch_size: 20 } });
    const rollbacks: (string | undefined)[] = [];
    page.on('request', (r) => {
      if (r.url().endsWith(`/api/v1/config/rollback/${service}`)) rollbacks.push(r.headers()['if-match']);
    });
    await signIn(page, lab.url, KEYS.admin.key);
    await openService(page, service);
    // Revision 3 by someone else while the page is open, without an edit: the editor follows (no reload).
    await lab.api('PATCH', `/${service}`, { operational: { batch_size: 30, mode: 'safe' } });
    await expect.poll(statusText, slow).toBe('Revision 3 was saved elsewhere; the editor shows it.');
    expect(JSON.parse(await editor().inputValue())).toEqual({ operational: { batch_size: 30, mode: 'safe' } });

    // Any two revisions: 1 → 3.
    const from = page.getByLabel('Compare revision');
    const value = (revision: number) =>
      from.locator('option').evaluateAll((os, r) => os.map((o) => (o as HTMLOptionElement).value).find((v) => v.startsWith(`${r}:`)), revision);
    await page.getByLabel('Compare revision').selectOption((await value(1))!);
    await page.getByLabel('with revision').selectOption((await value(3))!);
    const diff = page.getByRole('figure').filter({ hasText: 'Revision 1 → revision 3' });
    await diff.getByText('-     "batch_size": 10,').waitFor();
    await diff.getByText('+     "batch_size": 30,').waitFor();
    await diff.getByText('+     "mode": "safe"').waitFor();

    await page.getByLabel('Restore revision').selectOption('1');
    await page.getByRole('button', { name: 'Restore' }).click();
    await expect.poll(statusText, slow).toBe('Restored revision 1 as revision 4.');
    expect(rollbacks).toEqual(['"3"']);
    const now = await lab.api('GET', `/${service}`);
    expect(now.body).toMatchObject({ revision: 4, config: { operational: { batch_size: 10, mode: 'fast' } } });
    expect(JSON.parse(await editor().inputValue())).toEqual({ operational: { batch_size: 10, mode: 'fast' } });
    // The history table shows the rollback.
    await page.getByRole('row').filter({ hasText: 'rollback' }).waitFor();
  });

  it('the page works by keyboard alone: key, list, service and save by Tab and Enter; focus lands on each heading; every control has a label; text meets AA contrast', async () => {
    const service = await service3();
    await page.goto(`${lab.url}/admin`);
    // The key field has the focus on arrival.
    await waitFor(() => page.evaluate(() => document.activeElement?.id === 'api-key'), 5000);
    await page.keyboard.type(KEYS.admin.key);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Services' }).waitFor();
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Services');

    const link = `#/service/${service}`;
    for (let i = 0; i < 40 && (await page.evaluate(() => document.activeElement?.getAttribute('href'))) !== link; i++) {
      await page.keyboard.press('Tab');
    }
    expect(await page.evaluate(() => document.activeElement?.getAttribute('href'))).toBe(link);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: service }).waitFor();
    expect(await page.evaluate(() => document.activeElement?.tagName + ':' + document.activeElement?.textContent)).toBe(`H1:${service}`);
    await page.waitForFunction(() => (document.getElementById('editor') as HTMLTextAreaElement).value.length > 0);

    // Controls found by role and label.
    for (const label of ['Config (JSON)', 'Change reason (optional)', 'Compare revision', 'with revision', 'Restore revision']) {
      expect(await page.getByLabel(label, { exact: true }).count()).toBe(1);
    }
    for (const name of ['Save', 'Discard edit', 'Restore', 'Forget key']) {
      expect(await page.getByRole('button', { name, exact: true }).count()).toBe(1);
    }
    // Every form control on the page has a label; every clickable thing is a button or a link.
    const unlabelled = await page.evaluate(() =>
      Array.from(document.querySelectorAll('input, select, textarea'))
        .filter((c) => (c as HTMLInputElement).labels?.length === 0 && !c.getAttribute('aria-label'))
        .map((c) => c.outerHTML),
    );
    expect(unlabelled).toEqual([]);
    expect(await page.locator('[role="status"][aria-live="polite"]').count()).toBe(1);

    // Edit and save with the keyboard: Tab from the heading to the editor, type, Tab to Save, Enter.
    for (let i = 0; i < 20 && (await page.evaluate(() => document.activeElement?.id)) !== 'editor'; i++) await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('editor');
    await page.keyboard.press('Control+A');
    await page.keyboard.type('{"operational":{"batch_size":11,"mode":"fast"}}');
    await page.keyboard.press('Tab'); // change reason
    await page.keyboard.press('Tab'); // Save
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Save');
    // Text contrast (WCAG AA, 4.5:1) of every visible text on the page, the diff's +/- lines included.
    await page.getByRole('figure').filter({ hasText: 'Your edit against revision 1' }).getByText('+     "batch_size": 11,').waitFor();
    expect(await page.evaluate(LOW_CONTRAST)).toEqual([]);
    await page.keyboard.press('Enter');
    await expect.poll(statusText, slow).toBe('Saved: revision 2.');
    expect((await lab.api('GET', `/${service}`)).body.config.operational.batch_size).toBe(11);

    // Back to the list by keyboard: the breadcrumb link, focus on the list's heading.
    await page.getByRole('link', { name: 'Services', exact: true }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Services' }).waitFor();
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Services');
  });

  it('the key lives in sessionStorage only: sent as X-API-Key on every API call, in no URL, not in localStorage; a refused key is not kept; "Forget key" removes it and stops the calls', async () => {
    const service = await service3();
    const requests: Request[] = [];
    page.on('request', (r) => requests.push(r));

    await page.goto(`${lab.url}/admin`);
    await page.getByLabel('API key').fill('not-a-valid-key-000000');
    await page.getByRole('button', { name: 'Use key' }).click();
    await page.getByRole('alert').getByText('The hub refused the key (401)').waitFor();
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);

    await page.getByLabel('API key').fill(KEYS.admin.key);
    await page.getByRole('button', { name: 'Use key' }).click();
    await openService(page, service);
    // A few polls.
    await waitFor(() => requests.filter((r) => r.url().endsWith(`/api/v1/config/${service}/instances`)).length >= 2, 8000);

    // The polls of the config are conditional: If-None-Match with the ETag, answered 304.
    const polls = requests.filter((r) => new URL(r.url()).pathname === `/api/v1/config/${service}` && r.headers()['if-none-match'] !== undefined);
    expect(polls.length).toBeGreaterThanOrEqual(1);
    expect((await polls[0]!.response())?.status()).toBe(304);
    expect(await page.evaluate(() => sessionStorage.getItem('central-hub-admin.api-key'))).toBe(KEYS.admin.key);
    expect(await page.evaluate(() => localStorage.length)).toBe(0);
    expect(await page.evaluate(() => document.cookie)).toBe('');
    expect(page.url()).toBe(`${lab.url}/admin#/service/${service}`);
    for (const r of requests) expect(decodeURIComponent(r.url())).not.toContain(KEYS.admin.key);
    const api = requests.filter((r) => new URL(r.url()).pathname.startsWith('/api/'));
    const files = requests.filter((r) => new URL(r.url()).pathname.startsWith('/admin'));
    expect(api.length).toBeGreaterThan(3);
    expect(files.length).toBeGreaterThan(3);
    expect(api.filter((r) => r.headers()['x-api-key'] !== KEYS.admin.key).map((r) => r.headers()['x-api-key'])).toEqual(['not-a-valid-key-000000']);
    // The static files are fetched without a key.
    expect(files.filter((r) => r.headers()['x-api-key'] !== undefined)).toEqual([]);

    await page.getByRole('button', { name: 'Forget key' }).click();
    await page.getByLabel('API key').waitFor();
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    const calls = requests.length;
    await new Promise((r) => setTimeout(r, 2500));
    expect(requests.length).toBe(calls);
  });

  it('the page is served offline from the hub: strict CSP, nosniff, cache validators, GET/HEAD only, unknown files and traversal 404 {detail}', async () => {
    const res = await page.goto(`${lab.url}/admin`);
    const headers = res!.headers();
    expect(headers['content-type']).toBe('text/html; charset=utf-8');
    expect(headers['content-security-policy']).toContain("default-src 'self'");
    expect(headers['content-security-policy']).toContain("script-src 'self'");
    expect(headers['content-security-policy']).not.toContain('unsafe-inline');
    expect(headers['x-content-type-options']).toBe('nosniff');
    expect(headers['cache-control']).toBe('no-cache');
    await page.getByLabel('API key').waitFor();
    // No inline script or style anywhere (the CSP would block it: pageErrors stays empty).
    expect(await page.locator('script:not([src]), style, [style]').count()).toBe(0);

    const js = await page.request.get(`${lab.url}/admin/app.js`);
    expect(js.headers()['content-type']).toBe('text/javascript; charset=utf-8');
    const etag = js.headers().etag!;
    expect((await page.request.get(`${lab.url}/admin/app.js`, { headers: { 'if-none-match': etag } })).status()).toBe(304);
    expect((await page.request.get(`${lab.url}/admin/styles.css`)).headers()['content-type']).toBe('text/css; charset=utf-8');
    expect((await page.request.head(`${lab.url}/admin`)).status()).toBe(200);
    const missing = await page.request.get(`${lab.url}/admin/nope.js`);
    expect(missing.status()).toBe(404);
    expect(await missing.json()).toEqual({ detail: 'no such admin file' });
    const post = await page.request.post(`${lab.url}/admin`, { data: { a: 1 } });
    expect(post.status()).toBe(405);
    expect(post.headers().allow).toBe('GET, HEAD');

    // Raw request lines, as a browser never sends them.
    for (const target of ['/admin/../server.ts', '/admin/..%2fserver.ts', '/admin/%2e%2e/routes/admin.ts', '/admin/..%5cserver.ts', '/admin/.%2e/.%2e/package.json']) {
      const raw = await rawGet(lab.url, target);
      expect(raw.status, target).toBe(404);
      expect(JSON.parse(raw.body), target).toHaveProperty('detail');
    }
  });

  it('the line diff (examples/hub/admin/diff.js, run in the browser) keeps unchanged lines and marks each change once', async () => {
    await page.goto(`${lab.url}/admin`);
    // A string, so that vitest's transform leaves the browser's dynamic import alone.
    const out = await page.evaluate(`(async () => {
      const { diffLines, hunks, diffStats } = await import('/admin/diff.js');
      const { pretty, rebase } = await import('/admin/json.js');
      const a = pretty({ b: 1, a: { x: 1, y: [1, 2] }, c: 'z' });
      const b = pretty({ c: 'z', a: { y: [1, 2], x: 2 }, b: 1, d: true });
      const ops = diffLines(a, b);
      return {
        same: diffLines(a, pretty(JSON.parse(a))).every((o) => o.op === ' '),
        stats: diffStats(ops),
        hunks: hunks(ops, 1).map((h) => [h.header, ...h.lines.map((l) => l.op + l.text)]),
        rebased: rebase({ a: 1, b: { c: 1, d: 2 } }, { a: 2, b: { c: 1, d: 3 } }, { a: 1, b: { c: 5, d: 4 }, e: 1 }),
      };
    })()`) as { same: boolean; stats: unknown; hunks: string[][]; rebased: unknown };
    expect(out.same).toBe(true);
    expect(out.stats).toEqual({ added: 3, removed: 2 });
    expect(out.hunks).toEqual([
      ['@@ -2,3 +2,3 @@', '   "a": {', '-    "x": 1,', '+    "x": 2,', '     "y": ['],
      ['@@ -9,3 +9,4 @@', '   "b": 1,', '-  "c": "z"', '+  "c": "z",', '+  "d": true', ' }'],
    ]);
    expect(out.rebased).toEqual({ value: { a: 2, b: { c: 5, d: 3 }, e: 1 }, conflicts: ['b.d'] });
  });
});

/**
 * In the page: the visible texts whose colour has less than 4.5:1 contrast with the background behind them
 * (the nearest opaque background up the tree), as `"<ratio> <text>"`.
 */
const LOW_CONTRAST = `(() => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lin = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const lum = ([r, g, b]) => 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || c[3] === 1) return c;
    }
    return [255, 255, 255];
  };
  const low = [];
  for (const el of document.body.querySelectorAll('*')) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim() !== '');
    if (!own || el.getClientRects().length === 0 || el.closest('[hidden], .sr-only')) continue;
    const a = lum(rgb(getComputedStyle(el).color));
    const b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) low.push(ratio.toFixed(2) + ' ' + el.textContent.trim().slice(0, 40));
  }
  return low;
})()`;

/** A GET with the request target sent as given (no client-side normalisation). */
function rawGet(base: string, target: string): Promise<{ status: number; body: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname, port: Number(port) }, () => {
      socket.write(`GET ${target} HTTP/1.1\r\nHost: ${hostname}\r\nConnection: close\r\n\r\n`);
    });
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (c) => {
      data += c;
    });
    socket.on('error', reject);
    socket.on('end', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0);
      resolve({ status, body: data.slice(data.indexOf('\r\n\r\n') + 4) });
    });
  });
}
