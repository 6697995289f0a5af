import { test, expect, Page, Locator } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';
import { axe, shot, submitSignIn, watchConsole } from './support';

// The admin journey in the browser, against the hub and the Azure DevOps
// emulator's demo dataset started by start-hub.sh (emulator on port + 100).
// The file name sorts after signin.spec.ts on purpose: that one expects a
// hub with no provider yet.

const port = Number(process.env.SPICEHUB_E2E_PORT ?? 3917);
const emulator = `http://127.0.0.1:${Number(process.env.SPICEHUB_E2E_EMULATOR_PORT ?? port + 100)}`;

const TENANT_ID = '3f4e1a52-6c1d-4b8e-9a27-5d0c7e1b2a90';
const TENANT_DOMAIN = 'contoso.onmicrosoft.com';
const CLIENT_ID = '0c6f8e2a-4d3b-4f7e-9b1a-2e5d7c9a1b30';
const CLIENT_SECRET = 'Xq48Q~demo.Spicehub-Emulator_Secret.Value0';
const EXPIRED_SECRET = 'Zt73Q~expired.Spicehub-Emulator_Old.Value1';
const SECRET_ID = '7d1e5b2c-9a4f-4c3e-8b6d-2f0a1c3e5d70';
const HUB_CLIENT_SECRET = 'Hb56Q~hub.Multitenant-Emulator_Secret.Value3';
const WRONG_SECRET = 'Wr0ng~secret.Value-typed-by-mistake';
const UNKNOWN_GUID = '0b0b0b0b-1c1c-4d2d-8e3e-4f4f4f4f4f4f';
const OTHER_TENANT_ID = '9d2c7b1e-3a4f-4e6d-8c5b-7a1f0e2d3c41';
const OTHER_TENANT_DOMAIN = 'fabrikam.onmicrosoft.com';
const HUB_CLIENT_ID = '6b8d0f2a-4c6e-4a8b-9d1f-3e5a7c9b1d74';

// Every secret the browser typed or saw, checked against pages and logs.
const secrets: string[] = [CLIENT_SECRET, EXPIRED_SECRET, HUB_CLIENT_SECRET, WRONG_SECRET];

test.describe.configure({ mode: 'serial' });

async function signIn(page: Page) {
  await submitSignIn(page, 'admin@example.com', 'admin-password-123');
  await expect(page).toHaveURL(/\/registries/);
}

/** Waits until the wasm bundle has hydrated the page (Generate works only then). */
async function generatePassword(page: Page): Promise<string> {
  const field = page.locator('#webhook_password');
  await expect(async () => {
    await page.getByRole('button', { name: 'Generate' }).click({ timeout: 1000 });
    await expect(field).not.toHaveValue('', { timeout: 1000 });
  }).toPass({ timeout: 20_000 });
  const value = await field.inputValue();
  secrets.push(value);
  return value;
}

/** Presses Tab until `selector` has the focus: the field is reachable by keyboard. */
async function tabTo(page: Page, selector: string, max = 80) {
  for (let i = 0; i < max; i++) {
    if (await page.locator(selector).evaluate((el) => el === document.activeElement)) return;
    await page.keyboard.press('Tab');
  }
  throw new Error(`${selector} was not reached with Tab`);
}

/** Selects all of a focused field's text and types over it. */
async function typeInto(page: Page, selector: string, text: string) {
  await tabTo(page, selector);
  await page.keyboard.press('Control+A');
  if (text === '') await page.keyboard.press('Delete');
  else await page.keyboard.type(text);
}

function row(page: Page, name: string): Locator {
  return page.locator(`tr[data-repo="${name}"]`);
}

async function openMenu(page: Page, name: string): Promise<Locator> {
  const r = row(page, name);
  const details = r.locator('details.row-menu');
  await expect(r.locator('.state .badge')).toHaveText('In sync', { timeout: 60_000 });
  if (!(await details.evaluate((d) => (d as HTMLDetailsElement).open))) {
    await r.locator('summary').click();
  }
  return r.locator('.menu');
}

async function assertNoSecretsServed(page: Page, paths: string[]) {
  for (const p of paths) {
    const html = await (await page.request.get(p)).text();
    for (const s of secrets) {
      expect(html.includes(s), `a secret is in the HTML of ${p}`).toBe(false);
    }
  }
  const content = await page.content();
  for (const s of secrets.filter((s) => s !== secrets[secrets.length - 1])) {
    expect(content.includes(s), 'a secret is in the live page').toBe(false);
  }
}

function assertNoSecretsLogged() {
  const log = fs.readFileSync(path.join(__dirname, '..', 'logs', `hub-${port}.log`), 'utf8');
  expect(log.length).toBeGreaterThan(0);
  for (const s of secrets) expect(log.includes(s), 'a secret is in the hub log').toBe(false);
}

let providerUrl = '';

test('the full journey: provider, diagnosis, fix, repositories, sync, push, actions, remove', async ({ page }) => {
  test.setTimeout(300_000);
  const errors = watchConsole(page);
  await signIn(page);
  const journeyStart = Date.now();

  // Git Providers tab.
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Git Providers' }).click();
  await expect(page.getByRole('heading', { name: 'Git Providers', level: 1 })).toBeVisible();
  await axe(page, 'providers (empty)');
  await shot(page, '01-providers-empty');
  await page.getByRole('link', { name: '+ Set up Git provider' }).click();
  await expect(page).toHaveURL(/\/providers\/new$/);
  await axe(page, 'choose a provider');
  await page.getByRole('link', { name: 'Azure DevOps' }).click();
  await expect(page).toHaveURL(/\/providers\/new\/azure-devops$/);
  await expect(page.locator('#webhook_url')).toHaveValue(`http://127.0.0.1:${port}/gateway/public/sync`);

  // A wrong secret, tested before anything is saved: diagnosed next to
  // the secret field, and nothing is stored.
  await expect(page.locator('.public-url')).toContainText('Azure DevOps cannot reach it');
  await expect(page.locator('.public-url')).toContainText('password in clear');
  const password = await generatePassword(page);
  expect(password).toMatch(/^\S{20,256}$/);
  await page.getByLabel('Display name').fill('Contoso');
  await page.getByLabel('Directory (tenant) ID').fill(TENANT_ID);
  await page.getByLabel('Application (client) ID').fill(CLIENT_ID);
  await page.getByLabel('Client secret (its Value, not its ID)').fill(WRONG_SECRET);
  // A URL copied from the browser is taken for the organization.
  await page.getByLabel('Organization').fill('https://dev.azure.com/contoso/Commerce/_git/ml-models');
  await axe(page, 'Azure DevOps form');
  await shot(page, '02-provider-form');
  await page.getByRole('button', { name: 'Test connection' }).click();
  const secretDiagnosis = page.locator('.cred-client_secret .diagnosis');
  await expect(secretDiagnosis).toContainText('Client secret is wrong', { timeout: 20_000 });
  await expect(secretDiagnosis).toContainText('secret ID instead of its value');
  await expect(page).toHaveURL(/\/providers\/new\/azure-devops$/);
  expect(await page.evaluate(async () => (await (await fetch('/api/admin/providers', { method: 'POST' })).json()).length),
    'a test stores nothing').toBe(0);
  await axe(page, 'form with a diagnosis');
  await shot(page, '03-wrong-secret');

  // Fixed, tested, then saved.
  await page.getByLabel('Client secret (its Value, not its ID)').fill(CLIENT_SECRET);
  await page.getByRole('button', { name: 'Test connection' }).click();
  await expect(page.locator('.test-result')).toContainText('Connection OK', { timeout: 20_000 });
  await expect(page.locator('.test-result')).toContainText('2 project(s)');
  await expect(page.locator('.test-result')).toContainText('visible in contoso');
  await expect(page.locator('.cred-client_secret .diagnosis')).toHaveCount(0);
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page).toHaveURL(/\/providers\/[0-9a-f-]{36}$/);
  providerUrl = new URL(page.url()).pathname;
  await expect(page.locator('.cred-client_secret')).toContainText('set on');
  await expect(page.locator('#client_secret')).toHaveValue('');
  await expect(page.locator('#organization')).toHaveValue('contoso');
  await assertNoSecretsServed(page, [providerUrl, '/providers']);

  // Trying another secret on the saved provider does not replace the
  // working one: the next test, with the field left empty, uses the stored
  // secret and passes. (Checks no admin needs: left out of the journey's time.)
  const checksStart = Date.now();
  await generatePassword(page); // waits for hydration; the field is cleared below
  await page.locator('#webhook_password').fill('');
  await page.getByLabel('Client secret (its Value, not its ID)').fill(WRONG_SECRET);
  await page.getByRole('button', { name: 'Test connection' }).click();
  await expect(secretDiagnosis).toContainText('Client secret is wrong', { timeout: 20_000 });
  await page.getByLabel('Client secret (its Value, not its ID)').fill('');
  await page.getByRole('button', { name: 'Test connection' }).click();
  await expect(page.locator('.test-result')).toContainText('Connection OK', { timeout: 20_000 });
  await page.reload();
  await expect(page.locator('.test-result')).toContainText('Connection OK');
  // The live setup checklist: what the test observed is ticked, the rest not yet.
  const step = (key: string) => page.locator(`li.step[data-step="${key}"]`);
  for (const key of ['app', 'token', 'member', 'repositories']) await expect(step(key)).toHaveClass(/done/);
  for (const key of ['replication', 'delivery']) await expect(step(key)).not.toHaveClass(/done/);
  await expect(step('member').getByRole('link', { name: 'Organization settings › Users' }))
    .toHaveAttribute('href', `${emulator}/devops/contoso/_settings/users`);
  await expect(page.locator('.checklist')).toContainText(CLIENT_ID);
  await shot(page, '04-connection-ok');
  const checksMs = Date.now() - checksStart;

  // Add repositories: two, in two projects.
  await page.getByRole('link', { name: 'Add repositories' }).click();
  await expect(page.getByLabel('Organization')).toHaveValue('contoso');
  await page.getByRole('button', { name: 'Look up' }).click();
  await expect(page.getByRole('group', { name: 'Commerce' })).toBeVisible();
  await expect(page.getByRole('group', { name: 'Platform' })).toBeVisible();
  await expect(page.locator('li.repo.unavailable', { hasText: 'empty-repo' })).toContainText('Empty: no commit yet');
  await expect(page.locator('li.repo.unavailable', { hasText: 'legacy-archive' })).toContainText('Disabled in Azure DevOps');
  await expect(page.getByRole('checkbox', { name: /empty-repo/ })).toBeDisabled();
  await axe(page, 'add repositories');
  await shot(page, '05-add-repositories');
  await page.getByRole('checkbox', { name: /ml-models/ }).check();
  await page.getByRole('checkbox', { name: /data-platform/ }).check();
  await page.getByRole('button', { name: 'Continue' }).click();
  await expect(page).toHaveURL(/\/repositories$/);

  // Both reach "In sync" without a reload (the tab polls).
  await expect(row(page, 'ml-models').locator('.state .badge')).toHaveText('In sync', { timeout: 60_000 });
  await expect(row(page, 'data-platform').locator('.state .badge')).toHaveText('In sync', { timeout: 60_000 });
  const firstCommit = (await row(page, 'ml-models').locator('a.commit').getAttribute('title'))!;
  expect(firstCommit).toMatch(/^[0-9a-f]{40}$/);
  expect(await row(page, 'ml-models').locator('a.commit').getAttribute('href')).toContain(`/commit/${firstCommit}`);
  await axe(page, 'repositories');
  await shot(page, '06-repositories-in-sync');

  // The first graph: from the row to its registries, then the backbone registry.
  await openMenu(page, 'ml-models').then((m) => m.getByRole('link', { name: 'Open its registries' }).click());
  await page.getByRole('link', { name: 'backbone', exact: true }).click();
  await expect(page.locator('svg.graph a[data-node="ResNet"]')).toBeVisible();
  const firstGraphMs = Date.now() - journeyStart - checksMs;
  fs.mkdirSync(path.join(__dirname, '..', 'test-results'), { recursive: true });
  fs.writeFileSync(path.join(__dirname, '..', 'test-results', 'time-to-first-graph.json'),
    JSON.stringify({ from: 'empty hub, signed in', to: 'first registry graph shown', ms: firstGraphMs }) + '\n');
  console.log(`time from an empty hub to the first graph: ${(firstGraphMs / 1000).toFixed(1)} s`);
  await shot(page, '06b-first-graph');
  const backboneUrl = page.url();
  await page.goto('/repositories');

  // The filter box.
  await page.getByLabel('Filter').fill('platform');
  await expect(row(page, 'ml-models')).toHaveCount(0);
  await expect(row(page, 'data-platform')).toBeVisible();
  await page.getByLabel('Filter').fill('');

  // Create the webhook for me, then a push reaches the hub and syncs.
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Webhooks' }).click();
  await expect(page.getByRole('heading', { name: 'Webhook deliveries', level: 1 })).toBeVisible();
  await expect(page.getByText('Code pushed').first()).toBeVisible();
  await page.getByRole('button', { name: 'Create the webhook for me for ml-models' }).click();
  await expect(page.getByText('Service hook created')).toBeVisible({ timeout: 20_000 });
  // A second press checks the hub's hook instead of creating another one.
  await page.getByRole('button', { name: 'Check the webhook for ml-models' }).click();
  await expect(page.getByText('is in place and enabled')).toBeVisible({ timeout: 20_000 });
  await axe(page, 'webhook deliveries');
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Repositories' }).click();
  await expect(row(page, 'ml-models').locator('.state .badge')).toHaveText('In sync');
  const pushed = await page.request.post(`${emulator}/_emulator/orgs/contoso/Commerce/ml-models/commits`, {
    data: { branch: 'main', message: 'Add a model', changes: [{ op: 'put', path: 'src/models/extra.py',
      content: 'from models import BACKBONES\n\n\n@BACKBONES.register_module()\nclass EfficientNet:\n    pass\n' }] },
  });
  expect(pushed.status()).toBe(201);
  const pushedCommit: string = (await pushed.json()).commitId;
  await expect(row(page, 'ml-models').locator('a.commit')).toHaveText(pushedCommit.slice(0, 8), { timeout: 60_000 });
  // Last webhook received (the fifth data cell).
  await expect(row(page, 'ml-models').locator('td').nth(4)).not.toHaveText('none', { timeout: 10_000 });
  await shot(page, '07-after-push');
  // The push registered a new backbone: the graph shows it.
  await page.goto(backboneUrl);
  await expect(page.locator('svg.graph a[data-node="EfficientNet"]')).toBeVisible();
  await page.goto('/repositories');

  // Synchronize entire repository.
  let menu = await openMenu(page, 'ml-models');
  await menu.getByLabel('Synchronize from commit hash').fill('abc1234');
  await menu.getByRole('button', { name: 'Synchronize entire repository' }).click();
  await expect(page.locator('.live')).toContainText('Synchronize entire repository: queued for ml-models');
  await expect(row(page, 'ml-models')).toContainText('entire repository synchronized on request', { timeout: 60_000 });
  // The row changed under several polls (queued, syncing, in sync): the
  // open menu and what was typed in it stayed.
  expect(await row(page, 'ml-models').locator('details.row-menu').evaluate((d) => (d as HTMLDetailsElement).open)).toBe(true);
  await expect(menu.getByLabel('Synchronize from commit hash')).toHaveValue('abc1234');
  await menu.getByLabel('Synchronize from commit hash').fill('');

  // Synchronize recent changes (data-platform has no service hook).
  const dpPush = await page.request.post(`${emulator}/_emulator/orgs/contoso/Platform/data-platform/commits`, {
    data: { branch: 'main', message: 'Add a step', changes: [{ op: 'put', path: 'platform/new_step.py', content: 'step = 2\n' }] },
  });
  const dpCommit: string = (await dpPush.json()).commitId;
  menu = await openMenu(page, 'data-platform');
  await menu.getByRole('button', { name: 'Synchronize recent changes' }).click();
  await expect(row(page, 'data-platform').locator('a.commit')).toHaveText(dpCommit.slice(0, 8), { timeout: 60_000 });
  await expect(row(page, 'data-platform')).toContainText('incremental');

  // Synchronize from commit hash: asks, validates, applies.
  menu = await openMenu(page, 'ml-models');
  const commitField = menu.getByLabel('Synchronize from commit hash');
  await commitField.fill('not-a-commit');
  await menu.getByRole('button', { name: 'Synchronize from this commit' }).click();
  expect(await commitField.evaluate((el) => (el as HTMLInputElement).validity.valid)).toBe(false);
  // A short hash is resolved through Azure DevOps; one no commit has is refused.
  await commitField.fill('0000000');
  await menu.getByRole('button', { name: 'Synchronize from this commit' }).click();
  await expect(page.locator('.live')).toContainText('starts with `0000000`', { timeout: 20_000 });
  await shot(page, '07b-short-hash-unknown');
  menu = await openMenu(page, 'ml-models');
  await menu.getByLabel('Synchronize from commit hash').fill(firstCommit.slice(0, 8));
  await menu.getByRole('button', { name: 'Synchronize from this commit' }).click();
  await expect(row(page, 'ml-models')).toContainText(`re-applied`, { timeout: 60_000 });

  // Re-parse.
  menu = await openMenu(page, 'ml-models');
  await menu.getByRole('button', { name: 'Re-parse' }).click();
  await expect(row(page, 'ml-models')).toContainText('re-parsed', { timeout: 60_000 });
  await shot(page, '08-actions-done');

  // The row links to its registries.
  menu = await openMenu(page, 'ml-models');
  await expect(menu.getByRole('link', { name: 'Open its registries' })).toHaveAttribute('href', '/registries?q=ml-models');

  // Webhook deliveries show the push.
  await page.goto('/webhooks');
  await expect(page.locator('table.deliveries')).toContainText('git.push');
  await expect(page.locator('table.deliveries')).toContainText('Commerce/ml-models');
  await shot(page, '09-webhook-deliveries');

  // Remove, with confirmation.
  await page.goto('/repositories');
  menu = await openMenu(page, 'ml-models');
  await menu.getByRole('link', { name: 'Remove…' }).click();
  await expect(page.getByRole('heading', { name: 'Remove repository' })).toBeVisible();
  await axe(page, 'remove confirmation');
  await shot(page, '10-remove-confirm');
  await page.getByRole('button', { name: 'Remove repository' }).click();
  await expect(page).toHaveURL(/\/repositories\??$/);
  await expect(row(page, 'ml-models')).toHaveCount(0);
  await expect(row(page, 'data-platform')).toBeVisible();

  // The checklist ticked replication and the first delivery by itself.
  await page.goto(providerUrl);
  for (const key of ['app', 'token', 'member', 'repositories', 'replication', 'delivery']) {
    await expect(page.locator(`li.step[data-step="${key}"]`)).toHaveClass(/done/);
  }
  await axe(page, 'setup checklist');
  await shot(page, '10b-setup-checklist');

  // Providers list: health.
  await page.goto('/providers');
  await expect(page.locator('.provider-card')).toContainText('Connection OK');
  await expect(page.locator('.provider-card')).toContainText('Last token obtained');
  await axe(page, 'providers');
  await shot(page, '11-providers-health');

  await assertNoSecretsServed(page, [providerUrl, '/providers', '/repositories', '/webhooks',
    `${providerUrl}/repositories?org=contoso`]);
  assertNoSecretsLogged();
  // The unknown short hash is refused with 422, which the browser logs.
  expect(errors.filter((e) => !e.includes('status of 422'))).toEqual([]);
});

test('misconfigurations are named next to the field, with the keyboard only', async ({ page }) => {
  test.setTimeout(180_000);
  await signIn(page);
  await page.goto(providerUrl);
  await expect(page.locator('.test-result')).toContainText('Connection OK');
  await generatePassword(page); // waits for hydration; not saved (the field is cleared below)
  await typeInto(page, '#webhook_password', '');

  const tryFields = async (fields: Record<string, string>) => {
    for (const [selector, value] of Object.entries(fields)) await typeInto(page, selector, value);
    await tabTo(page, 'button[value="test"]');
    await page.keyboard.press('Enter');
  };
  const expectIn = async (where: string, text: string) =>
    await expect(page.locator(where)).toContainText(text, { timeout: 20_000 });
  const ok = { '#tenant_id': TENANT_ID, '#client_id': CLIENT_ID, '#organization': 'contoso' };

  await tryFields({ ...ok, '#tenant_id': UNKNOWN_GUID });
  await expectIn('fieldset:has(#tenant_id) > .diagnosis', 'Unknown tenant');
  await shot(page, '12-unknown-tenant');

  await tryFields({ ...ok, '#client_id': UNKNOWN_GUID });
  await expectIn('.own-app > .diagnosis', 'Unknown client ID in this tenant');

  await tryFields({ ...ok, '#client_secret': SECRET_ID });
  await expectIn('#client_secret-error', "looks like the secret's ID");
  await shot(page, '13-secret-id-pasted');

  await tryFields({ ...ok, '#client_secret': EXPIRED_SECRET });
  await expectIn('.cred-client_secret .diagnosis', 'Client secret has expired');

  await tryFields({ ...ok, '#client_secret': CLIENT_SECRET, '#organization': 'tailspin' });
  await expectIn('fieldset:has(#organization) > .diagnosis', 'Service principal is not a member of the organization');
  await shot(page, '14-sp-not-in-org');

  await tryFields({ ...ok, '#organization': 'northwind' });
  await expectIn('.test-result', 'No repository is visible to the service principal');
  await shot(page, '15-no-repository-access');

  await tryFields(ok);
  await expectIn('.test-result', 'Connection OK');
});

test("consent by the customer's tenant admin, who has no hub account", async ({ page, browser }) => {
  // Fabrikam's tenant has not consented to the hub's app yet (contoso has,
  // in the emulator's demo), and the app is not a member of its organization.
  test.setTimeout(120_000);
  const errors = watchConsole(page);
  await signIn(page);
  await page.goto('/providers/new/azure-devops');
  await generatePassword(page);
  await page.getByLabel('Display name').fill('Fabrikam (their admin consents)');
  await page.getByRole('radio', { name: /hub's multi-tenant app/ }).check();
  await page.getByLabel('Directory (tenant) ID').fill(OTHER_TENANT_DOMAIN);
  await page.getByLabel('Organization').fill('fabrikam');
  await page.getByLabel('Basic authentication user name').fill('spicehub-their-admin');
  // Before consent, the test's diagnosis is shown in full, not pointed at
  // fields this model hides.
  await page.getByRole('button', { name: 'Test connection' }).click();
  const result = page.locator('.test-result');
  await expect(result).toContainText('Connection failed', { timeout: 20_000 });
  await expect(result.locator('.diagnosis')).toBeVisible();
  await expect(result.locator('.diagnosis')).toContainText('No admin of this tenant has consented');
  await expect(result.getByText('(see the field above)')).toBeHidden();
  await shot(page, '18-hub-app-before-consent');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page).toHaveURL(/\/providers\/[0-9a-f-]{36}$/);
  const link = await page.getByRole('textbox', { name: 'Admin-consent link' }).inputValue();
  expect(link).toContain('/adminconsent?');
  await expect(page.getByText('Waiting for consent')).toBeVisible();
  const step = (key: string) => page.locator(`li.step[data-step="${key}"]`);
  await expect(step('consent')).not.toHaveClass(/done/);

  // The tenant's admin opens the link in a browser with no hub session.
  const theirs = await browser.newContext();
  const tenantAdmin = await theirs.newPage();
  await tenantAdmin.goto(link);
  await expect(tenantAdmin.getByRole('heading', { name: 'Consent recorded' })).toBeVisible();
  await expect(tenantAdmin.getByText('your hub administrator can continue')).toBeVisible();
  await expect(tenantAdmin.getByRole('link', { name: 'Back to Git Providers' })).toHaveCount(0);
  await tenantAdmin.screenshot({ path: 'test-results/screens/19-consent-recorded.png', fullPage: true });
  // Used once: the same link again is refused.
  await tenantAdmin.goto(link);
  await expect(tenantAdmin.getByRole('heading', { name: 'Admin consent not recorded' })).toBeVisible();
  await theirs.close();

  // The hub admin's page shows it without a reload, and the checklist
  // moves on to the next step: adding the app to the organization.
  await expect(page.getByText('Admin consent granted on')).toBeVisible({ timeout: 15_000 });
  await expect(page.locator('#tenant_id')).toHaveValue(OTHER_TENANT_ID);
  await expect(step('consent')).toHaveClass(/done/);
  await page.getByRole('button', { name: 'Test connection' }).click();
  await expect(result).toContainText('Token obtained', { timeout: 20_000 });
  await expect(result).toContainText('not a member of the organization');
  await expect(step('token')).toHaveClass(/done/, { timeout: 10_000 });
  await expect(step('member')).not.toHaveClass(/done/);
  await expect(page.locator('.checklist')).toContainText(HUB_CLIENT_ID);
  await axe(page, 'hub app, consent recorded live');
  await shot(page, '20-consent-live');
  expect(errors).toEqual([]);
});

test('admin consent to the hub multi-tenant app, played by the emulator', async ({ page }) => {
  test.setTimeout(120_000);
  const errors = watchConsole(page);
  await signIn(page);
  await page.goto('/providers/new/azure-devops');
  await generatePassword(page);
  await page.getByLabel('Display name').fill('Contoso (hub app)');
  await page.getByRole('radio', { name: /hub's multi-tenant app/ }).check();
  await expect(page.locator('#client_id')).toBeHidden();
  await page.getByLabel('Directory (tenant) ID').fill(TENANT_DOMAIN);
  await page.getByLabel('Organization').fill('contoso');
  await page.getByLabel('Basic authentication user name').fill('spicehub-hub-app');
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page).toHaveURL(/\/providers\/[0-9a-f-]{36}$/);
  const link = page.getByRole('link', { name: 'Grant admin consent' });
  await expect(link).toHaveAttribute('href', new RegExp(`/login/${TENANT_DOMAIN}/adminconsent\\?client_id=6b8d0f2a-4c6e-4a8b-9d1f-3e5a7c9b1d74&redirect_uri=.*&state=`));
  await axe(page, 'hub app, consent pending');
  await shot(page, '16-consent-link');
  await link.click();
  await expect(page).toHaveURL(/consent=granted/);
  await expect(page.getByText('Admin consent granted').first()).toBeVisible();
  await expect(page.locator('#tenant_id')).toHaveValue(TENANT_ID);
  await page.getByRole('button', { name: 'Test connection' }).click();
  await expect(page.locator('.test-result')).toContainText('Connection OK', { timeout: 20_000 });
  await shot(page, '17-consent-granted');
  await assertNoSecretsServed(page, [new URL(page.url()).pathname, '/providers']);
  assertNoSecretsLogged();
  expect(errors).toEqual([]);
});
