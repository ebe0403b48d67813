// edit.mjs BASE_URL: two people edit one document in headless Chromium
// while a third watches the view link; prints the final texts as JSON.
// Run by cmd/collabd/browser_test.go, which checks them against the server.
import { chromium } from "playwright-core";

const base = process.argv[2];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const alice = await (await browser.newContext()).newPage();
  const bob = await (await browser.newContext()).newPage();
  const viewer = await (await browser.newContext()).newPage();
  const errors = [];
  for (const p of [alice, bob, viewer]) p.on("pageerror", (e) => errors.push(String(e)));

  await alice.goto(`${base}/`);
  await alice.fill("#text", "Hello");
  await alice.click("button[type=submit]");
  await alice.waitForURL(/\/edit\.html#/);
  await alice.waitForFunction(() => !document.getElementById("copy-view").disabled);
  const viewUrl = await alice.$eval("#copy-view", (b) => b.dataset.url);
  const docId = new URL(alice.url()).hash.slice(1);

  await bob.goto(alice.url());
  await bob.waitForFunction(() => !document.getElementById("doc").disabled);
  await viewer.goto(viewUrl);
  await viewer.waitForFunction(() => document.getElementById("doc").textContent === "Hello");

  // Both type at once: Alice at the end, Bob at the start.
  await alice.focus("#doc");
  await alice.keyboard.press("Control+End");
  await bob.focus("#doc");
  await bob.keyboard.press("Control+Home");
  await Promise.all([
    alice.keyboard.type(" world 😀!", { delay: 15 }),
    bob.keyboard.type("Well, ", { delay: 15 }),
  ]);

  // Wait until every page and the server hold the same text.
  let texts;
  for (let i = 0; i < 100; i++) {
    const server = await (await fetch(`${base}/api/docs/${docId}/text`)).text();
    texts = {
      server,
      alice: await alice.$eval("#doc", (e) => e.value),
      bob: await bob.$eval("#doc", (e) => e.value),
      viewer: await viewer.$eval("#doc", (e) => e.textContent),
    };
    if (Object.values(texts).every((t) => t === server) && server.length >= 20) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const peers = await alice.$$eval("#peers li", (lis) => lis.map((li) => li.textContent));
  // Bob's caret, drawn on Alice's page once his cursor has arrived.
  let carets = [];
  for (let i = 0; i < 50 && carets.length === 0; i++) {
    carets = await alice.$$eval("#marks .caret", (els) => els.map((e) => e.dataset.name));
    if (carets.length === 0) await new Promise((r) => setTimeout(r, 100));
  }
  if (process.env.SCREENSHOT) await alice.screenshot({ path: process.env.SCREENSHOT });
  console.log(JSON.stringify({ texts, peers, carets, viewUrl, docId, errors }));
} finally {
  await browser.close();
}
