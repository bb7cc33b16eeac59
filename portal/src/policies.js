// The policies panel: the organization's Cedar policies (GET, POST, PUT with If-Match, DELETE
// /v1/policies), validation messages shown at the line and column Cedar names, and a dry run.

import { api, ApiError, describeError, query } from "./api.js";
import { field, fill, h, say, when } from "./dom.js";
import { parseList } from "./agents.js";

const EXAMPLE = `@reason("payments only for the payment API")
forbid(principal, action, resource)
when { context.scope == "payments:write" }
unless { resource == AgentIdP::Audience::"https://pay.example" };

permit(principal, action, resource);`;

/** The character offset of a 1-based line and column in `text`. */
function offsetOf(text, line, column) {
  const lines = text.split("\n");
  let offset = 0;
  for (let i = 0; i < Math.min(line - 1, lines.length); i++) offset += lines[i].length + 1;
  return offset + Math.max(0, column - 1);
}

export function mountPolicies(panel) {
  const message = h("p", { class: "message", role: "status", "aria-live": "polite" });
  const rows = h("tbody");
  const editing = { id: null, version: null };
  const description = h("input", { name: "description", autocomplete: "off", maxlength: 1000 });
  const cedar = h("textarea", { name: "cedar", rows: 10, spellcheck: "false", class: "cedar", required: true });
  const problem = h("p", { class: "message", id: "policy-problem", role: "alert" });
  const formTitle = h("h3", { id: "policy-form-title", class: "span" }, "Add a policy");
  const save = h("button", { type: "submit", class: "primary" }, "Save policy");
  const cancel = h("button", { type: "button", hidden: true }, "Cancel editing");
  const formMessage = h("p", { class: "message", role: "status", "aria-live": "polite" });
  cedar.value = EXAMPLE;

  function startEditing(policy) {
    editing.id = policy.id;
    editing.version = policy.version;
    description.value = policy.description;
    cedar.value = policy.cedar;
    formTitle.textContent = `Edit policy ${policy.id.slice(0, 8)}… (version ${policy.version})`;
    cancel.hidden = false;
    say(problem, "");
    cedar.focus();
  }

  function stopEditing() {
    editing.id = null;
    editing.version = null;
    description.value = "";
    cedar.value = EXAMPLE;
    formTitle.textContent = "Add a policy";
    cancel.hidden = true;
  }
  cancel.addEventListener("click", stopEditing);

  async function remove(policy) {
    if (!confirm(`Delete policy ${policy.id}? Its decisions stop applying to new tokens at once.`)) return;
    try {
      await api("DELETE", `/v1/policies/${encodeURIComponent(policy.id)}`);
      say(message, "Deleted the policy.");
      if (editing.id === policy.id) stopEditing();
      await load();
    } catch (error) {
      say(message, describeError(error), "error");
    }
  }

  function row(policy) {
    const first = policy.cedar.split("\n").find((line) => line.trim()) ?? "";
    return h(
      "tr",
      null,
      h("th", { scope: "row" }, policy.description || h("em", null, "no description")),
      h("td", null, h("code", null, first.length > 70 ? `${first.slice(0, 70)}…` : first)),
      h("td", null, String(policy.version)),
      h("td", null, when(policy.updated_at)),
      h(
        "td",
        { class: "actions" },
        h("button", { type: "button", onclick: () => startEditing(policy), "aria-label": `Edit policy ${policy.id}` }, "Edit"),
        h("button", { type: "button", class: "danger", onclick: () => remove(policy), "aria-label": `Delete policy ${policy.id}` }, "Delete"),
      ),
    );
  }

  async function load() {
    try {
      const page = await api("GET", `/v1/policies${query({ limit: 200 })}`);
      fill(rows, page.data.length ? page.data.map(row) : h("tr", null, h("td", { colspan: 5 }, "No policies: every scope within an agent's capabilities is issued.")));
      say(message, "");
    } catch (error) {
      say(message, describeError(error), "error");
    }
  }

  const form = h(
    "form",
    { class: "card grid", method: "post", novalidate: true, "aria-labelledby": "policy-form-title" },
    formTitle,
    field("policy-description", "Description", description, undefined, { wide: true }),
    field("policy-cedar", "Cedar policy", cedar, "Validated against the AgentIdP schema when saved; what no permit allows is denied, and forbid wins.", { wide: true }),
    problem,
    h("div", { class: "span" }, save, " ", cancel, formMessage),
  );
  cedar.setAttribute("aria-describedby", "policy-cedar-help policy-problem");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    say(problem, "");
    cedar.removeAttribute("aria-invalid");
    const body = { cedar: cedar.value, description: description.value.trim() };
    try {
      const policy = editing.id
        ? await api("PUT", `/v1/policies/${encodeURIComponent(editing.id)}`, body, { ifMatch: `"${editing.version}"` })
        : await api("POST", "/v1/policies", body);
      say(formMessage, `Saved (version ${policy.version}).`);
      stopEditing();
      await load();
    } catch (error) {
      if (error instanceof ApiError && error.code === "invalid_policy") {
        const { line, column, message: cedarMessage } = error.body;
        say(problem, `Line ${line}, column ${column}: ${cedarMessage}`, "error");
        cedar.setAttribute("aria-invalid", "true");
        cedar.focus();
        const at = offsetOf(cedar.value, line, column);
        cedar.setSelectionRange(at, at);
      } else if (error instanceof ApiError && error.code === "policy_changed") {
        say(problem, "Someone changed this policy since you opened it. Reload it and apply your change again.", "error");
      } else {
        say(formMessage, describeError(error), "error");
      }
    }
  });

  // --- dry run ----------------------------------------------------------------------------------
  const agentChoice = h("select", { name: "agent_id" }, h("option", { value: "" }, "Loading agents…"));
  const scopes = h("input", { name: "scopes", autocomplete: "off", placeholder: "payments:write read:docs" });
  const audience = h("input", { name: "audience", autocomplete: "off", placeholder: "the issuer" });
  const keyBound = h("input", { type: "checkbox", name: "key_bound", id: "dry-run-key-bound" });
  const decisions = h("tbody");
  const dryRunMessage = h("p", { class: "message", role: "status", "aria-live": "polite" });

  async function loadAgents() {
    try {
      const page = await api("GET", `/v1/agents${query({ limit: 200, status: "active" })}`);
      fill(
        agentChoice,
        h("option", { value: "" }, page.data.length ? "Choose an agent" : "No active agents"),
        page.data.map((agent) => h("option", { value: agent.id }, `${agent.name} (${agent.id.slice(0, 8)}…)`)),
      );
    } catch (error) {
      fill(agentChoice, h("option", { value: "" }, "Agents could not be loaded"));
    }
  }

  const dryRun = h(
    "form",
    { class: "card grid", method: "post", novalidate: true, "aria-labelledby": "dry-run-title" },
    h("h3", { id: "dry-run-title", class: "span" }, "Dry run"),
    field("dry-run-agent", "Agent", agentChoice, undefined, { wide: true }),
    field("dry-run-scopes", "Scopes", scopes, "Space- or comma-separated", { wide: true }),
    field("dry-run-audience", "Audience (optional)", audience, "The RFC 8707 resource the token would be for", { wide: true }),
    h("div", { class: "field span" }, h("label", { class: "inline", for: "dry-run-key-bound" }, keyBound, " The token is bound to a key (DPoP)")),
    h("div", { class: "span" }, h("button", { type: "submit" }, "Decide"), dryRunMessage),
    h(
      "div",
      { class: "table-wrap span" },
      h(
        "table",
        { id: "dry-run-table" },
        h("caption", { class: "visually-hidden" }, "Decisions"),
        h("thead", null, h("tr", null, ["Scope", "Decision", "Policies", "Reason"].map((t) => h("th", { scope: "col" }, t)))),
        decisions,
      ),
    ),
  );
  dryRun.addEventListener("submit", async (event) => {
    event.preventDefault();
    const body = { agent_id: agentChoice.value, scopes: parseList(scopes.value), context: { key_bound: keyBound.checked } };
    if (audience.value.trim()) body.audience = audience.value.trim();
    if (!body.agent_id || !body.scopes.length) {
      say(dryRunMessage, "Choose an agent and name at least one scope.", "error");
      return;
    }
    try {
      const result = await api("POST", "/v1/policies/evaluate", body);
      fill(
        decisions,
        result.decisions.map((d) =>
          h(
            "tr",
            null,
            h("th", { scope: "row" }, h("code", null, d.scope)),
            h("td", null, h("span", { class: `badge ${d.decision === "allow" ? "success" : "failure"}` }, d.decision)),
            h("td", null, d.policies.length ? d.policies.map((p) => p.slice(0, 8) + "…").join(", ") : "none"),
            h("td", null, d.reason ?? (d.max_lifetime_seconds ? `lifetime at most ${d.max_lifetime_seconds} s` : "")),
          ),
        ),
      );
      say(dryRunMessage, "");
    } catch (error) {
      say(dryRunMessage, describeError(error), "error");
    }
  });

  fill(
    panel,
    h("h2", null, "Policies"),
    h(
      "p",
      null,
      "Cedar policies decide which of an agent's capabilities each token may carry, for which audience, from which " +
        "workflow. They only narrow: capabilities stay the ceiling. An organization without policies issues every " +
        "requested capability; the admin credential's own tokens are never governed by them.",
    ),
    message,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { id: "policies-table" },
        h("caption", { class: "visually-hidden" }, "Policies"),
        h("thead", null, h("tr", null, ["Description", "Policy", "Version", "Updated", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
        rows,
      ),
    ),
    form,
    dryRun,
  );
  load();
  loadAgents();
  return {
    refresh: () => {
      load();
      loadAgents();
    },
  };
}
