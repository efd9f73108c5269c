/**
 * `npx tsx scripts/admin-screenshot.ts [out.png]`: renders the top of the admin page's service view — an edit with its
 * diff, a consumer's objection and the instances table (one on latest, one behind, one rejecting) — into
 * docs/admin-service-page.png. Real hub (PGlite, port 0), real ConfigClients, Debian's Chromium.
 */
import { z } from 'zod';
import { AdminLab, openService, signIn, waitFor } from '../test/e2e/admin-lab.js';
import { launchChromium } from '../test/e2e/chromium.js';

const out = process.argv[2] ?? 'docs/admin-service-page.png';
const service = 'polygon-historical-downloader';
const schema = z.looseObject({
  operational: z.looseObject({ batch_size: z.number().int().positive(), max_retries: z.number().int().min(0) }),
});
// An older build of the service that caps the batch size: it rejects the seeded config.
const legacy = z.looseObject({ operational: z.looseObject({ batch_size: z.number().int().max(50) }) });

const lab = await AdminLab.start();
const browser = await launchChromium({ width: 1440, height: 900 });
try {
  // Polls once a minute: its refresh reports revision 1; revision 2 is written next, and it shows as behind.
  const behind = await lab.consumer(service, { schema, instanceId: 'downloader-7f9c', pollIntervalMs: 60_000 });
  await behind.refresh(service);
  await waitFor(async () => (await lab.api('GET', `/${service}/instances`)).body.instances[0]?.revision === 1, 10_000, 50);
  await lab.api('PATCH', `/${service}?change_reason=${encodeURIComponent('more retries after the 02:00 gap')}`, {
    operational: { max_retries: 5 },
  });
  await lab.consumer(service, { schema, instanceId: 'downloader-2b41', pollIntervalMs: 1000 });
  await lab.consumer(service, { schema: legacy, instanceId: 'downloader-legacy', pollIntervalMs: 1000 });
  await lab.fleetKnows(service, 3, { operational: { batch_size: 10, max_retries: 1 } });
  await waitFor(async () => {
    const { summary } = (await lab.api('GET', `/${service}/instances`)).body;
    return summary.on_latest === 1 && summary.behind === 1 && summary.rejected === 1;
  }, 10_000, 50);

  const page = await browser.context.newPage();
  await signIn(page, lab.url, lab.keys.admin);
  await openService(page, service);
  const editor = page.getByLabel('Config (JSON)');
  const config = JSON.parse(await editor.inputValue());
  config.operational.batch_size = 250;
  config.operational.retry_delay_seconds = 30;
  await editor.fill(JSON.stringify(config, null, 2));
  await page.locator('#check').getByText('operational.batch_size').waitFor({ timeout: 10_000 });
  await page.getByRole('row').filter({ hasText: 'CONFIG_INVALID' }).waitFor();
  await page.getByRole('row').filter({ hasText: '1 (behind)' }).waitFor();
  await page.evaluate(() => document.getElementById('editor')?.blur());
  // Down to the instances table (the history below it would add ~40 % to a file that ships in the npm tarball).
  const box = await page.getByRole('region', { name: 'Instances' }).boundingBox();
  await page.screenshot({ path: out, fullPage: true, clip: { x: 0, y: 0, width: 1440, height: Math.ceil(box!.y + box!.height + 16) } });
  process.stdout.write(`${out}\n`);
} finally {
  await browser.close();
  await lab.close();
}
