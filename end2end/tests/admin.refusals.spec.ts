import { test, expect } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';
import * as fs from 'fs';
import * as path from 'path';
import { submitSignIn, watchConsole } from './support';

// Issue 18, item 8: a webhook delivery with a wrong password (the commonest
// set-up mistake) is recorded in aggregate, and the Webhooks page says that
// Azure DevOps reached the hub with a wrong password instead of "has not
// reached the hub". Runs on the seeded admin hub (project 'admin'), whose
// provider "Contoso (demo)" has the webhook user name e2e-hook.

const port = Number(process.env.SPICEHUB_E2E_PORT ?? 3917);
const adminPort = port + 2;
const WRONG_PASSWORD = 'Wr0ng-hook-Password-typed-by-mistake-e2e';

test('a wrong webhook password shows on the Webhooks page', async ({ page }) => {
  const errors = watchConsole(page);
  await submitSignIn(page, 'admin@example.com', 'admin-password-123');
  await expect(page).toHaveURL(/\/registries/);

  // What Azure DevOps sends when the service hook has a wrong password.
  const auth = Buffer.from(`e2e-hook:${WRONG_PASSWORD}`).toString('base64');
  const refused = await page.request.post('/gateway/public/sync', {
    headers: { Authorization: `Basic ${auth}`, 'Content-Type': 'application/json' },
    data: {
      id: 'e2e-refused-delivery',
      eventType: 'git.push',
      publisherId: 'tfs',
      resource: { refUpdates: [{ name: 'refs/heads/main', newObjectId: 'a'.repeat(40) }] },
    },
  });
  expect(refused.status()).toBe(401);

  // Counts are written every few seconds, not per request: reload until
  // the flush has happened.
  const message = page
    .locator('li')
    .filter({ hasText: 'Contoso (demo)' })
    .filter({ hasText: /Azure DevOps reached the hub with a wrong password \(last at .+, \d+ times? since .+\)/ });
  await expect(async () => {
    await page.goto('/webhooks');
    await expect(message).toBeVisible({ timeout: 1000 });
  }).toPass({ timeout: 30_000 });
  await expect(page.getByText('Azure DevOps has not reached the hub')).toHaveCount(0);
  await page.screenshot({ path: 'test-results/screens/webhooks-refused.png', fullPage: true });

  const results = await new AxeBuilder({ page }).analyze();
  const bad = results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help}`);
  expect(bad, 'axe on /webhooks').toEqual([]);

  // The password is never shown or logged.
  expect(await page.content()).not.toContain(WRONG_PASSWORD);
  const log = fs.readFileSync(path.join(__dirname, '..', 'logs', `hub-${adminPort}.log`), 'utf8');
  expect(log.includes(WRONG_PASSWORD), 'the wrong password is in the hub log').toBe(false);
  expect(errors).toEqual([]);
});
