// The quick start: the README's walkthrough, pointed at this deployment, with copy buttons.

import { copyText } from "./dom.js";

/** Shows this deployment's origin where the walkthrough says `http://127.0.0.1:8787`. */
export function setUpQuickStart(root) {
  const origin = location.origin;
  for (const node of root.querySelectorAll("code.origin")) node.textContent = origin;
  const first = root.querySelector("#code-0 code");
  if (first) first.textContent = first.textContent.replace(/^B=\S+/m, `B=${origin}`);
  for (const button of root.querySelectorAll("button[data-copy]")) {
    const label = button.textContent;
    button.addEventListener("click", async () => {
      const pre = document.getElementById(button.dataset.copy);
      button.textContent = await copyText(pre.textContent, pre);
      setTimeout(() => {
        button.textContent = label;
      }, 2000);
    });
  }
}
