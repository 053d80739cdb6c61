// Drives Debian's headless Chromium through edgedav's web interface.
//
//   node tests/browser/webui.mjs URL SCREENSHOT [READ_ONLY_URL]
//
// URL is a server's root, with `user:password@` when it wants Basic auth
// (the credentials become Playwright's httpCredentials, so the page's own
// XHRs reuse the browser's login). The script uploads through the file input
// and by a drop, creates the folder `a b ü #%&`, opens it, uploads, renames
// and deletes there, sorts, and checks every step both in the listing and by
// fetching directly; then it saves a screenshot of the root listing. With
// READ_ONLY_URL (a read-only user's credentials) it also checks that writes
// are refused with a clear message and change nothing (and saves a
// screenshot of that, SCREENSHOT with `-read-only` before `.png`).
// Every wait is on an element, a dialog or a response; no fixed sleeps.
// Exits 0 when everything held, 1 with the reason otherwise.

import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.EDGEDAV_CHROMIUM || '/usr/bin/chromium';
const ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];
const TIMEOUT = 60_000; // generous: the machine running the suite is loaded
const FOLDER = 'a b ü #%&';

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

/// The root URL without credentials, and the credentials it carried.
function parse(raw) {
  const url = new URL(raw);
  const credentials = url.username
    ? {
      username: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
      origin: url.origin,
    }
    : undefined;
  url.username = '';
  url.password = '';
  return { root: url.href, credentials };
}

/// A fresh browser profile with these credentials; closed and removed after
/// `use`. Console errors matching `expected` (refusals the scenario causes on
/// purpose) are not problems.
async function withBrowser(credentials, use, expected = null) {
  const profile = mkdtempSync(join(tmpdir(), 'edgedav-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    httpCredentials: credentials,
    viewport: { width: 1100, height: 700 },
  });
  try {
    context.setDefaultTimeout(TIMEOUT);
    const page = context.pages()[0] ?? await context.newPage();
    // A CSP violation, a script error or a failed asset shows up here.
    const problems = [];
    page.on('console', (m) => {
      const text = `${m.text()} (${m.location().url})`;
      if (m.type() === 'error' && !expected?.test(text)) problems.push(text);
    });
    page.on('pageerror', (e) => problems.push(String(e)));
    await use(page, context);
    check(problems.length === 0, `the page reported errors: ${problems.join(' | ')}`);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

const row = (page, name) => page.locator(`#listing tbody tr[data-name=${JSON.stringify(name)}]`);
const names = (page) => page.locator('#listing tbody tr').evaluateAll(
  (rows) => rows.map((r) => r.dataset.name));

/// Opens a listing and waits for the script to have enhanced it.
async function open(page, url) {
  const response = await page.goto(url);
  check(response.status() === 200, `GET ${url}: ${response.status()}`);
  const headers = response.headers();
  check(/script-src 'self'/.test(headers['content-security-policy'] ?? ''),
    `no Content-Security-Policy on ${url}: ${JSON.stringify(headers)}`);
  check(headers['x-content-type-options'] === 'nosniff', 'no X-Content-Type-Options');
  await page.locator('body.ready').waitFor();
}

/// Runs `action`, which opens one dialog, answering it with `answer`
/// (`true` accepts a confirm, a string fills a prompt).
async function withDialog(page, answer, action) {
  const dialog = page.waitForEvent('dialog');
  const done = action();
  const d = await dialog;
  await (typeof answer === 'string' ? d.accept(answer) : d.accept());
  await done;
  return d.message();
}

/// Waits for the message area to say `pattern` (a previous message of the
/// same kind may still be showing until then), then for the operation that
/// said it to end, so that the next action is not refused as a second one.
async function expectMessage(page, kind, pattern) {
  try {
    await page.locator(`#message.${kind}`).filter({ hasText: pattern }).waitFor();
  } catch (error) {
    const shown = await page.locator('#message').evaluate((m) => `${m.className}: ${m.textContent}`);
    throw new Error(`no ${kind} message matching ${pattern}; showing ${JSON.stringify(shown)}`, { cause: error });
  }
  await idle(page);
}

/// Waits until the page runs no write operation (the interface refuses a
/// second one meanwhile): the progress bar hides before the listing is
/// refreshed, so it does not say that.
async function idle(page) {
  await page.locator('body:not(.busy)').waitFor();
}

/// Uploads through the file input; waits for the PUT, the progress bar to
/// complete and the row to appear.
async function uploadFile(page, name, buffer) {
  const put = page.waitForResponse((r) => r.request().method() === 'PUT');
  await page.locator('#upload-input').setInputFiles({ name, mimeType: 'application/octet-stream', buffer });
  check((await put).status() === 201, `PUT ${name}: ${(await put).status()}`);
  await row(page, name).waitFor();
  await page.locator('#progress').waitFor({ state: 'hidden' });
  const value = await page.locator('#progress-bar').evaluate((bar) => bar.value);
  check(value === 1, `progress ended at ${value}`);
  await expectMessage(page, 'ok', /^Uploaded/);
}

async function fetchStatus(context, url) {
  return (await context.request.get(url, { maxRedirects: 0 })).status();
}

async function writerScenario(root, screenshot, credentials) {
  await withBrowser(credentials, async (page, context) => {
    await open(page, root);
    const big = Buffer.alloc(3 * 1024 * 1024, 'edgedav ');
    await uploadFile(page, 'hello big.bin', big);

    // A drop of a file on the page uploads it too.
    const put = page.waitForResponse((r) => r.request().method() === 'PUT');
    await page.evaluate(() => {
      const data = new DataTransfer();
      data.items.add(new File(['dropped!'], 'dropped.txt', { type: 'text/plain' }));
      document.body.dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));
    });
    check((await put).status() === 201, 'PUT of the dropped file');
    await row(page, 'dropped.txt').waitFor();

    await withDialog(page, FOLDER, () => page.locator('#new-folder').click());
    await row(page, FOLDER).waitFor();
    await expectMessage(page, 'ok', /^Created the folder/);

    // Sorting by size: folders first, then smallest or largest first.
    await page.locator('th[data-sort="size"] button').click();
    check(JSON.stringify(await names(page)) === JSON.stringify([FOLDER, 'dropped.txt', 'hello big.bin']),
      `ascending size order: ${await names(page)}`);
    await page.locator('th[data-sort="size"] button').click();
    check(JSON.stringify(await names(page)) === JSON.stringify([FOLDER, 'hello big.bin', 'dropped.txt']),
      `descending size order: ${await names(page)}`);

    // Into the folder by its link.
    await Promise.all([
      page.waitForURL((u) => u.pathname === '/a%20b%20%C3%BC%20%23%25%26/'),
      row(page, FOLDER).locator('a').click(),
    ]);
    await page.locator('body.ready').waitFor();
    check((await page.locator('h1').textContent()).includes(FOLDER), 'the heading names the folder');
    const folder = new URL('a%20b%20%C3%BC%20%23%25%26/', root).href;

    await uploadFile(page, 'inner #1.txt', Buffer.from('inner content'));
    await withDialog(page, 'renamed ü & co.txt',
      () => row(page, 'inner #1.txt').locator('button[data-action="rename"]').click());
    await row(page, 'renamed ü & co.txt').waitFor();
    await row(page, 'inner #1.txt').waitFor({ state: 'detached' });
    await expectMessage(page, 'ok', /^Renamed/);
    const renamed = await context.request.get(`${folder}renamed%20%C3%BC%20%26%20co.txt`);
    check(renamed.status() === 200 && (await renamed.text()) === 'inner content',
      `GET of the renamed file: ${renamed.status()}`);
    check(await fetchStatus(context, `${folder}inner%20%231.txt`) === 404, 'the old name is gone');

    const question = await withDialog(page, true,
      () => row(page, 'renamed ü & co.txt').locator('button[data-action="delete"]').click());
    check(question.includes('renamed ü & co.txt'), `confirmation asked ${JSON.stringify(question)}`);
    await row(page, 'renamed ü & co.txt').waitFor({ state: 'detached' });
    await expectMessage(page, 'ok', /^Deleted/);
    check(await fetchStatus(context, `${folder}renamed%20%C3%BC%20%26%20co.txt`) === 404, 'deleted');
    check((await names(page)).length === 0, 'the folder is empty again');

    // Back up, and a last look at the whole state from outside the page.
    await Promise.all([page.waitForURL(root), page.locator('a.up').click()]);
    await page.locator('body.ready').waitFor();
    const file = await context.request.get(new URL('hello%20big.bin', root).href);
    check(file.status() === 200 && (await file.body()).equals(big), 'the uploaded file round-trips');
    check(await fetchStatus(context, folder) === 200, 'the folder exists');
    mkdirSync(dirname(screenshot), { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });
  });
}

/// A read-only user sees the listing; each write is refused with the
/// status in a clear message, and nothing changes.
async function readOnlyScenario(root, credentials, screenshot) {
  await withBrowser(credentials, async (page, context) => {
    await open(page, root);
    await row(page, 'hello big.bin').waitFor();
    const before = await names(page);

    const put = page.waitForResponse((r) => r.request().method() === 'PUT');
    await page.locator('#upload-input').setInputFiles({ name: 'nope.txt', mimeType: 'text/plain', buffer: Buffer.from('no') });
    check((await put).status() === 403, `read-only PUT: ${(await put).status()}`);
    await expectMessage(page, 'error', /^Uploading “nope\.txt” was refused: 403 Forbidden \(you do not have permission/);
    await page.locator('#progress').waitFor({ state: 'hidden' });

    await withDialog(page, 'new', () => page.locator('#new-folder').click());
    await expectMessage(page, 'error', /^Creating the folder “new” was refused: 403/);

    await withDialog(page, true,
      () => row(page, 'dropped.txt').locator('button[data-action="delete"]').click());
    await expectMessage(page, 'error', /^Deleting “dropped\.txt” was refused: 403/);
    await page.screenshot({ path: screenshot, fullPage: true });

    check(JSON.stringify(await names(page)) === JSON.stringify(before), 'the listing is unchanged');
    check(await fetchStatus(context, new URL('nope.txt', root).href) === 404, 'nothing was uploaded');
    check(await fetchStatus(context, new URL('new/', root).href) === 404, 'no folder was created');
    check(await fetchStatus(context, new URL('dropped.txt', root).href) === 200, 'nothing was deleted');
  }, /status of 403 \(Forbidden\)/);
}

async function main() {
  const [url, screenshot, readOnlyUrl] = process.argv.slice(2);
  if (!url || !screenshot) {
    throw new Error('usage: node webui.mjs URL SCREENSHOT [READ_ONLY_URL]');
  }
  const writer = parse(url);
  await writerScenario(writer.root, screenshot, writer.credentials);
  if (readOnlyUrl) {
    const reader = parse(readOnlyUrl);
    await readOnlyScenario(reader.root, reader.credentials, screenshot.replace(/(\.png)?$/, '-read-only.png'));
  }
  console.log('webui browser test passed');
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
