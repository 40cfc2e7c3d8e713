// Builds dist/loader.js: the widget and socket.io-client in one minified IIFE (no globals such
// as `io` leak into the host page, no AMD define). dist/ is committed so the hub needs no Node.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";

const outdir = process.argv[2] || "dist"; // tests build into a temp dir to compare with dist/
mkdirSync(outdir, { recursive: true });

const sio = JSON.parse(readFileSync("node_modules/socket.io-client/package.json", "utf8"));
const banner = `/*! contacthub visitor widget | AGPL-3.0-or-later
 * Bundles Socket.IO client v${sio.version} (socket.io-client, engine.io-client, engine.io-parser,
 * socket.io-parser, @socket.io/component-emitter): (c) 2014-present Guillermo Rauch and
 * Socket.IO contributors, released under the MIT License; see THIRD_PARTY_LICENSES.txt. */`;

await build({
  entryPoints: ["src/loader.js"],
  outfile: `${outdir}/loader.js`,
  bundle: true,
  minify: true,
  format: "iife",
  platform: "browser",
  target: ["chrome100", "firefox100", "safari15"],
  loader: { ".css": "text" },
  banner: { js: banner },
  legalComments: "none",
  logLevel: "warning",
});
const license = readFileSync("node_modules/socket.io-client/LICENSE", "utf8");
const notice = `Third-party code bundled in loader.js\n\nsocket.io-client ${sio.version} and its dependencies engine.io-client, engine.io-parser,\nsocket.io-parser, @socket.io/component-emitter (https://github.com/socketio/socket.io):\n\n${license}`;
writeFileSync(`${outdir}/THIRD_PARTY_LICENSES.txt`, notice);
copyFileSync("src/demo.html", `${outdir}/demo.html`);
