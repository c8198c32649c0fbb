// Game-day progress board: poll the JSON endpoint and update the numbers in place.
// The page works without this file (a reload link shows the same figures).
(function () {
  "use strict";
  var board = document.getElementById("board");
  if (!board || !window.fetch) { return; }
  function set(id, value) { var el = document.getElementById(id); if (el) { el.textContent = value; } }
  function cell(text) { var td = document.createElement("td"); td.textContent = text; return td; }
  function render(p) {
    var bar = document.getElementById("board-progress");
    if (bar) { bar.max = p.total; bar.value = p.finished; }
    set("board-finished", p.finished); set("board-total", p.total);
    set("board-passed", p.states.passed); set("board-failed", p.states.failed);
    set("board-running", p.states.running); set("board-pending", p.states.pending);
    var body = document.getElementById("board-paths");
    if (body) {
      while (body.firstChild) { body.removeChild(body.firstChild); }
      p.paths.forEach(function (row) {
        var tr = document.createElement("tr");
        [row.path, row.passed, row.failed, row.running, row.total].forEach(function (v) { tr.appendChild(cell(v)); });
        body.appendChild(tr);
      });
    }
    return p.done;
  }
  function poll() {
    fetch(board.dataset.url, { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (p) { if (!render(p)) { setTimeout(poll, 2000); } })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 2000);
})();
