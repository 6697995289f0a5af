import { test, expect, Page } from '@playwright/test';
import { axe, shot, submitSignIn, watchConsole } from './support';

// The graph viewer on registries shaped like real ones (issue 19, item 5):
// screenshots for the reviewers, assertions that each drawing shows what its
// fixture holds, and figures for the 5,000-entry full view (printed with a
// `FIGURE:` prefix, never asserted on).
//
// It runs against a hub of its own (playwright.config.ts, project "shapes"),
// which start-hub.sh seeds with "seed shapes": besides the viewer hub's
// repositories, e2e-mmdet (registry "model", 280 entries in 55 modules, no
// edges), e2e-2000 (registry "bulk", 2,000 entries in 40 modules), e2e-mixed
// (registry "stages", a 30-step chain and 150 loose entries) and e2e-5000
// (registry "huge", 5,000 entries in 100 modules, about 10,000 edges).

async function signIn(page: Page) {
  await submitSignIn(page, 'viewer@example.com', 'viewer-password-123');
  await expect(page).toHaveURL(/\/registries$/);
}

/// Hydrated once the zoom buttons are enabled (they do nothing before).
async function waitForHydration(page: Page, timeout = 20_000) {
  await expect(page.getByRole('button', { name: 'Zoom in' })).toBeEnabled({ timeout });
}

/// The address of a registry's page, found through the Registries tab's filter.
async function registryPath(page: Page, query: string, name: string): Promise<string> {
  await page.goto(`/registries?q=${encodeURIComponent(query)}`);
  const href = await page.getByRole('link', { name, exact: true }).getAttribute('href');
  expect(href).toMatch(/^\/registries\/[^/]+\/[^/?]+$/);
  return href!;
}

function figure(name: string, value: string) {
  console.log(`FIGURE: ${name} = ${value}`);
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

// The figures are taken with Playwright's trace recorder on (the config
// keeps a trace per test for failures), and it snapshots the whole DOM
// around every action: with the 5,000-entry drawing's 40,000 elements that
// holds the page's main thread. On one machine: paint 1.6 s and frame p95
// 100-150 ms with it on, 0.85-1.15 s and 17 ms in three runs with
// `--trace off`, which gives what a visitor's browser does. It stays on
// here because with it off a rare refusal of the Registries page's inline
// scripts (a policy without the page's nonce; see `watchConsole`) came up
// in 2 runs of 7, where the shapes project's earlier runs with it on
// never showed it.

test.describe('graph viewer on registry shapes', () => {

  test('mmdet-shaped: 280 classes in 55 modules, readable at Fit, one module zoomed into', async ({ page }) => {
    const errors = watchConsole(page);
    await signIn(page);
    await page.goto(await registryPath(page, 'mmdet.registry', 'model'));
    await expect(page.getByRole('heading', { level: 1, name: 'model' })).toBeVisible();
    const graph = page.locator('svg.graph');
    // Under the collapse threshold: every entry is drawn, packed by module,
    // big enough at Fit to be read, so the module summaries (drawn only
    // when zoomed out further) are hidden.
    await expect(graph.locator('a[data-node]')).toHaveCount(280);
    await expect(graph.locator('path.edge')).toHaveCount(0);
    await expect(graph.locator('a.summary')).toHaveCount(55);
    const summary = graph.getByRole('link', { name: 'mmdet.models.backbones.resnet — 6 entries, zoom in to show them', includeHidden: true });
    await expect(summary).toBeHidden();
    await expect(graph.locator('a[data-node="Resnet"]')).toBeVisible();
    await expect(page.getByText('too small to read at this zoom')).toHaveCount(0);
    await waitForHydration(page);
    await expect(graph.locator('a[data-node="Resnet"]')).toBeVisible();
    // How tall an entry's label is at Fit: the font size times the
    // drawing's scale on screen, and as the browser measures the text.
    const fitPx = await graph.evaluate((svg) => {
      const vb = (svg as SVGSVGElement).viewBox.baseVal;
      const box = svg.getBoundingClientRect();
      const scale = Math.min(box.width / vb.width, box.height / vb.height);
      const text = svg.querySelector('a[data-node="Resnet"] text')!.getBoundingClientRect().height;
      return { entry: 10 * scale, text, panel: `${box.width.toFixed(0)} x ${box.height.toFixed(0)}`, viewBox: `${vb.width} x ${vb.height}` };
    });
    figure('mmdet entry label at Fit (px tall, 10 user units x scale / text box as drawn)', `${fitPx.entry.toFixed(2)} / ${fitPx.text.toFixed(1)}`);
    figure('mmdet drawing panel (px) and viewBox (user units)', `${fitPx.panel}, ${fitPx.viewBox}`);
    // Issue 19's target for this shape in a 1400 x 900 window.
    expect(fitPx.entry).toBeGreaterThanOrEqual(7);
    await axe(page, 'mmdet-shaped registry at Fit');
    await shot(page, 'shapes-mmdet-fit');

    // Into one module, by the link its summary carries (a link opens the
    // same picture): its six classes, large, with the modules around.
    const href = await summary.getAttribute('href');
    expect(href).toMatch(/zoom=/);
    await page.goto(href!);
    await waitForHydration(page);
    for (const name of ['Resnet', 'ResnetV1', 'ResnetV5']) {
      await expect(graph.locator(`a[data-node="${name}"]`)).toBeVisible();
    }
    const zoomedPx = await graph.locator('a[data-node="Resnet"] text').evaluate((t) => t.getBoundingClientRect().height);
    figure('mmdet entry label zoomed into its module (px tall)', zoomedPx.toFixed(1));
    // Bigger than at Fit, and not blown up to fill the panel.
    expect(zoomedPx).toBeGreaterThan(1.5 * fitPx.text);
    expect(zoomedPx).toBeLessThan(24);
    await axe(page, 'mmdet-shaped registry zoomed into a module');
    await shot(page, 'shapes-mmdet-module');
    expect(errors).toEqual([]);
  });

  test('2,000 entries in 40 modules are shown by module', async ({ page }) => {
    const errors = watchConsole(page);
    await signIn(page);
    await page.goto(await registryPath(page, 'bulk.registry', 'bulk'));
    await expect(page.getByText('This registry has 2000 nodes, more than 500, so it is shown by module')).toBeVisible();
    const graph = page.locator('svg.graph');
    await expect(graph.locator('a[data-node]')).toHaveCount(40);
    await expect(graph.getByRole('link', { name: 'bulk.part_00: module with 50 entries' })).toBeVisible();
    await expect(graph.getByRole('link', { name: 'bulk.part_39: module with 50 entries' })).toBeVisible();
    await expect(graph.locator('a[data-node="item_0"]')).toHaveCount(0);
    await waitForHydration(page);
    const moduleLabel = await graph.getByRole('link', { name: 'bulk.part_00: module with 50 entries' }).locator('text').evaluate((t) => t.getBoundingClientRect().height);
    figure('2000 module label at Fit (px tall)', moduleLabel.toFixed(1));
    await axe(page, '2,000-entry registry by module');
    await shot(page, 'shapes-2000');
    expect(errors).toEqual([]);
  });

  test('mixed: a 30-step chain next to 150 loose entries', async ({ page }) => {
    const errors = watchConsole(page);
    await signIn(page);
    await page.goto(await registryPath(page, 'mixed.registry', 'stages'));
    const graph = page.locator('svg.graph');
    await expect(graph.locator('a[data-node]')).toHaveCount(180);
    await expect(graph.locator('a[data-node^="step_"]')).toHaveCount(30);
    await expect(graph.locator('a[data-node^="loose_"]')).toHaveCount(150);
    // The chain's 29 edges, and nothing else is connected.
    await expect(graph.locator('path.edge')).toHaveCount(29);
    await expect(graph.locator('path.edge.dangling')).toHaveCount(0);
    await waitForHydration(page);
    await axe(page, 'mixed registry');
    await shot(page, 'shapes-mixed');
    // The chain is folded into lines, like text, not drawn as one strip as
    // wide as 30 steps: at Fit its labels read like the loose entries'.
    const label = await graph.locator('a[data-node="step_0"] text').evaluate((t) => t.getBoundingClientRect().height);
    figure('mixed step_0 label on screen at Fit (px tall)', label.toFixed(1));
    expect(label).toBeGreaterThanOrEqual(7);

    // The chain, step by step: step_15 selected lights up the whole chain
    // upstream and downstream, and nothing loose.
    const search = page.getByLabel('Find a node');
    await search.fill('step_15');
    await expect(page.getByRole('list', { name: 'Matching nodes' }).getByRole('link', { name: 'step_15' })).toBeVisible();
    await search.press('Enter');
    await expect(page).toHaveURL(/node=step_15/);
    await expect(page.getByRole('complementary').getByRole('heading', { level: 2, name: 'step_15' })).toBeVisible();
    await expect(graph.locator('g.node.selected > a[data-node="step_15"]')).toHaveCount(1);
    await expect(graph.locator('g.node.upstream > a[data-node="step_0"]')).toHaveCount(1);
    await expect(graph.locator('g.node.downstream > a[data-node="step_29"]')).toHaveCount(1);
    await expect(graph.locator('g.node.upstream > a[data-node^="loose_"]')).toHaveCount(0);
    expect(errors).toEqual([]);
  });

  test('the Registries tab finds entries across the shaped registries', async ({ page }) => {
    const errors = watchConsole(page);
    await signIn(page);
    await page.goto('/registries?q=Resnet');
    const hits = page.locator('section.entry-hits');
    await expect(hits.getByRole('heading', { name: 'Entries' })).toBeVisible();
    await expect(hits.locator('tbody tr').first()).toHaveAttribute('data-entry', 'Resnet');
    await expect(hits.locator('tbody tr')).toHaveCount(6);
    await expect(hits.locator('tr[data-entry="ResnetV3"]')).toContainText('mmdet/models/backbones/resnet.py:');
    await axe(page, 'entry search on the Registries tab');
    await shot(page, 'shapes-search');
    expect(errors).toEqual([]);
  });

  test('5,000 entries and 10,000 edges: the whole registry, with figures', async ({ page }) => {
    test.setTimeout(300_000);
    const errors = watchConsole(page);
    await signIn(page);
    const full = `${await registryPath(page, 'huge.registry', 'huge')}?view=full`;
    const graph = page.locator('svg.graph');
    const nodes = graph.locator('a[data-node]');

    // The first visit may wait for the layout (laid out in the background
    // after a sync, or on demand: about a minute of dot here, which is why
    // start-hub.sh raises SPICEHUB_LAYOUT_TIMEOUT_MS); the server's answer
    // time tells which.
    await page.goto(full, { timeout: 150_000 });
    await expect(nodes).toHaveCount(5000, { timeout: 150_000 });
    const firstResponse = await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
      return nav.responseStart - nav.requestStart;
    });
    figure('5000-full first-visit server response (ms)', firstResponse.toFixed(0));
    figure('5000-full layout cached at first visit', firstResponse < 2_000 ? 'yes (answered under 2 s)' : 'no (waited for the layout)');

    // Measured visit, with the browser's cache off (a first visitor: the
    // wasm and JS are fetched too): navigation start to the drawing with its
    // nodes painted (two frames after the SVG is complete in the DOM).
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.setCacheDisabled', { cacheDisabled: true });
    await page.addInitScript(() => {
      const w = window as unknown as { __graphPainted?: number; __interactive?: number };
      // When the zoom buttons turn on, seen frame by frame (the
      // assertion's own polling is coarser than what it measures).
      const interactive = () => {
        const zoom = [...document.querySelectorAll('.graph-tools button')].find((b) => b.textContent?.trim() === 'Zoom in');
        if (zoom && !(zoom as HTMLButtonElement).disabled) {
          w.__interactive = performance.now();
        } else {
          requestAnimationFrame(interactive);
        }
      };
      requestAnimationFrame(interactive);
      const check = () => {
        if (document.querySelectorAll('svg.graph a[data-node]').length >= 5000) {
          requestAnimationFrame(() => requestAnimationFrame(() => { w.__graphPainted = performance.now(); }));
        } else {
          requestAnimationFrame(check);
        }
      };
      requestAnimationFrame(check);
    });
    await page.goto(full, { timeout: 150_000 });
    await expect(nodes).toHaveCount(5000, { timeout: 150_000 });
    await page.waitForFunction(() => (window as unknown as { __graphPainted?: number }).__graphPainted !== undefined, null, { timeout: 60_000 });
    await waitForHydration(page, 120_000);
    const load = await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming;
      const paint = Object.fromEntries(performance.getEntriesByType('paint').map((p) => [p.name, p.startTime]));
      return {
        painted: (window as unknown as { __graphPainted: number }).__graphPainted,
        response: nav.responseStart - nav.requestStart,
        html: nav.responseEnd - nav.responseStart,
        htmlBytes: nav.decodedBodySize,
        htmlTransfer: nav.transferSize,
        domContentLoaded: nav.domContentLoadedEventEnd,
        load: nav.loadEventEnd,
        fcp: paint['first-contentful-paint'],
        hydrated: (window as unknown as { __interactive?: number }).__interactive ?? performance.now(),
        hydrateStart: performance.getEntriesByName('spicehub:hydrate-start')[0]?.startTime,
        hydrateEnd: performance.getEntriesByName('spicehub:hydrate-end')[0]?.startTime,
        resources: performance.getEntriesByType('resource')
          .filter((r) => /\.(wasm|js)(\?|$)/.test(r.name))
          .map((r) => {
            const t = r as PerformanceResourceTiming;
            return { name: new URL(t.name).pathname, transfer: t.transferSize, encoded: t.encodedBodySize, decoded: t.decodedBodySize, duration: t.duration, end: t.responseEnd };
          }),
      };
    });
    await cdp.send('Network.setCacheDisabled', { cacheDisabled: false });
    figure('5000-full server response, layout cached (ms)', load.response.toFixed(0));
    figure('5000-full HTML download (ms)', load.html.toFixed(0));
    figure('5000-full HTML size (bytes, transfer/decoded)', `${load.htmlTransfer}/${load.htmlBytes}`);
    figure('5000-full first contentful paint (ms)', load.fcp?.toFixed(0) ?? 'n/a');
    figure('5000-full graph SVG painted, from navigation start (ms)', load.painted.toFixed(0));
    figure('5000-full DOMContentLoaded (ms)', load.domContentLoaded.toFixed(0));
    figure('5000-full load event (ms)', load.load.toFixed(0));
    figure('5000-full hydrated (zoom buttons enabled) by (ms)', load.hydrated.toFixed(0));
    // Marked by the bundle itself: before the start, the wasm is fetched and
    // compiled; between the two, the page is taken over.
    figure('5000-full hydration started at (ms)', load.hydrateStart?.toFixed(0) ?? 'n/a');
    figure('5000-full hydration took (ms)', load.hydrateStart !== undefined && load.hydrateEnd !== undefined
      ? (load.hydrateEnd - load.hydrateStart).toFixed(0) : 'n/a');
    // The first paint does not wait for the client code: the drawing is
    // in the server's HTML, and the wasm only makes it interactive.
    const wasm = load.resources.find((r) => r.name.endsWith('.wasm'));
    if (wasm) {
      figure('5000-full wasm fetched by (ms, from navigation start)', wasm.end.toFixed(0));
      figure('5000-full graph painted before the wasm arrived', load.painted < wasm.end ? 'yes' : 'no');
    }
    for (const r of load.resources) {
      figure(`5000-full asset ${r.name}, browser cache off (bytes, transfer/encoded/decoded)`, `${r.transfer}/${r.encoded}/${r.decoded}`);
    }
    // The wasm and the JS glue are served (a 404 would fail hydration).
    expect(load.resources.some((r) => r.name.endsWith('.wasm') && r.decoded > 0)).toBe(true);
    expect(load.resources.some((r) => r.name.endsWith('.js') && r.decoded > 0)).toBe(true);

    // What the drawing shows: every entry, about 10,000 edges.
    const edges = await graph.locator('path.edge').count();
    figure('5000-full edges drawn', String(edges));
    expect(edges).toBeGreaterThan(9_000);
    await expect(graph.locator('a[data-node="node_4999"]')).toHaveCount(1);
    // How readable Fit is: the drawing's size, and a node's width on screen.
    const fit = await graph.evaluate((svg) => {
      const node = svg.querySelector('a[data-node="node_0"]')!.getBoundingClientRect();
      return { viewBox: svg.getAttribute('viewBox'), nodeWidth: node.width, nodeHeight: node.height };
    });
    figure('5000-full viewBox at Fit (user units)', fit.viewBox ?? 'none');
    figure('5000-full node_0 on screen at Fit (px, width x height)', `${fit.nodeWidth.toFixed(2)} x ${fit.nodeHeight.toFixed(2)}`);
    // At that size the drawing is a shape, not something to read: the page
    // says so, and offers the registry by module.
    const note = page.getByRole('status').filter({ hasText: 'too small to read at this zoom' });
    await expect(note).toBeVisible();
    await expect(note.getByRole('link', { name: 'show the registry by module' })).toHaveAttribute('href', /[?&]view=collapsed/);
    let t = Date.now();
    // axe over 5,000 node links and 10,000 edges takes about two minutes;
    // the same node and edge markup is checked on the smaller drawings above.
    await axe(page, '5,000-entry registry, whole', ['svg.graph > g.nodes', 'svg.graph > g.edges']);
    figure('5000-full axe run (ms)', String(Date.now() - t));
    t = Date.now();
    await shot(page, 'shapes-5000-full');
    figure('5000-full full-page screenshot (ms)', String(Date.now() - t));

    // Frame times while zooming and panning, each gesture recorded apart:
    // a wheel spun at a mouse's pace (60 steps 16 ms apart, dispatched in
    // the page), the same steps sent by Playwright one at a time (each
    // waits for the browser's acknowledgement, a frame, so every step is a
    // gesture of its own and is drawn for real), and a drag.
    const record = () => page.evaluate(() => {
      const w = window as unknown as { __frames: number[]; __recording: boolean };
      w.__frames = [];
      w.__recording = true;
      let last = performance.now();
      const tick = (t: number) => {
        w.__frames.push(t - last);
        last = t;
        if (w.__recording) requestAnimationFrame(tick);
      };
      requestAnimationFrame((t) => { last = t; requestAnimationFrame(tick); });
    });
    const stop = async () => {
      // Let the gesture settle and its last frames land.
      await page.waitForTimeout(400);
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
      return page.evaluate(() => {
        const w = window as unknown as { __frames: number[]; __recording: boolean };
        w.__recording = false;
        return w.__frames;
      });
    };
    const report = (what: string, frames: number[], wall: number) => {
      expect(frames.length).toBeGreaterThan(5);
      const sorted = [...frames].sort((a, b) => a - b);
      figure(`5000-full ${what}: wall time (ms)`, String(wall));
      figure(`5000-full ${what}: frames, median / p95 / max (ms)`,
        `${frames.length} frames, ${quantile(sorted, 0.5).toFixed(1)} / ${quantile(sorted, 0.95).toFixed(1)} / ${sorted[sorted.length - 1].toFixed(1)}`);
      figure(`5000-full ${what}: frames over 50 ms`, String(frames.filter((f) => f > 50).length));
    };
    const box = (await graph.boundingBox())!;
    const cx = box.x + box.width / 2;
    const cy = box.y + Math.min(box.height, 600) / 2;
    await page.mouse.move(cx, cy);

    let before = await graph.getAttribute('viewBox');
    await record();
    let started = Date.now();
    await graph.evaluate((svg, [x, y]) => new Promise<void>((done) => {
      let i = 0;
      const step = () => {
        svg.dispatchEvent(new WheelEvent('wheel', { deltaY: i < 40 ? -100 : 100, clientX: x, clientY: y, bubbles: true, cancelable: true }));
        i += 1;
        if (i < 60) setTimeout(step, 16); else done();
      };
      step();
    }), [cx, cy]);
    let wall = Date.now() - started;
    report('zoom, wheel spun (60 steps, 16 ms apart)', await stop(), wall);
    await expect(graph).not.toHaveAttribute('viewBox', before!);

    before = await graph.getAttribute('viewBox');
    await record();
    started = Date.now();
    for (let i = 0; i < 20; i++) {
      await page.mouse.wheel(0, i < 14 ? -100 : 100);
    }
    wall = Date.now() - started;
    report('zoom, Playwright wheel steps (20, each acknowledged)', await stop(), wall);
    await expect(graph).not.toHaveAttribute('viewBox', before!);

    before = await graph.getAttribute('viewBox');
    await record();
    started = Date.now();
    await page.mouse.down();
    await page.mouse.move(cx - 300, cy - 150, { steps: 40 });
    await page.mouse.move(cx + 200, cy + 100, { steps: 40 });
    await page.mouse.up();
    wall = Date.now() - started;
    report('pan, drag (80 pointer moves)', await stop(), wall);
    await expect(graph).not.toHaveAttribute('viewBox', before!);
    // The gesture's transform is gone once the viewBox took over.
    expect(await graph.evaluate((svg) => (svg as SVGSVGElement).style.transform)).toBe('');
    expect(errors).toEqual([]);

    // What the first paint owes the bundle: the same page with the bundle's
    // requests refused paints in the time the page itself takes (its
    // console errors are expected, and no longer watched).
    await page.route(/\/pkg\/spicehub\.(js|wasm)(\?|$)/, (route) => route.abort());
    await page.goto(full, { timeout: 150_000 });
    await page.waitForFunction(() => (window as unknown as { __graphPainted?: number }).__graphPainted !== undefined, null, { timeout: 60_000 });
    const bare = await page.evaluate(() => ({
      painted: (window as unknown as { __graphPainted: number }).__graphPainted,
      response: (performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming).responseStart,
    }));
    figure('5000-full graph SVG painted with the bundle refused (ms, from navigation start)', bare.painted.toFixed(0));
    figure('5000-full server response started, that load (ms)', bare.response.toFixed(0));
    await page.unroute(/\/pkg\/spicehub\.(js|wasm)(\?|$)/);
  });
});
