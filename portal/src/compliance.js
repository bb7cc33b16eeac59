// The compliance panel: the organization's report (GET /v1/compliance/report) in figures and a
// table of activity per agent, tokens per day from the analytics counters
// (GET /v1/analytics/tokens) as an inline SVG chart, and the report as CSV.

import { api, apiBlob, describeError } from "./api.js";
import { fill, h, say, svg } from "./dom.js";

const WIDTH = 640;
const HEIGHT = 160;

/** Tokens per day, oldest first: `[{ day: "2026-01-31", count }]` from the analytics series. */
export function perDay(analytics) {
  const days = new Map();
  for (const point of analytics.series) {
    const day = point.start.slice(0, 10);
    days.set(day, (days.get(day) ?? 0) + point.count);
  }
  return [...days].map(([day, count]) => ({ day, count }));
}

function chart(days) {
  const max = Math.max(1, ...days.map((d) => d.count));
  // At most 40 units a day, so a few days do not look like a month.
  const width = Math.min((WIDTH - 20) / Math.max(days.length, 1), 40);
  const title = svg("title", { id: "tokens-chart-title" }, "Tokens issued per day");
  const desc = svg(
    "desc",
    { id: "tokens-chart-desc" },
    days.length ? days.map((d) => `${d.day}: ${d.count}`).join("; ") : "No tokens in the last 30 days",
  );
  const bars = days.map((d, i) => {
    const height = Math.max((d.count / max) * (HEIGHT - 30), 2);
    return svg(
      "g",
      { class: "bar" },
      svg("rect", { x: 10 + i * width, y: HEIGHT - 20 - height, width: Math.max(width - 4, 2), height, rx: 2, fill: "#1d4ed8" }),
      svg("text", { x: 10 + i * width, y: HEIGHT - 5, class: "chart-label" }, d.day.slice(5)),
    );
  });
  return svg(
    "svg",
    {
      viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
      role: "img",
      "aria-labelledby": "tokens-chart-title tokens-chart-desc",
      class: "chart",
      id: "tokens-chart",
    },
    title,
    desc,
    bars,
  );
}

function figure(label, value, id) {
  return h("div", null, h("dt", null, label), h("dd", id ? { id } : null, String(value)));
}

export function mountCompliance(panel) {
  const message = h("p", { class: "message", role: "status", "aria-live": "polite" });
  const body = h("div");

  async function load() {
    try {
      const [report, analytics] = await Promise.all([
        api("GET", "/v1/compliance/report"),
        api("GET", "/v1/analytics/tokens?bucket=day&group_by=outcome"),
      ]);
      const status = report.agents_by_status;
      const rows = report.activity_per_agent.map((a) =>
        h(
          "tr",
          null,
          h("td", { class: "mono" }, a.agent_id === "-" ? "(admins)" : a.agent_id),
          h("td", null, String(a.tokens_issued)),
          h("td", null, String(a.tokens_refused)),
          h("td", null, String(a.failed_authentications)),
        ),
      );
      fill(
        body,
        h(
          "dl",
          { class: "figures" },
          figure("Active agents", status.active, "compliance-active"),
          figure("Suspended agents", status.suspended),
          figure("Decommissioned agents", status.decommissioned),
          figure("Credentials unused for 90 days", report.credentials_unused_90_days.length),
          figure("Agents never rotated", report.agents_never_rotated.length, "compliance-never-rotated"),
          figure("Admin credentials", report.admin_credentials.length),
          figure("Changes in the last 30 days", report.changes.length),
          figure("Latest checkpoint (events)", report.latest_checkpoint.size, "compliance-checkpoint"),
        ),
        chart(perDay(analytics)),
        h(
          "table",
          { id: "compliance-activity" },
          h("caption", null, "Activity per agent, last 30 days"),
          h(
            "thead",
            null,
            h(
              "tr",
              null,
              h("th", { scope: "col" }, "Agent"),
              h("th", { scope: "col" }, "Tokens issued"),
              h("th", { scope: "col" }, "Tokens refused"),
              h("th", { scope: "col" }, "Failed authentications"),
            ),
          ),
          h("tbody", null, rows),
        ),
      );
      say(message, "");
    } catch (error) {
      say(message, describeError(error), "error");
    }
  }

  async function downloadCsv() {
    try {
      const blob = await apiBlob("GET", "/v1/compliance/report", "text/csv");
      const url = URL.createObjectURL(blob);
      const link = h("a", { href: url, download: "compliance-report.csv", hidden: true });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
      say(message, "Report downloaded (compliance-report.csv).");
    } catch (error) {
      say(message, describeError(error), "error");
    }
  }

  fill(
    panel,
    h("h2", null, "Compliance"),
    h(
      "div",
      { class: "toolbar" },
      h("button", { type: "button", onclick: () => load() }, "Refresh"),
      h("button", { type: "button", onclick: () => downloadCsv() }, "Download CSV"),
    ),
    message,
    body,
  );
  load();
  return { refresh: load };
}
