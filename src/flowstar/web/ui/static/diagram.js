// Draws the <pre class="mermaid"> diagrams with the vendored Mermaid (no network).
document.addEventListener("DOMContentLoaded", function () {
  window.mermaid.initialize({ startOnLoad: false, securityLevel: "strict" });
  window.mermaid.run({ querySelector: "pre.mermaid" });
});
