// example.mjs APP: docs/examples/embed in Chromium (cmd/collabd's
// TestSDKExample): two people sign in to the example application its own
// way, edit its note together through the collabd SDK, see each other,
// and keep editing past their first token's expiry (the page asks the
// application for a fresh one). Prints "ok example".

import { launch, watch, until, sleep } from "./lib.mjs";

const app = process.argv[2];
const browser = await launch();
const problems = [];

async function signIn(name) {
  const ctx = await browser.newContext();
  const p = await ctx.newPage();
  await watch(p, problems, name);
  await p.goto(app);
  await p.fill("input[name=name]", name);
  await p.click("button");
  await p.waitForFunction(() => window.doc && window.doc.status === "live", null, { timeout: 15000 });
  return p;
}

try {
  const anon = await fetch(`${app}/token`, { method: "POST" });
  if (anon.status !== 401) throw new Error(`a token without signing in: got ${anon.status}, want 401`);

  const ada = await signIn("Ada"), bob = await signIn("Bob");
  const value = (p) => p.$eval("#note", (e) => e.value);
  await ada.click("#note");
  await ada.keyboard.press("Control+End");
  await ada.keyboard.type("Ada: ship it 🚀\n");
  await until("Bob to see Ada's line", async () => (await value(bob)).endsWith("Ada: ship it 🚀\n"));
  await until("Bob to see Ada in the list", async () => (await bob.$eval("#who", (e) => e.textContent)).includes("Ada"));
  if ((await bob.$eval("#me", (e) => e.textContent)) !== "Bob") throw new Error("Bob's page names someone else");

  // Past the first token's exp (TOKEN_SECONDS): the SDK has asked /token
  // again, and the session goes on.
  await sleep(Number(process.env.TOKEN_SECONDS || 3) * 1000 + 1500);
  await bob.click("#note");
  await bob.keyboard.press("Control+End");
  await bob.keyboard.type("Bob: agreed");
  await until("Ada to see Bob's line", async () => (await value(ada)).endsWith("Bob: agreed"));
  const st = await ada.$eval("#status", (e) => e.textContent);
  if (st !== "live") throw new Error(`Ada's status after her token expired: ${st}`);
  if (problems.length) throw new Error(problems.join("; "));
  console.log("ok example");
} catch (err) {
  console.log(`FAIL example: ${err.stack || err}`);
  await browser.close();
  process.exit(1);
}
await browser.close();
