// Show/hide runs and groups everywhere they are drawn. Without JavaScript the
// checkboxes stay hidden (report.css) and every run is visible.
(function () {
  document.documentElement.classList.add("js");
  var boxes = document.querySelectorAll("input[data-toggle]");
  var drawn = document.querySelectorAll("g[data-run], g[data-group]");
  function update() {
    var off = {};
    boxes.forEach(function (box) { if (!box.checked) off[box.dataset.toggle] = true; });
    drawn.forEach(function (g) {
      var hide = off["run:" + g.dataset.run] || off["group:" + g.dataset.group] ||
                 (off.seeds && g.classList.contains("seed"));
      g.style.display = hide ? "none" : "";
    });
  }
  boxes.forEach(function (box) { box.addEventListener("change", update); });
})();
