import { test, expect, Page, Locator } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';
import { axe, shot, submitSignIn, watchConsole } from './support';

// A provider on a federated credential: no secret is typed anywhere. The
// hub is an OpenID Connect issuer; the form shows the Issuer, Subject and
// Audience to enter in the app registration (Certificates & secrets ›
// Federated credentials › Add credential, scenario "Other issuer"), and the
// hub then obtains tokens with assertions it signs itself.
// Runs on its own clean hub (the "federated" project of
// playwright.config.ts: start-hub.sh on port + 3, its emulator on
// port + 103), so it starts from a hub with no provider, as the wizard does.
// The Azure admin's portal step is played by the emulator's admin API. That
// hub's public URL is http://127.0.0.1, which Entra ID could never reach:
// the form says so, but the emulator fetches the hub's keys over http.

const port = Number(process.env.SPICEHUB_E2E_PORT ?? 3917);
const federatedPort = port + 3;
const hub = `http://127.0.0.1:${federatedPort}`;
const emulator = `http://127.0.0.1:${federatedPort + 100}`;

const TENANT_ID = '3f4e1a52-6c1d-4b8e-9a27-5d0c7e1b2a90';
const CLIENT_ID = '0c6f8e2a-4d3b-4f7e-9b1a-2e5d7c9a1b30';
const AUDIENCE = 'api://AzureADTokenExchange';
const PORTAL_LINK = `https://portal.azure.com/#view/Microsoft_AAD_RegisteredApps/ApplicationMenuBlade/~/Credentials/appId/${CLIENT_ID}`;

/** Waits until the wasm bundle has hydrated the page (Generate works only then). */
async function generatePassword(page: Page): Promise<string> {
  const field = page.locator('#webhook_password');
  await expect(async () => {
    await page.getByRole('button', { name: 'Generate' }).click({ timeout: 1000 });
    await expect(field).not.toHaveValue('', { timeout: 1000 });
  }).toPass({ timeout: 20_000 });
  return await field.inputValue();
}

function row(page: Page, name: string): Locator {
  return page.locator(`tr[data-repo="${name}"]`);
}

/** One of the three values' rows of the federated section. */
function valueRow(page: Page, field: 'federated_issuer' | 'federated_subject' | 'federated_audience'): Locator {
  return page.locator(`.cred-federated .federated-value[data-field="${field}"]`);
}

test('a provider on a federated credential, from an empty hub to the first graph, with no secret', async ({ page }) => {
  test.setTimeout(240_000);
  const errors = watchConsole(page);
  await submitSignIn(page, 'admin@example.com', 'admin-password-123');
  await expect(page).toHaveURL(/\/registries/);
  const start = Date.now();

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Git Providers' }).click();
  await expect(page.getByRole('heading', { name: 'Git Providers', level: 1 })).toBeVisible();
  await page.getByRole('link', { name: '+ Set up Git provider' }).click();
  await page.getByRole('link', { name: 'Azure DevOps' }).click();
  await expect(page).toHaveURL(/\/providers\/new\/azure-devops$/);
  const password = await generatePassword(page);
  expect(password).toMatch(/^\S{20,256}$/);

  // On http://127.0.0.1 the federated credential is offered, but not
  // recommended nor chosen first, and the form says why it cannot work.
  const federated = page.getByRole('radio', { name: /Federated credential \(no secret\)/ });
  await expect(federated).toBeVisible();
  await expect(federated).not.toBeChecked();
  await expect(page.locator('.choices .badge-ok')).toHaveCount(0);
  await federated.check();
  await expect(page.locator('#federated-problem')).toBeVisible();
  await expect(page.locator('#federated-problem')).toContainText('Federation cannot work from this URL');
  await expect(page.locator('#federated-problem')).toContainText('client secret or a certificate');
  await expect(page.locator('#federated-problem')).toContainText('spicehub issuer check');
  // No secret field, no expiry date: nothing secret to type.
  await expect(page.locator('#client_secret')).toBeHidden();
  await expect(page.locator('#certificate')).toBeHidden();
  await expect(page.locator('#secret_expires')).toBeHidden();

  await page.getByLabel('Display name').fill('Contoso (federated)');
  await page.getByLabel('Directory (tenant) ID').fill(TENANT_ID);
  // The portal link follows the client ID as it is typed.
  const portalLink = page.getByTestId('federated-portal-link');
  await page.getByLabel('Application (client) ID').fill(CLIENT_ID.slice(0, 20));
  await expect(portalLink).toHaveCount(0);
  await page.getByLabel('Application (client) ID').fill(CLIENT_ID);
  await expect(portalLink).toHaveAttribute('href', PORTAL_LINK);
  await page.getByLabel('Organization').fill('contoso');
  await page.getByLabel('Basic authentication user name').fill('spicehub-federated');

  // The three values, as the admin reads them to copy into the portal.
  const issuer = await page.locator('#federated-issuer').inputValue();
  const subject = await page.locator('#federated-subject').inputValue();
  const audience = await page.locator('#federated-audience').inputValue();
  expect(issuer).toBe(hub);
  expect(subject).toMatch(/^spicehub:provider:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  expect(audience).toBe(AUDIENCE);
  for (const [label, value] of [['Issuer', issuer], ['Subject', subject], ['Audience', audience]]) {
    await expect(page.getByLabel(label, { exact: true })).toHaveValue(value);
    await expect(page.getByLabel(label, { exact: true })).not.toBeEditable();
    await expect(page.getByRole('button', { name: `Copy ${label}` })).toBeVisible();
  }
  await axe(page, 'federated credential form');
  await shot(page, 'federated-01-values');

  // Before the portal step: no federated credential has the hub's issuer,
  // named next to the Issuer row; the test stores nothing.
  const negativeStart = Date.now();
  await page.getByRole('button', { name: 'Test connection' }).click();
  const issuerDiagnosis = valueRow(page, 'federated_issuer').locator('.diagnosis');
  await expect(issuerDiagnosis).toContainText("No federated credential has the hub's issuer", { timeout: 20_000 });
  await expect(issuerDiagnosis).toHaveAttribute('data-code', 'federated_issuer_mismatch');
  await expect(page.locator('.test-result')).toContainText('Connection failed');
  await expect(page).toHaveURL(/\/providers\/new\/azure-devops$/);
  expect(await page.evaluate(async () => (await (await fetch('/api/admin/providers', { method: 'POST' })).json()).length),
    'a test stores nothing').toBe(0);
  await axe(page, 'federated form with a diagnosis');
  await shot(page, 'federated-02-no-credential-yet');
  const negativeMs = Date.now() - negativeStart;

  // The Azure admin adds the federated credential in the portal.
  const added = await page.request.post(`${emulator}/_emulator/apps/${CLIENT_ID}/federated-credentials`, {
    data: { name: 'spicehub', issuer, subject, audiences: [audience] },
  });
  expect(added.status(), await added.text()).toBe(201);

  await page.getByRole('button', { name: 'Test connection' }).click();
  await expect(page.locator('.test-result')).toContainText('Connection OK', { timeout: 20_000 });
  await expect(page.locator('.cred-federated .diagnosis')).toHaveCount(0);
  await page.getByRole('button', { name: 'Save' }).click();
  await expect(page).toHaveURL(/\/providers\/[0-9a-f-]{36}$/);
  const providerUrl = new URL(page.url()).pathname;

  // Saved: the credential is named, and the three values stay on the form.
  await expect(page.getByTestId('credential-label')).toContainText('Federated credential (no secret)');
  await expect(page.locator('#kind-federated')).toBeChecked();
  await expect(page.locator('#federated-issuer')).toBeVisible();
  await expect(page.locator('#federated-issuer')).toHaveValue(issuer);
  await expect(page.locator('#federated-subject')).toHaveValue(subject);
  await expect(page.locator('#federated-audience')).toHaveValue(audience);
  await expect(portalLink).toHaveAttribute('href', PORTAL_LINK);
  await expect(page.locator('#client_secret')).toBeHidden();
  await axe(page, 'saved federated provider');
  await shot(page, 'federated-03-saved');

  // Add a repository, and wait for its first graph, as the wizard does.
  await page.getByRole('link', { name: 'Add repositories' }).click();
  await expect(page.getByLabel('Organization')).toHaveValue('contoso');
  await page.getByRole('button', { name: 'Look up' }).click();
  await expect(page.getByRole('group', { name: 'Commerce' })).toBeVisible();
  await page.getByRole('checkbox', { name: /ml-models/ }).check();
  await page.getByRole('button', { name: 'Continue' }).click();
  await expect(page).toHaveURL(/\/repositories$/);
  await expect(row(page, 'ml-models').locator('.state .badge')).toHaveText('In sync', { timeout: 60_000 });
  const menuDetails = row(page, 'ml-models').locator('details.row-menu');
  if (!(await menuDetails.evaluate((d) => (d as HTMLDetailsElement).open))) {
    await row(page, 'ml-models').locator('summary').click();
  }
  await row(page, 'ml-models').locator('.menu').getByRole('link', { name: 'Open its registries' }).click();
  await page.getByRole('link', { name: 'backbone', exact: true }).click();
  await expect(page.locator('svg.graph a[data-node="ResNet"]')).toBeVisible();
  // As the wizard's figure: the check no admin needs (the test before the
  // portal step) is left out.
  const firstGraphMs = Date.now() - start - negativeMs;
  fs.mkdirSync(path.join(__dirname, '..', 'test-results'), { recursive: true });
  fs.writeFileSync(path.join(__dirname, '..', 'test-results', 'time-to-first-graph-federated.json'),
    JSON.stringify({ from: 'empty hub, signed in', to: 'first registry graph shown', credential: 'federated', ms: firstGraphMs }) + '\n');
  console.log(`federated wizard: first graph after ${(firstGraphMs / 1000).toFixed(1)} s`);
  await shot(page, 'federated-04-first-graph');

  // The providers list names the credential; no expiry to watch.
  await page.goto('/providers');
  const card = page.locator('.provider-card', { hasText: 'Contoso (federated)' });
  await expect(card).toContainText('Federated credential (no secret)');
  await expect(card).toContainText('none: no secret');
  await axe(page, 'providers with a federated credential');

  // Reloaded, the form shows the same Subject (the stored one), and the
  // checklist ticks the app step once Entra ID handed out a token for it.
  await page.goto(providerUrl);
  await expect(page.locator('#federated-subject')).toHaveValue(subject);
  await expect(page.locator('li.step[data-step="token"]')).toHaveClass(/done/);
  await expect(page.locator('li.step[data-step="app"]')).toHaveClass(/done/);
  expect(errors).toEqual([]);
});
