// Refreshes the digest progress table from its JSON endpoint until the digest is final.
(function () {
  "use strict";
  var table = document.getElementById("digest-progress");
  if (!table) { return; }
  var url = table.getAttribute("data-url");
  var finals = { done: true, cancelled: true, skipped: true };
  function refresh() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) {
        if (!data) { return; }
        table.querySelectorAll("[data-key]").forEach(function (cell) {
          var key = cell.getAttribute("data-key");
          if (key in data) { cell.textContent = data[key]; }
        });
        if (!finals[data.state]) { window.setTimeout(refresh, 2000); }
      })
      .catch(function () { window.setTimeout(refresh, 5000); });
  }
  window.setTimeout(refresh, 2000);
})();
