// The webhooks panel: subscriptions (create, enable or disable, send a test, delete) and each one's
// delivery log. A deployment without the webhooks API answers 404 on the list: the panel says so.

import { api, ApiError, describeError, query } from "./api.js";
import { fill, h, say, secretPanel, when } from "./dom.js";

const EVENTS = [
  "agent.created",
  "agent.updated",
  "agent.suspended",
  "agent.decommissioned",
  "credential.created",
  "credential.rotated",
  "credential.revoked",
  "token.revoked",
  "trust_policy.created",
  "trust_policy.deleted",
  "organization.tier_changed",
];

export function mountWebhooks(panel) {
  const message = h("p", { class: "message", role: "status", "aria-live": "polite" });
  const rows = h("tbody");
  const revealed = h("div");
  const log = h("section", { class: "deliveries", "aria-label": "Delivery log", hidden: true });
  const content = h("div");

  function unavailable() {
    fill(
      content,
      h(
        "p",
        { class: "notice", id: "webhooks-unavailable" },
        "Webhooks are not available on this deployment: it does not serve /v1/webhooks.",
      ),
    );
  }

  async function showLog(webhook) {
    log.hidden = false;
    const heading = h("h3", { tabindex: "-1" }, `Deliveries to ${webhook.url}`);
    const body = h("tbody");
    fill(
      log,
      heading,
      h(
        "div",
        { class: "table-wrap" },
        h(
          "table",
          null,
          h("caption", { class: "visually-hidden" }, `Deliveries to ${webhook.url}, newest first`),
          h(
            "thead",
            null,
            h("tr", null, ["Event", "Type", "Status", "Attempts", "Last answer", "Next attempt"].map((t) => h("th", { scope: "col" }, t))),
          ),
          body,
        ),
      ),
    );
    try {
      const page = await api("GET", `/v1/webhooks/${encodeURIComponent(webhook.id)}/deliveries${query({ limit: 50 })}`);
      fill(
        body,
        page.data.length
          ? page.data.map((delivery) => {
              const last = delivery.attempts?.[delivery.attempts.length - 1];
              const answer = last ? (last.status_code ?? last.error ?? "no answer") : "—";
              return h(
                "tr",
                null,
                h("th", { scope: "row" }, h("code", { class: "id" }, delivery.id), h("br"), when(delivery.created_at)),
                h("td", null, h("code", null, delivery.event_type)),
                h("td", null, h("span", { class: `badge ${delivery.status}` }, delivery.status)),
                h("td", null, String(delivery.attempts?.length ?? 0)),
                h("td", null, String(answer)),
                h("td", null, when(delivery.next_attempt_at)),
              );
            })
          : h("tr", null, h("td", { colspan: 6 }, "No deliveries yet.")),
      );
    } catch (error) {
      fill(body, h("tr", null, h("td", { colspan: 6 }, describeError(error))));
    }
    heading.focus();
  }

  async function act(label, call) {
    try {
      await call();
      say(message, label);
      await load();
    } catch (error) {
      say(message, describeError(error), "error");
    }
  }

  function row(webhook) {
    const id = encodeURIComponent(webhook.id);
    return h(
      "tr",
      null,
      h("th", { scope: "row" }, h("code", null, webhook.url), webhook.description ? [h("br"), webhook.description] : null),
      h("td", null, webhook.events.join(", ")),
      h(
        "td",
        null,
        h("span", { class: `badge ${webhook.enabled ? "active" : "suspended"}` }, webhook.enabled ? "enabled" : "disabled"),
        webhook.disabled_reason ? [h("br"), webhook.disabled_reason] : null,
        webhook.failing_since ? [h("br"), `failing since ${when(webhook.failing_since)}`] : null,
      ),
      h(
        "td",
        { class: "actions" },
        h("button", { type: "button", onclick: () => showLog(webhook), "aria-label": `Deliveries to ${webhook.url}` }, "Deliveries"),
        h(
          "button",
          {
            type: "button",
            disabled: !webhook.enabled,
            "aria-label": `Send a test event to ${webhook.url}`,
            onclick: () => act("Test event queued: see its delivery log.", () => api("POST", `/v1/webhooks/${id}/test`)),
          },
          "Send test",
        ),
        h(
          "button",
          {
            type: "button",
            "aria-label": `${webhook.enabled ? "Disable" : "Enable"} ${webhook.url}`,
            onclick: () =>
              act(webhook.enabled ? "Disabled." : "Enabled.", () =>
                api("PATCH", `/v1/webhooks/${id}`, { enabled: !webhook.enabled }),
              ),
          },
          webhook.enabled ? "Disable" : "Enable",
        ),
        h(
          "button",
          {
            type: "button",
            class: "danger",
            "aria-label": `Delete ${webhook.url}`,
            onclick: () => {
              if (confirm(`Delete the subscription for ${webhook.url}?`)) {
                act("Deleted.", () => api("DELETE", `/v1/webhooks/${id}`));
              }
            },
          },
          "Delete",
        ),
      ),
    );
  }

  function form() {
    const formMessage = h("p", { class: "message", role: "status", "aria-live": "polite" });
    const boxes = ["*", ...EVENTS].map((event) =>
      h(
        "label",
        { class: "inline" },
        h("input", { type: "checkbox", name: "events", value: event }),
        " ",
        event === "*" ? "every event" : h("code", null, event),
      ),
    );
    const node = h(
      "form",
      { class: "card grid", method: "post", novalidate: true, "aria-labelledby": "webhook-form-title" },
      h("h3", { id: "webhook-form-title", class: "span" }, "Subscribe an endpoint"),
      h(
        "div",
        { class: "field" },
        h("label", { for: "webhook-url" }, "HTTPS URL"),
        h("input", { id: "webhook-url", name: "url", type: "url", required: true, placeholder: "https://example.com/hooks/agentidp" }),
      ),
      h(
        "div",
        { class: "field" },
        h("label", { for: "webhook-description" }, "Description (optional)"),
        h("input", { id: "webhook-description", name: "description", maxlength: 500 }),
      ),
      h("fieldset", { class: "span events" }, h("legend", null, "Events"), boxes),
      h("div", { class: "span" }, h("button", { type: "submit", class: "primary" }, "Subscribe"), formMessage),
    );
    node.addEventListener("submit", async (event) => {
      event.preventDefault();
      const events = [...node.querySelectorAll("input[name=events]:checked")].map((box) => box.value);
      const body = { url: node.elements.url.value.trim(), events };
      if (node.elements.description.value.trim()) body.description = node.elements.description.value.trim();
      if (!body.url || !events.length) {
        say(formMessage, "Give an HTTPS URL and at least one event.", "error");
        return;
      }
      try {
        const created = await api("POST", "/v1/webhooks", body);
        fill(
          revealed,
          secretPanel({
            title: `Signing secret for ${created.url}`,
            warning: "Deliveries are signed with it (Standard Webhooks). Store it now: it cannot be shown again.",
            fields: [{ label: "Signing secret", value: created.secret, secret: true }],
          }),
        );
        node.reset();
        say(formMessage, "Subscribed.");
        await load();
      } catch (error) {
        say(formMessage, describeError(error), "error");
      }
    });
    return node;
  }

  async function load() {
    try {
      const page = await api("GET", `/v1/webhooks${query({ limit: 100 })}`);
      if (!content.querySelector("table")) {
        fill(
          content,
          h(
            "div",
            { class: "table-wrap" },
            h(
              "table",
              { id: "webhooks-table" },
              h("caption", { class: "visually-hidden" }, "Webhook subscriptions"),
              h("thead", null, h("tr", null, ["Endpoint", "Events", "State", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
              rows,
            ),
          ),
          revealed,
          log,
          form(),
        );
      }
      fill(rows, page.data.length ? page.data.map(row) : h("tr", null, h("td", { colspan: 4 }, "No subscriptions.")));
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) unavailable();
      else say(message, describeError(error), "error");
    }
  }

  fill(
    panel,
    h("h2", null, "Webhooks"),
    h("p", null, "Signed HTTPS callbacks when agents, credentials, tokens or policies change, with every delivery logged."),
    message,
    content,
  );
  load();
  return { refresh: load };
}
