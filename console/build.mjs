// Rebuilds the console: TypeScript from the contract (buf generate with
// protoc-gen-es, into src/gen), a type check (tsc), and the bundle (esbuild)
// into dist/, with a gzipped copy of each file for the server to send to
// browsers that accept it. The output is committed and embedded in the
// sessiond binary (server/src/console.rs), so that building sessiond needs
// no Node; CI runs this and fails when dist/ or src/gen/ differ from the
// commit. Deterministic for the versions in package-lock.json and the same
// Node (whose zlib makes the .gz files).
//
// Usage (from anywhere): npm ci --prefix console && node console/build.mjs

import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync, constants } from "node:zlib";
import * as esbuild from "esbuild";

const root = dirname(fileURLToPath(import.meta.url));
const bin = (name) => join(root, "node_modules", ".bin", name);
const run = (program, args) => execFileSync(program, args, { cwd: root, stdio: "inherit" });

run(bin("buf"), ["generate"]);
run(bin("tsc"), ["--noEmit", "-p", "."]);

const dist = join(root, "dist");
rmSync(dist, { recursive: true, force: true });
mkdirSync(dist);
const common = { bundle: true, minify: true, legalComments: "none", charset: "utf8", logLevel: "warning" };
await esbuild.build({
  ...common,
  entryPoints: [join(root, "src", "main.ts")],
  outfile: join(dist, "app.js"),
  format: "esm",
  target: "es2020",
});
await esbuild.build({ ...common, entryPoints: [join(root, "src", "style.css")], outfile: join(dist, "app.css") });
copyFileSync(join(root, "index.html"), join(dist, "index.html"));

let total = 0;
for (const name of ["index.html", "app.js", "app.css"]) {
  const raw = readFileSync(join(dist, name));
  const gz = gzipSync(raw, { level: constants.Z_BEST_COMPRESSION });
  writeFileSync(join(dist, `${name}.gz`), gz);
  total += gz.length;
  console.log(`dist/${name}: ${raw.length} bytes, ${gz.length} gzipped`);
}
console.log(`the bundle: ${total} bytes gzipped`);
