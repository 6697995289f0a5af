import { test, expect, Page } from '@playwright/test';
import { submitSignIn, watchConsole } from './support';

// The tracked branch on the seeded admin hub (end2end/start-hub.sh with
// "seed": provider "Contoso (demo)", repositories e2e-shop and e2e-big
// replicated, both following the default branch `main`). Its emulator
// listens on the hub's port + 100. Only e2e-big is touched (the other
// admin specs use e2e-shop), and no service hook is created here (they
// count the hub's hooks).

const port = Number(process.env.SPICEHUB_E2E_PORT ?? 3917) + 2;
const emulator = `http://127.0.0.1:${port + 100}`;
const repoPath = `${emulator}/_emulator/orgs/contoso/Commerce/e2e-big`;

test.describe.configure({ mode: 'serial' });

async function signIn(page: Page) {
  await submitSignIn(page, 'admin@example.com', 'admin-password-123');
  await expect(page).toHaveURL(/\/registries/);
}

/** The head of one of e2e-big's branches, as the emulator has it. */
async function branchHead(page: Page, branch: string): Promise<string> {
  const orgs: any[] = await (await page.request.get(`${emulator}/_emulator/orgs`)).json();
  const contoso = orgs.find((o) => o.name === 'contoso');
  const commerce = contoso.projects.find((p: any) => p.name === 'Commerce');
  const repo = commerce.repositories.find((r: any) => r.name === 'e2e-big');
  return repo.refs[`refs/heads/${branch}`];
}

/** Opens e2e-big's action menu and its "Change tracked branch…" page. */
async function openChangeBranch(page: Page) {
  await page.goto('/repositories');
  const row = page.locator('tr[data-repo="e2e-big"]');
  await row.locator('summary').click();
  await row.getByRole('link', { name: 'Change tracked branch…' }).click();
  await expect(page).toHaveURL(/\/repositories\/[0-9a-f-]{36}\/branch$/);
  await expect(page.getByRole('heading', { name: 'Change tracked branch' })).toBeVisible();
}

test('An admin picks the branch a repository tracks, then follows the default branch again', async ({ page }) => {
  test.setTimeout(180_000);
  const errors = watchConsole(page);
  await signIn(page);

  // A branch of e2e-big with a commit of its own, made in Azure DevOps.
  const created = await page.request.post(`${repoPath}/branches`, { data: { branch: 'e2e-feature', commit: 'main' } });
  expect(created.status()).toBe(201);
  const pushed = await page.request.post(`${repoPath}/commits`, {
    data: {
      branch: 'e2e-feature',
      message: 'Work on a feature branch',
      changes: [{ op: 'put', path: 'feature_only.py', content: 'FEATURE = 1\n' }],
    },
  });
  expect(pushed.status()).toBe(201);
  const featureHead: string = (await pushed.json()).commitId;
  const mainHead = await branchHead(page, 'main');
  expect(featureHead).not.toBe(mainHead);

  // The page lists the branches from Azure DevOps, following the default
  // branch first and chosen.
  await openChangeBranch(page);
  const select = page.getByLabel('Branch to track');
  await expect(select.locator('option').first()).toHaveText('Follow the default branch (currently main)');
  await expect(select).toHaveValue('');
  await expect(select.locator('option', { hasText: 'e2e-feature' })).toHaveCount(1);
  await select.selectOption('e2e-feature');
  await page.screenshot({ path: 'test-results/screens/40-pick-branch.png', fullPage: true });
  await page.getByRole('button', { name: 'Save' }).click();

  // Back on the list: the row tracks the branch and syncs its head.
  await expect(page).toHaveURL(/\/repositories$/, { timeout: 20_000 });
  const row = page.locator('tr[data-repo="e2e-big"]');
  await expect(row.locator('td.branch')).toHaveText('e2e-feature');
  await expect(row.locator('.commit')).toContainText(featureHead.slice(0, 8), { timeout: 90_000 });
  await expect(row.locator('.badge')).toHaveText('In sync', { timeout: 90_000 });

  // The choice is kept on the page; following the default branch again
  // goes back to main.
  await openChangeBranch(page);
  await expect(select).toHaveValue('e2e-feature');
  await select.selectOption({ index: 0 });
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page).toHaveURL(/\/repositories$/, { timeout: 20_000 });
  await expect(row.locator('td.branch')).toContainText('main');
  await expect(row.locator('td.branch')).toContainText('(default)');
  await expect(row.locator('.commit')).toContainText(mainHead.slice(0, 8), { timeout: 90_000 });
  await expect(row.locator('.badge')).toHaveText('In sync', { timeout: 90_000 });
  expect(errors).toEqual([]);
});
