import { test, expect, Page } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';
import { axe, shot, submitSignIn, watchConsole } from './support';

// Issue 18, item 12: the repository picker on an organization of 100
// projects of 10 repositories (contoso-wide, which end2end/start-hub.sh
// gives the admin hub's emulator). Each project fills in as Azure DevOps
// answers, so the first projects are usable while the last are still being
// listed. The emulator answers each repository listing after 200 ms, about
// what Azure DevOps takes, so that "as it arrives" can be seen at all on
// loopback. Nothing is added: the other admin specs count repositories.

const port = Number(process.env.SPICEHUB_E2E_PORT ?? 3917);
const adminPort = port + 2;
const emulator = `http://127.0.0.1:${adminPort + 100}`;

test('the picker shows each project as Azure DevOps lists it, and 1,000 repositories stay usable', async ({ page }) => {
  test.setTimeout(120_000);
  const errors = watchConsole(page);
  const delay = await page.request.post(`${emulator}/_emulator/faults`, {
    data: { scope: { PathContains: '_apis/git/repositories?api-version' }, fault: { Delay: { ms: 200 } } },
  });
  expect(delay.ok()).toBeTruthy();
  try {
    await submitSignIn(page, 'admin@example.com', 'admin-password-123');
    await expect(page).toHaveURL(/\/registries/);
    await page.goto('/providers');
    await page.getByRole('link', { name: 'Contoso (demo)' }).first().click();
    await page.getByRole('link', { name: 'Add repositories' }).click();
    await page.getByLabel('Organization').fill('contoso-wide');

    const progress = page.getByTestId('picker-progress');
    const first = page.locator('fieldset.project[data-project="Project 001"]');
    const start = Date.now();
    await page.getByRole('button', { name: 'Look up' }).click();
    // The first project's repositories are on screen and can be picked...
    await expect(first.getByRole('checkbox', { name: /p001-repo-01/ })).toBeEnabled();
    const firstMs = Date.now() - start;
    // ...while most projects are still being listed (each listing takes
    // 200 ms, at most a few at once), which the old picker never showed.
    const early = (await progress.textContent()) ?? '';
    const m = early.match(/(\d+) of 100 projects/);
    expect(m, early).not.toBeNull();
    expect(Number(m![1])).toBeLessThan(100);
    await shot(page, 'picker-01-first-projects', false);

    await expect(progress).toHaveText('1000 repositories in 100 projects.', { timeout: 60_000 });
    const allMs = Date.now() - start;
    await expect(page.locator('fieldset.project')).toHaveCount(100);
    await expect(page.locator('li.repo')).toHaveCount(1000);
    // Only the first repository of each project has a commit.
    await expect(page.locator('li.repo:not(.unavailable)')).toHaveCount(100);

    // The filter narrows 1,000 rows to one.
    await page.getByLabel('Filter').fill('p042-repo-07');
    await expect(page.locator('fieldset.project:visible')).toHaveCount(1);
    await expect(page.locator('li.repo:visible')).toHaveCount(1);
    await expect(page.locator('li.repo:visible')).toContainText('Empty: no commit yet');
    await page.getByLabel('Filter').fill('project 07');
    await expect(page.locator('fieldset.project:visible')).toHaveCount(10);
    await page.getByLabel('Filter').fill('');
    await expect(page.locator('li.repo:visible')).toHaveCount(1000);

    // "Select all" ticks what can be added, and unticking one clears it.
    const p9 = page.locator('fieldset.project[data-project="Project 009"]');
    await p9.getByRole('checkbox', { name: 'Select all in Project 009' }).check();
    await expect(p9.getByRole('checkbox', { name: /p009-repo-01/ })).toBeChecked();
    await expect(p9.getByRole('checkbox', { name: /p009-repo-02/ })).toBeDisabled();
    await p9.getByRole('checkbox', { name: /p009-repo-01/ }).uncheck();
    await expect(p9.getByRole('checkbox', { name: 'Select all in Project 009' })).not.toBeChecked();
    await page.locator('fieldset.project[data-project="Project 010"]').getByRole('checkbox', { name: /p010-repo-01/ }).check();
    await expect(page.locator('li.repo input:checked')).toHaveCount(1);
    await axe(page, 'picker of 1,000 repositories');
    await shot(page, 'picker-02-all-listed', false);

    const figures = { projects: 100, repositories: 1000, listingDelayMs: 200, firstProjectMs: firstMs, allProjectsMs: allMs };
    fs.mkdirSync(path.join(__dirname, '..', 'test-results'), { recursive: true });
    fs.writeFileSync(path.join(__dirname, '..', 'test-results', 'picker-timings.json'), JSON.stringify(figures) + '\n');
    console.log(`picker, 100 projects × 10 repositories, 200 ms per listing: first project usable after ${(firstMs / 1000).toFixed(2)} s, all listed after ${(allMs / 1000).toFixed(2)} s`);
    expect(errors).toEqual([]);
  } finally {
    await page.request.delete(`${emulator}/_emulator/faults`);
  }
});
