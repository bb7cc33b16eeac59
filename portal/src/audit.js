// The audit panel: the organization's hash-chained trail, newest first, with filters, a "verify
// chain" button (GET /v1/audit/verify recomputes every link on the server) and an NDJSON export.

import { api, apiBlob, describeError, query } from "./api.js";
import { fill, h, say, when } from "./dom.js";

const ACTIONS = [
  "org.created",
  "agent.created",
  "agent.updated",
  "agent.suspended",
  "agent.reactivated",
  "agent.decommissioned",
  "credential.created",
  "credential.rotated",
  "credential.revoked",
  "token.issued",
  "token.revoked",
  "authentication.failed",
  "trust_policy.created",
  "trust_policy.deleted",
  "trust_policy.pinned",
  "token.exchange_denied",
];

function labelled(id, label, input) {
  input.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), input);
}

/** What the verification answer means, in a sentence. */
export function verdict(result) {
  if (result.valid) {
    const head = result.head ? `; head #${result.head.seq}, hash ${result.head.hash.slice(0, 16)}…` : "";
    return `Chain intact: ${result.events_checked} events checked${head}.`;
  }
  const broken = result.first_broken ?? {};
  return (
    `Chain broken at event #${broken.seq ?? "?"} (${String(broken.reason ?? "unknown").replace(/_/g, " ")}); ` +
    `${result.events_checked} events checked. The trail was altered outside AgentIdP.`
  );
}

export function mountAudit(panel) {
  let events = [];
  let cursor = null;
  const message = h("p", { class: "message", role: "status", "aria-live": "polite" });
  const action = h("input", { list: "audit-actions", autocomplete: "off", placeholder: "any" });
  const outcome = h(
    "select",
    null,
    h("option", { value: "" }, "Any outcome"),
    h("option", { value: "success" }, "Success"),
    h("option", { value: "failure" }, "Failure"),
  );
  const agent = h("input", { autocomplete: "off", spellcheck: "false", placeholder: "any" });
  const rows = h("tbody");
  const more = h("button", { type: "button", hidden: true, onclick: () => load(false) }, "Load more");
  const result = h("div", { id: "verify-result", class: "verdict", role: "status", "aria-live": "polite" });
  const verify = h("button", { type: "button", class: "primary", onclick: () => verifyChain() }, "Verify chain");
  const exportLink = h("button", { type: "button", onclick: () => exportTrail() }, "Export (NDJSON)");

  async function verifyChain() {
    verify.disabled = true;
    fill(result, "Verifying…");
    result.dataset.kind = "info";
    try {
      const answer = await api("GET", "/v1/audit/verify");
      fill(result, h("strong", null, answer.valid ? "✔ " : "✘ "), verdict(answer));
      result.dataset.kind = answer.valid ? "ok" : "error";
    } catch (error) {
      fill(result, describeError(error));
      result.dataset.kind = "error";
    } finally {
      verify.disabled = false;
    }
  }

  async function exportTrail() {
    try {
      const blob = await apiBlob("GET", "/v1/audit/export", "application/x-ndjson");
      const url = URL.createObjectURL(blob);
      const link = h("a", { href: url, download: "audit-events.ndjson", hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      say(message, "Export downloaded (audit-events.ndjson).");
    } catch (error) {
      say(message, describeError(error), "error");
    }
  }

  function row(event) {
    return h(
      "tr",
      null,
      h("td", null, String(event.seq)),
      h("td", null, when(event.occurred_at)),
      h("th", { scope: "row" }, h("code", null, event.action)),
      h("td", null, h("span", { class: `badge ${event.outcome}` }, event.outcome)),
      h("td", null, h("code", null, event.actor)),
      h("td", null, event.agent_id ? h("code", { class: "id" }, event.agent_id) : "—"),
      h("td", null, h("code", { class: "hash", title: event.hash }, `${event.hash.slice(0, 12)}…`)),
    );
  }

  async function load(reset) {
    if (reset) {
      events = [];
      cursor = null;
    }
    try {
      const params = { limit: 50, action: action.value.trim(), outcome: outcome.value, agent_id: agent.value.trim(), cursor };
      const page = await api("GET", `/v1/audit/events${query(params)}`);
      events = events.concat(page.data);
      cursor = page.next_cursor;
      fill(rows, events.length ? events.map(row) : h("tr", null, h("td", { colspan: 7 }, "No events match.")));
      more.hidden = !cursor;
      say(message, `${events.length} events shown${cursor ? "; more on the server" : ""}.`);
    } catch (error) {
      say(message, describeError(error), "error");
    }
  }

  const filters = h(
    "form",
    { class: "toolbar", method: "post", novalidate: true, "aria-label": "Filter the audit trail" },
    labelled("audit-action", "Action", action),
    h("datalist", { id: "audit-actions" }, ACTIONS.map((a) => h("option", { value: a }))),
    labelled("audit-outcome", "Outcome", outcome),
    labelled("audit-agent", "Agent id", agent),
    h("button", { type: "submit" }, "Apply"),
  );
  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    load(true);
  });

  fill(
    panel,
    h("h2", null, "Audit trail"),
    h(
      "p",
      null,
      "Every change and authentication outcome, append-only: each event carries the hash of the one before, so " +
        "altering or removing any event breaks the chain from there on.",
    ),
    h("div", { class: "toolbar" }, verify, exportLink),
    result,
    filters,
    message,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { id: "audit-table" },
        h("caption", { class: "visually-hidden" }, "Audit events, newest first"),
        h(
          "thead",
          null,
          h("tr", null, ["#", "When", "Action", "Outcome", "Actor", "Agent", "Hash"].map((t) => h("th", { scope: "col" }, t))),
        ),
        rows,
      ),
    ),
    more,
  );
  load(true);
  return { refresh: () => load(true) };
}
