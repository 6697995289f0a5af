import { test, expect, Page } from '@playwright/test';
import { submitSignIn, watchConsole } from './support';

// The webhook's lifecycle on the seeded admin hub (end2end/start-hub.sh
// with "seed": provider "Contoso (demo)", webhook user e2e-hook, and the
// repositories e2e-shop and e2e-big replicated). Its emulator listens on
// the hub's port + 100.

const port = Number(process.env.SPICEHUB_E2E_PORT ?? 3917) + 2;
const emulator = `http://127.0.0.1:${port + 100}`;

test.describe.configure({ mode: 'serial' });

async function signIn(page: Page) {
  await submitSignIn(page, 'admin@example.com', 'admin-password-123');
  await expect(page).toHaveURL(/\/registries/);
}

async function shot(page: Page, name: string) {
  await page.screenshot({ path: `test-results/screens/${name}.png`, fullPage: true });
}

/** The subscriptions the hub created (the emulator's own target has no repository filter). */
async function hubSubscriptions(page: Page): Promise<any[]> {
  const all: any[] = await (await page.request.get(`${emulator}/_emulator/subscriptions`)).json();
  return all.filter((s) => s.publisherInputs?.repository);
}

test("Check the webhook reads the hook's status; a new password reaches the hooks without refusing a delivery", async ({ page }) => {
  test.setTimeout(180_000);
  const errors = watchConsole(page);
  await signIn(page);

  // The hub creates the hook, then Azure DevOps puts it on probation.
  await page.goto('/webhooks');
  await page.getByRole('button', { name: 'Create the webhook for me for e2e-shop' }).click();
  await expect(page.getByText('Service hook created')).toBeVisible({ timeout: 20_000 });
  const [sub] = await hubSubscriptions(page);
  expect(sub.status).toBe('enabled');
  const probation = await page.request.post(`${emulator}/_emulator/subscriptions/${sub.id}/status`, { data: { status: 'onProbation' } });
  expect(probation.status()).toBe(200);
  await page.getByRole('button', { name: 'Check the webhook for e2e-shop' }).click();
  const said = page.getByRole('status').filter({ hasText: 'on probation' });
  await expect(said).toContainText('re-enabled', { timeout: 20_000 });
  await expect(page.locator('.hook-setup')).toContainText('Created by the hub; enabled: Azure DevOps delivers every push.');
  await shot(page, '30-hook-on-probation-re-enabled');
  expect((await hubSubscriptions(page))[0].status).toBe('enabled');

  // A person disabled it: said so, and re-enabled.
  await page.request.post(`${emulator}/_emulator/subscriptions/${sub.id}/status`, { data: { status: 'disabledByUser' } });
  await page.getByRole('button', { name: 'Check the webhook for e2e-shop' }).click();
  await expect(page.getByRole('status').filter({ hasText: 'disabled by a person' })).toBeVisible({ timeout: 20_000 });

  // A new webhook password: sent to the hub's hook, the previous one still
  // accepted, the new one kept on screen with its Copy button.
  await page.goto('/providers');
  await page.locator('.provider-card h2 a').first().click();
  await expect(page).toHaveURL(/\/providers\/[0-9a-f-]{36}$/);
  const providerUrl = new URL(page.url()).pathname;
  const field = page.locator('#webhook_password');
  await expect(async () => {
    await page.getByRole('button', { name: 'Generate' }).click({ timeout: 1000 });
    await expect(field).not.toHaveValue('', { timeout: 1000 });
  }).toPass({ timeout: 20_000 });
  const password = await field.inputValue();
  await page.getByRole('button', { name: 'Save' }).click();
  const notes = page.locator('.save-notes');
  await expect(notes).toContainText('e2e-shop now sends the new password', { timeout: 20_000 });
  await expect(notes).toContainText('still accepted until');
  await expect(field).toHaveValue(password);
  await expect(page.getByRole('button', { name: 'Copy webhook password' })).toBeVisible();
  await shot(page, '31-password-rotated');

  // A push: the hub's hook delivers with the new password, which ends the
  // overlap (the emulator's own hook still holds the old one, accepted until then).
  await page.reload();
  await expect(page.getByText('previous webhook password is still accepted until')).toBeVisible();
  const pushed = await page.request.post(`${emulator}/_emulator/orgs/contoso/Commerce/e2e-shop/commits`, {
    data: { branch: 'main', message: 'After the rotation', changes: [{ op: 'put', path: 'rotated.py', content: 'x = 1\n' }] },
  });
  expect(pushed.status()).toBe(201);
  await expect(async () => {
    await page.goto(providerUrl);
    await expect(page.getByText('previous webhook password is still accepted until')).toHaveCount(0, { timeout: 1000 });
  }).toPass({ timeout: 30_000 });
  // The emulator's own hook gets the new password too (as an admin would paste it).
  const target = await (await page.request.get(`${emulator}/_emulator/webhook`)).json();
  if (target?.url) {
    await page.request.post(`${emulator}/_emulator/webhook`, { data: { url: target.url, username: 'e2e-hook', password } });
  }
  expect(errors).toEqual([]);
});
