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
// languages of code blocks) goes into chunks/, named by their content.
// manifest.json lists every file, for the service worker to keep.
import { readdirSync, rmSync, writeFileSync } from "node:fs";

rmSync(outdir, { recursive: true, force: true }); // no stale chunks left behind

for (const entry of ["edit.js", "view.js", "home.js"]) {
  await esbuild.build({
    absWorkingDir: here,
    entryPoints: [entry],
    bundle: true,
    splitting: true,
    chunkNames: "chunks/[name]-[hash]",
    minify: true,
    format: "esm",
    target: ["es2022"],
    outdir,
    legalComments: "eof",
    charset: "utf8",
    logLevel: "warning",
  });
}
const files = readdirSync(outdir, { recursive: true, withFileTypes: true })
  .filter((d) => d.isFile() && d.name.endsWith(".js"))
  .map((d) => path.relative(outdir, path.join(d.parentPath ?? d.path, d.name)).split(path.sep).join("/"))
  .sort();
writeFileSync(path.join(outdir, "manifest.json"), JSON.stringify(files.map((f) => `/dist/${f}`)) + "\n");

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
