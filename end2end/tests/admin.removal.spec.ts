import { test, expect, Page, Locator } from '@playwright/test';
import { axe, shot, submitSignIn, watchConsole } from './support';

// Issue 18, items 5 and 6: removal leaves no debris in Azure DevOps.
// Removing a repository deletes the service hook the hub created for it,
// and a Git provider can be deleted (after a confirmation that says what
// goes with it). Runs on the seeded admin hub (project 'admin'): provider
// "Contoso (demo)" with e2e-shop and e2e-big. It deletes that provider, so
// it must run last among admin.*.spec.ts (file-name order).

const port = Number(process.env.SPICEHUB_E2E_PORT ?? 3917);
const adminPort = port + 2;
const emulator = `http://127.0.0.1:${Number(process.env.SPICEHUB_E2E_ADMIN_EMULATOR_PORT ?? adminPort + 100)}`;

test.describe.configure({ mode: 'serial' });

/** The ids of the service hook subscriptions the emulator holds. */
async function subscriptionIds(page: Page): Promise<string[]> {
  const r = await page.request.get(`${emulator}/_emulator/subscriptions`);
  expect(r.ok()).toBeTruthy();
  const list = (await r.json()) as { id: string }[];
  return list.map((s) => s.id);
}

function row(page: Page, name: string): Locator {
  return page.locator(`tr[data-repo="${name}"]`);
}

test('removing a repository deletes its service hook; deleting the provider removes the rest', async ({ page }) => {
  const errors = watchConsole(page);
  await submitSignIn(page, 'admin@example.com', 'admin-password-123');
  await expect(page).toHaveURL(/\/registries/);

  // e2e-shop has a service hook the hub created (admin.hooks.spec.ts made
  // it; made here when this file runs alone).
  await page.goto('/webhooks');
  await expect(page.getByRole('heading', { name: 'Webhook deliveries', level: 1 })).toBeVisible();
  const create = page.getByRole('button', { name: 'Create the webhook for me for e2e-shop' });
  if (await create.count() > 0) {
    await create.click();
    await expect(page.getByText('Service hook created')).toBeVisible({ timeout: 20_000 });
  }
  const hubHooks = async () => ((await (await page.request.get(`${emulator}/_emulator/subscriptions`)).json()) as any[])
    .filter((s) => s.publisherInputs?.repository);
  await expect.poll(async () => (await hubHooks()).length, { timeout: 20_000 }).toBe(1);
  const hookId: string = (await hubHooks())[0].id;

  // Removed from the Repositories tab: the hook goes with it.
  await page.goto('/repositories');
  const shop = row(page, 'e2e-shop');
  await expect(shop).toBeVisible();
  await shop.locator('summary').click();
  await shop.locator('.menu').getByRole('link', { name: 'Remove…' }).click();
  await expect(page.getByRole('heading', { name: 'Remove repository' })).toBeVisible();
  await expect(page.locator('.confirm')).toContainText('service hook');
  await page.getByRole('button', { name: 'Remove repository' }).click();
  await expect(page).toHaveURL(/\/repositories\??$/);
  await expect(row(page, 'e2e-shop')).toHaveCount(0);
  await expect(row(page, 'e2e-big')).toBeVisible();
  expect(await subscriptionIds(page)).not.toContain(hookId);

  // Delete the provider: its id from its card's link.
  await page.goto('/providers');
  const card = page.locator('.provider-card').filter({ hasText: 'Contoso (demo)' });
  await expect(card).toHaveCount(1);
  const href = await card.getByRole('link', { name: 'Contoso (demo)', exact: true }).getAttribute('href');
  const id = href!.replace(/^\/providers\//, '');
  expect(id).not.toBe('');
  await page.goto(`/providers/${id}`);
  await page.getByRole('link', { name: 'Delete provider…' }).click();
  await expect(page).toHaveURL(new RegExp(`/providers/${id}/delete$`));
  await expect(page.getByRole('heading', { name: 'Delete Git provider', level: 1 })).toBeVisible();
  const confirm = page.locator('.confirm');
  await expect(confirm).toContainText('Contoso (demo)');
  await expect(confirm).toContainText('1 repository');
  await expect(confirm).toContainText('0 service hooks');
  await axe(page, 'delete provider confirmation');
  await shot(page, 'admin-delete-provider-confirm');
  await page.getByRole('button', { name: 'Delete provider' }).click();
  await expect(page).toHaveURL(/\/providers\??$/);
  await expect(page.locator('.provider-card')).toHaveCount(0);

  // Its repositories went with it.
  await page.goto('/repositories');
  await expect(row(page, 'e2e-big')).toHaveCount(0);
  await shot(page, 'admin-after-provider-deleted');
  expect(errors).toEqual([]);
});
