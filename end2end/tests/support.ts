import { Page } from '@playwright/test';

// Shared by the spec files (not a spec itself: Playwright only runs *.spec.ts).

/// Collects console errors and uncaught exceptions (a failed hydration, a
/// 404 for an asset); a test asserts the list is empty at its end.
export function watchConsole(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (msg) => { if (msg.type() === 'error') errors.push(msg.text()); });
  page.on('pageerror', (err) => errors.push(err.message));
  return errors;
}

/// Fills and submits the sign-in form; the caller checks where it lands.
export async function submitSignIn(page: Page, email: string, password: string) {
  await page.goto('/signin');
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}
