// Builds the demo page (client/demo) into dist/demo: the SDK and the page
// bundled by esbuild into one ES module, and index.html beside it. Run by
// `npm run build` (and so by `npm install`); the output is not committed.
import { build } from "esbuild";
import { copyFile, mkdir } from "node:fs/promises";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));
const out = `${root}dist/demo`;

await mkdir(out, { recursive: true });
await build({
  entryPoints: [`${root}client/demo/app.ts`],
  outfile: `${out}/app.js`,
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  minify: true,
  sourcemap: true,
  legalComments: "none",
  logLevel: "warning",
});
await copyFile(`${root}client/demo/index.html`, `${out}/index.html`);
