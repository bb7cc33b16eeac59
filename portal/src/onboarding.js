// Onboarding: creates an organization (POST /v1/orgs) and shows its admin credential once. The
// page keeps no copy: the panel is the only place the secret exists, and it is emptied when the
// person dismisses it or the page is hidden; a reload starts from an empty form.

import { api, ApiError } from "./api.js";
import { fill, h, say, secretPanel } from "./dom.js";

export function setUpOnboarding(form, result, { onUseCredential }) {
  const message = form.querySelector(".message");
  const button = form.querySelector("button[type=submit]");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = form.elements.name.value.trim();
    if (!name) {
      say(message, "Give the organization a name.", "error");
      form.elements.name.focus();
      return;
    }
    const signupToken = form.elements.signup_token.value.trim();
    button.disabled = true;
    say(message, "Creating…");
    try {
      const created = await api("POST", "/v1/orgs", { name }, signupToken ? { bearer: signupToken } : {});
      form.elements.signup_token.value = "";
      say(message, `Organization “${created.organization.name}” created.`);
      const { client_id: clientId, client_secret: clientSecret, scope } = created.admin_credential;
      const panel = secretPanel({
        title: "Your admin credential",
        warning:
          "Copy the client secret now and keep it in a password manager or secret store. AgentIdP keeps only its hash " +
          "and this page keeps no copy: once you remove it, reload or leave, it cannot be shown again (rotate the admin " +
          "credential if it is lost). Anyone holding it manages every agent of this organization.",
        fields: [
          { label: "Organization id", value: created.organization.id },
          { label: "Client id", value: clientId },
          { label: "Client secret", value: clientSecret, secret: true },
          { label: "Scopes", value: scope },
        ],
        after: () => form.elements.name.focus(),
      });
      panel.append(
        h(
          "p",
          null,
          h(
            "button",
            { type: "button", class: "primary", onclick: () => onUseCredential(clientId) },
            "Sign in to the dashboard",
          ),
          " (you will paste the secret there)",
        ),
      );
      fill(result, panel);
      form.reset();
      panel.querySelector("h2").setAttribute("tabindex", "-1");
      panel.querySelector("h2").focus();
    } catch (error) {
      say(message, error instanceof ApiError ? error.describe() : `Network error: ${error.message}`, "error");
    } finally {
      button.disabled = false;
    }
  });
}
