// suite.mjs BASE_URL [SCENARIO...]: the browser scenarios of the editor,
// viewer, home page and history, each in fresh Chromium contexts against
// a real collabd. Run by cmd/collabd/browser_test.go, which reads one
// JSON line per scenario from stdout ({"scenario","errors","skip"}) and
// answers "@restart" lines (stop the server, start it again on the same
// address and data file) with a line on stdin once it is back.
import { createInterface } from "node:readline";
import { readFileSync } from "node:fs";
import {
  launch, watch, cspViolations, sleep, until, editorText, viewerText, status, live, serverText, createDoc,
  converge, shotDir, paste,
} from "./lib.mjs";

const base = process.argv[2];
const only = new Set(process.argv.slice(3));
const stdin = createInterface({ input: process.stdin });
const lines = stdin[Symbol.asyncIterator]();
async function restartServer() {
  process.stdout.write("@restart\n");
  const { value } = await lines.next();
  if (value !== "ok") throw new Error(`restart failed: ${value}`);
}

const browser = await launch();
const shots = shotDir();

// page opens a fresh context (its own storage, as another person's
// browser) at a viewport, recording its problems.
async function page(problems, who, viewport = { width: 1280, height: 800 }) {
  const ctx = await browser.newContext({ viewport });
  const p = await ctx.newPage();
  await watch(p, problems, who);
  p.ctx = ctx;
  return p;
}

async function openEditor(problems, who, id, viewport, name) {
  const p = await page(problems, who, viewport);
  if (name) await p.addInitScript((n) => localStorage.setItem("collabd-name", n), name);
  await p.goto(`${base}/edit.html#${id}`);
  await live(p);
  return p;
}

async function typeAtEnd(p, text, delay = 10) {
  await p.click(".cm-content");
  await p.keyboard.press("Control+End");
  await p.keyboard.type(text, { delay });
}

const count = (hay, needle) => hay.split(needle).length - 1;

async function checkCSP(problems, pages) {
  for (const [who, p] of Object.entries(pages)) {
    for (const v of await cspViolations(p)) problems.push(`${who}: CSP violation: ${v}`);
  }
}

// timeslider opens the history, checks revision 1 (text, description,
// what it inserted) and restores it.
async function timeslider(errors, id) {
  const a = await page(errors, "a");
  await a.goto(`${base}/edit.html#${id}`);
  await live(a);
  await typeAtEnd(a, ", then more");
  await converge(base, id, { a });
  await a.click("#history-btn");
  await until("history panel", () => a.$eval("#history", (e) => !e.hidden && e.dataset.rev));
  await a.focus("#hist-slider");
  await a.keyboard.press("Home"); // revision 0
  await a.keyboard.press("ArrowRight"); // revision 1
  await until("revision 1 shown", () => a.$eval("#history", (e) => e.dataset.rev === "1"));
  const shown = await a.evaluate(() => document.getElementById("hist-preview").shadowRoot.querySelector(".cm-content").textContent);
  if (shown !== "first version") errors.push(`history shows ${JSON.stringify(shown)} at revision 1`);
  const info = await a.$eval("#hist-info", (e) => e.textContent);
  if (!/^Revision 1 of \d+ · .+ · by .+ · \+13 −0$/.test(info)) errors.push(`revision 1 is described as ${JSON.stringify(info)}`);
  const marked = await a.evaluate(() => [...document.getElementById("hist-preview").shadowRoot.querySelectorAll(".cm-hist-ins")].map((e) => e.textContent).join(""));
  if (marked !== "first version") errors.push(`revision 1 highlights ${JSON.stringify(marked)} as inserted, want "first version"`);
  await a.keyboard.press("End");
  await until("the head shown", async () => (await a.$eval("#history", (e) => e.dataset.rev)) !== "1");
  if (!(await a.$eval("#hist-restore", (b) => b.disabled))) errors.push("restore is offered for the current revision");
  await a.keyboard.press("Home");
  await a.keyboard.press("ArrowRight");
  await until("revision 1 shown again", () => a.$eval("#history", (e) => e.dataset.rev === "1"));
  const before = await serverText(base, id);
  await a.click("#hist-restore"); // asks first
  const asked = await a.$eval("#hist-restore", (b) => b.textContent);
  if (!/revision 1/.test(asked)) errors.push(`the restore button asks ${JSON.stringify(asked)}`);
  await sleep(300);
  if ((await serverText(base, id)) !== before) errors.push("one click restored, without a confirmation");
  await a.click("#hist-restore");
  await until("restored", async () => (await serverText(base, id)) === "first version");
  await converge(base, id, { a });
  await until("the panel closed", () => a.$eval("#history", (e) => e.hidden));
  // The editor offers to undo it.
  await until("undo offered", () => a.$eval("#restored", (e) => !e.hidden));
  await a.click("#restored-undo");
  await until("restore undone", async () => (await serverText(base, id)) === before);
  await converge(base, id, { a });
  await a.ctx.close();
}

// comments: two people comment on a sentence while a third edits it
// (docs/comments.md); a fourth reads the threads on a phone.
async function commentsScenario(errors) {
  const { id } = await createDoc(base, "alpha beta gamma delta");
  const ada = await openEditor(errors, "ada", id, undefined, "Ada");
  const bob = await openEditor(errors, "bob", id, undefined, "Bob");
  const cy = await openEditor(errors, "cy", id, undefined, "Cy");
  // The highlighted text as a person reads it: without the name labels
  // of other people's carets that sit inside it.
  const highlighted = (p) => p.evaluate(() => [...document.getElementById("editor").shadowRoot.querySelectorAll(".cm-comment")].map((e) => {
    const c = e.cloneNode(true);
    for (const w of c.querySelectorAll(".cm-collab-caret")) w.remove();
    return c.textContent;
  }).join(""));
  const threadTexts = (p) => p.$$eval("#comment-list .thread", (ts) => ts.map((t) => t.textContent));
  // Ada selects "beta" with the keyboard and comments on it.
  await ada.click(".cm-content");
  await ada.keyboard.press("Control+Home");
  for (let i = 0; i < 6; i++) await ada.keyboard.press("ArrowRight");
  for (let i = 0; i < 4; i++) await ada.keyboard.press("Shift+ArrowRight");
  await ada.keyboard.press("Control+Alt+m");
  await ada.keyboard.type("Why beta?");
  await ada.keyboard.press("Tab");
  await ada.keyboard.press("Enter"); // the Comment button
  // Bob sees it without a reload: the count in the header, the thread,
  // the highlighted words.
  await until("bob's count", () => bob.$eval("#comment-count", (e) => e.textContent === "1"));
  await until("bob's highlight", async () => (await highlighted(bob)) === "beta");
  const bobThreads = await threadTexts(bob);
  if (bobThreads.length !== 1 || !bobThreads[0].includes("Why beta?") || !bobThreads[0].includes("Ada") || !bobThreads[0].includes("“beta”")) {
    errors.push(`bob's margin shows ${JSON.stringify(bobThreads)}, want Ada's thread on “beta”`);
  }
  // Cy types inside the commented word: the highlight widens for all.
  await cy.click(".cm-content");
  await cy.keyboard.press("Control+Home");
  for (let i = 0; i < 8; i++) await cy.keyboard.press("ArrowRight");
  await cy.keyboard.type("XX", { delay: 30 });
  await converge(base, id, { ada, bob, cy });
  for (const [who, p] of [["bob", bob], ["ada", ada]]) {
    let got;
    await until(`${who}'s widened highlight`, async () => (got = await highlighted(p)) === "beXXta")
      .catch((e) => { e.message += `: it highlights ${JSON.stringify(got)}`; throw e; });
  }
  const server = await (await fetch(`${base}/api/docs/${id}/comments`)).json();
  if (JSON.stringify(server.comments.map((t) => t.range)) !== "[[6,12]]") errors.push(`server ranges ${JSON.stringify(server.comments.map((t) => t.range))}, want [[6,12]]`);
  // Bob replies; Ada sees the reply.
  await bob.fill("#comment-list .thread .reply-text", "Because it is second.");
  await bob.press("#comment-list .thread .reply-text", "Enter");
  await until("ada sees the reply", async () => (await threadTexts(ada)).join("").includes("Because it is second."));
  // Cy deletes the word: the thread stays, saying its text is gone.
  // Her caret is after "beXX": back to the word's start, then select it.
  for (let i = 0; i < 4; i++) await cy.keyboard.press("ArrowLeft");
  for (let i = 0; i < 6; i++) await cy.keyboard.press("Shift+ArrowRight");
  await cy.keyboard.press("Backspace");
  await converge(base, id, { ada, bob, cy });
  await until("ada's detached thread", async () => (await threadTexts(ada)).join("").includes("its text was deleted"));
  if ((await highlighted(ada)) !== "") errors.push(`ada still highlights ${JSON.stringify(await highlighted(ada))} after the text was deleted`);
  // An export with comments has them in a section of their own.
  await ada.click("#download");
  const [dl] = await Promise.all([ada.waitForEvent("download"), ada.click("[data-export=md-comments]")]);
  const exported = readFileSync(await dl.path(), "utf8");
  if (!exported.startsWith("alpha  gamma delta") || !/\n## Comments\n\n- \*\*Ada\*\* on line 1, its text deleted: Why beta\?\n  - \*\*Bob\*\*: Because it is second\.\n$/.test(exported)) {
    errors.push(`the export with comments is ${JSON.stringify(exported)}`);
  }
  // Ada resolves it: it leaves everyone's count.
  await ada.click("#comment-list .thread .actions button");
  await until("bob's count after resolve", () => bob.$eval("#comment-count", (e) => e.textContent === "0"));
  // A phone: the margin is a list behind the header's button.
  const dee = await openEditor(errors, "dee", id, { width: 390, height: 844 }, "Dee");
  if (await dee.isVisible("#comment-list")) errors.push("the comment list covers the text at 390 px before it is asked for");
  await dee.click("#comments-btn");
  await dee.check("#comment-show-resolved");
  await until("dee's resolved thread", async () => (await threadTexts(dee)).join("").includes("Why beta?"));
  if (!(await dee.isVisible("#comment-list .thread"))) errors.push("the thread is not visible at 390 px");
  if (shots) await dee.screenshot({ path: `${shots}/comments-390.png` });
  if (shots) await ada.screenshot({ path: `${shots}/comments-1280.png` });
  await checkCSP(errors, { ada, bob, cy, dee });
  for (const p of [ada, bob, cy, dee]) await p.ctx.close();
}

// viewerComments: a viewer sees the threads read-only only once someone
// with edit access shares them (docs/comments.md, "Viewers"), follows
// them as the text changes, and asks the server at most once a second.
async function viewerCommentsScenario(errors) {
  const { id, viewId } = await createDoc(base, "alpha beta gamma delta");
  const api = (method, path, body) => fetch(`${base}/api/docs/${id}/comments${path}`, {
    method, headers: { "Content-Type": "application/json" }, body: body && JSON.stringify(body) });
  const r = await api("POST", "", { rev: 1, range: [6, 10], text: "Why beta?", client: crypto.randomUUID(), name: "Ada" });
  if (r.status !== 201) throw new Error(`POST comment: ${r.status}`);
  const thread = (await r.json()).id;
  const ada = await openEditor(errors, "ada", id, undefined, "Ada");
  const vi = await page(errors, "viewer");
  const asked = []; // when the viewer asked for the threads
  vi.on("request", (q) => { if (q.url().endsWith(`/api/view/${viewId}/comments`)) asked.push(Date.now()); });
  await vi.addInitScript(() => localStorage.setItem("collabd-view-plain", "1")); // the highlights are in the plain text
  await vi.goto(`${base}/view.html#${viewId}`);
  await until("viewer text", async () => (await viewerText(vi)) === "alpha beta gamma delta");
  const highlighted = () => vi.evaluate(() => [...document.getElementById("doc").shadowRoot.querySelectorAll(".cm-comment")].map((e) => e.textContent).join(""));
  const listed = () => vi.$$eval("#comment-list .thread", (ts) => ts.map((t) => t.textContent).join("|"));
  // Not shared: the viewer asked, was refused, and shows nothing.
  await until("the viewer's first request", async () => asked.length >= 1);
  await typeAtEnd(ada, "!");
  await converge(base, id, { ada }, { vi });
  await sleep(1500);
  if (await vi.isVisible("#comments") || await vi.isVisible("#comments-btn")) errors.push("the viewer shows the comments before they are shared");
  if ((await highlighted()) !== "" || (await listed()) !== "") errors.push(`the viewer shows threads before they are shared: ${await highlighted()} / ${await listed()}`);
  // Shared: the next op brings them, read-only.
  const put = await fetch(`${base}/api/docs/${id}/comments/settings`, { method: "PUT", headers: { "Content-Type": "application/json" }, body: '{"viewers":true}' });
  if (put.status !== 200) throw new Error(`PUT settings: ${put.status}`);
  await typeAtEnd(ada, "?");
  await until("the viewer's thread", async () => (await listed()).includes("Why beta?"));
  await until("the viewer's highlight", async () => (await highlighted()) === "beta");
  if (!(await vi.isVisible("#comment-list .thread"))) errors.push("the viewer's thread is not visible at 1280 px");
  if (await vi.$eval("#comment-count", (e) => e.textContent) !== "1") errors.push("the viewer's count is not 1");
  if (await vi.$("#comment-list .thread input, #comment-list .thread form, #comment-list .thread .actions")) errors.push("the viewer's thread has a form or buttons to change it");
  if (shots) await vi.screenshot({ path: `${shots}/view-comments-1280.png` });
  // On a phone the list is behind the header's button, as in the editor.
  await vi.setViewportSize({ width: 390, height: 844 });
  if (await vi.isVisible("#comment-list")) errors.push("the viewer's comment list covers the text at 390 px before it is asked for");
  await vi.click("#comments-btn");
  if (!(await vi.isVisible("#comment-list .thread"))) errors.push("the viewer's thread is not visible at 390 px after the Comments button");
  if (shots) await vi.screenshot({ path: `${shots}/view-comments-390.png` });
  await vi.click("#comments-btn");
  await vi.setViewportSize({ width: 1280, height: 800 });
  // Ada types inside the word while she types elsewhere: the highlight
  // widens, and a burst of ops makes at most one request a second.
  await ada.click(".cm-content");
  await ada.keyboard.press("Control+Home");
  for (let i = 0; i < 8; i++) await ada.keyboard.press("ArrowRight");
  const t0 = Date.now(), before = asked.length;
  await ada.keyboard.type("XX", { delay: 100 });
  await ada.keyboard.press("Control+End");
  await ada.keyboard.type(" and some more words typed for three seconds", { delay: 70 });
  await converge(base, id, { ada }, { vi });
  await until("the viewer's widened highlight", async () => (await highlighted()) === "beXXta");
  await sleep(1200);
  const made = asked.length - before, secs = (Date.now() - t0) / 1000;
  if (made > Math.ceil(secs) + 1) errors.push(`the viewer made ${made} requests for the threads in ${secs.toFixed(1)} s of typing`);
  if (made < 1) errors.push("the viewer did not ask for the threads again while the text changed");
  // Resolved: it leaves the count, and is listed when asked for.
  await api("PATCH", `/${thread}`, { resolved: true });
  await typeAtEnd(ada, ".");
  await until("the viewer's count after resolve", () => vi.$eval("#comment-count", (e) => e.textContent === "0"));
  if ((await highlighted()) !== "") errors.push("the viewer still highlights a resolved thread");
  await vi.check("#comment-show-resolved");
  await until("the viewer's resolved thread", async () => (await listed()).includes("Why beta?"));
  // Unshared again: the next op takes them away.
  await fetch(`${base}/api/docs/${id}/comments/settings`, { method: "PUT", headers: { "Content-Type": "application/json" }, body: '{"viewers":false}' });
  await typeAtEnd(ada, ";");
  await until("the viewer's comments hidden", async () => !(await vi.isVisible("#comments")) && (await listed()) === "");
  const got = await (await fetch(`${base}/api/view/${viewId}/comments`)).text();
  if (got.includes(id)) errors.push("the viewers' comment answer holds the edit id");
  await checkCSP(errors, { ada, vi });
  for (const p of [ada, vi]) await p.ctx.close();
}

const scenarios = {
  comments: commentsScenario,
  viewerComments: viewerCommentsScenario,
  // Two people type at once, emoji, CJK, Enter, Backspace,
  // select-and-delete and a 50 KB paste among it; a viewer watches.
  async converge(errors) {
    const alice = await page(errors, "alice");
    await alice.goto(`${base}/`);
    await alice.fill("#text", "Hello");
    await alice.click("form button[type=submit]");
    await alice.waitForURL(/\/edit\.html#/);
    await live(alice);
    const id = new URL(alice.url()).hash.slice(1);
    const viewURL = await alice.$eval("#view-link", (e) => e.value);
    if (!viewURL.includes("/view.html#") || viewURL.includes(id)) errors.push(`view link ${viewURL} is wrong or holds the edit id`);
    const bob = await openEditor(errors, "bob", id);
    const viewer = await page(errors, "viewer");
    const traffic = [];
    viewer.on("request", (r) => traffic.push(r.url() + (r.postData() || "")));
    viewer.on("response", async (r) => { try { traffic.push(await r.text()); } catch { /* streaming */ } });
    await viewer.goto(viewURL);
    await until("viewer text", async () => (await viewerText(viewer)) === "Hello");

    await alice.click(".cm-content");
    await alice.keyboard.press("Control+End");
    await bob.click(".cm-content");
    await bob.keyboard.press("Control+Home");
    const big = Array.from({ length: 1000 }, (_, i) => `line ${i} of the pasted block, 漢字 and 😀 to be sure\n`).join("").slice(0, 50_000);
    await Promise.all([
      (async () => {
        await alice.keyboard.type(" world 😀! Several seconds of typing, 漢字 included, at once with bob", { delay: 30 });
        await alice.keyboard.press("Enter");
        await alice.keyboard.type("第二行 ✓ 👩‍💻", { delay: 15 });
        // Backspace deletes a whole grapheme: the ZWJ emoji, then the space.
        for (let i = 0; i < 2; i++) await alice.keyboard.press("Backspace");
        await paste(alice, big);
        await alice.keyboard.type("after paste", { delay: 15 });
      })(),
      (async () => {
        await bob.keyboard.type("Well, ", { delay: 20 });
        await bob.keyboard.press("Enter");
        await bob.keyboard.type("Bob types for a few seconds too, with emoji 🎈 and 中文.", { delay: 35 });
        await bob.keyboard.press("Enter");
        await bob.keyboard.type("🎉 bob typed this", { delay: 20 });
        for (let i = 0; i < 4; i++) await bob.keyboard.press("Shift+ArrowLeft");
        await bob.keyboard.press("Backspace");
        await bob.keyboard.type("THAT 中文", { delay: 20 });
      })(),
    ]);
    const text = await converge(base, id, { alice, bob }, { viewer });
    if (!text.includes(big)) errors.push("the 50 KB paste is not whole in the final text");
    if (text.includes("👩")) errors.push("backspace left part of the 👩‍💻 sequence");
    for (const want of ["Well, ", "🎉 bob typed THAT 中文", " world 😀! Several seconds of typing, 漢字 included, at once with bob",
      "Bob types for a few seconds too, with emoji 🎈 and 中文.", "第二行 ✓", "after paste"]) {
      if (!text.includes(want)) errors.push(`final text lacks ${JSON.stringify(want)}`);
    }
    if (text.includes("this")) errors.push("bob's select-and-delete of \"this\" was lost");
    // Presence: each sees the other's caret with a name, and both in the
    // list. Bob's caret is near the top, which CodeMirror draws only when
    // it is in view.
    await alice.keyboard.press("Control+Home");
    const carets = await until("bob's caret on alice's page", async () => {
      const c = await alice.$$eval(".cm-collab-caret", (els) => els.map((e) => e.dataset.name));
      return c.length ? c : null;
    });
    const bobName = await bob.$eval("#name", (e) => e.value);
    if (!carets.includes(bobName)) errors.push(`alice's page draws carets ${JSON.stringify(carets)}, want bob's (${bobName})`);
    const peers = await alice.$$eval("#peers li", (lis) => lis.length);
    if (peers !== 2) errors.push(`alice's list shows ${peers} people, want 2`);
    // The viewer: no editing control, never the edit id.
    const editable = await viewer.evaluate(() => !!document.querySelector("textarea, input[type=text], [contenteditable=true]") ||
      !!document.getElementById("doc").shadowRoot.querySelector("[contenteditable=true]"));
    if (editable) errors.push("the viewer page has an editing control");
    const html = await viewer.evaluate(() => document.documentElement.outerHTML + document.getElementById("doc").shadowRoot.innerHTML);
    if (html.includes(id)) errors.push("the viewer page contains the edit id");
    if (traffic.some((t) => t.includes(id))) errors.push("the viewer's traffic contains the edit id");
    const first = text.split("\n", 1)[0].trim();
    if (!(await viewer.title()).startsWith(first)) errors.push(`viewer title ${JSON.stringify(await viewer.title())} does not name the document (${first})`);
    if (!(await alice.title()).startsWith(first)) errors.push(`editor title ${JSON.stringify(await alice.title())} does not name the document (${first})`);
    await checkCSP(errors, { alice, bob, viewer });
    for (const p of [alice, bob, viewer]) await p.ctx.close();
  },

  // Both type at the same spot at once: each one's words stay whole.
  async samespot(errors) {
    const { id } = await createDoc(base, "start: ");
    const a = await openEditor(errors, "a", id), b = await openEditor(errors, "b", id);
    for (const p of [a, b]) { await p.click(".cm-content"); await p.keyboard.press("Control+End"); }
    // b starts once a's first letters are on its page, at the same spot:
    // they landed at b's caret and must not carry it into a's word. (Two
    // first keystrokes in the very same instant are a race no client can
    // win: the protocol puts the later-committed insert right of the
    // earlier one, inside a word that has just begun; see
    // docs/frontend.md. A fixed delay lost that race on a loaded machine.)
    const wa = "apple banana cherry", wb = "ONE TWO THREE FOUR";
    await Promise.all([
      a.keyboard.type(wa, { delay: 25 }),
      until("a's first letters on b's page", async () => (await editorText(b)).includes(wa.slice(0, 3)))
        .then(() => b.keyboard.type(wb, { delay: 30 })),
    ]);
    const text = await converge(base, id, { a, b });
    if (!text.includes(wa) || !text.includes(wb)) errors.push(`words interleaved: ${JSON.stringify(text)}`);
    // Renaming oneself keeps the page live and reaches the others.
    await b.evaluate(() => {
      window.__states = [];
      new MutationObserver(() => window.__states.push(document.getElementById("status").dataset.state))
        .observe(document.getElementById("status"), { attributes: true });
    });
    await b.evaluate(() => { const n = document.getElementById("name"); n.value = "Renamed Bob"; n.dispatchEvent(new Event("change")); });
    await until("the new name on a's page", () => a.$$eval("#peers li", (lis) => lis.some((li) => li.textContent.includes("Renamed Bob"))));
    await typeAtEnd(b, " renamed");
    await converge(base, id, { a, b });
    const states = await b.evaluate(() => window.__states);
    if (states.some((s) => s !== "live")) errors.push(`renaming changed the status: ${JSON.stringify(states)}`);
    for (const p of [a, b]) await p.ctx.close();
  },

  // Undo in one editor undoes only its own edit while the other types.
  async undo(errors) {
    const { id } = await createDoc(base, "middle");
    const a = await openEditor(errors, "a", id), b = await openEditor(errors, "b", id);
    await typeAtEnd(a, " MINE");
    await sleep(700); // a new undo group
    await b.click(".cm-content");
    await b.keyboard.press("Control+Home");
    const typing = b.keyboard.type("theirs then more ", { delay: 40 });
    await sleep(200);
    await a.click("#undo-btn");
    await typing;
    const text = await converge(base, id, { a, b });
    if (text !== "theirs then more middle") errors.push(`after undo: ${JSON.stringify(text)}, want "theirs then more middle"`);
    await a.keyboard.press("Control+Shift+z");
    const redone = await converge(base, id, { a, b });
    if (redone !== "theirs then more middle MINE") errors.push(`after redo: ${JSON.stringify(redone)}`);
    for (const p of [a, b]) await p.ctx.close();
  },

  // Offline: type, reload while offline, type, back online: every
  // keystroke reaches the server once.
  async offline(errors) {
    const { id } = await createDoc(base, "online text\n");
    const a = await openEditor(errors, "a", id);
    await a.evaluate(() => navigator.serviceWorker.ready);
    await until("service worker in control", () => a.evaluate(() => !!navigator.serviceWorker.controller));
    await a.ctx.setOffline(true); // the page hears "offline" and drops its socket
    await until("offline status", async () => (await status(a)).state !== "live");
    await typeAtEnd(a, "first offline line\n");
    const st = await status(a);
    if (!/Offline|Connecting/.test(st.text) || st.pending < 1) errors.push(`while offline the status says ${JSON.stringify(st)}`);
    if (!/wait/.test(st.text)) errors.push(`the offline status does not say how many edits wait: ${JSON.stringify(st.text)}`);
    await sleep(300);
    await a.reload();
    await until("restored text", async () => (await editorText(a)).includes("first offline line"), 10000);
    await typeAtEnd(a, "second offline line");
    await sleep(300);
    await a.reload(); // twice, with a typed line between
    await until("restored text", async () => (await editorText(a)).includes("second offline line"), 10000);
    // The tab is closed, and the document opened again in a new one.
    await typeAtEnd(a, "\nthird, then the tab closes");
    await sleep(300);
    const ctx = a.ctx;
    await a.close();
    const a2 = await ctx.newPage();
    await watch(a2, errors, "a2");
    a2.ctx = ctx;
    await a2.goto(`${base}/edit.html#${id}`);
    await until("text in a new tab", async () => (await editorText(a2)).includes("third, then the tab closes"), 10000);
    const st2 = await status(a2);
    if (st2.pending < 1) errors.push(`the new tab does not count the waiting edits: ${JSON.stringify(st2)}`);
    // The share panel offers both links while offline.
    const links = await a2.evaluate(() => [document.getElementById("edit-link").value, document.getElementById("view-link").value]);
    if (!links[0].endsWith(`#${id}`) || !/\/view\.html#[0-9a-f-]{36}$/.test(links[1])) errors.push(`the share panel offline holds ${JSON.stringify(links)}`);
    if ((await serverText(base, id)) !== "online text\n") errors.push("the server got edits while the page was offline");
    await ctx.setOffline(false);
    await live(a2);
    const text = await converge(base, id, { a2 });
    for (const w of ["first offline line\n", "second offline line", "online text\n", "third, then the tab closes"]) {
      if (count(text, w) !== 1) errors.push(`server text has ${JSON.stringify(w)} ${count(text, w)} times: ${JSON.stringify(text)}`);
    }
    await checkCSP(errors, { a2 });
    await ctx.close();
  },

  // The server stops and starts again while someone types.
  async restart(errors) {
    const { id } = await createDoc(base, "");
    const a = await openEditor(errors, "a", id);
    const b = await openEditor(errors, "b", id);
    await a.click(".cm-content");
    let typed = "";
    const typeSome = async (n) => {
      for (let i = 0; i < n; i++) {
        const w = `w${typed.length} `;
        await a.keyboard.type(w, { delay: 5 });
        typed += w;
      }
    };
    await typeSome(10);
    await Promise.all([restartServer(), typeSome(30)]);
    await typeSome(10);
    await live(a);
    const text = await converge(base, id, { a, b });
    if (text !== typed) errors.push(`after a restart the server has ${JSON.stringify(text)}, typed ${JSON.stringify(typed)}`);
    for (const p of [a, b]) await p.ctx.close();
  },

  // The viewer follows the writer down a long document.
  async follow(errors) {
    const long = Array.from({ length: 400 }, (_, i) => `line ${i + 1}`).join("\n");
    const { id, viewId } = await createDoc(base, long);
    const a = await openEditor(errors, "a", id);
    const v = await page(errors, "viewer");
    await v.goto(`${base}/view.html#${viewId}`);
    await until("viewer text", async () => (await viewerText(v)) === long);
    await typeAtEnd(a, "\nthe writer is down here");
    await until("viewer follows", () => v.evaluate(() => {
      const root = document.getElementById("doc").shadowRoot;
      const line = [...root.querySelectorAll(".cm-line")].find((l) => l.textContent.includes("the writer is down here"));
      if (!line) return false;
      const r = line.getBoundingClientRect(), s = root.querySelector(".cm-scroller").getBoundingClientRect();
      return r.top >= s.top && r.bottom <= s.bottom;
    }));
    const st = await v.$eval("#status", (e) => e.dataset.state);
    if (st !== "live") errors.push(`viewer status ${st}, want live`);
    for (const p of [a, v]) await p.ctx.close();
  },

  // The timeslider shows an earlier revision and restores it.
  // The view page follows a change of its link's # part to another
  // document; offline, the status a screen reader hears does not tick.
  async audit(errors) {
    const one = await createDoc(base, "first document");
    const two = await createDoc(base, "second document");
    const v = await page(errors, "viewer");
    await v.goto(`${base}/view.html#${one.viewId}`);
    await until("first text", async () => (await viewerText(v)) === "first document");
    await v.evaluate((id) => { location.hash = id; }, two.viewId);
    await until("second text after the # changed", async () => (await viewerText(v)) === "second document");
    const e = await openEditor(errors, "editor", one.id);
    await e.evaluate(() => {
      window.__spoken = [];
      new MutationObserver(() => window.__spoken.push(document.getElementById("status-live").textContent))
        .observe(document.getElementById("status-live"), { childList: true, characterData: true, subtree: true });
    });
    await e.ctx.setOffline(true);
    await until("offline status", async () => (await status(e)).state !== "live");
    await sleep(3500);
    const spoken = await e.evaluate(() => window.__spoken);
    const shown = await e.$eval("#status", (x) => x.textContent);
    if (spoken.length > 2 || spoken.some((t) => /\d+ s/.test(t))) errors.push(`the status region announced ${JSON.stringify(spoken)} in 3.5 s offline`);
    if (!/Offline|Connecting/.test(shown)) errors.push(`the visible status says ${JSON.stringify(shown)} offline`);
    if (await e.$eval("#status-live", (x) => x.getAttribute("role")) !== "status") errors.push("no role=status region");
    await e.ctx.setOffline(false);
    await live(e);
    await checkCSP(errors, { v, e });
    await v.ctx.close();
    await e.ctx.close();
  },
  // Author colors: each person's text in their color, a legend with
  // names, the same colors after a reload, and in the history.
  async authors(errors) {
    const { id } = await createDoc(base, "");
    const ada = await openEditor(errors, "ada", id, undefined, "Ada");
    const bob = await openEditor(errors, "bob", id, undefined, "Bob");
    await typeAtEnd(ada, "Ada wrote this. ");
    await converge(base, id, { ada, bob });
    await typeAtEnd(bob, "Bob wrote that.");
    await converge(base, id, { ada, bob });
    await ada.click("#authors-btn");
    // The marked text as a person reads it: without the name label of a
    // caret that sits inside it (Bob's, until his last position arrives).
    const marks = async (p) => p.evaluate(() => [...document.getElementById("editor").shadowRoot.querySelectorAll("[class*='cm-au-']")]
      .map((e) => {
        const c = e.cloneNode(true);
        for (const w of c.querySelectorAll(".cm-collab-caret")) w.remove();
        return [c.textContent, [...e.classList].find((k) => k.startsWith("cm-au-")), getComputedStyle(e).backgroundColor];
      }));
    await until("author marks", async () => (await marks(ada)).length >= 2);
    const got = await marks(ada);
    const text = (who) => got.filter(([, c]) => c === got.find(([t]) => t.includes(who))?.[1]).map(([t]) => t).join("");
    if (text("Ada") !== "Ada wrote this. ") errors.push(`Ada's color covers ${JSON.stringify(text("Ada"))}`);
    if (text("Bob") !== "Bob wrote that.") errors.push(`Bob's color covers ${JSON.stringify(text("Bob"))}`);
    const colors = new Set(got.map(([, , bg]) => bg));
    if (colors.size < 2) errors.push(`the authors share a color: ${JSON.stringify(got)}`);
    const legendText = async (p) => p.$$eval("#authors-legend li", (l) => l.map((e) => e.textContent));
    await until("legend", async () => (await legendText(ada)).length >= 2);
    const names = await legendText(ada);
    if (!names.includes("Ada (you)") || !names.includes("Bob")) errors.push(`the legend says ${JSON.stringify(names)}`);
    // Typing with colors on: the new text takes the typist's color at once.
    await typeAtEnd(bob, " More from Bob.");
    await until("Bob's new text colored", async () => (await marks(ada)).filter(([, c]) => c === got.find(([t]) => t.includes("Bob"))[1]).map(([t]) => t).join("").includes("More from Bob"));
    if (shots) await ada.screenshot({ path: `${shots}/authors.png` });
    // A reload keeps the toggle and every author's color.
    await ada.reload();
    await live(ada);
    await until("author marks after reload", async () => (await marks(ada)).length >= 2);
    const after = await marks(ada);
    for (const [t, c, bg] of after) {
      const before = got.find(([, c2]) => c2 === c);
      if (before && before[2] !== bg) errors.push(`${JSON.stringify(t)} changed color across the reload: ${before[2]} -> ${bg}`);
    }
    // The history colors a past revision by who wrote it.
    await ada.click("#history-btn");
    await until("history panel", () => ada.$eval("#history", (e) => !e.hidden && e.dataset.rev));
    const hist = async () => ada.evaluate(() => [...document.getElementById("hist-preview").shadowRoot.querySelectorAll("[class*='cm-au-']")].map((e) => e.textContent).join(""));
    await until("history author marks", async () => (await hist()).includes("Bob wrote that."));
    if (shots) await ada.screenshot({ path: `${shots}/authors-history.png` });
    await checkCSP(errors, { ada, bob });
    await ada.ctx.close();
    await bob.ctx.close();
  },
  // The preview after edits: rendered chunk by chunk (markdown.js,
  // Preview), it must read as a whole rendering of the text does, through
  // edits that change one chunk, move the lines of all after it, join two
  // chunks, and open and close a fence that swallows the rest; and a task
  // box after moved lines still ticks its own line.
  async previewEdits(errors) {
    const blocks = ["## Section", "A paragraph with *emphasis*\nand a second line.", "- [ ] a task\n- [x] done", "```js\nconst x = 1;\n\nx++;\n```",
      "> a quote", "| a | b |\n|---|---|\n| 1 | 2 |", "1. one\n2. two", "- loose\n\n- list"];
    let text = "";
    for (let i = 0; i < 80; i++) text += `${blocks[i % blocks.length]}\n\n`;
    const { id } = await createDoc(base, text);
    const e = await openEditor(errors, "preview-edits", id);
    await e.click("#preview-btn");
    // The preview as a whole rendering of the editor's text would be.
    const same = () => e.evaluate(() => {
      const ed = window.collabdEditor, m = ed.markdown;
      if (!m) return null;
      const whole = document.createElement("div");
      whole.append(m.sanitize(m.DOMPurify, m.render(m.renderer(), ed.view.state.doc.toString())));
      const p = document.getElementById("preview");
      const shown = [...p.children].map((c) => (c.classList.contains("md-chunk") ? c.innerHTML : c.outerHTML)).join("");
      return { ok: shown === whole.innerHTML, chunks: p.children.length };
    });
    const check = async (what) => {
      let last;
      try {
        await until(`the preview after ${what}`, async () => { last = await same(); return last && last.ok; }, 10000);
      } catch { errors.push(`the preview after ${what} differs from the text's rendering (${JSON.stringify(last)})`); }
      return last;
    };
    const first = await check("loading");
    if (!first || first.chunks < 3) errors.push(`a long document's preview is not in chunks: ${JSON.stringify(first)}`);
    const at = (line) => e.evaluate((n) => window.collabdEditor.view.state.doc.line(n).from, line);
    const edit = (from, to, insert) => e.evaluate(([f, t, s]) => window.collabdEditor.view.dispatch({ changes: { from: f, to: t, insert: s }, userEvent: "input" }), [from, to, insert]);
    await edit(await at(100), await at(100), "typed in the middle ");
    await check("typing in one chunk");
    await edit(await at(3), await at(3), "new line\n\n- [ ] new task\n\n");
    await check("lines added near the top");
    const blank = await at(150);
    await edit(blank, blank + 1, "");
    await check("a line removed");
    await edit(await at(40), await at(40), "```\n");
    await check("a fence opened");
    await edit(await at(40), (await at(41)), "");
    await check("the fence removed");
    // The last task box in the preview ticks its own line of the text.
    await e.evaluate(() => { const b = [...document.querySelectorAll("#preview input.task")].at(-1); b.scrollIntoView(); });
    const want = await e.evaluate(() => {
      const lines = window.collabdEditor.view.state.doc.toString().split("\n");
      return lines.map((l, i) => [l, i]).filter(([l]) => /^- \[[ xX]\]/.test(l)).at(-1);
    });
    const boxes = await e.$$("#preview input.task");
    await boxes[boxes.length - 1].click();
    await until("the last box ticked its line", async () => {
      const lines = (await serverText(base, id)).split("\n");
      return want && lines[want[1]] !== want[0] && /^- \[[ xX]\]/.test(lines[want[1]]);
    }).catch(() => errors.push(`ticking the last task box did not edit line ${want && want[1]} (${want && want[0]})`));
    await check("ticking a box");
    await e.ctx.close();
  },
  // Markdown: the preview renders a document beside the text, hostile
  // markup runs nothing, a box ticked in the preview edits the text, a
  // phone gets tabs, and the view page renders for spectators.
  async markdown(errors) {
    const hostile = "# Notes\n\n- [ ] ship it\n- [x] write it\n\n| a | b |\n|---|:-:|\n| 1 | 2 |\n\n```js\nconst answer = 42; // the answer\n```\n\n" +
      "<script>window.__pwned = 1</script>\n<img src=x onerror=\"window.__pwned = 2\">\n[click](javascript:window.__pwned=3)\n" +
      "<iframe src=\"javascript:parent.__pwned=4\"></iframe>\n<a href=\"#\" onclick=\"window.__pwned=5\">x</a>\n![pic](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9ImFsZXJ0KDEpIi8+)\n";
    const { id, viewId } = await createDoc(base, hostile);
    const e = await openEditor(errors, "editor", id);
    await e.click("#preview-btn");
    await until("preview", () => e.$eval("#preview", (p) => !!p.querySelector("h1")));
    const got = await e.evaluate(() => {
      const p = document.getElementById("preview");
      return { h1: p.querySelector("h1")?.textContent, boxes: [...p.querySelectorAll("input.task")].map((b) => b.checked), table: !!p.querySelector("table td"),
        kw: p.querySelector("pre .tok-keyword")?.textContent, scripts: p.querySelectorAll("script, iframe").length,
        handlers: [...p.querySelectorAll("*")].filter((x) => [...x.attributes].some((a) => a.name.startsWith("on"))).length,
        jsLinks: [...p.querySelectorAll("a")].filter((a) => /^\s*javascript:/i.test(a.getAttribute("href") || "")).length, visible: getComputedStyle(p).display };
    });
    if (got.h1 !== "Notes" || got.boxes.join() !== "false,true" || !got.table || got.visible === "none") errors.push(`the preview shows ${JSON.stringify(got)}`);
    if (got.kw !== "const") errors.push(`code is not highlighted: ${JSON.stringify(got.kw)}`);
    if (got.scripts || got.handlers || got.jsLinks) errors.push(`hostile markup survived: ${JSON.stringify(got)}`);
    await e.click("#preview a[href^='javascript'], #preview a").catch(() => {});
    await sleep(300);
    const pwned = await e.evaluate(() => window.__pwned);
    if (pwned !== undefined) errors.push(`a hostile document ran script: __pwned = ${pwned}`);
    // Ticking the box edits the line.
    await e.click("#preview input.task");
    await until("the box ticked the text", async () => (await serverText(base, id)).includes("- [x] ship it"));
    if (shots) await e.screenshot({ path: `${shots}/markdown-preview.png` });
    // At 390 px the preview is a tab.
    const phone = await openEditor(errors, "phone", id, { width: 390, height: 844 });
    await phone.click("#preview-btn");
    await until("phone preview", () => phone.$eval("#preview", (p) => !!p.querySelector("h1") && getComputedStyle(p).display !== "none"));
    const editorHidden = await phone.$eval("#editor", (x) => getComputedStyle(x).display === "none");
    if (!editorHidden) errors.push("at 390 px the text and the preview show at once");
    await phone.click("#tab-text");
    const back = await phone.evaluate(() => [getComputedStyle(document.getElementById("editor")).display, getComputedStyle(document.getElementById("preview")).display]);
    if (back[0] === "none" || back[1] !== "none") errors.push(`the Text tab shows ${JSON.stringify(back)}`);
    if (shots) { await phone.click("#tab-preview"); await phone.screenshot({ path: `${shots}/markdown-phone.png` }); }
    // The view page renders, follows edits, and can show the plain text.
    const v = await page(errors, "viewer");
    await v.goto(`${base}/view.html#${viewId}`);
    await live(v);
    await until("rendered view", () => v.$eval("#rendered", (r) => r.querySelector("h1")?.textContent === "Notes"));
    await typeAtEnd(e, "\n## Added live\n");
    await until("the view renders the edit", () => v.$eval("#rendered", (r) => [...r.querySelectorAll("h2")].some((h) => h.textContent === "Added live")));
    if (!(await v.$eval("#rendered input.task", (b) => b.disabled))) errors.push("a spectator can tick a box");
    if ((await v.evaluate(() => window.__pwned)) !== undefined) errors.push("the view page ran a hostile document's script");
    if (shots) await v.screenshot({ path: `${shots}/markdown-view.png` });
    await v.click("#render-btn");
    const plain = await v.evaluate(() => [getComputedStyle(document.getElementById("doc")).display, getComputedStyle(document.getElementById("rendered")).display]);
    if (plain[0] === "none" || plain[1] !== "none") errors.push(`plain mode shows ${JSON.stringify(plain)}`);
    await checkCSP(errors, { e, phone, v });
    for (const p of [e, phone, v]) await p.ctx.close();
  },
  // Export: .md, .html (rendered, sanitized, styles inline), .txt and
  // print, named after the title without its Markdown marks.
  async export(errors) {
    const text = "# Meeting *notes*\n\n- [x] agenda\n\n```py\nprint('hi')\n```\n\n<script>alert(1)</script>\n";
    const { id } = await createDoc(base, text);
    const e = await openEditor(errors, "editor", id);
    const { readFile } = await import("node:fs/promises");
    const grab = async (kind) => {
      await e.click("#download");
      const [dl] = await Promise.all([e.waitForEvent("download"), e.click(`#export-menu [data-export=${kind}]`)]);
      return { name: dl.suggestedFilename(), body: await readFile(await dl.path(), "utf8") };
    };
    const md = await grab("md");
    if (md.name !== "Meeting notes.md" || md.body !== text) errors.push(`.md export: ${md.name} ${JSON.stringify(md.body)}`);
    const txt = await grab("txt");
    if (txt.name !== "Meeting notes.txt" || txt.body !== text) errors.push(`.txt export: ${txt.name}`);
    const html = await grab("html");
    if (html.name !== "Meeting notes.html" || !/<h1 data-line="0">Meeting <em>notes<\/em><\/h1>/.test(html.body) || !/<style>/.test(html.body)
      || /<script>alert/.test(html.body) || !/tok-/.test(html.body) || !/<input[^>]*checked[^>]*disabled|<input[^>]*disabled[^>]*checked/.test(html.body)) {
      errors.push(`.html export: ${html.name} ${html.body.slice(0, 3000)}`);
    }
    // The exported page opened on its own: styled, nothing runs.
    const v = await page(errors, "exported");
    await v.setContent(html.body);
    const look = await v.evaluate(() => ({ h1: getComputedStyle(document.querySelector("h1")).borderBottomStyle, scripts: document.scripts.length }));
    if (look.h1 !== "solid" || look.scripts) errors.push(`the exported page: ${JSON.stringify(look)}`);
    await v.ctx.close();
    // Print shows the rendering alone.
    await e.click("#download");
    await e.evaluate(() => { window.print = () => { window.__printed = true; }; });
    await e.click("#export-menu [data-export=print]");
    await until("print called", () => e.evaluate(() => window.__printed === true));
    await e.emulateMedia({ media: "print" });
    const shown = await e.evaluate(() => ({ print: getComputedStyle(document.getElementById("print")).display, header: getComputedStyle(document.querySelector("header")).display,
      h1: document.querySelector("#print h1")?.textContent }));
    if (shown.print === "none" || shown.header !== "none" || shown.h1 !== "Meeting notes") errors.push(`printing shows ${JSON.stringify(shown)}`);
    if (shots) await e.screenshot({ path: `${shots}/export-print.png` });
    await e.emulateMedia({ media: "screen" });
    await checkCSP(errors, { e });
    await e.ctx.close();
  },
  async history(errors) {
    const { id } = await createDoc(base, "first version");
    await timeslider(errors, id);
  },

  // A run made over HTTP by a named script is listed in the history with
  // its name; "Revert this run" takes its text out and keeps what the
  // person typed after it.
  async runrevert(errors) {
    const { id } = await createDoc(base, "people wrote this.\n");
    const r = await fetch(`${base}/api/docs/${id}/ops`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ rev: 1, op: [19, "AGENT TEXT\n"], name: "Scribe bot" }),
    });
    if (r.status !== 200) throw new Error(`POST ops: ${r.status} ${await r.text()}`);
    const { run } = await r.json();
    const a = await openEditor(errors, "a", id);
    await typeAtEnd(a, "mine");
    await converge(base, id, { a });
    await a.click("#history-btn");
    await until("the run listed", () => a.$eval("#hist-runs", (e) => !e.hidden && e.querySelectorAll("li").length === 1));
    const row = await a.$eval("#hist-runs li", (li) => [li.dataset.run, li.querySelector(".run-what").textContent]);
    if (row[0] !== run || !row[1].startsWith("Scribe bot · revision 2 · +11 −0")) errors.push(`the run is listed as ${JSON.stringify(row)}, want run ${run} by Scribe bot`);
    if (shots) await a.screenshot({ path: `${shots}/history-run.png` });
    await a.click("#hist-runs li .run-revert");
    await until("reverted", async () => (await serverText(base, id)) === "people wrote this.\nmine");
    await until("the revert shown", () => a.$eval("#hist-info", (e) => e.textContent.startsWith("Reverted the run as revision")));
    const shown = await a.evaluate(() => document.getElementById("hist-preview").shadowRoot.querySelector(".cm-content").textContent);
    if (shown !== "people wrote this.mine") errors.push(`the history shows ${JSON.stringify(shown)} after the revert`);
    await until("the revert listed", () => a.$eval("#hist-runs", (e) => e.querySelectorAll("li").length === 2));
    const top = await a.$eval("#hist-runs li .run-what", (e) => e.textContent);
    if (!/ reverted Scribe bot's run · revision \d+ · \+0 −11 · /.test(top)) errors.push(`the revert is listed as ${JSON.stringify(top)}`);
    if (shots) await a.screenshot({ path: `${shots}/history-run-reverted.png` });
    await a.click("#hist-close");
    await converge(base, id, { a });
    await checkCSP(errors, { a });
    await a.ctx.close();
  },

  // Find in history, on a phone, light and dark: a phrase typed into the
  // history page lists where it appeared and went; its buttons move the
  // timeslider there, and the preview marks the phrase.
  async historysearch(errors) {
    const { id } = await createDoc(base, "alpha beta");
    let rev = 1;
    for (const op of [[10, " needle"], [17, " x"], [10, -7, 2], [12, " Needle again"]]) {
      const r = await fetch(`${base}/api/docs/${id}/ops`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ rev, op }),
      });
      if (r.status !== 200) throw new Error(`POST ops: ${r.status} ${await r.text()}`);
      rev = (await r.json()).rev;
    }
    const a = await openEditor(errors, "a", id, { width: 390, height: 844 });
    await a.click("#history-btn");
    await until("history panel", () => a.$eval("#history", (e) => !e.hidden && e.dataset.rev === "5"));
    await a.click("#hist-q");
    await a.keyboard.type("needle", { delay: 20 });
    await a.keyboard.press("Enter");
    await until("the spans listed", () => a.$$eval("#hist-found-list li", (lis) => lis.length === 2));
    const rows = await a.$$eval("#hist-found-list li", (lis) => lis.map((li) => li.textContent));
    if (JSON.stringify(rows) !== JSON.stringify(["Appeared in revision 2Gone in revision 4", "Appeared in revision 5still in the text"])) {
      errors.push(`the spans are listed as ${JSON.stringify(rows)}`);
    }
    const info = await a.$eval("#hist-found-info", (e) => e.textContent);
    if (info !== "“needle” appeared 2 times:") errors.push(`the search is described as ${JSON.stringify(info)}`);
    const shownText = () => a.evaluate(() => document.getElementById("hist-preview").shadowRoot.querySelector(".cm-content").textContent);
    const found = () => a.evaluate(() => [...document.getElementById("hist-preview").shadowRoot.querySelectorAll(".cm-hist-found")].map((e) => e.textContent));
    await a.click("#hist-found-list button:has-text('Gone in revision 4')");
    await until("revision 4 shown", () => a.$eval("#history", (e) => e.dataset.rev === "4"));
    if ((await shownText()) !== "alpha beta x") errors.push(`revision 4 shows ${JSON.stringify(await shownText())}`);
    if ((await found()).length) errors.push(`revision 4 marks ${JSON.stringify(await found())}`);
    if (Number(await a.$eval("#hist-slider", (e) => e.value)) !== 4) errors.push("the slider is not at revision 4");
    await a.click("#hist-found-list button:has-text('Appeared in revision 2')");
    await until("revision 2 shown", () => a.$eval("#history", (e) => e.dataset.rev === "2"));
    if (JSON.stringify(await found()) !== '["needle"]') errors.push(`revision 2 marks ${JSON.stringify(await found())}`);
    const current = await a.$eval("#hist-found-list button.current", (b) => b.textContent);
    if (current !== "Appeared in revision 2") errors.push(`the current button is ${JSON.stringify(current)}`);
    await a.click("#hist-found-list button:has-text('Appeared in revision 5')");
    await until("revision 5 shown", () => a.$eval("#history", (e) => e.dataset.rev === "5"));
    if (JSON.stringify(await found()) !== '["Needle"]') errors.push(`revision 5 marks ${JSON.stringify(await found())}`);
    // A phrase never there.
    await a.fill("#hist-q", "zebra");
    await a.keyboard.press("Enter");
    await until("nothing found", () => a.$eval("#hist-found-info", (e) => e.textContent === "“zebra” is in no revision."));
    await a.fill("#hist-q", "needle");
    await a.keyboard.press("Enter");
    await until("the spans listed again", () => a.$$eval("#hist-found-list li", (lis) => lis.length === 2));
    for (const scheme of ["light", "dark"]) {
      await a.emulateMedia({ colorScheme: scheme });
      const wide = await a.evaluate(() => document.documentElement.scrollWidth);
      if (wide > 390) errors.push(`${scheme}: the history page is ${wide} px wide at 390`);
      if (shots) await a.screenshot({ path: `${shots}/history-search-390-${scheme}.png` });
    }
    await checkCSP(errors, { a });
    await a.ctx.close();
  },

  // The home page: a document from an uploaded file, the list of opened
  // documents with titles, and remove-from-list.
  async home(errors) {
    const p = await page(errors, "p");
    await p.goto(`${base}/`);
    const notes = "Upload notes 📎\nsecond line\n";
    await p.setInputFiles("#file", { name: "notes.md", mimeType: "text/markdown", buffer: Buffer.from(notes) });
    await p.waitForURL(/\/edit\.html#/);
    await live(p);
    const id = new URL(p.url()).hash.slice(1);
    if ((await editorText(p)) !== notes) errors.push(`the uploaded file became ${JSON.stringify(await editorText(p))}`);
    if ((await p.title()) !== "Upload notes 📎 · collabd") errors.push(`page title ${JSON.stringify(await p.title())}`);
    await sleep(1200); // the list takes the title a second after it settles
    await p.goto(`${base}/`);
    const items = await p.$$eval("#docs li .doc-title", (as) => as.map((a) => [a.textContent, a.getAttribute("href")]));
    if (!items.some(([t, h]) => t === "Upload notes 📎" && h.endsWith(id))) errors.push(`the home list shows ${JSON.stringify(items)}`);
    await p.click(`#docs li:has(a[href$="${id}"]) button:has-text("Remove")`);
    const left = await p.$$eval("#docs li", (lis) => lis.length);
    if (left !== 0) errors.push(`${left} documents listed after removing the only one`);
    await p.ctx.close();
  },

  // Wrong links say what is wrong and take no typing.
  async errors(errors) {
    const p = await page(errors, "p");
    await p.goto(`${base}/edit.html#00000000-0000-4000-8000-000000000000`);
    await until("not-found banner", () => p.$eval("#banner", (e) => !e.hidden && e.dataset.kind === "not-found"));
    const msg = await p.$eval("#banner", (e) => e.textContent);
    if (!/No document has this link/.test(msg)) errors.push(`unknown id says ${JSON.stringify(msg)}`);
    if (!/Create a new document/.test(msg)) errors.push("unknown id offers no way to create a document");
    await p.keyboard.press("Tab");
    await p.keyboard.type("lost?");
    if ((await editorText(p)) !== "") errors.push("the editor of an unknown document took typing");
    if (await p.evaluate(() => window.collabdEditor.view.contentDOM.contentEditable === "true")) errors.push("the editor of an unknown document is editable");
    const { viewId } = await createDoc(base, "x");
    await p.goto(`${base}/edit.html#${viewId}`); // a hash change: the page reloads itself
    await until("view-link banner", () => p.$eval("#banner", (e) => !e.hidden && e.dataset.kind === "view-link"));
    const vmsg = await p.$eval("#banner", (e) => e.textContent);
    if (!/view link/.test(vmsg)) errors.push(`view id in an edit link says ${JSON.stringify(vmsg)}`);
    await p.keyboard.press("Tab");
    await p.keyboard.type("lost?");
    if ((await editorText(p)) !== "") errors.push("the editor opened with a view id took typing");
    if (await p.evaluate(() => window.collabdEditor.view.contentDOM.contentEditable === "true")) errors.push("the editor opened with a view id is editable");
    await p.ctx.close();
  },

  // Screenshots of every page at a desktop and a phone size.
  async screenshots(errors, skip) {
    if (!shots) return skip("SCREENSHOT_DIR is not set");
    const sample = "Team notes — Tuesday\n\nAgenda\n- Launch checklist 🚀\n- Offline editing: 离线编辑 works\n- Who owns the release notes?\n\nDecisions\n1. Ship on Friday\n2. Dark mode by default follows the system\n";
    for (const [label, viewport] of [["1280x800", { width: 1280, height: 800 }], ["390x844", { width: 390, height: 844 }]]) {
      const { id, viewId } = await createDoc(base, sample);
      const home = await page(errors, "home", viewport);
      await home.goto(`${base}/edit.html#${id}`);
      await live(home);
      await home.goto(`${base}/`);
      await home.waitForSelector("#docs li");
      await home.screenshot({ path: `${shots}/home-${label}.png` });
      const a = await openEditor(errors, "a", id, viewport, "Ada"), b = await openEditor(errors, "b", id, viewport, "Grace");
      await b.click(".cm-content");
      await b.keyboard.press("Control+Home");
      for (let i = 0; i < 4; i++) await b.keyboard.press("ArrowDown");
      await b.keyboard.press("End");
      await b.keyboard.press("Shift+Home");
      await a.click(".cm-content");
      await a.keyboard.press("Control+End");
      await a.keyboard.type("3. Ada writes here", { delay: 5 });
      await until("grace's caret", () => a.$$eval(".cm-collab-caret", (e) => e.length > 0));
      await sleep(300);
      await a.screenshot({ path: `${shots}/editor-${label}.png` });
      if (viewport.width < 700) {
        await a.click("#panel-btn");
        await a.screenshot({ path: `${shots}/editor-panel-${label}.png` });
        await a.click("#panel-btn");
      }
      const v = await page(errors, "viewer", viewport);
      await v.goto(`${base}/view.html#${viewId}`);
      await until("viewer text", async () => (await viewerText(v)).includes("Ada writes here"));
      await v.screenshot({ path: `${shots}/viewer-${label}.png` });
      await a.click("#history-btn");
      await until("history panel", () => a.$eval("#history", (e) => !e.hidden && e.dataset.rev));
      await sleep(300);
      await a.focus("#hist-slider");
      await a.keyboard.press("ArrowLeft");
      await sleep(600);
      await a.screenshot({ path: `${shots}/history-${label}.png` });
      const e = await page(errors, "bad", viewport);
      await e.goto(`${base}/edit.html#${viewId}`);
      await until("banner", () => e.$eval("#banner", (b) => !b.hidden));
      await e.screenshot({ path: `${shots}/wrong-link-${label}.png` });
      // Dark mode, as the system asks for it.
      const dark = await page(errors, "dark", viewport);
      await dark.emulateMedia({ colorScheme: "dark" });
      await dark.goto(`${base}/edit.html#${id}`);
      await live(dark);
      await until("carets", () => dark.$$eval(".cm-collab-caret", (c) => c.length > 0));
      await dark.screenshot({ path: `${shots}/editor-dark-${label}.png` });
      for (const p of [home, a, b, v, e, dark]) await p.ctx.close();
    }
  },
};

// Scenarios that need a server started otherwise; they run only when named.
const extra = {
  // The workspace (docs/workspace.md), signed in by the trusted proxy's
  // header (started by TestBrowserWorkspace): Ada's documents listed,
  // found as she types, renamed and tagged, filtered by tag, trashed and
  // restored, at 390 px and in dark mode.
  async workspace(errors) {
    const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, extraHTTPHeaders: { "X-User": "ada" } });
    const p = await ctx.newPage();
    await watch(p, errors, "ada");
    const ids = [];
    for (const text of ["# Zebra crossing\nPlans for the zebra crossing on Elm street.", "Groceries: apples, bread"]) {
      const r = await ctx.request.post(`${base}/api/docs`, { data: { text } });
      if (r.status() !== 201) errors.push(`create: ${r.status()}`);
      else ids.push((await r.json()).id);
    }
    await p.goto(`${base}/`);
    await p.waitForSelector("#workspace:not([hidden])");
    const rows = () => p.$$eval("#ws-docs li .doc-title", (as) => as.map((a) => a.textContent));
    await until("two documents listed", async () => (await rows()).length === 2);
    const titles = await rows();
    if (!titles.includes("Zebra crossing") || !titles.includes("Groceries: apples, bread")) errors.push(`titles: ${titles}`);
    if (shots) await p.screenshot({ path: `${shots}/workspace-390.png`, fullPage: true });

    // Search as she types: a prefix finds it, the match is marked.
    await p.click("#ws-q");
    await p.keyboard.type("zebr", { delay: 30 });
    await until("search narrows", async () => (await rows()).join() === "Zebra crossing");
    const marks = await p.$$eval("#ws-docs mark", (ms) => ms.map((m) => m.textContent));
    if (!marks.includes("zebra")) errors.push(`marked words: ${marks}`);
    await p.fill("#ws-q", "");
    await until("all again", async () => (await rows()).length === 2);

    // Rename and tag.
    await p.click("button[aria-label='Rename or tag Zebra crossing']");
    await p.fill(".ws-edit input[name=title]", "Zoo plan");
    await p.fill(".ws-edit input[name=tags]", "animals, town");
    await p.click(".ws-edit button[type=submit]");
    await until("renamed", async () => (await rows()).includes("Zoo plan"));
    await p.click("#ws-tags button:has-text('#animals')");
    await until("tag filter", async () => (await rows()).join() === "Zoo plan");
    await p.click("#ws-tags button:has-text('#animals')");
    await until("tag filter off", async () => (await rows()).length === 2);

    // Trash and restore.
    await p.click("button[aria-label='Trash Zoo plan']");
    await until("trashed", async () => (await rows()).join() === "Groceries: apples, bread");
    await p.selectOption("#ws-scope", "trash");
    await until("in the trash", async () => (await rows()).join() === "Zoo plan");
    await p.click("button[aria-label='Restore Zoo plan']");
    await until("restored", async () => (await rows()).length === 0);
    await p.selectOption("#ws-scope", "all");
    await until("back in the list", async () => (await rows()).length === 2);

    // Who edited it last, and who is in it now: Ada writes to it, then
    // opens it in another tab; the list names her in it until she leaves.
    const w = await ctx.request.put(`${base}/api/docs/${ids[0]}/text`, { data: { text: "# Zebra crossing\nPlans for the zebra crossing on Elm street, approved." } });
    if (w.status() !== 200) errors.push(`put text: ${w.status()}`);
    const ed = await ctx.newPage();
    await watch(ed, errors, "ada's editor");
    await ed.goto(`${base}/edit.html#${ids[0]}`);
    await live(ed);
    const zoo = async () => {
      await p.reload();
      await p.waitForSelector("#ws-docs li .doc-title");
      return p.$eval("#ws-docs li:has(.doc-title:text-is('Zoo plan'))", (li) => [li.querySelector(".ws-meta").textContent, li.querySelector(".ws-present")?.textContent ?? ""]);
    };
    const [meta, here] = await until("ada in it now", async () => { const r = await zoo(); return r[1] && r[0].endsWith(" by you") ? r : null; });
    if (here !== "● ada in it now") errors.push(`the row says ${JSON.stringify(here)}, want "● ada in it now"`);
    if (!/^you · owner · edited .+ by you$/.test(meta)) errors.push(`the row's line: ${JSON.stringify(meta)}`);

    // 390 px wide without sideways scrolling, light and dark.
    for (const scheme of ["light", "dark"]) {
      await p.emulateMedia({ colorScheme: scheme });
      const wide = await p.evaluate(() => document.documentElement.scrollWidth);
      if (wide > 390) errors.push(`${scheme}: the page is ${wide} px wide at 390`);
      if (shots) await p.screenshot({ path: `${shots}/workspace-390-${scheme}.png`, fullPage: true });
    }
    await ed.close();
    await until("ada left", async () => (await zoo())[1] === "");
    await checkCSP(errors, { p });
    await ctx.close();
  },
  // With OpenID sign-in (a real provider, started by TestBrowserTeams):
  // Ada signs in through the provider's login form, creates a private
  // document, shares it with Bo, who edits it; a stranger sees the "no
  // access" page; Ada takes Bo's access away (his page says so), rotates
  // the links, and signs out.
  async teams(errors) {
    const signIn = async (p, user) => {
      await p.waitForSelector("#sign-in");
      await p.click("#sign-in");
      await p.waitForSelector("input[name=username]");
      await p.fill("input[name=username]", user);
      await p.fill("input[name=password]", "verysecure");
      await p.click("button[type=submit]");
      await p.waitForSelector("#who");
    };
    const ada = await page(errors, "ada");
    await ada.goto(`${base}/`);
    await signIn(ada, process.env.OIDC_USER1);
    if (!ada.url().startsWith(`${base}/`)) errors.push(`after sign-in ada is at ${ada.url()}`);
    const adaName = await ada.$eval("#who", (e) => e.textContent);
    if (adaName !== process.env.OIDC_USER1) errors.push(`the header names ${adaName}`);
    await ada.click("#new-empty");
    await ada.waitForURL(/\/edit\.html#/);
    await live(ada);
    await typeAtEnd(ada, "Plans for Q3");
    const id = new URL(ada.url()).hash.slice(1);

    // A stranger, not signed in: the page says the document is private.
    const stranger = await page(errors, "stranger");
    await stranger.goto(`${base}/edit.html#${id}`);
    await stranger.waitForSelector("#banner[data-kind=no-access]:not([hidden])");
    const words = await stranger.$eval("#banner", (e) => e.textContent);
    if (!words.includes("private") || !(await stranger.$("#banner a[href^='/api/signin']"))) errors.push(`the stranger's page says: ${words}`);
    if ((await stranger.$eval("#title", (e) => e.textContent)) !== "No access") errors.push("the stranger's title is not No access");

    // Ada shares it with Bo.
    // The side panel is open at this width.
    await ada.waitForSelector("#share-btn:not([hidden])");
    await ada.click("#share-btn");
    await ada.waitForSelector("#share-dialog[open]");
    if ((await ada.$eval("#share-link", (e) => e.value)) !== "none") errors.push("a new document's links are not private");
    await ada.fill("#share-who", process.env.OIDC_USER2);
    await ada.selectOption(".add-member select", "edit");
    await ada.click(".add-member button[type=submit]");
    await ada.click("#share-save");
    await ada.waitForFunction(() => document.getElementById("share-status").textContent === "Saved.");
    await ada.click("#share-close");

    const bo = await page(errors, "bo");
    await bo.goto(`${base}/`);
    await signIn(bo, process.env.OIDC_USER2);
    await bo.goto(`${base}/edit.html#${id}`);
    await live(bo);
    await typeAtEnd(bo, " (Bo was here)");
    await until("Bo's edit at Ada's", async () => (await editorText(ada)).includes("(Bo was here)"));
    if (await bo.$("#share-btn:not([hidden])")) errors.push("Bo, an editor, is offered the share dialog");

    // Ada makes Bo a viewer: his editor stops, says so, and offers the
    // read-only page, which works.
    await ada.click("#share-btn");
    await ada.waitForSelector("#share-dialog[open]");
    await ada.selectOption(`#share-members li[data-member="${process.env.OIDC_USER2}"] select`, "view");
    await ada.click("#share-save");
    await ada.waitForFunction(() => document.getElementById("share-status").textContent === "Saved.");
    await ada.click("#share-close");
    await bo.waitForSelector("#banner[data-kind=no-access]:not([hidden])");
    const boWords = await bo.$eval("#banner", (e) => e.textContent);
    if (!boWords.includes("cannot open")) errors.push(`Bo's page after losing edit access says: ${boWords}`);
    await bo.waitForSelector("#open-read-only");
    await bo.click("#open-read-only");
    await bo.waitForURL(/\/view\.html#/);
    await until("Bo's read-only page", async () => (await viewerText(bo)).includes("(Bo was here)"));
    // The edit link, opened again by a viewer, says so at once (no endless
    // reconnecting).
    await bo.goto(`${base}/edit.html#${id}`);
    await bo.waitForSelector("#banner[data-kind=no-access]:not([hidden]) #open-read-only");

    // New links: Ada's page follows them; the old edit link is dead.
    await ada.click("#share-btn");
    await ada.waitForSelector("#share-dialog[open]");
    ada.once("dialog", (d) => d.accept());
    await ada.click("#share-rotate");
    await ada.waitForURL((u) => u.hash && u.hash.slice(1) !== id, { timeout: 15000 });
    await live(ada);
    const newId = new URL(ada.url()).hash.slice(1);
    if (!(await editorText(ada)).startsWith("Plans for Q3")) errors.push(`after rotation ada's text is ${JSON.stringify(await editorText(ada))}`);
    const old = await fetch(`${base}/api/docs/${id}`);
    if (old.status !== 404) errors.push(`the old edit id answers ${old.status}`);
    if (newId === id) errors.push("the edit id did not change");

    // Sign out.
    await ada.goto(`${base}/`);
    await ada.click("#sign-out");
    await ada.waitForSelector("#sign-in");
    await checkCSP(errors, { ada, bo, stranger });
    if (shots) {
      await stranger.screenshot({ path: `${shots}/teams-no-access.png` });
    }
    for (const p of [ada, bo, stranger]) await p.ctx.close();
  },
  // With -create-token (CREATE_TOKEN here), the home page asks for the
  // token on the first create, says so when it is wrong, and remembers it.
  async createtoken(errors) {
    const token = process.env.CREATE_TOKEN;
    const p = await page(errors, "p");
    await p.goto(`${base}/`);
    await p.click("#new-empty");
    await p.waitForSelector("#token-form:not([hidden])");
    await p.fill("#create-token", "not the token");
    await p.click("#token-form button[type=submit]");
    await p.waitForFunction(() => document.getElementById("create-status").textContent.includes("did not accept"));
    if (!p.url().endsWith("/")) errors.push(`a wrong token left the home page for ${p.url()}`);
    await p.fill("#create-token", token);
    await p.click("#token-form button[type=submit]");
    await p.waitForURL(/\/edit\.html#/);
    await live(p);
    // Remembered: the next create asks nothing.
    await p.goto(`${base}/`);
    await p.fill("#text", "second");
    await p.click("#create button[type=submit]");
    await p.waitForURL(/\/edit\.html#/);
    await live(p);
    if ((await editorText(p)) !== "second") errors.push(`the second document holds ${JSON.stringify(await editorText(p))}`);
    await checkCSP(errors, { p });
    await p.ctx.close();
  },
};

try {
  const all = { ...scenarios, ...Object.fromEntries(Object.entries(extra).filter(([name]) => only.has(name))) };
  for (const [name, fn] of Object.entries(all)) {
    if (only.size && !only.has(name)) continue;
    const errors = [];
    let skip = "";
    const t0 = Date.now();
    try {
      await fn(errors, (why) => { skip = why; });
    } catch (err) {
      errors.push(`${err.stack || err}${err.texts ? `\ntexts: ${JSON.stringify(err.texts).slice(0, 2000)}` : ""}`);
    }
    process.stdout.write(`${JSON.stringify({ scenario: name, errors, skip, ms: Date.now() - t0 })}\n`);
  }
} finally {
  await browser.close();
  stdin.close();
}
