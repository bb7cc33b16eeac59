// The usage panel: this month's figures and how close the organization is to its tier's limits
// (GET /v1/usage, and the RateLimit-* headers of the call itself), as an inline SVG bar chart.

import { api, ApiError, rateWindow } from "./api.js";
import { fill, h, say, svg, when } from "./dom.js";

const WIDTH = 640;
const BAR = 26;
const GAP = 30;
const LABEL = 200;
const VALUE = 130;

/** A bar's colour by how full it is: blue, amber from 80 %, red at the limit (all ≥ 4.5:1 on white). */
function colour(ratio) {
  if (ratio >= 1) return "#b91c1c";
  if (ratio >= 0.8) return "#92400e";
  return "#1d4ed8";
}

/** The bars to draw: each a used amount against a limit (`null` when the tier has none). */
export function bars(usage, window) {
  const list = [{ label: "Agents", used: usage.agents.count, limit: usage.agents.limit }];
  const limit = window.limit ?? usage.rate_limit.limit;
  const used = window.limit !== null && window.remaining !== null ? window.limit - window.remaining : null;
  list.push({
    label: `Requests, this ${usage.rate_limit.window_seconds} s window`,
    used,
    limit: limit === 0 ? null : limit,
  });
  return list;
}

function chart(list) {
  const height = list.length * (BAR + GAP) + 10;
  const track = WIDTH - LABEL - VALUE;
  const title = svg("title", { id: "usage-chart-title" }, "Usage against the tier's limits");
  const desc = svg(
    "desc",
    { id: "usage-chart-desc" },
    list.map((b) => `${b.label}: ${b.used ?? "unknown"} of ${b.limit ?? "unlimited"}`).join("; "),
  );
  const groups = list.map((bar, i) => {
    const y = 10 + i * (BAR + GAP);
    const ratio = bar.limit ? Math.min((bar.used ?? 0) / bar.limit, 1) : 0;
    const value =
      bar.limit === null || bar.limit === undefined
        ? `${bar.used ?? "—"} (no limit)`
        : `${bar.used ?? "—"} of ${bar.limit} (${Math.round(((bar.used ?? 0) / bar.limit) * 100)} %)`;
    return svg(
      "g",
      { class: "bar" },
      svg("text", { x: 0, y: y + BAR / 2 + 5, class: "chart-label" }, bar.label),
      svg("rect", { x: LABEL, y, width: track, height: BAR, rx: 4, fill: "#e5e7eb" }),
      svg("rect", {
        x: LABEL,
        y,
        width: Math.max(ratio * track, bar.used ? 2 : 0),
        height: BAR,
        rx: 4,
        fill: colour(ratio),
        "data-ratio": ratio.toFixed(3),
      }),
      svg("text", { x: LABEL + track + 8, y: y + BAR / 2 + 5, class: "chart-value" }, value),
    );
  });
  return svg(
    "svg",
    {
      viewBox: `0 0 ${WIDTH} ${height}`,
      role: "img",
      "aria-labelledby": "usage-chart-title usage-chart-desc",
      class: "chart",
      id: "usage-chart",
    },
    title,
    desc,
    groups,
  );
}

export function mountUsage(panel) {
  const message = h("p", { class: "message", role: "status", "aria-live": "polite" });
  const body = h("div");

  async function load() {
    try {
      const usage = await api("GET", "/v1/usage");
      fill(
        body,
        h(
          "dl",
          { class: "figures" },
          h("div", null, h("dt", null, "Tier"), h("dd", null, usage.tier)),
          h("div", null, h("dt", null, `Tokens issued in ${usage.month}`), h("dd", { id: "usage-tokens" }, String(usage.tokens_issued))),
          h("div", null, h("dt", null, `API calls in ${usage.month}`), h("dd", null, String(usage.api_calls))),
          h("div", null, h("dt", null, "Period (UTC month)"), h("dd", { class: "small" }, `${when(usage.period_start)} – ${when(usage.period_end)}`)),
        ),
        chart(bars(usage, rateWindow)),
        h(
          "p",
          { class: "help" },
          "Registering beyond the agent limit answers 403; beyond the request limit, 429 with Retry-After. " +
            "The request count is the server's own, from the RateLimit headers of this page's last call.",
        ),
      );
      say(message, "");
    } catch (error) {
      say(message, error instanceof ApiError ? error.describe() : `Network error: ${error.message}`, "error");
    }
  }

  fill(
    panel,
    h("h2", null, "Usage"),
    h("div", { class: "toolbar" }, h("button", { type: "button", onclick: () => load() }, "Refresh")),
    message,
    body,
  );
  load();
  return { refresh: load };
}
