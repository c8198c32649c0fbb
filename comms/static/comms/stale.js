// Static copies of the status page show a banner once they are over an hour old.
// Without JavaScript the page still states when it was generated.
(function () {
  var body = document.body;
  if (!body || body.getAttribute("data-static-copy") !== "1") return;
  var generated = Date.parse(body.getAttribute("data-generated-at"));
  var banner = document.getElementById("stale");
  if (!isNaN(generated) && banner && Date.now() - generated > 3600 * 1000) {
    banner.hidden = false;
  }
})();
