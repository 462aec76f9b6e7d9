// Follow a running build's output on its page: read the rest of it from the dashboard's output
// stream (from the byte the page already shows), append it as text (never as HTML), and load the
// page again once the build has finished so its status and release show. Without scripts, the
// page's <noscript> meta refresh shows the output more coarsely.
(function () {
  "use strict";
  var pre = document.getElementById("build-output");
  var url = pre && pre.getAttribute("data-follow-url");
  if (!url || !window.fetch || !window.TextDecoder) {
    return;
  }
  var note = document.getElementById("output-note");
  var decoder = new TextDecoder("utf-8");

  function append(text) {
    if (!text) {
      return;
    }
    var atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
    pre.appendChild(document.createTextNode(text));
    if (atBottom) {
      pre.scrollTop = pre.scrollHeight;
    }
  }

  function read(reader) {
    return reader.read().then(function (part) {
      if (part.done) {
        append(decoder.decode());
        return null;
      }
      append(decoder.decode(part.value, { stream: true }));
      return read(reader);
    });
  }

  fetch(url, { headers: { Accept: "text/plain" }, credentials: "same-origin" })
    .then(function (response) {
      if (!response.ok || !response.body) {
        throw new Error("HTTP " + response.status);
      }
      return read(response.body.getReader());
    })
    .then(function () {
      if (note) {
        note.textContent = "The build finished; loading the page again.";
      }
      window.location.reload();
    })
    .catch(function () {
      // The connection dropped (a restart, a proxy): the reloaded page shows everything so far and follows again.
      window.setTimeout(function () { window.location.reload(); }, 3000);
    });
})();
