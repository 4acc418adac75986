// tgwatch console: reveal one blurred media item per click; the reveal is recorded before it shows.
"use strict";
(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]')?.getAttribute("content") || "";
  document.addEventListener("click", async (event) => {
    const button = event.target instanceof Element ? event.target.closest("button.reveal") : null;
    if (!button || button.dataset.revealed === "1") return;
    event.preventDefault();
    const sha = button.dataset.sha;
    const response = await fetch(`/api/v1/media/${sha}/reveal`, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ message: button.dataset.message || null }),
    });
    if (!response.ok) {
      button.setAttribute("title", "Reveal refused (" + response.status + ")");
      return;
    }
    button.dataset.revealed = "1";
    const media = button.querySelector(".sensitive");
    if (media) media.classList.add("revealed");
  });
})();
