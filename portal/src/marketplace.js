// The public marketplace page: search with facets and result cards, and an agent's page with its
// signed A2A card, its DID and how to verify the signature. Public API only, no credentials.
import { fill, h } from "/portal/dom.js";

const $ = (id) => document.getElementById(id);
const state = { q: "", agent_type: null, tags: new Set(), cursor: null };

function searchUrl(cursor) {
  const params = new URLSearchParams();
  if (state.q) params.set("q", state.q);
  if (state.agent_type) params.set("agent_type", state.agent_type);
  for (const tag of state.tags) params.append("tag", tag);
  params.set("facets", "agent_type,tags");
  params.set("limit", "20");
  if (cursor) params.set("cursor", cursor);
  return `/v1/marketplace/agents?${params}`;
}

async function getJson(url) {
  const response = await fetch(url, { headers: { accept: "application/json" } });
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new Error(body?.detail ?? `${response.status} ${response.statusText}`);
  return body;
}

function resultCard(agent) {
  return h("li", { class: "result card", "data-agent": agent.id },
    h("h2", {}, h("a", { href: `#agent=${agent.id}` }, agent.name)),
    h("p", { class: "meta" }, agent.agent_type, agent.version ? ` · v${agent.version}` : "", ` · ${agent.deployment_env}`),
    agent.description ? h("p", {}, agent.description) : null,
    agent.tags.length ? h("p", { class: "chips" }, agent.tags.map((t) => h("span", { class: "chip" }, t))) : null,
    agent.skills.length ? h("p", { class: "help" }, "Skills: ", agent.skills.map((s) => s.name).join(", ")) : null,
  );
}

function facet(name, counts, selected, toggle) {
  const box = $(`facet-${name}`);
  const legend = box.querySelector("legend");
  fill(box, legend, (counts ?? []).map(({ value, count }) => {
    const id = `facet-${name}-${value}`;
    return h("label", { class: "inline facet-value", for: id },
      h("input", { type: "checkbox", id, checked: selected(value), onchange: () => toggle(value) }),
      `${value} (${count})`);
  }));
}

async function search({ append = false } = {}) {
  const status = $("status");
  status.textContent = "Searching…";
  delete status.dataset.kind;
  try {
    const page = await getJson(searchUrl(append ? state.cursor : null));
    const results = $("results");
    if (!append) results.replaceChildren();
    results.append(...page.data.map(resultCard));
    state.cursor = page.next_cursor;
    $("more").hidden = !page.next_cursor;
    const shown = results.children.length;
    status.textContent = shown ? `${shown} agent${shown === 1 ? "" : "s"} shown` : "No agent matches.";
    facet("agent_type", page.facets?.agent_type, (v) => state.agent_type === v, (v) => {
      state.agent_type = state.agent_type === v ? null : v;
      search();
    });
    facet("tags", page.facets?.tags, (v) => state.tags.has(v), (v) => {
      if (!state.tags.delete(v)) state.tags.add(v);
      search();
    });
  } catch (error) {
    status.dataset.kind = "error";
    status.textContent = `Search failed: ${error.message}`;
  }
}

function decodeProtected(text) {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(atob(base64 + "=".repeat((4 - (base64.length % 4)) % 4)));
}

function fact(term, ...value) {
  return [h("dt", {}, term), h("dd", {}, ...value)];
}

async function showAgent(id) {
  $("search-view").hidden = true;
  $("agent-view").hidden = false;
  const title = $("agent-title");
  title.textContent = "Loading…";
  try {
    const cardUrl = `/v1/marketplace/agents/${encodeURIComponent(id)}/agent-card.json`;
    const [agent, card] = await Promise.all([
      getJson(`/v1/marketplace/agents/${encodeURIComponent(id)}`),
      getJson(cardUrl),
    ]);
    title.textContent = agent.name;
    $("agent-description").textContent = agent.description || `${agent.name} (${agent.agent_type})`;
    const header = decodeProtected(card.signatures[0].protected);
    const didUrl = `/agents/${encodeURIComponent(id)}/did.json`;
    fill($("agent-facts"),
      fact("DID", h("code", { id: "agent-did" }, agent.did), " ", h("a", { href: didUrl }, "document")),
      fact("A2A endpoint", agent.a2a_url ? h("a", { href: agent.a2a_url, rel: "noopener" }, agent.a2a_url) : "—"),
      fact("Capabilities", agent.capabilities.length ? agent.capabilities.join(", ") : "—"),
      fact("Skills", agent.skills.length ? agent.skills.map((s) => s.name).join(", ") : "—"),
      fact("Signed by", h("code", { id: "agent-kid" }, header.kid), ` (${header.alg}, key set `, h("a", { href: header.jku }, header.jku), ")"),
    );
    fill($("verify-steps"),
      h("li", {}, "Fetch the card: ", h("a", { href: cardUrl }, cardUrl), "."),
      h("li", {}, "Remove its ", h("code", {}, "signatures"), " member and canonicalise the rest with RFC 8785 (JCS)."),
      h("li", {}, "Take the key whose ", h("code", {}, "kid"), ` is ${header.kid} from `, h("a", { href: header.jku }, header.jku), "."),
      h("li", {}, "Verify ", h("code", {}, "signatures[0]"), " as a detached JWS (RFC 7515 Appendix F): the signing input is ",
        h("code", {}, "protected + \".\" + BASE64URL(canonical card)"), ". Any changed byte fails."),
      h("li", {}, "To check who the agent is, resolve its DID: its document lists the keys the agent authenticates with."),
    );
    $("agent-card").firstElementChild.textContent = JSON.stringify(card, null, 2);
  } catch (error) {
    title.textContent = "Agent not found";
    $("agent-description").textContent = error.message;
    fill($("agent-facts"));
    fill($("verify-steps"));
    $("agent-card").firstElementChild.textContent = "";
  }
  $("main").focus();
}

function route() {
  const match = location.hash.match(/^#agent=([0-9a-fA-F-]{36})$/);
  if (match) {
    showAgent(match[1]);
  } else {
    $("agent-view").hidden = true;
    $("search-view").hidden = false;
  }
}

$("search-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.q = $("q").value.trim();
  state.agent_type = null;
  state.tags.clear();
  search();
});
$("more").addEventListener("click", () => search({ append: true }));
$("back").addEventListener("click", (event) => {
  event.preventDefault();
  history.pushState(null, "", location.pathname);
  route();
});
window.addEventListener("hashchange", route);
route();
search();
