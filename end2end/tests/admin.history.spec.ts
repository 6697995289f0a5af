import { test, expect, Page } from '@playwright/test';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { axe, shot, submitSignIn, watchConsole } from './support';

// Registries through time on the seeded admin hub (end2end/start-hub.sh
// with "seed": e2e-shop is the data_pipeline fixture, and the emulator's
// own hook delivers its pushes). One push adds, removes and changes
// registrations and a dependency of the `pipelines` registry; the
// timeline, the diff view, the Repositories tab and the Webhooks page must
// show exactly those changes. No service hook is created here (the other
// admin specs count the hub's hooks).

const port = Number(process.env.SPICEHUB_E2E_PORT ?? 3917) + 2;
const emulator = `http://127.0.0.1:${port + 100}`;

test.describe.configure({ mode: 'serial' });

// The fixture's reporting.py after the push: weekly_digest is gone,
// daily_revenue has a new docstring and depends on fetch_orders too, and
// monthly_revenue is new and depends on daily_revenue. Every entry that
// stays keeps its line, so nothing else counts as changed.
const REPORTING = readFileSync(
  join(__dirname, '../../crates/spicehub-parser/tests/fixtures/data_pipeline_push/reporting.py'), 'utf8');

const node = (page: Page, mark: string, name: string) =>
  page.locator(`svg.graph g.node.${mark} a[data-node="${name}"]`);

test('A push that changes registrations shows on the timeline and as a diff', async ({ page }) => {
  test.setTimeout(180_000);
  const errors = watchConsole(page);
  await submitSignIn(page, 'admin@example.com', 'admin-password-123');
  await expect(page).toHaveURL(/\/registries/);

  const pushed = await page.request.post(`${emulator}/_emulator/orgs/contoso/Commerce/e2e-shop/commits`, {
    data: {
      branch: 'main',
      message: 'Reports: monthly revenue instead of the weekly digest',
      changes: [{ op: 'put', path: 'src/shopflow/steps/reporting.py', content: REPORTING }],
    },
  });
  expect(pushed.status()).toBe(201);
  const commit: string = (await pushed.json()).commitId;

  // The Repositories tab: once synced, the row links to what changed.
  await page.goto('/repositories');
  const row = page.locator('tr[data-repo="e2e-shop"]');
  await expect(row.locator('a.commit')).toHaveText(commit.slice(0, 8), { timeout: 60_000 });
  const changes = row.getByRole('link', { name: 'What changed' });
  await expect(changes).toHaveAttribute('href', new RegExp(`/diff\\?from=[0-9a-f]{40}&to=${commit}$`));
  await changes.click();

  // The diff view: exactly the push's changes, marked on the drawing.
  await expect(page.getByRole('heading', { name: 'What changed in shopflow.registry.pipelines' })).toBeVisible();
  await expect(page.locator('.diff-summary')).toHaveText(
    'Entries: 1 added, 1 removed, 1 changed. Edges: 2 added, 2 removed.');
  await expect(node(page, 'added', 'monthly_revenue')).toHaveCount(1);
  await expect(node(page, 'removed', 'weekly_digest')).toHaveCount(1);
  await expect(node(page, 'changed', 'daily_revenue')).toHaveCount(1);
  await expect(page.locator('svg.graph g.node.added, svg.graph g.node.removed, svg.graph g.node.changed')).toHaveCount(3);
  await expect(page.locator('svg.graph path.edge.added')).toHaveCount(2);
  await expect(page.locator('svg.graph path.edge.removed')).toHaveCount(2);
  // Unchanged entries are drawn, unmarked.
  await expect(page.locator('svg.graph g.node:not(.added, .removed, .changed) a[data-node="load_users"]')).toHaveCount(1);
  const list = page.locator('.change-list li');
  await expect(list).toHaveText([
    /entry\s*monthly_revenue/,
    /entry\s*daily_revenue\s*docstring, dependencies/,
    /entry\s*weekly_digest\s*was at/,
    /edge\s*daily_revenue → monthly_revenue/,
    /edge\s*fetch_orders → daily_revenue/,
    /edge\s*daily_revenue → weekly_digest/,
    /edge\s*send_email → weekly_digest/,
  ]);
  await shot(page, '45-history-diff');
  await axe(page, 'registry diff');

  // Changed only and their neighbours: load_users is neither.
  await page.getByRole('link', { name: 'Changed only and their neighbours' }).click();
  await expect(page).toHaveURL(/show=changed/);
  await expect(page.locator('svg.graph a[data-node="load_users"]')).toHaveCount(0);
  await expect(node(page, 'changed', 'daily_revenue')).toHaveCount(1);
  await expect(page.locator('svg.graph a[data-node="enrich_orders"]')).toHaveCount(1);

  // The older commit opens as it was, and says it is not the current one.
  await page.getByRole('link', { name: 'Open', exact: true }).first().click();
  await expect(page).toHaveURL(/commit=[0-9a-f]{40}/);
  await expect(page.locator('.past-commit')).toContainText('You are looking at an earlier commit');
  await expect(page.locator('svg.graph a[data-node="weekly_digest"]')).toHaveCount(1);
  await expect(page.locator('svg.graph a[data-node="monthly_revenue"]')).toHaveCount(0);
  // Selecting a node keeps the commit.
  await page.locator('svg.graph a[data-node="weekly_digest"]').click();
  await expect(page).toHaveURL(/node=weekly_digest/);
  await expect(page).toHaveURL(/commit=[0-9a-f]{40}/);
  await expect(page.locator('.details-panel')).toContainText('reporting.py');

  // A commit the hub does not keep says so.
  const repoPath = new URL(page.url()).pathname.split('/').slice(0, 3).join('/');
  const gone = await page.goto(`${repoPath}/shopflow.registry.pipelines?commit=${'0'.repeat(40)}`);
  expect(gone?.status()).toBe(404);
  await expect(page.getByText("is not in the hub's history")).toBeVisible();

  // The timeline: newest first, with the push's message and counts.
  await page.goto(repoPath);
  await page.getByRole('link', { name: 'History: what each push changed' }).click();
  await expect(page.getByRole('heading', { name: /History of Commerce\/e2e-shop/ })).toBeVisible();
  const newest = page.locator('.timeline-commit').first();
  await expect(newest).toHaveAttribute('data-commit', commit);
  await expect(newest).toContainText('Reports: monthly revenue instead of the weekly digest');
  await expect(newest.locator('.badge', { hasText: 'current' })).toBeVisible();
  const pipelines = newest.locator('li.registry-change[data-registry="shopflow.registry.pipelines"]');
  await expect(pipelines.locator('.change-counts')).toHaveText(
    'entries: 1 added, 1 removed, 1 changed; edges: 2 added, 2 removed');
  await expect(newest.locator('li.registry-change')).toHaveCount(1);
  await expect(page.locator('.timeline-commit').last()).toContainText('The first commit the hub synced');
  await shot(page, '46-history-timeline');
  await axe(page, 'timeline');
  await pipelines.getByRole('link', { name: 'See the diff' }).click();
  await expect(page.locator('.diff-summary')).toContainText('Entries: 1 added, 1 removed, 1 changed.');

  // The push's delivery links to the same diff.
  await page.goto('/webhooks');
  const delivery = page.getByRole('link', { name: 'What changed' }).first();
  await expect(delivery).toHaveAttribute('href', new RegExp(`to=${commit}$`));

  // The one error expected: the browser reports the 404 asked for above.
  const unexpected = errors.filter((e) => !e.startsWith('Failed to load resource: the server responded with a status of 404')
    || !e.includes(`commit=${'0'.repeat(40)}`));
  expect(unexpected).toEqual([]);
});
