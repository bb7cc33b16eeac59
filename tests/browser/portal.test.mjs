// The portal and the API reference in a real browser: Debian's Chromium driven by playwright-core
// (pinned in package.json), against a running deployment (AGENTIDP_BASE_URL; the `browser` stage of
// scripts/test.sh starts a native server). What a person does, end to end: the quick start's copy
// buttons, onboarding that shows the admin credential once, sign-in, registering an agent and
// creating its credential, verifying the audit chain, the usage chart, trust policies, webhooks,
// and a "try it out" call in /docs. Throughout: no console errors, no request leaving the origin,
// the Content-Security-Policy on every page, nothing written to storage or cookies.
//
//   AGENTIDP_BASE_URL=http://127.0.0.1:8787 node --test tests/browser/
//
// CHROMIUM (default /usr/bin/chromium) and SCREENSHOT_DIR (default target/screenshots) change the
// browser and where each page's screenshot goes.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const BASE = process.env.AGENTIDP_BASE_URL?.replace(/\/$/, "");
const ORIGIN = BASE ? new URL(BASE).origin : null;
const SHOTS = process.env.SCREENSHOT_DIR ?? path.join(root, "target/screenshots");
const STEP_MS = 30_000;

if (!BASE) {
  console.error("AGENTIDP_BASE_URL is required (scripts/test.sh browser starts a server)");
  process.exit(2);
}
mkdirSync(SHOTS, { recursive: true });

let browser;
let context;
let page;
const problems = [];
const foreign = [];
const responses = new Map();

// Console errors the deployment legitimately causes: a step that provokes a refusal on purpose
// names it here ({ status, pathname }) while it runs.
let provoked = null;
function isExpected(message) {
  const url = message.location()?.url ?? "";
  const pathname = new URL(url, BASE).pathname;
  return Boolean(
    provoked && message.text().includes(`status of ${provoked.status}`) && pathname === provoked.pathname,
  );
}

async function shot(name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

// Each step starts clean: what one step caused is reported by that step alone.
function assertClean(where) {
  const seen = { problems: problems.splice(0), foreign: foreign.splice(0) };
  assert.deepEqual(seen, { problems: [], foreign: [] }, `${where}: console errors or requests leaving ${ORIGIN}`);
}

async function goto(pathname) {
  const response = await page.goto(`${BASE}${pathname}`, { waitUntil: "load" });
  assert.equal(response.status(), 200, pathname);
  const csp = response.headers()["content-security-policy"] ?? "";
  assert.match(csp, /default-src 'self'/, `${pathname}: CSP`);
  assert.match(csp, /frame-ancestors 'none'/, `${pathname}: CSP`);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, `${pathname}: CSP`);
  return response;
}

async function storageIsEmpty() {
  const state = await page.evaluate(() => ({
    local: localStorage.length,
    session: sessionStorage.length,
    cookie: document.cookie,
  }));
  assert.deepEqual(state, { local: 0, session: 0, cookie: "" }, "the page stored something");
  assert.deepEqual(await context.cookies(), [], "cookies were set");
}

// Every visible form control has a label and every button a name; text meets WCAG AA contrast.
async function assertAccessible(where) {
  const issues = await page.evaluate(() => {
    const found = [];
    const visible = (el) => el.getClientRects().length > 0 && getComputedStyle(el).visibility !== "hidden";
    for (const el of document.querySelectorAll("input, select, textarea")) {
      if (!visible(el) || el.type === "hidden") continue;
      const named = el.labels?.length || el.getAttribute("aria-label") || el.getAttribute("aria-labelledby");
      if (!named) found.push(`unlabelled ${el.tagName.toLowerCase()}#${el.id || el.name}`);
    }
    for (const el of document.querySelectorAll("button, a[href]")) {
      if (visible(el) && !(el.textContent.trim() || el.getAttribute("aria-label"))) found.push(`unnamed ${el.outerHTML.slice(0, 60)}`);
    }
    const rgb = (s) => (s.match(/[\d.]+/g) ?? []).map(Number);
    const luminance = ([r, g, b]) => {
      const c = [r, g, b].map((v) => {
        v /= 255;
        return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
      });
      return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
    };
    const background = (el) => {
      for (let node = el; node; node = node.parentElement) {
        const [r, g, b, a = 1] = rgb(getComputedStyle(node).backgroundColor);
        if (a > 0.5) return [r, g, b];
      }
      return [255, 255, 255];
    };
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let text = walker.nextNode(); text; text = walker.nextNode()) {
      const el = text.parentElement;
      if (!text.textContent.trim() || !visible(el) || el.closest("svg")) continue;
      const style = getComputedStyle(el);
      const fg = luminance(rgb(style.color));
      const bg = luminance(background(el));
      const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
      const large = parseFloat(style.fontSize) >= 24 || (parseFloat(style.fontSize) >= 18.66 && Number(style.fontWeight) >= 700);
      if (ratio < (large ? 3 : 4.5)) found.push(`contrast ${ratio.toFixed(2)} for “${text.textContent.trim().slice(0, 30)}”`);
    }
    return [...new Set(found)];
  });
  assert.deepEqual(issues, [], `${where}: accessibility`);
}

async function text(selector) {
  return (await page.locator(selector).first().textContent({ timeout: STEP_MS })).trim();
}

describe("the portal in Chromium", { timeout: 240_000 }, () => {
  const state = {};

  before(async () => {
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
      // Headless, and quiet: without the background-networking flags Chromium phones home at
      // start, which a closed network refuses (and this test would rightly flag).
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
      ],
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: ORIGIN });
    page = await context.newPage();
    page.setDefaultTimeout(STEP_MS);
    page.on("console", (message) => {
      if (message.type() === "error" && !isExpected(message)) {
        problems.push(`${message.text()} (${message.location()?.url ?? "?"})`);
      }
    });
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("request", (request) => {
      const url = request.url();
      if (!url.startsWith("data:") && !url.startsWith("blob:") && new URL(url).origin !== ORIGIN) foreign.push(url);
    });
    page.on("response", (response) => responses.set(new URL(response.url()).pathname, response.status()));
    page.on("dialog", (dialog) => dialog.accept());
  });

  after(async () => {
    await browser?.close();
  });

  test("the quick start shows this deployment and copies its commands", async () => {
    await goto("/portal");
    assert.equal(await text("h1"), "Quick start");
    assert.equal(await text("#code-0"), `B=${ORIGIN}`);
    assert.equal(await page.locator("ol.steps > li").count(), 10);
    await page.locator('button[data-copy="code-0"]').click();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), `B=${ORIGIN}`);
    await page.locator('button[data-copy="code-3"]').click();
    assert.match(await page.evaluate(() => navigator.clipboard.readText()), /^# 3\. Register an agent/);
    await assertAccessible("quick start");
    await shot("portal-quickstart");
    await page.setViewportSize({ width: 390, height: 844 });
    await shot("portal-quickstart-mobile");
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
    assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px at 390px wide`);
    await page.setViewportSize({ width: 1280, height: 900 });
    assertClean("quick start");
  });

  test("onboarding creates an organization and shows its admin credential once", async () => {
    await page.getByRole("navigation", { name: "Portal" }).getByRole("link", { name: "Create an organization" }).click();
    assert.equal(await text("#onboarding-title"), "Create an organization");
    await page.getByLabel("Organization name").fill(`browser-${Date.now()}`);
    await page.getByRole("button", { name: "Create organization" }).click();
    const panel = page.locator(".secret-panel");
    await panel.waitFor();
    assert.match(await panel.textContent(), /Shown only once/);
    state.clientId = await text('.secret-panel code[data-field="Client id"]');
    state.clientSecret = await text('.secret-panel code[data-field="Client secret"]');
    assert.match(state.clientSecret, /^\S{30,}$/);
    await panel.getByRole("button", { name: "Copy client secret" }).click();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), state.clientSecret);
    await storageIsEmpty();
    await assertAccessible("onboarding");
    await shot("portal-onboarding-credential");

    // Shown once: a reload starts from an empty form; the secret is nowhere on the page.
    await page.reload({ waitUntil: "load" });
    await page.locator("#onboarding-form").waitFor();
    assert.equal(await page.locator(".secret-panel").count(), 0);
    assert.ok(!(await page.content()).includes(state.clientSecret), "the secret came back after a reload");
    await storageIsEmpty();
    await shot("portal-onboarding-after-reload");
    assertClean("onboarding");
  });

  test("signing in keeps the token in memory only", async () => {
    await page.getByRole("navigation", { name: "Portal" }).getByRole("link", { name: "Dashboard" }).click();
    assert.equal(await text("#dashboard-title"), "Dashboard");
    await page.getByLabel("Client id").fill(state.clientId);
    await page.getByLabel("Client secret").fill("not-the-secret");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByText("That client id and secret were not accepted.").waitFor();
    problems.length = 0; // the refused sign-in is a 401 the browser reports; it was the point.
    await shot("portal-signin-refused");
    await page.getByLabel("Client secret").fill(state.clientSecret);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.locator("#console").waitFor();
    assert.match(await text("#session-summary"), new RegExp(`Signed in as ${state.clientId}`));
    assert.equal(await page.getByLabel("Client secret", { exact: true }).inputValue(), "");
    await storageIsEmpty();
    assertClean("sign-in");
  });

  test("registering an agent and creating its credential", async () => {
    const name = `doc-bot-${Date.now()}`;
    state.agentName = name;
    const form = page.locator("form", { has: page.getByRole("heading", { name: "Register an agent" }) });
    await form.getByLabel("Name").fill(name);
    await form.getByLabel("Capabilities").fill("read:docs write:docs");
    await form.getByLabel("What it does (optional)").fill("Reads and writes the docs.");
    await form.getByLabel("Tags (optional)").fill("docs, writing");
    await form.getByRole("button", { name: "Register agent" }).click();
    const row = page.locator("#agents-table tbody tr", { hasText: name });
    await row.waitFor();
    assert.match(await row.textContent(), /active/);
    state.agentId = await row.getAttribute("data-agent-id");
    // What it publishes reached the API.
    const admin = await (await fetch(`${BASE}/oauth2/token`, {
      method: "POST",
      headers: {
        authorization: `Basic ${Buffer.from(`${state.clientId}:${state.clientSecret}`).toString("base64")}`,
        "content-type": "application/x-www-form-urlencoded",
      },
      body: "grant_type=client_credentials",
    })).json();
    const registered = await (await fetch(`${BASE}/v1/agents/${state.agentId}`, {
      headers: { authorization: `Bearer ${admin.access_token}` },
    })).json();
    assert.equal(registered.description, "Reads and writes the docs.");
    assert.deepEqual(registered.tags, ["docs", "writing"]);

    await page.getByRole("heading", { name: `Credentials of ${name}` }).waitFor();
    await page.getByRole("button", { name: "Create client secret" }).click();
    const panel = page.locator(".credentials .secret-panel");
    await panel.waitFor();
    const clientId = await text('.credentials code[data-field="Client id"]');
    const secret = await text('.credentials code[data-field="Client secret"]');
    await page.locator(".credentials tbody tr", { hasText: clientId }).waitFor();
    await assertAccessible("agents");
    await shot("dashboard-agent-credential");

    // The credential is real: the agent gets a token with it.
    const token = await fetch(`${BASE}/oauth2/token`, {
      method: "POST",
      headers: {
        authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString("base64")}`,
        "content-type": "application/x-www-form-urlencoded",
      },
      body: "grant_type=client_credentials&scope=read:docs",
    });
    assert.equal(token.status, 200, await token.text());

    // Suspend and reactivate from the list; search narrows it.
    await row.getByRole("button", { name: `Suspend ${name}` }).click();
    await page.locator("#agents-table tbody tr", { hasText: name }).getByText("suspended").waitFor();
    await page.locator("#agents-table tbody tr", { hasText: name }).getByRole("button", { name: `Reactivate ${name}` }).click();
    await page.locator("#agents-table tbody tr", { hasText: name }).getByText("active").waitFor();
    // On a phone each agent is a card: its actions are on screen, not past six columns.
    await page.setViewportSize({ width: 390, height: 844 });
    const onPhone = page.locator("#agents-table tbody tr", { hasText: name });
    for (const action of ["Credentials of", "Suspend", "Decommission"]) {
      const button = onPhone.getByRole("button", { name: `${action} ${name}` });
      await button.scrollIntoViewIfNeeded();
      const box = await button.boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= 390, `${action} is off screen at 390px: ${JSON.stringify(box)}`);
    }
    const sideways = await page.evaluate(() => document.documentElement.scrollWidth - innerWidth);
    assert.ok(sideways <= 0, `the agents tab scrolls sideways by ${sideways}px at 390px wide`);
    await onPhone.getByRole("button", { name: `Suspend ${name}` }).click();
    await onPhone.getByText("suspended").waitFor();
    await shot("dashboard-agents-mobile");
    await onPhone.getByRole("button", { name: `Reactivate ${name}` }).click();
    await onPhone.getByText("active").waitFor();
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.getByLabel("Search loaded agents").fill("no-such-agent-anywhere");
    await page.getByText("No agent matches the search.").waitFor();
    await page.getByLabel("Search loaded agents").fill(name);
    assert.equal(await page.locator("#agents-table tbody tr").count(), 1);
    await page.getByRole("button", { name: "Close" }).click();
    await shot("dashboard-agents");
    assertClean("agents");
  });

  test("a management scope needs the explicit checkbox", async () => {
    const name = `auditor-${Date.now()}`;
    await page.getByLabel("Search loaded agents").fill("");
    const form = page.locator("form", { has: page.getByRole("heading", { name: "Register an agent" }) });
    await form.getByLabel("Name").fill(name);
    await form.getByLabel("Capabilities").fill("audit:read");
    provoked = { status: 400, pathname: "/v1/agents" };
    try {
      await form.getByRole("button", { name: "Register agent" }).click();
      await form.getByText("allow_management_scopes").waitFor();
    } finally {
      provoked = null;
    }
    assert.equal(await page.locator("#agents-table tbody tr", { hasText: name }).count(), 0);
    await form.getByLabel(/Allow management scopes/).check();
    await form.getByRole("button", { name: "Register agent" }).click();
    await page.locator("#agents-table tbody tr", { hasText: name }).waitFor();
    assert.equal(await form.getByLabel(/Allow management scopes/).isChecked(), false, "the form resets");
    await page.getByRole("button", { name: "Close" }).click();
    assertClean("management scopes");
  });

  test("the audit trail verifies its chain", async () => {
    // Keyboard: the tabs follow the arrow keys.
    await page.getByRole("tab", { name: "Agents" }).focus();
    await page.keyboard.press("ArrowRight");
    assert.equal(await page.evaluate(() => document.activeElement.id), "tab-audit");
    await page.locator("#audit-table tbody tr", { hasText: "agent.created" }).first().waitFor();
    assert.equal(await page.getByRole("tab", { name: "Audit trail" }).getAttribute("aria-selected"), "true");
    await page.getByRole("button", { name: "Verify chain" }).click();
    const verdict = page.locator("#verify-result");
    await verdict.getByText("Chain intact").waitFor();
    const events = Number((await verdict.textContent()).match(/(\d+) events checked/)[1]);
    assert.ok(events >= 5, `only ${events} events checked`);
    await assertAccessible("audit");
    await shot("dashboard-audit-verified");
    assertClean("audit");
  });

  test("usage shows against the tier's limits", async () => {
    await page.getByRole("tab", { name: "Usage" }).click();
    const chart = page.locator("#usage-chart");
    await chart.waitFor();
    assert.match(await chart.locator("desc").textContent(), /Agents: 2 of 100/);
    assert.ok(Number(await text("#usage-tokens")) >= 1);
    await assertAccessible("usage");
    await shot("dashboard-usage");
    assertClean("usage");
  });

  test("the compliance report shows the organization and downloads as CSV", async () => {
    await page.getByRole("tab", { name: "Compliance" }).click();
    await page.locator("#compliance-activity tbody tr").first().waitFor();
    assert.equal(await text("#compliance-active"), "2");
    assert.ok(Number(await text("#compliance-checkpoint")) >= 5);
    const chart = page.locator("#tokens-chart");
    assert.match(await chart.locator("desc").textContent(), /\d{4}-\d{2}-\d{2}: \d+/);
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("button", { name: "Download CSV" }).click(),
    ]);
    assert.equal(download.suggestedFilename(), "compliance-report.csv");
    await assertAccessible("compliance");
    await shot("dashboard-compliance");
    assertClean("compliance");
  });

  test("trust policies are created and deleted", async () => {
    await page.getByRole("tab", { name: "Trust policies" }).click();
    const form = page.locator("form", { has: page.getByRole("heading", { name: "Add a trust policy" }) });
    await form.getByLabel("Repository").fill("octo/app");
    await form.getByLabel("Branch (optional)").fill("main");
    await form.getByLabel("Agent the workflow acts as").selectOption(state.agentId);
    await form.getByRole("button", { name: "Add policy" }).click();
    const row = page.locator("#trust-table tbody tr", { hasText: "octo/app" });
    await row.waitFor();
    assert.match(await row.textContent(), /branch main/);
    await assertAccessible("trust policies");
    await shot("dashboard-trust-policies");
    await row.getByRole("button", { name: "Delete the policy for octo/app" }).click();
    await page.getByText("No trust policies.").waitFor();
    assertClean("trust policies");
  });

  test("policies: invalid text is refused inline at its position, a valid one is saved, edited and tried", async () => {
    await page.getByRole("tab", { name: "Policies", exact: true }).click();
    const form = page.locator("form", { has: page.getByRole("heading", { name: "Add a policy" }) });
    await page.getByText("No policies:").waitFor();
    await form.getByLabel("Description").fill("payments only for the payment API");
    const cedar = form.getByLabel("Cedar policy");
    await cedar.fill('permit(principal, action, resource)\n  when { context.colour == "red" };');
    provoked = { status: 400, pathname: "/v1/policies" };
    await form.getByRole("button", { name: "Save policy" }).click();
    const problem = page.locator("#policy-problem");
    await problem.getByText(/Line 2, column \d+:/).waitFor();
    provoked = null;
    assert.match(await problem.textContent(), /colour/);
    assert.equal(await cedar.getAttribute("aria-invalid"), "true");
    await shot("dashboard-policies-invalid");

    await cedar.fill(
      '@reason("payments only for the payment API")\n' +
        'forbid(principal, action, resource) when { context.scope == "payments:write" }\n' +
        'unless { resource == AgentIdP::Audience::"https://pay.example" };\n' +
        "permit(principal, action, resource);",
    );
    await form.getByRole("button", { name: "Save policy" }).click();
    const row = page.locator("#policies-table tbody tr", { hasText: "payments only for the payment API" });
    await row.waitFor();
    assert.match(await row.textContent(), /forbid|reason/);

    // Edit: the form carries the version, and the saved policy moves to version 2.
    await row.getByRole("button", { name: /^Edit policy/ }).click();
    await page.getByRole("heading", { name: /Edit policy .* \(version 1\)/ }).waitFor();
    await page.getByLabel("Description").fill("payments only for the payment API, edited");
    await page.getByRole("button", { name: "Save policy" }).click();
    const edited = page.locator("#policies-table tbody tr", { hasText: "edited" });
    await edited.waitFor();
    assert.equal(await edited.locator("td").nth(1).textContent(), "2");

    // The dry run: the agent's payments are refused for the issuer, with the policy's reason.
    const dryRun = page.locator("form", { has: page.getByRole("heading", { name: "Dry run" }) });
    await dryRun.getByLabel("Agent").selectOption(state.agentId);
    await dryRun.getByLabel("Scopes").fill("payments:write read:docs");
    await dryRun.getByRole("button", { name: "Decide" }).click();
    const decision = page.locator("#dry-run-table tbody tr", { hasText: "payments:write" });
    await decision.waitFor();
    assert.match(await decision.textContent(), /deny.*payments only for the payment API/);
    assert.match(await page.locator("#dry-run-table tbody tr", { hasText: "read:docs" }).textContent(), /allow/);
    await assertAccessible("policies");
    await shot("dashboard-policies");
    await page.setViewportSize({ width: 390, height: 844 });
    await shot("dashboard-policies-mobile");
    await page.setViewportSize({ width: 1280, height: 900 });

    await edited.getByRole("button", { name: /^Delete policy/ }).click();
    await page.getByText("No policies:").waitFor();
    assertClean("policies");
  });

  test("webhooks: subscribe, see the secret once, send a test, read the delivery log", async () => {
    await page.getByRole("tab", { name: "Webhooks" }).click();
    await page.locator("#webhooks-table").waitFor();
    const url = "https://hooks.example.com/agentidp";
    await page.getByLabel("HTTPS URL").fill(url);
    await page.getByLabel("Description (optional)").fill("browser test");
    await page.getByLabel("every event").check();
    await page.getByRole("button", { name: "Subscribe" }).click();
    const panel = page.getByRole("alert", { name: `Signing secret for ${url}` });
    await panel.waitFor();
    const secret = await panel.locator('code[data-field="Signing secret"]').textContent();
    assert.match(secret.trim(), /^whsec_[A-Za-z0-9+/=]+$/);
    await page.getByRole("button", { name: `Send a test event to ${url}` }).click();
    await page.getByText("Test event queued: see its delivery log.").waitFor();
    await page.getByRole("button", { name: `Deliveries to ${url}` }).click();
    const log = page.getByRole("region", { name: "Delivery log" });
    await log.getByText("webhook.test").waitFor();
    await assertAccessible("webhooks");
    await shot("dashboard-webhooks");
    assertClean("webhooks");
  });

  test("signing out forgets the token", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.locator("#signin-form").waitFor();
    assert.equal(await page.locator("#console").isVisible(), false);
    await storageIsEmpty();
    assertClean("sign-out");
  });

  test("a try-it call in the API reference succeeds", async () => {
    await goto("/docs");
    await page.locator(".swagger-ui .info .title").waitFor();
    assert.match(await text(".swagger-ui .info .title"), /AgentIdP/);
    const operation = page.locator("#operations-operations-health");
    await operation.locator(".opblock-summary-control").click();
    await operation.getByRole("button", { name: "Try it out" }).click();
    await operation.getByRole("button", { name: "Execute" }).click();
    const status = operation.locator(".live-responses-table tr.response .response-col_status").first();
    await status.waitFor();
    assert.equal((await status.textContent()).trim(), "200");
    assert.match(await operation.locator(".live-responses-table .microlight").first().textContent(), /"status": "ok"/);
    assert.equal(await operation.locator(".request-url pre").first().textContent(), `${ORIGIN}/health`);
    await storageIsEmpty();
    await shot("docs-try-it");
    assertClean("docs");
  });
});
