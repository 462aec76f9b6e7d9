// Follow an add-on's provisioning without reloading every two seconds: poll its status once a
// second, update the state in the aria-live region, and reload once the state is final.
// Without scripts, the page's <noscript> meta refresh does the same more coarsely.
(function () {
  "use strict";
  var region = document.getElementById("addon-status");
  var url = region && region.getAttribute("data-status-url");
  if (!url || !window.fetch) {
    return;
  }
  var badge = region.querySelector("[data-state]");
  var progress = region.querySelector("[data-progress]");
  var busy = { provisioning: true, deprovisioning: true };
  var shown = badge ? badge.textContent.trim() : "";

  function show(state, message) {
    if (state !== shown && badge) {
      badge.textContent = state;
      badge.className = "badge state-" + state;
      shown = state;
    }
    if (progress && message) {
      progress.textContent = message;
    }
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) {
        if (response.status === 404) {
          window.location.reload();  // removed meanwhile: the page says so
          return null;
        }
        return response.ok ? response.json() : null;
      })
      .then(function (answer) {
        if (!answer) {
          window.setTimeout(poll, 1000);
          return;
        }
        if (busy[answer.state]) {
          show(answer.state, null);
          window.setTimeout(poll, 1000);
        } else {
          show(answer.state, answer.failure_message || "Done; loading the page again.");
          window.location.reload();
        }
      })
      .catch(function () {
        window.setTimeout(poll, 2000);  // offline for a moment: try again a little later
      });
  }

  window.setTimeout(poll, 1000);
})();
