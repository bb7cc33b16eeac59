// The trust-policies panel: which GitHub Actions workflows may get tokens for which agent, or
// register agents (GET, POST, DELETE /v1/oidc/trust-policies).

import { api, describeError, query } from "./api.js";
import { field, fill, h, say, when } from "./dom.js";
import { parseList } from "./agents.js";

export function mountTrust(panel) {
  const message = h("p", { class: "message", role: "status", "aria-live": "polite" });
  const rows = h("tbody");
  const agentChoice = h("select", { name: "agent_id" }, h("option", { value: "" }, "Loading agents…"));
  const formMessage = h("p", { class: "message", role: "status", "aria-live": "polite" });
  const registration = h("input", { type: "checkbox", name: "allow_registration" });

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

  async function remove(policy) {
    if (!confirm(`Delete the trust policy for ${policy.repository}? Its workflows lose access at once.`)) return;
    try {
      await api("DELETE", `/v1/oidc/trust-policies/${encodeURIComponent(policy.id)}`);
      say(message, `Deleted the policy for ${policy.repository}.`);
      await load();
    } catch (error) {
      say(message, describeError(error), "error");
    }
  }

  function row(policy) {
    const conditions = [
      policy.branch && `branch ${policy.branch}`,
      policy.environment && `environment ${policy.environment}`,
      policy.job_workflow_ref && `workflow ${policy.job_workflow_ref}`,
      policy.event_names?.length && `events ${policy.event_names.join(", ")}`,
    ].filter(Boolean);
    const grants = policy.allow_registration
      ? `registers agents (${policy.registered_agents ?? 0} of ${policy.max_registrations ?? "?"})`
      : `acts as ${policy.agent_id}`;
    return h(
      "tr",
      null,
      h("th", { scope: "row" }, h("code", null, policy.repository), policy.repository_id ? ` (id ${policy.repository_id})` : ""),
      h("td", null, conditions.length ? conditions.join("; ") : "any ref"),
      h("td", null, grants),
      h("td", null, (policy.scopes ?? []).join(" ") || "the agent's capabilities"),
      h("td", null, when(policy.created_at)),
      h(
        "td",
        { class: "actions" },
        h("button", { type: "button", class: "danger", onclick: () => remove(policy), "aria-label": `Delete the policy for ${policy.repository}` }, "Delete"),
      ),
    );
  }

  async function load() {
    try {
      const page = await api("GET", `/v1/oidc/trust-policies${query({ limit: 200 })}`);
      fill(rows, page.data.length ? page.data.map(row) : h("tr", null, h("td", { colspan: 6 }, "No trust policies.")));
      say(message, "");
    } catch (error) {
      say(message, describeError(error), "error");
    }
  }

  const form = h(
    "form",
    { class: "card grid", method: "post", novalidate: true, "aria-labelledby": "trust-form-title" },
    h("h3", { id: "trust-form-title", class: "span" }, "Add a trust policy"),
    field("trust-repository", "Repository", h("input", { name: "repository", required: true, placeholder: "octo/app", autocomplete: "off" }), "owner/name, or owner/pattern such as octo/app-*"),
    field("trust-branch", "Branch (optional)", h("input", { name: "branch", placeholder: "main", autocomplete: "off" }), "Exact, or an anchored pattern such as release/*"),
    field("trust-environment", "Environment (optional)", h("input", { name: "environment", autocomplete: "off" })),
    field("trust-agent", "Agent the workflow acts as", agentChoice),
    h(
      "div",
      { class: "field" },
      h("label", { class: "inline", for: "trust-registration" }, registration, " Instead, let the workflows register new agents"),
    ),
    field("trust-max", "Maximum registrations", h("input", { name: "max_registrations", type: "number", min: 1, value: 10 })),
    field("trust-scopes", "Scopes (optional)", h("input", { name: "scopes", autocomplete: "off" }), "A subset of the agent's capabilities; empty for all of them"),
    h("div", { class: "span" }, h("button", { type: "submit", class: "primary" }, "Add policy"), formMessage),
  );
  registration.id = "trust-registration";
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const f = form.elements;
    const body = { provider: "github", repository: f.repository.value.trim() };
    for (const key of ["branch", "environment"]) if (f[key].value.trim()) body[key] = f[key].value.trim();
    const scopes = parseList(f.scopes.value);
    if (scopes.length) body.scopes = scopes;
    if (registration.checked) {
      body.allow_registration = true;
      body.max_registrations = Number(f.max_registrations.value) || 10;
    } else if (f.agent_id.value) {
      body.agent_id = f.agent_id.value;
    } else {
      say(formMessage, "Choose the agent the workflow acts as, or let it register agents.", "error");
      return;
    }
    try {
      const policy = await api("POST", "/v1/oidc/trust-policies", body);
      say(formMessage, `Added the policy for ${policy.repository}.`);
      form.reset();
      await load();
    } catch (error) {
      say(formMessage, describeError(error), "error");
    }
  });

  fill(
    panel,
    h("h2", null, "Trust policies"),
    h(
      "p",
      null,
      "GitHub Actions workflows exchange their OIDC token for an agent token, with no stored secret, when a policy " +
        "names their repository (and optionally branch, environment, workflow). Federation must be enabled by the " +
        "operator (GITHUB_OIDC_AUDIENCE).",
    ),
    message,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { id: "trust-table" },
        h("caption", { class: "visually-hidden" }, "Trust policies"),
        h(
          "thead",
          null,
          h("tr", null, ["Repository", "Conditions", "Grants", "Scopes", "Created", "Actions"].map((t) => h("th", { scope: "col" }, t))),
        ),
        rows,
      ),
    ),
    form,
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
