// build.mjs [OUTDIR]: bundles the frontend's entry points with esbuild into
// OUTDIR (default ../static/dist), which collabd embeds. The output depends
// only on these sources and the versions in package-lock.json (no
// timestamps, no absolute paths), so frontend/build_test.go can rebuild it
// into a temporary directory and compare it with the committed files.
import * as esbuild from "esbuild";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const outdir = path.resolve(process.argv[2] || path.join(here, "..", "static", "dist"));

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
