// Starts what the stand-in tests talk to: a throwaway redis-server and `agentidp-dev backends` on
// free loopback ports, killed when the test file ends. With STANDINS_HRANA_URL, STANDINS_UPSTASH_URL
// and STANDINS_TOKEN set, it uses stand-ins someone else started instead.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function listening(port) {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.on("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}

async function waitForPort(port, child, what) {
  for (let i = 0; i < 400; i++) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    if (await listening(port)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${what} did not listen on port ${port}`);
}

function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once("exit", resolve);
    child.kill("SIGTERM");
  });
}

/** The stand-ins' URLs and token, and `stop()` to end whatever this started. */
export async function startStandins() {
  const env = process.env;
  if (env.STANDINS_HRANA_URL && env.STANDINS_UPSTASH_URL) {
    return {
      hranaUrl: env.STANDINS_HRANA_URL,
      upstashUrl: env.STANDINS_UPSTASH_URL,
      token: env.STANDINS_TOKEN ?? "",
      stop: async () => {},
    };
  }
  const [redisPort, hranaPort, upstashPort] = [await freePort(), await freePort(), await freePort()];
  const dataDir = mkdtempSync(join(tmpdir(), "agentidp-standins-"));
  const token = "standins-test-token";
  const redis = spawn(
    "redis-server",
    ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  const children = [redis];
  const stopAll = async () => {
    await Promise.all(children.reverse().map(stop));
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await waitForPort(redisPort, redis, "redis-server");
    const binary = env.AGENTIDP_DEV_BIN ?? join(root, "target", "debug", "agentidp-dev");
    const backends = spawn(
      binary,
      [
        "backends",
        "--data-dir", dataDir,
        "--hrana-listen", `127.0.0.1:${hranaPort}`,
        "--upstash-listen", `127.0.0.1:${upstashPort}`,
        "--redis-url", `redis://127.0.0.1:${redisPort}`,
        "--token", token,
      ],
      { stdio: ["ignore", "ignore", "inherit"], env: { ...env, AGENTIDP_LOG: "warn" } },
    );
    children.push(backends);
    await waitForPort(hranaPort, backends, "the Hrana stand-in");
    await waitForPort(upstashPort, backends, "the Upstash stand-in");
  } catch (e) {
    await stopAll();
    throw e;
  }
  return {
    hranaUrl: `http://127.0.0.1:${hranaPort}`,
    upstashUrl: `http://127.0.0.1:${upstashPort}`,
    token,
    stop: stopAll,
  };
}
