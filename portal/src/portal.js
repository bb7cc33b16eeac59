// The portal's entry point: which view shows (by the URL's fragment), sign-in and sign-out, and the
// dashboard's tabs (WAI-ARIA tabs: arrow keys, Home and End move between them).

import { ApiError, currentSession, sessionEvents, signIn, signOut } from "./api.js";
import { forgetSecrets, say, when } from "./dom.js";
import { setUpQuickStart } from "./quickstart.js";
import { setUpOnboarding } from "./onboarding.js";
import { mountAgents } from "./agents.js";
import { mountAudit } from "./audit.js";
import { mountUsage } from "./usage.js";
import { mountCompliance } from "./compliance.js";
import { mountTrust } from "./trust.js";
import { mountPolicies } from "./policies.js";
import { mountWebhooks } from "./webhooks.js";

const VIEWS = ["quickstart", "onboarding", "dashboard"];

function showView() {
  const wanted = location.hash.slice(1);
  const view = VIEWS.includes(wanted) ? wanted : "quickstart";
  for (const name of VIEWS) document.getElementById(name).hidden = name !== view;
  for (const link of document.querySelectorAll("nav a[data-view]")) {
    if (link.dataset.view === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${document.getElementById(`${view}-title`).textContent} · AgentIdP portal`;
  return view;
}

// --- dashboard tabs ----------------------------------------------------------------------------
const panels = {
  agents: mountAgents,
  audit: mountAudit,
  usage: mountUsage,
  compliance: mountCompliance,
  trust: mountTrust,
  policies: mountPolicies,
  webhooks: mountWebhooks,
};
let mounted = {};

function selectTab(tab, { focus = false } = {}) {
  for (const other of document.querySelectorAll("[role=tab]")) {
    const selected = other === tab;
    other.setAttribute("aria-selected", String(selected));
    other.tabIndex = selected ? 0 : -1;
    document.getElementById(other.getAttribute("aria-controls")).hidden = !selected;
  }
  if (focus) tab.focus();
  const name = tab.id.replace(/^tab-/, "");
  const panel = document.getElementById(`panel-${name}`);
  if (!mounted[name]) mounted[name] = panels[name](panel);
  else mounted[name].refresh?.();
}

function setUpTabs() {
  const tabs = [...document.querySelectorAll("[role=tab]")];
  for (const tab of tabs) {
    tab.addEventListener("click", () => selectTab(tab));
    tab.addEventListener("keydown", (event) => {
      const index = tabs.indexOf(tab);
      const next = {
        ArrowRight: tabs[(index + 1) % tabs.length],
        ArrowLeft: tabs[(index - 1 + tabs.length) % tabs.length],
        Home: tabs[0],
        End: tabs[tabs.length - 1],
      }[event.key];
      if (next) {
        event.preventDefault();
        selectTab(next, { focus: true });
      }
    });
  }
}

// --- sign-in -----------------------------------------------------------------------------------
function setUpSignIn() {
  const form = document.getElementById("signin-form");
  const message = form.querySelector(".message");
  const consoleView = document.getElementById("console");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const clientId = form.elements.client_id.value.trim();
    const secret = form.elements.client_secret.value;
    if (!clientId || !secret) {
      say(message, "Enter the client id and the client secret.", "error");
      return;
    }
    say(message, "Signing in…");
    try {
      await signIn(clientId, secret);
      say(message, "");
    } catch (error) {
      const text =
        error instanceof ApiError && error.code === "invalid_client"
          ? "That client id and secret were not accepted."
          : error instanceof ApiError
            ? error.describe()
            : `Network error: ${error.message}`;
      say(message, text, "error");
    } finally {
      // The secret is not kept: the token is all the dashboard needs.
      form.elements.client_secret.value = "";
    }
  });
  document.getElementById("signout").addEventListener("click", () => signOut());

  sessionEvents.addEventListener("signed-in", () => {
    const session = currentSession();
    const admin = session.scope.includes("agents:write");
    document.getElementById("session-summary").textContent =
      `Signed in as ${session.clientId}` +
      (session.orgId ? ` (organization ${session.orgId})` : "") +
      `; the token expires at ${when(session.expiresAt)}.` +
      (admin ? "" : " This client lacks the admin scopes: some panels will refuse.");
    form.hidden = true;
    consoleView.hidden = false;
    mounted = {};
    for (const name of Object.keys(panels)) document.getElementById(`panel-${name}`).replaceChildren();
    selectTab(document.getElementById("tab-agents"));
    document.getElementById("dashboard-title").focus();
  });
  sessionEvents.addEventListener("signed-out", (event) => {
    consoleView.hidden = true;
    mounted = {};
    for (const name of Object.keys(panels)) document.getElementById(`panel-${name}`).replaceChildren();
    form.hidden = false;
    const reason = {
      expired: "The access token expired: sign in again.",
      rejected: "The server no longer accepts the access token: sign in again.",
    }[event.detail.reason];
    say(form.querySelector(".message"), reason ?? "Signed out.", reason ? "error" : "info");
    form.elements.client_id.focus();
  });
}

function start() {
  setUpQuickStart(document.getElementById("quickstart"));
  setUpOnboarding(document.getElementById("onboarding-form"), document.getElementById("onboarding-result"), {
    onUseCredential: (clientId) => {
      document.getElementById("signin-client-id").value = clientId;
      location.hash = "#dashboard";
      document.getElementById("signin-client-secret").focus();
    },
  });
  setUpSignIn();
  setUpTabs();
  document.getElementById("dashboard-title").tabIndex = -1;
  window.addEventListener("hashchange", () => {
    const view = showView();
    document.getElementById(`${view}-title`).setAttribute("tabindex", "-1");
    document.getElementById(`${view}-title`).focus();
  });
  // Leaving the page (or its being put in the back/forward cache) forgets the token and any secret.
  window.addEventListener("pagehide", () => {
    forgetSecrets();
    signOut();
  });
  showView();
}

start();
