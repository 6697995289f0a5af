import { test, expect } from '@playwright/test';
import { submitSignIn, watchConsole } from './support';

const signIn = submitSignIn;

test('the show-password toggle works, which needs the wasm bundle to hydrate', async ({ page }) => {
  const errors = watchConsole(page);
  await page.goto('/signin');
  const password = page.getByLabel('Password', { exact: true });
  await expect(password).toHaveAttribute('type', 'password');
  await password.fill('secret-ish');
  // Before hydration the button does nothing; poll until the page is alive.
  await expect(async () => {
    await page.getByRole('button', { name: 'Show' }).click({ timeout: 1000 });
    await expect(password).toHaveAttribute('type', 'text', { timeout: 500 });
  }).toPass({ timeout: 15_000 });
  await page.getByRole('button', { name: 'Hide' }).click();
  await expect(password).toHaveAttribute('type', 'password');
  await page.screenshot({ path: 'test-results/screens/signin.png', fullPage: true });
  expect(errors).toEqual([]);
});

test('an admin signs in, moves between tabs and signs out', async ({ page }) => {
  const errors = watchConsole(page);
  await page.goto('/repositories');
  await expect(page).toHaveURL(/\/signin\?next=%2Frepositories/);
  await page.getByLabel('E-mail').fill('admin@example.com');
  await page.getByLabel('Password', { exact: true }).fill('admin-password-123');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/repositories$/);
  await expect(page.getByRole('heading', { name: 'Repositories', level: 1 })).toBeVisible();
  await page.screenshot({ path: 'test-results/screens/repositories.png', fullPage: true });

  const nav = page.getByRole('navigation', { name: 'Main' });
  await nav.getByRole('link', { name: 'Git Providers' }).click();
  await expect(page).toHaveURL(/\/providers$/);
  await expect(page.getByRole('heading', { name: 'Git Providers', level: 1 })).toBeVisible();
  await expect(page.getByText('No Git provider yet')).toBeVisible();

  await nav.getByRole('link', { name: 'Registries' }).click();
  await expect(page).toHaveURL(/\/registries$/);
  await expect(page.getByRole('heading', { name: 'Registries', level: 1 })).toBeVisible();
  await page.screenshot({ path: 'test-results/screens/registries.png', fullPage: true });

  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/signin/);
  await page.goto('/registries');
  await expect(page).toHaveURL(/\/signin/);
  expect(errors).toEqual([]);
});

test('a wrong password is refused with a message', async ({ page }) => {
  await signIn(page, 'admin@example.com', 'not-the-password');
  await expect(page.getByRole('alert')).toContainText('Wrong e-mail or password');
  await expect(page).toHaveURL(/\/signin/);
});

// What a sign-in posted before the wasm bundle has run goes through: the plain
// form, a redirect back, and the message rendered by the server.
test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('a wrong password is refused with a message on the plain form', async ({ page }) => {
    await page.goto('/signin?next=%2Frepositories');
    await page.getByLabel('E-mail').fill('admin@example.com');
    await page.getByLabel('Password', { exact: true }).fill('not-the-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('alert')).toContainText('Wrong e-mail or password');
    await expect(page).toHaveURL(/\/signin\?next=%2Frepositories/);
    await expect(page.getByLabel('Password', { exact: true })).toHaveValue('');

    await page.getByLabel('E-mail').fill('admin@example.com');
    await page.getByLabel('Password', { exact: true }).fill('admin-password-123');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page).toHaveURL(/\/repositories$/);
  });
});

test('a viewer sees only Registries and is refused the admin pages', async ({ page }) => {
  await signIn(page, 'viewer@example.com', 'viewer-password-123');
  await expect(page).toHaveURL(/\/registries$/);
  await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Git Providers' })).toHaveCount(0);
  const response = await page.goto('/providers');
  expect(response?.status()).toBe(403);
  await expect(page.getByRole('heading', { name: 'Admins only' })).toBeVisible();
});
