// build.mjs [OUTDIR [SDKDIR]]: bundles the frontend's entry points with
// esbuild into OUTDIR (default ../static/dist), and the client SDK
// (sdk/*.js, with the hand-written ../sdk/*.d.ts) into SDKDIR (default
// ../static/sdk), both of which collabd embeds. The output depends only on
// these sources and the versions in package-lock.json (no timestamps, no
// absolute paths), so frontend/build_test.go can rebuild it into
// temporary directories and compare it with the committed files.
import * as esbuild from "esbuild";
import { fileURLToPath } from "node:url";
import path from "node:path";
import fs from "node:fs";

const here = path.dirname(fileURLToPath(import.meta.url));
const outdir = path.resolve(process.argv[2] || path.join(here, "..", "static", "dist"));
const sdkdir = path.resolve(process.argv[3] || path.join(here, "..", "static", "sdk"));

// Each page is its own bundle, so that a page loads in one request;
// what a page loads only when needed (the Markdown renderer, the
// languages of code blocks) goes into chunks/. Every file is named by
// its content (edit-HASH.js), so that browsers cache it as immutable;
// entries.json maps a page's bundle to its name (collabd serves the
// fixed name /dist/edit.js as an alias of it), and the pages are
// rewritten to load the hashed names into root/ (below). manifest.json
// lists every bundle and chunk, for the service worker to keep.
import { readdirSync, rmSync, writeFileSync } from "node:fs";
import zlib from "node:zlib";

rmSync(outdir, { recursive: true, force: true }); // no stale chunks left behind

const entries = {};
for (const entry of ["edit.js", "view.js", "home.js"]) {
  const result = await esbuild.build({
    absWorkingDir: here,
    entryPoints: [entry],
    bundle: true,
    splitting: true,
    entryNames: "[name]-[hash]",
    chunkNames: "chunks/[name]-[hash]",
    metafile: true,
    minify: true,
    format: "esm",
    target: ["es2022"],
    outdir,
    legalComments: "eof",
    charset: "utf8",
    logLevel: "warning",
  });
  for (const [out, meta] of Object.entries(result.metafile.outputs)) {
    if (meta.entryPoint === entry) entries[entry] = path.relative(outdir, path.resolve(here, out)).split(path.sep).join("/");
  }
}
writeFileSync(path.join(outdir, "entries.json"), JSON.stringify(entries, Object.keys(entries).sort()) + "\n");
const files = readdirSync(outdir, { recursive: true, withFileTypes: true })
  .filter((d) => d.isFile() && d.name.endsWith(".js"))
  .map((d) => path.relative(outdir, path.join(d.parentPath ?? d.path, d.name)).split(path.sep).join("/"))
  .sort();
writeFileSync(path.join(outdir, "manifest.json"), JSON.stringify(files.map((f) => `/dist/${f}`)) + "\n");

// root/ holds what collabd serves in place of static/'s top-level files:
// the pages, with their <script> pointing at the hashed bundles, and the
// compressed copies of the others (app.css, sw.js, favicon.svg), which
// keep their own bytes and names.
const staticdir = path.join(here, "..", "static");
const rootdir = path.join(outdir, "root");
fs.mkdirSync(rootdir, { recursive: true });
for (const f of readdirSync(staticdir).sort()) {
  if (!fs.statSync(path.join(staticdir, f)).isFile()) continue;
  let b = fs.readFileSync(path.join(staticdir, f));
  if (f.endsWith(".html")) {
    let html = b.toString("utf8");
    for (const [entry, hashed] of Object.entries(entries)) html = html.replaceAll(`"/dist/${entry}"`, `"/dist/${hashed}"`);
    b = Buffer.from(html, "utf8");
    writeFileSync(path.join(rootdir, f), b);
  }
  precompress(path.join(rootdir, f), b);
}
for (const f of readdirSync(outdir, { recursive: true, withFileTypes: true })) {
  const p = path.join(f.parentPath ?? f.path, f.name);
  if (f.isFile() && !p.startsWith(rootdir + path.sep)) precompress(p, fs.readFileSync(p));
}

// precompress writes FILE.br and FILE.gz (the most each format
// compresses, once, here rather than in every server) for text worth
// compressing, each only when smaller than the file itself. Both outputs
// depend only on the input and Node's zlib (gzip's header carries no
// time), so the build stays reproducible.
function precompress(file, b) {
  if (!/\.(js|mjs|ts|json|html|css|svg|md|txt)$/.test(file)) return;
  const br = zlib.brotliCompressSync(b, { params: {
    [zlib.constants.BROTLI_PARAM_QUALITY]: zlib.constants.BROTLI_MAX_QUALITY,
    [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT,
    [zlib.constants.BROTLI_PARAM_SIZE_HINT]: b.length } });
  const gz = zlib.gzipSync(b, { level: 9 });
  if (br.length < b.length) writeFileSync(file + ".br", br);
  if (gz.length < b.length) writeFileSync(file + ".gz", gz);
}

// The SDK: collabd.mjs holds the core; each binding is a module of its
// own that imports the core as "./collabd.mjs" (so that a page loading
// two of them shares one core), and the editor it binds from the
// application (CodeMirror's packages are peer dependencies). Not
// minified: developers read what they embed.
const core = "./collabd.js";
await esbuild.build({
  absWorkingDir: here,
  entryPoints: { collabd: "sdk/collabd.js", textarea: "sdk/textarea.js", codemirror: "sdk/codemirror.js", monaco: "sdk/monaco.js" },
  bundle: true,
  format: "esm",
  target: ["es2022"],
  outdir: sdkdir,
  outExtension: { ".js": ".mjs" },
  legalComments: "eof",
  charset: "utf8",
  logLevel: "warning",
  plugins: [{
    name: "sdk-externals",
    setup(b) {
      b.onResolve({ filter: /^@codemirror\// }, (a) => ({ path: a.path, external: true }));
      // A binding's import of the core stays an import of the built core.
      b.onResolve({ filter: /^\.\/collabd\.js$/ }, (a) => (a.importer.endsWith(path.join("sdk", "collabd.js")) ? undefined
        : { path: "./collabd.mjs", external: true }));
    },
  }],
});
// The hand-written types, the npm package.json and README: static/sdk is
// the npm package as well as what collabd serves at /sdk/.
for (const f of fs.readdirSync(path.join(here, "..", "sdk"))) {
  if (f.endsWith(".d.ts") || f === "package.json" || f === "README.md") fs.copyFileSync(path.join(here, "..", "sdk", f), path.join(sdkdir, f));
}
// Served at /sdk/ as well: compressed next to each file (package.json's
// "files" keeps the .br and .gz out of the npm package).
for (const f of readdirSync(sdkdir).sort()) {
  if (!f.endsWith(".br") && !f.endsWith(".gz")) precompress(path.join(sdkdir, f), fs.readFileSync(path.join(sdkdir, f)));
}
