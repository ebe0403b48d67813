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

await esbuild.build({
  absWorkingDir: here,
  entryPoints: ["edit.js", "view.js", "home.js"],
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2022"],
  outdir,
  legalComments: "eof",
  charset: "utf8",
  logLevel: "warning",
});
