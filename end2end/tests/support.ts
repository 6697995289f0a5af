import { Page, expect } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';

// Shared by the spec files (not a spec itself: Playwright only runs *.spec.ts).

/// Collects console errors and uncaught exceptions (a failed hydration, a
/// 404 for an asset); a test asserts the list is empty at its end.
export function watchConsole(page: Page): string[] {
  const errors: string[] = [];
  // Which document, with which policy, an error came from: a rare refusal
  // of every inline script (a policy without the page's nonce) has been
  // seen and could not be reproduced, so a failure says where it happened.
  let documentSeen = '';
  page.on('response', (r) => {
    if (r.request().resourceType() === 'document') {
      documentSeen = `${r.status()} ${r.url()}, CSP: ${r.headers()['content-security-policy'] ?? 'none'}`;
    }
  });
  page.on('console', (msg) => {
    if (msg.type() === 'error') errors.push(`${msg.text()} [at ${msg.location().url || page.url()}; document ${documentSeen}]`);
  });
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

/// A screenshot for the closing note and the reviewers, under test-results/screens.
export async function shot(page: Page, name: string, fullPage = true) {
  await page.screenshot({ path: `test-results/screens/${name}.png`, fullPage });
}

/// No serious or critical accessibility violation on the current screen
/// (but in `exclude`, CSS selectors of parts left out).
export async function axe(page: Page, screen: string, exclude: string[] = []) {
  const builder = new AxeBuilder({ page });
  for (const selector of exclude) builder.exclude(selector);
  const results = await builder.analyze();
  const bad = results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  expect(bad, `axe on ${screen}`).toEqual([]);
}
