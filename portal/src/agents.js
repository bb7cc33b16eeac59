// The agents panel: list and search, register, suspend or reactivate, decommission, and each
// agent's credentials (create a client secret, list, rotate, revoke). New secrets show once.

import { api, describeError, query } from "./api.js";
import { field, fill, h, say, secretPanel, when } from "./dom.js";

const PAGE = 50;

/** Scopes typed as a list separated by spaces or commas. */
export function parseList(text) {
  return text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

function options(values, selected) {
  return values.map(([value, label]) => h("option", { value, selected: value === selected }, label));
}

export function mountAgents(panel) {
  let agents = [];
  let cursor = null;
  let openAgent = null;

  const message = h("p", { class: "message", role: "status", "aria-live": "polite" });
  const search = h("input", { type: "search", placeholder: "Name, type, owner, capability or id", autocomplete: "off" });
  const status = h(
    "select",
    null,
    options([
      ["", "Any status"],
      ["active", "Active"],
      ["suspended", "Suspended"],
      ["decommissioned", "Decommissioned"],
    ]),
  );
  const rows = h("tbody");
  const count = h("p", { class: "help", "aria-live": "polite" });
  const more = h("button", { type: "button", hidden: true, onclick: () => load(false) }, "Load more");
  const credentials = h("section", { class: "credentials", "aria-label": "Credentials", hidden: true });

  // --- register --------------------------------------------------------------------------------
  const registerMessage = h("p", { class: "message", role: "status", "aria-live": "polite" });
  const register = h(
    "form",
    { class: "card grid", method: "post", novalidate: true, "aria-labelledby": "register-title" },
    h("h3", { id: "register-title", class: "span" }, "Register an agent"),
    field("agent-name", "Name", h("input", { name: "name", required: true, maxlength: 200, autocomplete: "off" })),
    field("agent-type", "Agent type", h("input", { name: "agent_type", required: true, value: "assistant", autocomplete: "off" })),
    field(
      "agent-capabilities",
      "Capabilities",
      h("input", { name: "capabilities", autocomplete: "off", spellcheck: "false" }),
      "The scopes it may be granted, separated by spaces or commas, e.g. read:docs write:docs",
    ),
    field("agent-email", "Email (optional)", h("input", { name: "email", type: "email", autocomplete: "off" })),
    field("agent-owner", "Owner (optional)", h("input", { name: "owner", autocomplete: "off" })),
    field(
      "agent-env",
      "Deployment environment",
      h(
        "select",
        { name: "deployment_env" },
        options([
          ["", "Default"],
          ["development", "Development"],
          ["staging", "Staging"],
          ["production", "Production"],
        ]),
      ),
    ),
    field(
      "agent-visibility",
      "Visibility",
      h(
        "select",
        { name: "visibility" },
        options([
          ["private", "Private"],
          ["public", "Public: listed in the marketplace"],
        ]),
      ),
    ),
    field(
      "agent-description",
      "What it does (optional)",
      h("input", { name: "description", maxlength: 2000, autocomplete: "off" }),
      "What it does, searched in the marketplace when it is public",
    ),
    field(
      "agent-tags",
      "Tags (optional)",
      h("input", { name: "tags", autocomplete: "off", spellcheck: "false" }),
      "Lowercase words of a-z, 0-9 and -, separated by spaces or commas, e.g. nlp i18n",
    ),
    field("agent-a2a-url", "A2A endpoint (optional)", h("input", { name: "a2a_url", type: "url", autocomplete: "off" })),
    h(
      "div",
      { class: "field span" },
      h(
        "label",
        { class: "inline", for: "agent-management" },
        h("input", { type: "checkbox", name: "allow_management_scopes", id: "agent-management" }),
        " Allow management scopes (agents:*, audit:*, webhooks:*, …): the agent becomes an administrator of those APIs",
      ),
    ),
    h("div", { class: "span" }, h("button", { type: "submit", class: "primary" }, "Register agent"), registerMessage),
  );
  register.addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = register.elements;
    const body = {
      name: form.name.value.trim(),
      agent_type: form.agent_type.value.trim(),
      capabilities: parseList(form.capabilities.value),
      visibility: form.visibility.value,
    };
    if (form.allow_management_scopes.checked) body.allow_management_scopes = true;
    if (parseList(form.tags.value).length) body.tags = parseList(form.tags.value);
    for (const key of ["email", "owner", "deployment_env", "description", "a2a_url"]) {
      if (form[key].value.trim()) body[key] = form[key].value.trim();
    }
    if (!body.name || !body.agent_type) {
      say(registerMessage, "Name and agent type are required.", "error");
      return;
    }
    say(registerMessage, "Registering…");
    try {
      const agent = await api("POST", "/v1/agents", body);
      say(registerMessage, `Registered ${agent.name} (${agent.id}). Create its credential below.`);
      register.reset();
      await load(true);
      showCredentials(agent);
    } catch (error) {
      say(registerMessage, describeError(error), "error");
    }
  });

  // --- list ------------------------------------------------------------------------------------
  function matches(agent, needle) {
    if (!needle) return true;
    const haystack = [agent.name, agent.agent_type, agent.owner, agent.email, agent.id, ...(agent.capabilities ?? [])]
      .filter(Boolean)
      .join(" ")
      .toLowerCase();
    return needle
      .toLowerCase()
      .split(/\s+/)
      .every((word) => haystack.includes(word));
  }

  async function changeStatus(agent, next) {
    try {
      const updated = await api("PATCH", `/v1/agents/${encodeURIComponent(agent.id)}`, { status: next });
      say(message, `${updated.name} is now ${updated.status}.`);
      await load(true);
    } catch (error) {
      say(message, describeError(error), "error");
    }
  }

  async function decommission(agent) {
    const sure = confirm(
      `Decommission ${agent.name}? This is permanent: its tokens are revoked and it can never authenticate again.`,
    );
    if (!sure) return;
    try {
      await api("DELETE", `/v1/agents/${encodeURIComponent(agent.id)}`);
      say(message, `${agent.name} is decommissioned.`);
      await load(true);
      if (openAgent?.id === agent.id) showCredentials({ ...agent, status: "decommissioned" });
    } catch (error) {
      say(message, describeError(error), "error");
    }
  }

  function row(agent) {
    const actions = [
      h(
        "button",
        { type: "button", onclick: () => showCredentials(agent), "aria-label": `Credentials of ${agent.name}` },
        "Credentials",
      ),
    ];
    if (agent.status === "active") {
      actions.push(
        h("button", { type: "button", onclick: () => changeStatus(agent, "suspended"), "aria-label": `Suspend ${agent.name}` }, "Suspend"),
      );
    } else if (agent.status === "suspended") {
      actions.push(
        h("button", { type: "button", onclick: () => changeStatus(agent, "active"), "aria-label": `Reactivate ${agent.name}` }, "Reactivate"),
      );
    }
    if (agent.status !== "decommissioned") {
      actions.push(
        h(
          "button",
          { type: "button", class: "danger", onclick: () => decommission(agent), "aria-label": `Decommission ${agent.name}` },
          "Decommission",
        ),
      );
    }
    return h(
      "tr",
      { "data-agent-id": agent.id },
      h("th", { scope: "row" }, agent.name, h("br"), h("code", { class: "id" }, agent.id)),
      h("td", { "data-label": "Type" }, agent.agent_type),
      h("td", { "data-label": "Status" }, h("span", { class: `badge ${agent.status}` }, agent.status)),
      h("td", { "data-label": "Capabilities" }, (agent.capabilities ?? []).map((c) => [h("code", null, c), " "])),
      h("td", { "data-label": "Registered" }, when(agent.created_at)),
      h("td", { "data-label": "Last authenticated" }, when(agent.last_auth_at)),
      h("td", { class: "actions" }, actions),
    );
  }

  function render() {
    const needle = search.value.trim();
    const shown = agents.filter((agent) => matches(agent, needle));
    fill(
      rows,
      shown.length
        ? shown.map(row)
        : h("tr", null, h("td", { colspan: 7 }, agents.length ? "No agent matches the search." : "No agents yet: register one below.")),
    );
    count.textContent = `${shown.length} of ${agents.length} loaded agents shown${cursor ? "; more on the server" : ""}.`;
    more.hidden = !cursor;
  }

  async function load(reset) {
    if (reset) {
      agents = [];
      cursor = null;
    }
    try {
      const page = await api("GET", `/v1/agents${query({ limit: PAGE, status: status.value, cursor })}`);
      agents = agents.concat(page.data);
      cursor = page.next_cursor;
      render();
    } catch (error) {
      say(message, describeError(error), "error");
    }
  }

  // --- credentials -----------------------------------------------------------------------------
  async function showCredentials(agent) {
    openAgent = agent;
    credentials.hidden = false;
    const heading = h("h3", { tabindex: "-1" }, `Credentials of ${agent.name}`);
    const credMessage = h("p", { class: "message", role: "status", "aria-live": "polite" });
    const revealed = h("div");
    const list = h("tbody");
    const base = `/v1/agents/${encodeURIComponent(agent.id)}/credentials`;

    function reveal(credential, verb) {
      fill(
        revealed,
        secretPanel({
          title: `${verb} client secret for ${agent.name}`,
          warning:
            "Copy it now into the agent's secret store. AgentIdP keeps only its hash; it cannot be shown again " +
            "(rotate the credential if it is lost).",
          fields: [
            { label: "Client id", value: credential.client_id },
            { label: "Client secret", value: credential.client_secret, secret: true },
          ],
        }),
      );
    }

    async function refresh() {
      try {
        const page = await api("GET", `${base}${query({ limit: 200 })}`);
        fill(
          list,
          page.data.length
            ? page.data.map((credential) => credentialRow(credential))
            : h("tr", null, h("td", { colspan: 6 }, "No credentials yet.")),
        );
      } catch (error) {
        say(credMessage, describeError(error), "error");
      }
    }

    function credentialRow(credential) {
      const grace = h("input", {
        type: "number",
        min: 0,
        value: 0,
        class: "narrow",
        "aria-label": `Grace period in seconds for the previous secret of ${credential.client_id}`,
      });
      const actions = [];
      if (credential.status === "active" && credential.kind === "client_secret") {
        actions.push(
          h("label", { class: "inline" }, "Grace (s) ", grace),
          h(
            "button",
            {
              type: "button",
              "aria-label": `Rotate ${credential.client_id}`,
              onclick: async () => {
                try {
                  const rotated = await api("POST", `${base}/${encodeURIComponent(credential.id)}/rotate`, {
                    grace_period_seconds: Number(grace.value) || 0,
                  });
                  reveal(rotated, "Rotated");
                  say(credMessage, `Rotated ${rotated.client_id}.`);
                  await refresh();
                } catch (error) {
                  say(credMessage, describeError(error), "error");
                }
              },
            },
            "Rotate",
          ),
        );
      }
      if (credential.status === "active") {
        actions.push(
          h(
            "button",
            {
              type: "button",
              class: "danger",
              "aria-label": `Revoke ${credential.client_id}`,
              onclick: async () => {
                if (!confirm(`Revoke ${credential.client_id}? It stops authenticating and its tokens are revoked.`)) return;
                try {
                  await api("DELETE", `${base}/${encodeURIComponent(credential.id)}`);
                  say(credMessage, `Revoked ${credential.client_id}.`);
                  await refresh();
                } catch (error) {
                  say(credMessage, describeError(error), "error");
                }
              },
            },
            "Revoke",
          ),
        );
      }
      return h(
        "tr",
        null,
        h("th", { scope: "row" }, h("code", null, credential.client_id)),
        h("td", { "data-label": "Kind" }, credential.kind === "client_secret" ? "client secret" : "private key JWT"),
        h("td", { "data-label": "Status" }, h("span", { class: `badge ${credential.status}` }, credential.status)),
        h("td", { "data-label": "Created" }, when(credential.created_at)),
        h("td", { "data-label": "Last used" }, when(credential.last_used_at)),
        h("td", { class: "actions" }, actions),
      );
    }

    const create = h(
      "button",
      {
        type: "button",
        class: "primary",
        disabled: agent.status === "decommissioned",
        onclick: async () => {
          try {
            const credential = await api("POST", base, {});
            reveal(credential, "New");
            say(credMessage, `Created ${credential.client_id}.`);
            await refresh();
          } catch (error) {
            say(credMessage, describeError(error), "error");
          }
        },
      },
      "Create client secret",
    );

    fill(
      credentials,
      heading,
      h("p", null, create, " ", h("button", { type: "button", onclick: () => closeCredentials() }, "Close")),
      credMessage,
      revealed,
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          { class: "stack" },
          h("caption", { class: "visually-hidden" }, `Credentials of ${agent.name}`),
          h(
            "thead",
            null,
            h("tr", null, ["Client id", "Kind", "Status", "Created", "Last used", "Actions"].map((t) => h("th", { scope: "col" }, t))),
          ),
          list,
        ),
      ),
    );
    await refresh();
    heading.focus();
  }

  function closeCredentials() {
    openAgent = null;
    credentials.hidden = true;
    credentials.replaceChildren();
  }

  search.addEventListener("input", render);
  status.addEventListener("change", () => load(true));

  fill(
    panel,
    h("h2", null, "Agents"),
    h(
      "div",
      { class: "toolbar" },
      field("agent-search", "Search loaded agents", search),
      field("agent-status-filter", "Status", status),
      h("button", { type: "button", onclick: () => load(true) }, "Refresh"),
    ),
    message,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { id: "agents-table", class: "stack" },
        h("caption", { class: "visually-hidden" }, "Agents of the organization"),
        h(
          "thead",
          null,
          h(
            "tr",
            null,
            ["Name", "Type", "Status", "Capabilities", "Registered", "Last authenticated", "Actions"].map((t) =>
              h("th", { scope: "col" }, t),
            ),
          ),
        ),
        rows,
      ),
    ),
    count,
    more,
    credentials,
    register,
  );
  load(true);
  return { refresh: () => load(true) };
}
