// The Turso stand-in (`agentidp-dev backends`, Hrana over HTTP) driven by the official
// @libsql/client, through its HTTP transport exactly as an application on Turso would use it.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { createClient } from "@libsql/client/http";

import { startStandins } from "./harness.mjs";

let standins;
let db;
let bigints;

before(async () => {
  standins = await startStandins();
  const config = { url: standins.hranaUrl, authToken: standins.token };
  db = createClient(config);
  bigints = createClient({ ...config, intMode: "bigint" });
});

after(async () => {
  db?.close();
  bigints?.close();
  await standins?.stop();
});

async function count(table) {
  const rs = await db.execute(`SELECT count(*) AS n FROM ${table}`);
  return rs.rows[0].n;
}

describe("execute", () => {
  it("binds positional arguments", async () => {
    const rs = await db.execute({ sql: "SELECT ? AS a, ? AS b, ?3 AS c", args: [1, "two", null] });
    assert.deepEqual(rs.columns, ["a", "b", "c"]);
    assert.equal(rs.rows[0].a, 1);
    assert.equal(rs.rows[0].b, "two");
    assert.equal(rs.rows[0].c, null);
  });

  for (const prefix of [":", "@", "$"]) {
    it(`binds named arguments written ${prefix}x, with or without the prefix in the key`, async () => {
      const sql = `SELECT ${prefix}x AS x`;
      assert.equal((await db.execute({ sql, args: { x: 42 } })).rows[0].x, 42);
      assert.equal((await db.execute({ sql, args: { [`${prefix}x`]: "y" } })).rows[0].x, "y");
    });
  }

  it("reports declared column types, rows affected and the last rowid", async () => {
    await db.execute("CREATE TABLE ex_items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)");
    const first = await db.execute({ sql: "INSERT INTO ex_items (name) VALUES (?)", args: ["a"] });
    assert.equal(first.rowsAffected, 1);
    assert.equal(first.lastInsertRowid, 1n);
    const many = await db.execute("INSERT INTO ex_items (name) VALUES ('b'), ('c')");
    assert.equal(many.rowsAffected, 2);
    assert.equal(many.lastInsertRowid, 3n);
    const updated = await db.execute("UPDATE ex_items SET name = name || '!' WHERE id > 1");
    assert.equal(updated.rowsAffected, 2);
    const rs = await db.execute("SELECT id, name FROM ex_items ORDER BY id");
    assert.deepEqual(rs.columnTypes, ["INTEGER", "TEXT"]);
    assert.deepEqual(rs.rows.map((r) => r.name), ["a", "b!", "c!"]);
    assert.equal(rs.rowsAffected, 0);
  });

  it("surfaces a constraint violation as an error with SQLite's code", async () => {
    await db.execute("CREATE TABLE ex_unique (email TEXT PRIMARY KEY)");
    await db.execute({ sql: "INSERT INTO ex_unique VALUES (?)", args: ["a@example.com"] });
    await assert.rejects(
      db.execute({ sql: "INSERT INTO ex_unique VALUES (?)", args: ["a@example.com"] }),
      (e) => e.code === "SQLITE_CONSTRAINT" && /UNIQUE constraint failed/.test(e.message),
    );
  });

  it("refuses a wrong token", async () => {
    const intruder = createClient({ url: standins.hranaUrl, authToken: "wrong" });
    await assert.rejects(intruder.execute("SELECT 1"));
    intruder.close();
  });
});

describe("values", () => {
  it("round-trip every type, with integers beyond 2^53 as bigint", async () => {
    await bigints.execute("CREATE TABLE val (n, i INTEGER, f REAL, t TEXT, b BLOB)");
    const rows = [
      [null, 9007199254740993n, 0.1, "héllo ✓ 😀", new Uint8Array([0, 1, 2, 255])],
      [null, -9223372036854775808n, -2.5e300, "", new Uint8Array([7])],
      [null, 9223372036854775807n, 3.5, "\u0000nul inside", new Uint8Array([1, 2]).buffer],
    ];
    for (const args of rows) {
      await bigints.execute({ sql: "INSERT INTO val VALUES (?, ?, ?, ?, ?)", args });
    }
    const rs = await bigints.execute("SELECT n, i, f, t, b FROM val ORDER BY rowid");
    assert.equal(rs.rows.length, 3);
    rs.rows.forEach((row, k) => {
      const [n, i, f, t, b] = rows[k];
      assert.equal(row.n, n);
      assert.equal(row.i, i);
      assert.equal(typeof row.i, "bigint");
      assert.equal(row.f, f);
      assert.equal(row.t, t);
      assert.ok(row.b instanceof ArrayBuffer);
      assert.deepEqual(new Uint8Array(row.b), new Uint8Array(b));
    });
  });

  it("keeps integers as numbers in the default mode", async () => {
    const rs = await db.execute("SELECT 7 AS i, 7.0 AS f, typeof(?) AS t", [7]);
    assert.equal(rs.rows[0].i, 7);
    assert.equal(rs.rows[0].f, 7);
    assert.equal(rs.rows[0].t, "real");
    const exact = await db.execute({ sql: "SELECT typeof(?) AS t", args: [7n] });
    assert.equal(exact.rows[0].t, "integer");
  });
});

describe("batch", () => {
  it("runs statements in one transaction (write mode)", async () => {
    const results = await db.batch(
      [
        "CREATE TABLE b_accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL CHECK (balance >= 0))",
        { sql: "INSERT INTO b_accounts VALUES (?, ?)", args: [1, 100] },
        { sql: "INSERT INTO b_accounts VALUES (:id, :balance)", args: { id: 2, balance: 0 } },
        "SELECT sum(balance) AS total FROM b_accounts",
      ],
      "write",
    );
    assert.equal(results.length, 4);
    assert.equal(results[1].rowsAffected, 1);
    assert.equal(results[3].rows[0].total, 100);
  });

  it("rolls every statement back when one fails", async () => {
    await assert.rejects(
      db.batch(
        [
          "UPDATE b_accounts SET balance = balance + 50 WHERE id = 2",
          "UPDATE b_accounts SET balance = balance - 150 WHERE id = 1",
        ],
        "write",
      ),
      (e) => e.code === "SQLITE_CONSTRAINT",
    );
    const rs = await db.execute("SELECT balance FROM b_accounts ORDER BY id");
    assert.deepEqual(rs.rows.map((r) => r.balance), [100, 0]);
  });

  it("reads in a read batch", async () => {
    const [rs] = await db.batch(["SELECT count(*) AS n FROM b_accounts"], "read");
    assert.equal(rs.rows[0].n, 2);
  });
});

describe("interactive transaction", () => {
  before(async () => {
    await db.execute("CREATE TABLE tx_log (id INTEGER PRIMARY KEY, note TEXT)");
  });

  it("commits statements sent in separate requests", async () => {
    const tx = await db.transaction("write");
    await tx.execute({ sql: "INSERT INTO tx_log (note) VALUES (?)", args: ["first"] });
    const inside = await tx.execute("SELECT count(*) AS n FROM tx_log");
    assert.equal(inside.rows[0].n, 1);
    assert.equal(await count("tx_log"), 0, "uncommitted rows are invisible to others");
    await tx.batch([
      { sql: "INSERT INTO tx_log (note) VALUES (?)", args: ["second"] },
      { sql: "INSERT INTO tx_log (note) VALUES (?)", args: ["third"] },
    ]);
    await tx.commit();
    assert.equal(tx.closed, true);
    assert.equal(await count("tx_log"), 3);
  });

  it("rolls back", async () => {
    const tx = await db.transaction("write");
    await tx.execute("INSERT INTO tx_log (note) VALUES ('discarded')");
    await tx.execute("DELETE FROM tx_log WHERE note = 'first'");
    await tx.rollback();
    assert.equal(await count("tx_log"), 3);
  });

  it("stays usable after a failed statement, then commits", async () => {
    const tx = await db.transaction("write");
    await tx.execute("INSERT INTO tx_log (note) VALUES ('kept')");
    await assert.rejects(tx.execute("INSERT INTO tx_log (id) VALUES (1)"));
    await tx.commit();
    assert.equal(await count("tx_log"), 4);
  });

  it("runs a script inside the transaction", async () => {
    const tx = await db.transaction("write");
    await tx.executeMultiple("INSERT INTO tx_log (note) VALUES ('x'); INSERT INTO tx_log (note) VALUES ('y');");
    await tx.rollback();
    assert.equal(await count("tx_log"), 4);
  });
});

describe("executeMultiple", () => {
  it("runs a script of several statements", async () => {
    await db.executeMultiple(`
      CREATE TABLE em_tags (name TEXT PRIMARY KEY);
      -- a comment between statements
      INSERT INTO em_tags VALUES ('a');
      INSERT INTO em_tags VALUES ('b');
    `);
    assert.equal(await count("em_tags"), 2);
  });

  it("stops at the first failing statement and reports it", async () => {
    await assert.rejects(
      db.executeMultiple("INSERT INTO em_tags VALUES ('c'); INSERT INTO em_tags VALUES ('a'); INSERT INTO em_tags VALUES ('d');"),
      (e) => e.code === "SQLITE_CONSTRAINT",
    );
    const rs = await db.execute("SELECT name FROM em_tags ORDER BY name");
    assert.deepEqual(rs.rows.map((r) => r.name), ["a", "b", "c"]);
  });
});

describe("Hrana over HTTP, raw", () => {
  async function post(path, body) {
    const response = await fetch(`${standins.hranaUrl}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${standins.token}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: response.status, text: await response.text() };
  }

  it("hands out a new baton per response and refuses one used before", async () => {
    const open = JSON.parse((await post("/v3/pipeline", { baton: null, requests: [{ type: "get_autocommit" }] })).text);
    assert.deepEqual(open.results[0].response, { type: "get_autocommit", is_autocommit: true });
    const next = JSON.parse((await post("/v3/pipeline", { baton: open.baton, requests: [] })).text);
    assert.notEqual(next.baton, open.baton);
    const reused = await post("/v3/pipeline", { baton: open.baton, requests: [] });
    assert.equal(reused.status, 400);
    const closed = JSON.parse((await post("/v3/pipeline", { baton: next.baton, requests: [{ type: "close" }] })).text);
    assert.equal(closed.baton, null);
  });

  it("describes a statement", async () => {
    const body = await post("/v3/pipeline", {
      baton: null,
      requests: [{ type: "describe", sql: "SELECT :a AS x, ?2" }, { type: "close" }],
    });
    const { result } = JSON.parse(body.text).results[0].response;
    assert.deepEqual(result.params, [{ name: ":a" }, { name: "?2" }]);
    assert.deepEqual(result.cols.map((c) => c.name), ["x", "?2"]);
    assert.equal(result.is_readonly, true);
    assert.equal(result.is_explain, false);
  });

  it("streams a batch through /v3/cursor as lines of JSON", async () => {
    const { status, text } = await post("/v3/cursor", {
      baton: null,
      batch: { steps: [{ stmt: { sql: "SELECT 1 AS one UNION ALL SELECT 2" } }, { stmt: { sql: "SELEC" } }] },
    });
    assert.equal(status, 200);
    const [head, ...entries] = text.trim().split("\n").map((line) => JSON.parse(line));
    assert.equal(typeof head.baton, "string");
    assert.deepEqual(entries.map((e) => e.type), ["step_begin", "row", "row", "step_end", "step_error"]);
    assert.deepEqual(entries[1].row, [{ type: "integer", value: "1" }]);
    await post("/v3/pipeline", { baton: head.baton, requests: [{ type: "close" }] });
  });

  it("keeps version 3 requests off /v2", async () => {
    const { status } = await post("/v2/pipeline", { baton: null, requests: [{ type: "get_autocommit" }] });
    assert.equal(status, 400);
  });
});
