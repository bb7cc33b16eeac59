// The Upstash stand-in (`agentidp-dev backends`, REST over a real Redis) driven by the official
// @upstash/redis client (base64 responses, its default) and by raw REST where the client hides it.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { Redis } from "@upstash/redis";

import { startStandins } from "./harness.mjs";

let standins;
let redis;

before(async () => {
  standins = await startStandins();
  redis = new Redis({
    url: standins.upstashUrl,
    token: standins.token,
    enableTelemetry: false,
    retry: false,
  });
});

after(async () => {
  await standins?.stop();
});

/** A raw REST call, as curl would make it. */
async function rest(path, { body, token = standins.token, method = "POST", headers = {} } = {}) {
  const response = await fetch(`${standins.upstashUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: response.status, json: await response.json() };
}

describe("strings", () => {
  it("set and get, with ex and nx", async () => {
    assert.equal(await redis.set("s:greeting", "héllo ✓", { ex: 100 }), "OK");
    assert.equal(await redis.get("s:greeting"), "héllo ✓");
    const ttl = await redis.ttl("s:greeting");
    assert.ok(ttl > 90 && ttl <= 100, `ttl ${ttl}`);
    assert.equal(await redis.set("s:greeting", "other", { nx: true }), null);
    assert.equal(await redis.set("s:fresh", "new", { nx: true, px: 60000 }), "OK");
    assert.equal(await redis.get("s:greeting"), "héllo ✓");
    assert.equal(await redis.get("s:missing"), null);
  });

  it("values that look like replies survive base64 as they are", async () => {
    await redis.set("s:ok", "OK");
    await redis.set("s:pong", "PONG");
    assert.equal(await redis.get("s:ok"), "OK");
    assert.equal(await redis.get("s:pong"), "PONG");
    assert.equal(await redis.ping(), "PONG");
  });

  it("mget", async () => {
    await redis.set("m:a", "alpha");
    await redis.set("m:b", { nested: [1, 2] });
    assert.deepEqual(await redis.mget("m:a", "m:missing", "m:b"), [
      "alpha",
      null,
      { nested: [1, 2] },
    ]);
  });

  it("incr, expire, pexpire and ttl", async () => {
    assert.equal(await redis.incr("c:hits"), 1);
    assert.equal(await redis.incr("c:hits"), 2);
    assert.equal(await redis.ttl("c:hits"), -1);
    assert.equal(await redis.expire("c:hits", 30), 1);
    const ttl = await redis.ttl("c:hits");
    assert.ok(ttl > 0 && ttl <= 30, `ttl ${ttl}`);
    assert.equal(await redis.pexpire("c:hits", 5000), 1);
    assert.ok((await redis.pttl("c:hits")) <= 5000);
    assert.equal(await redis.expire("c:nothing", 30), 0);
  });
});

describe("sorted sets", () => {
  it("zadd, zrange, zremrangebyscore and zcard", async () => {
    assert.equal(
      await redis.zadd("z:window", { score: 1, member: "a" }, { score: 2, member: "b" }, { score: 3, member: "c" }),
      3,
    );
    assert.deepEqual(await redis.zrange("z:window", 0, -1), ["a", "b", "c"]);
    assert.deepEqual(await redis.zrange("z:window", 0, 0, { withScores: true }), ["a", 1]);
    assert.equal(await redis.zremrangebyscore("z:window", 0, 2), 2);
    assert.equal(await redis.zcard("z:window"), 1);
    assert.deepEqual(await redis.zrange("z:window", 0, -1), ["c"]);
  });
});

describe("pipeline and transaction", () => {
  it("pipeline returns each command's result in order", async () => {
    const p = redis.pipeline();
    p.set("p:k", "v");
    p.incr("p:n");
    p.incr("p:n");
    p.get("p:k");
    p.zadd("p:z", { score: 5, member: "m" });
    assert.deepEqual(await p.exec(), ["OK", 1, 2, "v", 1]);
  });

  it("pipeline reports a failing command without hiding the others", async () => {
    const p = redis.pipeline();
    p.set("p:text", "not a number");
    p.incr("p:text");
    p.get("p:text");
    const results = await p.exec({ keepErrors: true });
    assert.equal(results[0].result, "OK");
    assert.match(results[1].error, /not an integer/);
    assert.equal(results[2].result, "not a number");
  });

  it("multi runs as one transaction", async () => {
    const tx = redis.multi();
    tx.set("t:balance", 100);
    tx.decrby("t:balance", 30);
    tx.get("t:balance");
    assert.deepEqual(await tx.exec(), ["OK", 70, 70]);
  });

  it("multi-exec is a real MULTI/EXEC: a command Redis refuses to queue discards all", async () => {
    const { status, json } = await rest("/multi-exec", {
      body: [["SET", "t:never", "1"], ["NOSUCHCOMMAND", "x"]],
    });
    assert.equal(status, 400);
    assert.match(json.error, /unknown command/i);
    assert.equal(await redis.get("t:never"), null);
  });

  it("multi-exec keeps running after a command fails at run time, as Redis does", async () => {
    const { status, json } = await rest("/multi-exec", {
      body: [["SET", "t:s", "x"], ["INCR", "t:s"], ["SET", "t:after", "1"]],
    });
    assert.equal(status, 200);
    assert.deepEqual(json[0], { result: "OK" });
    assert.match(json[1].error, /not an integer/);
    assert.deepEqual(json[2], { result: "OK" });
  });
});

describe("scripts", () => {
  const script = "return redis.call('INCRBY', KEYS[1], ARGV[1])";

  it("eval", async () => {
    assert.equal(await redis.eval(script, ["sc:counter"], ["5"]), 5);
  });

  it("scriptLoad and evalsha", async () => {
    const sha = await redis.scriptLoad(script);
    assert.match(sha, /^[0-9a-f]{40}$/);
    assert.equal(await redis.evalsha(sha, ["sc:counter"], ["2"]), 7);
    await assert.rejects(redis.evalsha("0".repeat(40), [], []), /NOSCRIPT/);
  });

  it("a script returning several values", async () => {
    const result = await redis.eval("return {KEYS[1], ARGV[1], 3}", ["k"], ["v"]);
    assert.deepEqual(result, ["k", "v", 3]);
  });
});

describe("errors and protocol", () => {
  it("an error reply rejects with Redis's message", async () => {
    await redis.set("e:text", "abc");
    await assert.rejects(redis.incr("e:text"), /ERR value is not an integer/);
    await assert.rejects(redis.hget("e:text", "f"), /WRONGTYPE/);
    const { status, json } = await rest("/", { body: ["GET"] });
    assert.equal(status, 400);
    assert.match(json.error, /wrong number of arguments/);
  });

  it("refuses a missing or wrong token with 401", async () => {
    const intruder = new Redis({ url: standins.upstashUrl, token: "wrong", enableTelemetry: false, retry: false });
    await assert.rejects(intruder.get("s:greeting"));
    const missing = await fetch(`${standins.upstashUrl}/get/s:greeting`);
    assert.equal(missing.status, 401);
    assert.equal((await rest("/get/x", { token: "wrong" })).status, 401);
  });

  it("serves the path form, a POST body as the last argument, and _token", async () => {
    assert.deepEqual((await rest("/set/path:k/path%20value", { method: "GET" })).json, { result: "OK" });
    assert.deepEqual((await rest("/get/path:k", { method: "GET" })).json, { result: "path value" });
    assert.deepEqual((await rest("/set/path:body?EX=100", { body: '{"json": true}' })).json, { result: "OK" });
    assert.deepEqual(await redis.get("path:body"), { json: true });
    const ttl = await fetch(`${standins.upstashUrl}/ttl/path:body?_token=${standins.token}`);
    const { result } = await ttl.json();
    assert.ok(result > 0 && result <= 100, `ttl ${result}`);
  });

  it("base64-encodes every string except a plain OK when asked", async () => {
    const headers = { "upstash-encoding": "base64" };
    assert.deepEqual((await rest("/", { body: ["SET", "b:k", "bar"], headers })).json, { result: "OK" });
    assert.deepEqual((await rest("/", { body: ["GET", "b:k"], headers })).json, { result: "YmFy" });
    assert.deepEqual((await rest("/", { body: ["GET", "b:k"] })).json, { result: "bar" });
    assert.deepEqual((await rest("/pipeline", { body: [["INCR", "b:n"], ["GET", "b:k"]], headers })).json, [
      { result: 1 },
      { result: "YmFy" },
    ]);
  });
});
