// lib.mjs: helpers the browser scripts share: launching Debian's Chromium
// through playwright-core, pages that record errors and CSP violations,
// and reading an editor's text.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

// launch starts Chromium headless with the flags this machine needs;
// Playwright gives it a fresh temporary --user-data-dir of its own.
export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

// watch makes page record uncaught errors, console errors and CSP
// violations into problems.
export async function watch(page, problems, who) {
  page.on("pageerror", (e) => problems.push(`${who}: page error: ${e}`));
  // Failed requests are logged by Chromium itself, and expected here
  // (offline, a stopped server, unknown ids); anything else is a bug.
  const expected = /^(Failed to load resource|WebSocket connection to .* failed)/;
  page.on("console", (m) => { if (m.type() === "error" && !expected.test(m.text())) problems.push(`${who}: console: ${m.text()}`); });
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      (window.__csp ||= []).push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
    });
  });
}

export async function cspViolations(page) { return page.evaluate(() => window.__csp || []); }

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function until(what, fn, timeout = 15000) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${last})`);
    await sleep(100);
  }
}

export const editorText = (page) => page.evaluate(() => window.collabdEditor.view.state.doc.toString());
export const viewerText = (page) => page.evaluate(() => window.collabdViewer.view.state.doc.toString());
export const status = (page) => page.$eval("#status", (e) => ({ state: e.dataset.state, pending: Number(e.dataset.pending || 0), text: e.textContent }));

export async function live(page) {
  await page.waitForFunction(() => document.getElementById("status").dataset.state === "live", null, { timeout: 15000 });
}

export async function serverText(base, id) {
  const r = await fetch(`${base}/api/docs/${id}/text`);
  if (!r.ok) throw new Error(`GET text: ${r.status}`);
  return r.text();
}

export async function createDoc(base, text) {
  const r = await fetch(`${base}/api/docs`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(text ? { text } : {}) });
  if (r.status !== 201) throw new Error(`create: ${r.status}`);
  return r.json();
}

// converge waits until every page and the server hold the same text.
export async function converge(base, id, pages, viewers = []) {
  let texts;
  await until("convergence", async () => {
    texts = { server: await serverText(base, id) };
    for (const [name, p] of Object.entries(pages)) texts[name] = await editorText(p);
    for (const [name, p] of Object.entries(viewers)) texts[name] = await viewerText(p);
    return Object.values(texts).every((t) => t === texts.server);
  }, 30000).catch((e) => { e.texts = texts; throw e; });
  return texts.server;
}

export function shotDir() {
  const dir = process.env.SCREENSHOT_DIR;
  if (dir) mkdirSync(dir, { recursive: true });
  return dir;
}

// paste sends text to the focused editor as a real paste event.
export async function paste(page, text) {
  await page.evaluate((t) => {
    const dt = new DataTransfer();
    dt.setData("text/plain", t);
    let target = document.activeElement;
    while (target && target.shadowRoot && target.shadowRoot.activeElement) target = target.shadowRoot.activeElement;
    target.dispatchEvent(new ClipboardEvent("paste", { clipboardData: dt, bubbles: true, cancelable: true }));
  }, text);
}
