// Building the page without HTML strings: every node is created, every text is a text node. The
// page's Content-Security-Policy requires Trusted Types, so assigning an HTML string anywhere throws.

const SVG_NS = "http://www.w3.org/2000/svg";

function apply(node, props) {
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      node.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    } else if (key === "value" && node instanceof HTMLInputElement) {
      // The attribute is the default a form's reset() returns to; it also sets the current value.
      node.setAttribute("value", String(value));
    } else if (key === "value" && "value" in node) {
      node.value = value;
    } else if (key === "checked" || key === "selected" || key === "disabled" || key === "hidden") {
      node[key] = Boolean(value);
    } else {
      node.setAttribute(key, value === true ? "" : String(value));
    }
  }
}

function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** An HTML element: `h("button", {type: "button", onclick}, "Label")`. */
export function h(tag, props, ...children) {
  const node = document.createElement(tag);
  apply(node, props);
  append(node, children);
  return node;
}

/** An SVG element, for the usage chart. */
export function svg(tag, props, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(props ?? {})) node.setAttribute(key, String(value));
  append(node, children);
  return node;
}

/** Replaces a node's children. */
export function fill(node, ...children) {
  node.replaceChildren();
  append(node, children);
  return node;
}

/** A short local date and time, or an em dash. */
export function when(value) {
  if (!value) return "—";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
}

/** Copies text: the Clipboard API where the page is a secure context, else selects it for Ctrl+C. */
export async function copyText(text, selectable) {
  try {
    if (!navigator.clipboard) throw new Error("no clipboard");
    await navigator.clipboard.writeText(text);
    return "Copied";
  } catch {
    if (selectable) {
      const range = document.createRange();
      range.selectNodeContents(selectable);
      const selection = getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
    }
    return "Selected: press Ctrl+C";
  }
}

/** A button that copies what `text()` returns and says so for a moment (and to screen readers). */
export function copyButton(label, text, selectable) {
  const button = h("button", { type: "button", class: "copy" }, label);
  button.addEventListener("click", async () => {
    const said = await copyText(text(), selectable?.());
    button.textContent = said;
    setTimeout(() => {
      button.textContent = label;
    }, 2000);
  });
  return button;
}

/** A message area for a form or panel: polite status, or an alert for errors. */
export function say(node, text, kind = "info") {
  if (!node) return;
  node.textContent = text;
  node.dataset.kind = kind;
  node.setAttribute("role", kind === "error" ? "alert" : "status");
}

/** Elements of the page that hold a secret shown once: emptied when the page is hidden. */
const secrets = new Set();

/**
 * The panel that shows a new secret once, with a warning that it cannot be shown again, copy
 * buttons, and a button that removes it from the page.
 */
export function secretPanel({ title, warning, fields, after }) {
  const rows = fields.map(({ label, value, secret }) => {
    const output = h("code", { class: secret ? "secret" : null, "data-field": label }, value);
    return h(
      "div",
      { class: "secret-row" },
      h("dt", null, label),
      h("dd", null, output, " ", copyButton(`Copy ${label.toLowerCase()}`, () => output.textContent, () => output)),
    );
  });
  const panel = h(
    "section",
    { class: "secret-panel", role: "alert", "aria-label": title },
    h("h2", null, title),
    h("p", { class: "warning" }, h("strong", null, "Shown only once. "), warning),
    h("dl", null, rows),
  );
  const dismiss = h(
    "button",
    {
      type: "button",
      onclick: () => {
        secrets.delete(panel);
        panel.replaceChildren(h("p", { role: "status" }, "The secret was removed from this page."));
        after?.();
      },
    },
    "I have stored it: remove it from the page",
  );
  panel.append(dismiss);
  secrets.add(panel);
  return panel;
}

/** Forgets every secret still on the page (the page is being hidden or left). */
export function forgetSecrets() {
  for (const panel of secrets) panel.replaceChildren();
  secrets.clear();
}

/** A labelled form field; `wide` lets it span the form's grid. */
export function field(id, label, input, help, { wide = false } = {}) {
  input.id = id;
  if (help) input.setAttribute("aria-describedby", `${id}-help`);
  return h(
    "div",
    { class: wide ? "field span" : "field" },
    h("label", { for: id }, label),
    input,
    help ? h("p", { class: "help", id: `${id}-help` }, help) : null,
  );
}
