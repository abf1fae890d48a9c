// Live progress for a batch being sent: the only script paybatch serves.
// Without it (or without EventSource) the page refreshes itself instead.
(function () {
  "use strict";
  var box = document.getElementById("progress");
  if (!box || !window.EventSource) { return; }
  var bar = document.getElementById("progress-bar");
  var text = document.getElementById("progress-text");
  var src = new EventSource(box.getAttribute("data-events"));
  src.onmessage = function (e) {
    var p = JSON.parse(e.data);
    bar.value = p.percent;
    bar.textContent = p.percent + "%";
    text.textContent = p.text;
    if (p.finished) {
      src.close();
      window.setTimeout(function () { window.location.reload(); }, 500);
    }
  };
  src.onerror = function () {
    src.close();
    window.setTimeout(function () { window.location.reload(); }, 3000);
  };
})();
