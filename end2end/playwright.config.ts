import { defineConfig } from '@playwright/test';

// Two hubs, each started by end2end/start-hub.sh (a fresh SQLite database,
// a known admin and viewer, its own Azure DevOps emulator): a clean one for
// sign-in and the admin journey, and a seeded one (two demo repositories
// replicated) for the graph viewer.
const port = Number(process.env.SPICEHUB_E2E_PORT ?? 3917);
const seededPort = port + 1;
export const seededURL = `http://127.0.0.1:${seededPort}`;
// A third seeded hub for the admin flows that change or remove what the
// seed made (admin.*.spec.ts, run in file-name order: removal last).
const adminPort = port + 2;
export const adminURL = `http://127.0.0.1:${adminPort}`;
// A fourth clean hub for the federated credential's journey
// (federated.spec.ts), which starts from a hub with no provider, as the
// wizard does, and adds one.
const federatedPort = port + 3;
export const federatedURL = `http://127.0.0.1:${federatedPort}`;
// A fifth seeded hub with the four registry shapes of
// viewer.shapes.spec.ts as well (start-hub.sh "seed shapes"): its own, as
// the other viewer tests failed intermittently next to them (inline-script
// CSP errors in the console).
const shapesPort = port + 4;
export const shapesURL = `http://127.0.0.1:${shapesPort}`;

export default defineConfig({
  testDir: './tests',
  timeout: 60_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: 1,
  forbidOnly: !!process.env.CI,
  retries: 0,
  outputDir: './test-results',
  reporter: [['list'], ['html', { open: 'never', outputFolder: './playwright-report' }]],
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure',
    launchOptions: {
      // Debian's chromium: Playwright's own browser download cannot work here.
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--no-sandbox', '--disable-gpu', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
      ],
    },
  },
  projects: [
    { name: 'hub', testIgnore: /(viewer(\.shapes)?|federated|admin\..*)\.spec\.ts/ },
    { name: 'viewer', testMatch: /viewer\.spec\.ts/, use: { baseURL: seededURL } },
    // Issue 19's window: its label sizes at Fit are for 1400 x 900.
    { name: 'shapes', testMatch: /viewer\.shapes\.spec\.ts/, use: { baseURL: shapesURL, viewport: { width: 1400, height: 900 } } },
    { name: 'admin', testMatch: /admin\..*\.spec\.ts/, use: { baseURL: adminURL } },
    { name: 'federated', testMatch: /federated\.spec\.ts/, use: { baseURL: federatedURL } },
  ],
  webServer: [
    {
      command: `bash ./start-hub.sh ${port} ${port + 100}`,
      url: `http://127.0.0.1:${port}/healthz`,
      timeout: 120_000,
      reuseExistingServer: false,
      stdout: 'pipe',
      stderr: 'pipe',
    },
    {
      command: `bash ./start-hub.sh ${seededPort} ${seededPort + 100} seed`,
      url: `${seededURL}/healthz`,
      timeout: 180_000,
      reuseExistingServer: false,
      stdout: 'pipe',
      stderr: 'pipe',
    },
    {
      command: `bash ./start-hub.sh ${adminPort} ${adminPort + 100} seed wide`,
      url: `${adminURL}/healthz`,
      timeout: 180_000,
      reuseExistingServer: false,
      stdout: 'pipe',
      stderr: 'pipe',
    },
    {
      command: `bash ./start-hub.sh ${federatedPort} ${federatedPort + 100}`,
      url: `${federatedURL}/healthz`,
      timeout: 120_000,
      reuseExistingServer: false,
      stdout: 'pipe',
      stderr: 'pipe',
    },
    {
      command: `bash ./start-hub.sh ${shapesPort} ${shapesPort + 100} seed shapes`,
      url: `${shapesURL}/healthz`,
      timeout: 300_000,
      reuseExistingServer: false,
      stdout: 'pipe',
      stderr: 'pipe',
    },
  ],
});
