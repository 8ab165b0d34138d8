"use strict";
(function () {
  var live = document.getElementById("live");
  var mark = document.getElementById("live-state");
  function tick() {
    var now = Date.now();
    var all = document.querySelectorAll("[data-until]");
    for (var i = 0; i < all.length; i++) {
      var left = Math.max(0, Math.ceil((Number(all[i].getAttribute("data-until")) - now) / 1000));
      all[i].textContent = left + "s";
    }
  }
  setInterval(tick, 1000);
  // A mark of the timeline (or a link) names a deploy: open its details.
  function opened() {
    var d = location.hash && document.getElementById(location.hash.slice(1));
    if (d && d.tagName === "DETAILS") { d.open = true; }
  }
  window.addEventListener("hashchange", opened);
  opened();
  if (!window.EventSource || !live) { return; }
  var events = new EventSource("/events");
  events.addEventListener("live", function (e) {
    var open = [];
    var shown = live.querySelectorAll("details[open]");
    for (var i = 0; i < shown.length; i++) { open.push(shown[i].id); }
    live.innerHTML = e.data;
    for (var j = 0; j < open.length; j++) {
      var d = document.getElementById(open[j]);
      if (d) { d.open = true; }
    }
    tick();
    document.documentElement.setAttribute("data-live", "updated");
    if (mark) { mark.textContent = "live"; }
  });
  events.addEventListener("open", function () {
    document.documentElement.setAttribute("data-live", "connected");
    if (mark) { mark.textContent = "live"; }
  });
  events.addEventListener("error", function () {
    if (mark) { mark.textContent = "reconnecting"; }
  });
})();
