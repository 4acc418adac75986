// tgwatch console: pages work without script; this only keeps keyboard focus visible after a jump link.
"use strict";
(function () {
  const main = document.getElementById("main");
  document.querySelector("a.skip")?.addEventListener("click", () => main?.focus());
})();
