#!/usr/bin/env node
// Runs the built Cloudflare Workers in workerd, in-process through miniflare (the library that
// `wrangler dev` itself drives), for the edge end-to-end tests (scripts/test-edge.sh).
//
//   node tests/edge/workers.mjs --vars FILE [--host 127.0.0.1] [--deadline 120] FUNCTION...
//
// --deadline: seconds each Worker gets from spawning workerd to its first 200.
//
// For each FUNCTION, one after the other, it loads the `main` that wrangler.toml's [env.FUNCTION]
// deploys (functions/FUNCTION/build/index.js and its wasm, as built by scripts/build-edge.sh) with
// wrangler.toml's compatibility date, binds every NAME=VALUE line of FILE as a text var (what
// `wrangler dev --var` and `vars` do), listens on a loopback port the kernel picks, and waits for
// GET /health to answer 200. GET /cdn-cgi/handler/scheduled on a Worker runs its scheduled entry
// point (the webhooks Worker's Cron Trigger dispatcher). It prints one line per Worker on stdout:
//
//   ready FUNCTION URL COLD_MS       (COLD_MS: workerd spawned to first 200 on /health)
//
// then `all ready`, and serves until SIGTERM/SIGINT (or until its parent exits), disposing the
// workerd processes on the way out. Any failure prints the reason to stderr and exits 1.
//
// Why not `wrangler dev` (wrangler stays the deploy tool, pinned): five `wrangler dev` processes in
// one project all persist to its .wrangler/state, so their workerd processes open the same SQLite
// file (.wrangler/state/v3/cache/miniflare-CacheObject/metadata.sqlite). In a fresh clone that file
// does not exist yet; the workerd processes create it at the same moment, and one that meets the
// other's lock aborts ("SQLite failed; database is locked: SQLITE_BUSY", printed only at wrangler's
// debug log level), which wrangler reports as "The Workers runtime failed to start". Once the file
// exists, later runs pass: a first-run-only failure. (Its "The file src changed, restarting
// build..." is not a restart: with a custom `build`, wrangler's first bundle always comes from its
// file watcher's `ready` event.) wrangler dev also runs two workerd processes per Worker (a proxy
// and the Worker) and state under ~/.config/.wrangler. Here: one workerd per Worker with its own
// temporary state, no watcher or build, no wrangler state, started one at a time on kernel-chosen
// ports, with bounded waits.
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Log, LogLevel, Miniflare } from "miniflare";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

function usage(message) {
  console.error(`workers.mjs: ${message}`);
  console.error(
    "usage: node tests/edge/workers.mjs --vars FILE [--host H] [--deadline S] FUNCTION...",
  );
  process.exit(2);
}

const args = process.argv.slice(2);
const options = { host: "127.0.0.1", deadline: 120, vars: undefined };
const functions = [];
while (args.length) {
  const arg = args.shift();
  if (arg === "--vars" || arg === "--host" || arg === "--deadline") {
    if (!args.length) usage(`${arg} needs a value`);
    options[arg.slice(2)] = args.shift();
  } else if (arg.startsWith("--")) {
    usage(`unknown option ${arg}`);
  } else {
    functions.push(arg);
  }
}
if (!options.vars) usage("--vars FILE is required");
if (!functions.length) usage("name at least one function");
const deadlineMs = Number(options.deadline) * 1000;
if (!(deadlineMs > 0)) usage("--deadline must be a positive number of seconds");

// NAME=VALUE lines, the same file the wasmtime side turns into --env NAME=VALUE.
function readVars(file) {
  const vars = {};
  for (const line of readFileSync(file, "utf8").split("\n")) {
    if (!line.trim() || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) throw new Error(`${file}: not NAME=VALUE: ${line}`);
    vars[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return vars;
}

// The few wrangler.toml keys a local run needs, read from the deploy configuration itself so the
// two cannot drift: top-level compatibility_date / compatibility_flags and each [env.X] main.
function readWranglerToml(file) {
  const config = { compatibilityFlags: [], main: {} };
  let section = "";
  const string = (value) => JSON.parse(value.trim());
  for (const raw of readFileSync(file, "utf8").split("\n")) {
    const line = raw.trim();
    const header = line.match(/^\[([^\]]+)\]$/);
    if (header) {
      section = header[1];
      continue;
    }
    const kv = line.match(/^([A-Za-z_]+)\s*=\s*(.+)$/);
    if (!kv) continue;
    const [, key, value] = kv;
    if (section === "" && key === "compatibility_date") config.compatibilityDate = string(value);
    if (section === "" && key === "compatibility_flags") {
      config.compatibilityFlags = JSON.parse(value);
    }
    const env = section.match(/^env\.([A-Za-z0-9_-]+)$/);
    if (env && key === "main") config.main[env[1]] = string(value);
  }
  if (!config.compatibilityDate) throw new Error(`${file}: no top-level compatibility_date`);
  return config;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// First 200 on URL, retrying refused connections and non-200 answers until the deadline.
async function waitHealthy(url, deadline) {
  let last = "no attempt";
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
      await response.arrayBuffer();
      if (response.status === 200) return;
      last = `HTTP ${response.status}`;
    } catch (error) {
      last = String(error?.cause?.code ?? error?.message ?? error);
    }
    await sleep(50);
  }
  throw new Error(`${url} did not answer 200 before the deadline (last: ${last})`);
}

const running = [];
let stopping = false;
async function stop(code) {
  if (stopping) return;
  stopping = true;
  await Promise.allSettled(running.map((mf) => mf.dispose()));
  process.exit(code);
}
process.on("SIGTERM", () => void stop(0));
process.on("SIGINT", () => void stop(0));
// Started as a child of the test script: never outlive it, whatever killed it.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) void stop(0);
}, 1000).unref();

async function start(name, wrangler, vars) {
  const main = wrangler.main[name];
  if (!main) throw new Error(`wrangler.toml has no [env.${name}] main`);
  const scriptPath = path.join(root, main);
  try {
    readFileSync(scriptPath);
  } catch {
    throw new Error(`${main} is missing (bash scripts/build-edge.sh workers ${name})`);
  }
  console.log(`starting ${name} (${main})`);
  const started = Date.now();
  const deadline = started + deadlineMs;
  const mf = new Miniflare({
    name: `agentidp-${name}`,
    host: options.host,
    port: 0,
    modules: true,
    scriptPath,
    modulesRoot: path.dirname(scriptPath),
    modulesRules: [{ type: "CompiledWasm", include: ["**/*.wasm"] }],
    compatibilityDate: wrangler.compatibilityDate,
    compatibilityFlags: wrangler.compatibilityFlags,
    bindings: vars,
    // The fallback `request.cf` object, instead of fetching (and caching) Cloudflare's.
    cf: false,
    // GET /cdn-cgi/handler/scheduled runs the Worker's scheduled (Cron Trigger) entry point, as
    // `wrangler dev --test-scheduled` does: the scenario drives the webhooks dispatcher through it.
    unsafeTriggerHandlers: true,
    log: new Log(LogLevel.WARN),
  });
  running.push(mf);
  const url = new URL(await Promise.race([
    mf.ready,
    sleep(Math.max(0, deadline - Date.now())).then(() => {
      throw new Error(`workerd for ${name} did not start listening before the deadline`);
    }),
  ]));
  await waitHealthy(new URL("/health", url), deadline);
  const base = url.origin;
  console.log(`ready ${name} ${base} ${Date.now() - started}`);
}

try {
  const wrangler = readWranglerToml(path.join(root, "wrangler.toml"));
  const vars = readVars(options.vars);
  // One at a time: each workerd compiles its Worker's wasm on start, and a 2-core machine gains
  // nothing from racing five of them.
  for (const name of functions) await start(name, wrangler, vars);
  console.log("all ready");
} catch (error) {
  console.error(`workers.mjs: ${error?.stack ?? error}`);
  await stop(1);
}
