// sw.js: the service worker that lets collabd's pages load without the
// server (an editor reloaded while offline still shows its text and the
// edits waiting in IndexedDB). Network first, so a running server always
// serves the current files; the cache is the fallback. The API is never
// cached.
const CACHE = "collabd-pages-v2";
const PAGES = ["/", "/index.html", "/edit.html", "/view.html", "/app.css", "/favicon.svg"];

// The pages' bundles and their chunks (loaded on demand: the Markdown
// preview, code languages) are named by their content (the pages load
// /dist/edit-HASH.js); dist/manifest.json lists them all.
self.addEventListener("install", (ev) => {
  ev.waitUntil((async () => {
    const c = await caches.open(CACHE);
    await c.addAll(PAGES);
    try { await c.addAll(await (await fetch("/dist/manifest.json", { cache: "no-store" })).json()); } catch { /* chunks are cached as used */ }
    await self.skipWaiting();
  })());
});

const cacheable = (p) => PAGES.includes(p) || (p.startsWith("/dist/") && p.endsWith(".js"));

self.addEventListener("activate", (ev) => {
  ev.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener("fetch", (ev) => {
  const url = new URL(ev.request.url);
  if (ev.request.method !== "GET" || url.origin !== location.origin || !cacheable(url.pathname)) return;
  ev.respondWith((async () => {
    try {
      const resp = await fetch(ev.request);
      if (resp.ok) {
        const copy = resp.clone();
        caches.open(CACHE).then((c) => c.put(url.pathname, copy));
      }
      return resp;
    } catch (err) {
      const hit = await caches.match(url.pathname);
      if (hit) return hit;
      throw err;
    }
  })());
});
