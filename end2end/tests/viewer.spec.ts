import { readFileSync } from 'fs';
import { test, expect, Page } from '@playwright/test';
import { axe, shot, submitSignIn, watchConsole } from './support';

// The graph viewer in a browser: Registries tab → registry graph → search →
// details → focus view, and a large registry collapsed by module.
//
// It runs against the seeded hub (playwright.config.ts, project "viewer"):
// start-hub.sh imports the data_pipeline fixture and a generated 600-entry
// registry into its emulator as repositories `e2e-shop` and `e2e-big`, and
// the hub replicates both through the sync engine before the tests start.

async function signIn(page: Page) {
  await submitSignIn(page, 'viewer@example.com', 'viewer-password-123');
  await expect(page).toHaveURL(/\/registries$/);
}

/// Hydrated once the zoom buttons are enabled (they do nothing before).
async function waitForHydration(page: Page) {
  await expect(page.getByRole('button', { name: 'Zoom in' })).toBeEnabled({ timeout: 20_000 });
}

test.describe('graph viewer', () => {

  test('open a registry graph, search a node, open its details, follow the focus view', async ({ page }) => {
    const errors = watchConsole(page);
    await signIn(page);

    // The filter is live once hydrated; before that it is a GET form.
    const filter = page.getByLabel('Search registries and entries');
    await expect(async () => {
      await filter.fill('');
      await filter.pressSequentially('pipel');
      await expect(page).toHaveURL(/\?q=pipel/, { timeout: 1_000 });
    }).toPass({ timeout: 20_000 });
    await expect(page.getByRole('status')).toContainText('1 registry matching');
    await page.getByRole('link', { name: 'pipelines', exact: true }).click();

    await expect(page.getByRole('heading', { level: 1, name: 'pipelines' })).toBeVisible();
    const graph = page.locator('svg.graph');
    await expect(graph).toBeVisible();
    await expect(graph.locator('a[data-node="load_users"]')).toBeVisible();
    await expect(graph.locator('path.edge.dangling')).toHaveCount(1);
    await expect(page.getByRole('heading', { name: 'Legend' })).toBeVisible();
    await waitForHydration(page);

    // Zoom and pan move the viewBox.
    const initial = await graph.getAttribute('viewBox');
    await page.getByRole('button', { name: 'Zoom in' }).click();
    await expect(graph).not.toHaveAttribute('viewBox', initial!);
    const box = await graph.boundingBox();
    const zoomed = await graph.getAttribute('viewBox');
    await page.mouse.move(box!.x + 20, box!.y + 20);
    await page.mouse.down();
    await page.mouse.move(box!.x + 80, box!.y + 50, { steps: 5 });
    // Mid-drag the drawing moves by a transform (composited, not painted
    // again); the viewBox follows when the gesture rests.
    const transform = () => graph.evaluate((svg) => (svg as SVGSVGElement).style.transform);
    expect(await transform()).toBe('translate(60px, 30px) scale(1)');
    await expect(graph).toHaveAttribute('viewBox', zoomed!);
    await page.mouse.up();
    await expect(graph).not.toHaveAttribute('viewBox', zoomed!);
    expect(await transform()).toBe('');
    await page.getByRole('button', { name: 'Fit' }).click();
    await expect(graph).toHaveAttribute('viewBox', initial!);

    // Search, then Enter jumps to the best hit.
    const search = page.getByLabel('Find a node');
    await search.fill('load_us');
    await expect(page.getByRole('list', { name: 'Matching nodes' }).getByRole('link', { name: 'load_users' })).toBeVisible();
    await search.press('Enter');
    await expect(page).toHaveURL(/node=load_users/);

    // Details of the node, and its upstream and downstream lit up.
    const details = page.getByRole('complementary');
    await expect(details.getByRole('heading', { level: 2, name: 'load_users' })).toBeVisible();
    await expect(details).toContainText('Load users from the CRM.');
    await expect(details).toContainText('src/shopflow/steps/ingest.py:17');
    await expect(details).toContainText('shopflow.steps.ingest.load_users');
    await expect(graph.locator('g.node.selected > a[data-node="load_users"]')).toHaveCount(1);
    await expect(graph.locator('g.node.upstream > a[data-node="fetch_raw"]')).toHaveCount(1);
    await expect(graph.locator('g.node.downstream > a[data-node="daily_revenue"]')).toHaveCount(1);
    await page.screenshot({ path: 'test-results/screens/viewer-registry.png', fullPage: true });

    // Clicking a node selects it without a reload; so does the keyboard.
    await graph.locator('a[data-node="enrich_orders"]').click();
    await expect(page).toHaveURL(/node=enrich_orders/);
    await expect(details.getByRole('heading', { level: 2, name: 'enrich_orders' })).toBeVisible();
    // The highlight moved with it: the old selection's classes are gone,
    // and the drawing still dims what is off the new one's paths.
    await expect(graph.locator('g.node.selected > a[data-node="enrich_orders"]')).toHaveCount(1);
    await expect(graph.locator('g.node.selected')).toHaveCount(1);
    await expect(graph.locator('g.node.upstream > a[data-node="load_users"]')).toHaveCount(1);
    await expect(graph.locator('g.node.upstream > a[data-node="fetch_raw"]')).toHaveCount(1);
    await expect(graph.locator('g.node.downstream > a[data-node="daily_revenue"]')).toHaveCount(1);
    await expect(graph).toHaveClass(/\blit\b/);
    await graph.locator('a[data-node="fetch_raw"]').focus();
    await page.keyboard.press('Enter');
    await expect(page).toHaveURL(/node=fetch_raw/);
    await expect(details.getByRole('heading', { level: 2, name: 'fetch_raw' })).toBeVisible();

    // The focus view: the node's neighbourhood, k adjustable.
    await details.getByRole('link', { name: 'Focus on this node' }).click();
    await expect(page).toHaveURL(/focus=fetch_raw&k=2/);
    await expect(page.getByRole('heading', { name: 'Around fetch_raw: 2 hops' })).toBeVisible();
    await expect(graph.locator('a[data-node="enrich_orders"]')).toHaveCount(1);
    await expect(graph.locator('a[data-node="legacy_export"]')).toHaveCount(0);
    await expect(graph.locator('a[data-node="daily_revenue"]')).toHaveCount(0);
    await page.getByRole('link', { name: 'More hops' }).click();
    await expect(page.getByRole('heading', { name: 'Around fetch_raw: 3 hops' })).toBeVisible();
    await expect(graph.locator('a[data-node="daily_revenue"]')).toHaveCount(1);
    await page.screenshot({ path: 'test-results/screens/viewer-focus.png', fullPage: true });
    expect(errors).toEqual([]);
  });

  test('a large registry is shown by module and a module expands', async ({ page }) => {
    const errors = watchConsole(page);
    await signIn(page);
    await page.goto('/registries?q=big.registry');
    await page.getByRole('link', { name: 'big', exact: true }).click();
    await expect(page.getByText('so it is shown by module')).toBeVisible();
    const graph = page.locator('svg.graph');
    await expect(graph.locator('a[data-node="entry_5"]')).toHaveCount(0);
    await waitForHydration(page);
    await graph.locator('a[data-node="big.m0"]').click();
    await expect(page).toHaveURL(/group=big\.m0/);
    const details = page.getByRole('complementary');
    await expect(details.getByRole('heading', { level: 2, name: 'big.m0' })).toBeVisible();
    await details.getByRole('link', { name: 'Expand this module' }).click();
    await expect(page).toHaveURL(/expand=big\.m0/);
    await expect(graph.locator('a[data-node="entry_5"]')).toHaveCount(1);
    await page.screenshot({ path: 'test-results/screens/viewer-collapsed.png', fullPage: true });
    expect(errors).toEqual([]);
  });

  test('zoomed far out, packed module boxes become summaries that open on click, and the zoom is in the URL', async ({ page }) => {
    const errors = watchConsole(page);
    await signIn(page);
    await page.goto('/registries?q=big.registry');
    await page.getByRole('link', { name: 'big', exact: true }).click();
    // The whole registry: 600 entries without edges, packed in 12 module boxes.
    await page.getByRole('navigation', { name: 'Views' }).getByRole('link', { name: 'Whole registry' }).click();
    await expect(page).toHaveURL(/view=full/);
    // Far out (the width is clamped to the zoom limit): labels would be
    // unreadable, so each module is one summary, in the server's HTML too.
    await page.goto(`${page.url()}&zoom=0,0,100000`);
    const graph = page.locator('svg.graph');
    const summary = graph.getByRole('link', { name: 'big.m3 — 50 entries, zoom in to show them' });
    await expect(summary).toBeVisible();
    await expect(graph.locator('a[data-node="entry_150"]')).toBeHidden();
    await waitForHydration(page);
    await expect(summary).toBeVisible();
    await axe(page, 'summarized registry graph');
    await shot(page, 'viewer-semantic-zoom-out');

    // Expand with the keyboard (a mouse click runs the same handler): the
    // box's entries become readable, the focus moves from the hidden
    // summary to the box's first entry, and the URL records the new zoom
    // once it rests.
    await summary.focus();
    await page.keyboard.press('Enter');
    await expect(graph.locator('a[data-node="entry_150"]')).toBeVisible();
    await expect(summary).toBeHidden();
    const focused = graph.locator('a[data-node]:focus');
    await expect(focused).toBeVisible();
    const first = await focused.getAttribute('data-node');
    const box = (await graph.locator('[data-cluster="big.m3"] rect').boundingBox())!;
    const at = (await focused.boundingBox())!;
    expect(at.x >= box.x && at.y >= box.y && at.x + at.width <= box.x + box.width, `${first} lies in big.m3`).toBe(true);
    const [x, y, w] = (await graph.getAttribute('viewBox'))!.split(' ').map(Number);
    const zoom = [x, y, w].map(Math.round).join(',');
    await expect(page).toHaveURL(new RegExp(`zoom=${zoom}$`));
    await axe(page, 'registry graph zoomed into a module');
    await shot(page, 'viewer-semantic-zoom-in');

    // A shared link opens at the same zoom.
    await page.reload();
    await expect(graph).toHaveAttribute('viewBox', new RegExp(`^${zoom.split(',').join(' ')} `));
    await expect(graph.locator('a[data-node="entry_150"]')).toBeVisible();

    // Back and Forward restore the zoom each history entry recorded:
    // selecting an entry adds one, zooming in replaces its zoom.
    await waitForHydration(page);
    const viewBoxOf = (z: string) => new RegExp(`^${z.split(',').join(' ')} `);
    await graph.locator('a[data-node="entry_150"]').click();
    await expect(page).toHaveURL(new RegExp(`node=entry_150&zoom=${zoom}$`));
    await page.getByRole('button', { name: 'Zoom in' }).click();
    await expect(page).not.toHaveURL(new RegExp(`zoom=${zoom}$`));
    const [x2, y2, w2] = (await graph.getAttribute('viewBox'))!.split(' ').map(Number);
    const zoomedIn = [x2, y2, w2].map(Math.round).join(',');
    await expect(page).toHaveURL(new RegExp(`node=entry_150&zoom=${zoomedIn}$`));
    await page.goBack();
    await expect(page).toHaveURL(new RegExp(`full&zoom=${zoom}$`));
    await expect(graph).toHaveAttribute('viewBox', viewBoxOf(zoom));
    await page.goForward();
    await expect(page).toHaveURL(new RegExp(`zoom=${zoomedIn}$`));
    await expect(graph).toHaveAttribute('viewBox', viewBoxOf(zoomedIn));

    // Fit drops the zoom from the URL.
    await page.getByRole('button', { name: 'Fit' }).click();
    await expect(page).not.toHaveURL(/zoom=/);
    expect(errors).toEqual([]);
  });

  test('the search box finds an entry in any registry and opens it selected', async ({ page }) => {
    const errors = watchConsole(page);
    await signIn(page);
    await page.goto('/registries?q=entry_42');
    const hits = page.locator('section.entry-hits');
    await expect(hits.getByRole('heading', { name: 'Entries' })).toBeVisible();
    // Best first: the exact name, then longer names that start with it.
    await expect(hits.locator('tbody tr').first()).toHaveAttribute('data-entry', 'entry_42');
    await expect(hits.locator('tbody tr')).toHaveCount(11);
    await expect(hits.locator('tr[data-entry="entry_42"]')).toContainText('big/m0.py:');
    await page.screenshot({ path: 'test-results/screens/viewer-search-entries.png', fullPage: true });
    await hits.getByRole('link', { name: 'entry_42', exact: true }).click();
    await expect(page).toHaveURL(/node=entry_42/);
    await expect(page.getByRole('complementary').getByRole('heading', { level: 2, name: 'entry_42' })).toBeVisible();
    expect(errors).toEqual([]);
  });

  test('the registry page downloads the current view as SVG', async ({ page }) => {
    await signIn(page);
    await page.goto('/registries?q=pipel');
    await page.getByRole('link', { name: 'pipelines', exact: true }).click();
    const svgLink = page.getByTestId('export-svg');
    await expect(svgLink).toHaveAccessibleName('Download this view as SVG');
    const [download] = await Promise.all([page.waitForEvent('download'), svgLink.click()]);
    expect(download.suggestedFilename()).toMatch(/^shopflow\.registry\.pipelines-[a-z]+\.svg$/);
    expect(readFileSync((await download.path())!, 'utf8')).toContain('load_users');
  });
});
