// The public marketplace page in Debian's Chromium (playwright-core), desktop and phone-sized:
// search, facets, result cards, and an agent's page with its signed card, its DID and how to
// verify it; no console errors, no request leaving the origin, no horizontal scrolling on a phone.
//
//   AGENTIDP_BASE_URL=http://127.0.0.1:8787 node --test tests/browser/
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const BASE = process.env.AGENTIDP_BASE_URL?.replace(/\/$/, "");
const SHOTS = process.env.SCREENSHOT_DIR ?? path.join(root, "target/screenshots");
if (!BASE) {
  console.error("AGENTIDP_BASE_URL is required (scripts/test.sh browser starts a server)");
  process.exit(2);
}
const ORIGIN = new URL(BASE).origin;
mkdirSync(SHOTS, { recursive: true });

// A unique word, so this corpus is found whatever else the deployment lists.
const WORD = `zq${Date.now().toString(36)}`;
let browser;
let ids = {};

async function api(method, pathname, token, body) {
  const response = await fetch(BASE + pathname, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), "content-type": "application/json" },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: response.status, body: await response.json().catch(() => null) };
}

before(async () => {
  const org = await api("POST", "/v1/orgs", null, { name: `Market ${WORD}` });
  assert.equal(org.status, 201);
  const { client_id, client_secret } = org.body.admin_credential;
  const token = (await (await fetch(`${BASE}/oauth2/token`, {
    method: "POST",
    headers: {
      authorization: `Basic ${Buffer.from(`${client_id}:${client_secret}`).toString("base64")}`,
      "content-type": "application/x-www-form-urlencoded",
    },
    body: "grant_type=client_credentials",
  })).json()).access_token;
  for (const [key, body] of Object.entries({
    oracle: { name: `${WORD} Weather Oracle`, agent_type: "forecaster", tags: ["weather", "maps"], description: "Forecasts the weather anywhere on Earth, hour by hour." },
    translator: { name: `${WORD} Translator`, agent_type: "nlp", tags: ["i18n"], description: "Translates documents between forty languages.", a2a_url: "https://translator.example/a2a", skills: [{ id: "tr", name: "Translate", description: "Any pair of languages", tags: [] }] },
    writer: { name: `${WORD} Writer`, agent_type: "nlp", tags: ["i18n", "writing"], description: "Writes and edits long documents." },
  })) {
    const created = await api("POST", "/v1/agents", token, { ...body, visibility: "public", capabilities: ["docs:read"] });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    ids[key] = created.body.id;
  }
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-default-apps"],
  });
});

after(async () => {
  await browser?.close();
});

async function open(viewport) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  const problems = [];
  page.on("console", (m) => m.type() === "error" && problems.push(m.text()));
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("request", (r) => {
    const url = r.url();
    if (!url.startsWith("data:") && new URL(url).origin !== ORIGIN) problems.push(`foreign request ${url}`);
  });
  const response = await page.goto(`${BASE}/portal/marketplace.html`, { waitUntil: "load" });
  assert.equal(response.status(), 200);
  assert.match(response.headers()["content-security-policy"] ?? "", /require-trusted-types-for 'script'/);
  return { context, page, problems };
}

async function searchFor(page, text) {
  await page.fill("#q", text);
  await page.click("#search-form button[type=submit]");
  await page.waitForFunction(() => !document.getElementById("status").textContent.startsWith("Searching"));
}

const resultNames = (page) => page.$$eval("#results .result h2", (nodes) => nodes.map((n) => n.textContent));

for (const [name, viewport] of [["desktop", { width: 1280, height: 900 }], ["phone", { width: 390, height: 844 }]]) {
  test(`search, facets and an agent's page (${name})`, async () => {
    const { context, page, problems } = await open(viewport);
    await searchFor(page, `${WORD} weather`);
    assert.deepEqual(await resultNames(page), [`${WORD} Weather Oracle`]);

    await searchFor(page, WORD);
    assert.equal((await resultNames(page)).length, 3);
    // The type facet counts every match; choosing one narrows the results.
    const nlp = page.locator("#facet-agent_type label", { hasText: "nlp (2)" });
    await nlp.click();
    await page.waitForFunction(() => document.querySelectorAll("#results .result").length === 2);
    assert.deepEqual((await resultNames(page)).sort(), [`${WORD} Translator`, `${WORD} Writer`]);
    await page.locator("#facet-tags label", { hasText: "writing (1)" }).click();
    await page.waitForFunction(() => document.querySelectorAll("#results .result").length === 1);
    assert.deepEqual(await resultNames(page), [`${WORD} Writer`]);
    await page.screenshot({ path: path.join(SHOTS, `marketplace-search-${name}.png`), fullPage: true });

    // An agent's page: its DID, who signed its card, the card itself.
    await searchFor(page, `${WORD} translator`);
    await page.click(`#results a[href="#agent=${ids.translator}"]`);
    await page.waitForFunction(() => document.getElementById("agent-kid")?.textContent);
    assert.equal(await page.textContent("#agent-title"), `${WORD} Translator`);
    const did = await page.textContent("#agent-did");
    assert.match(did, new RegExp(`^did:web:.*:agents:${ids.translator}$`));
    const card = JSON.parse(await page.textContent("#agent-card"));
    assert.equal(card.url, "https://translator.example/a2a");
    assert.equal(await page.textContent("#agent-kid"), JSON.parse(Buffer.from(card.signatures[0].protected, "base64url")).kid);
    assert.match(await page.textContent("#verify-steps"), /RFC 8785/);
    await page.screenshot({ path: path.join(SHOTS, `marketplace-agent-${name}.png`), fullPage: true });

    // Nothing wider than the screen.
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${overflow}px of horizontal scrolling`);
    await page.click("#back");
    await page.waitForFunction(() => !document.getElementById("search-view").hidden);
    assert.deepEqual(problems, []);
    await context.close();
  });
}

test("a withdrawn agent's page says it is not found", async () => {
  const { context, page } = await open({ width: 390, height: 844 });
  await page.goto(`${BASE}/portal/marketplace.html#agent=00000000-0000-4000-8000-000000000000`);
  await page.waitForFunction(() => document.getElementById("agent-title").textContent === "Agent not found");
  await context.close();
});
