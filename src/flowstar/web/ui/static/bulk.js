// "Select all on this page" ticks every row's box, and unticking a row unticks it. Without
// scripts the box still works: the server then takes every id of the page (hidden fields).
(function () {
  function rows(form) {
    return Array.prototype.slice.call(form.querySelectorAll('input[type="checkbox"][name="ids"]'));
  }

  function sync(form) {
    var all = form.querySelector("[data-select-all]");
    var boxes = rows(form);
    if (all) {
      all.checked = boxes.length > 0 && boxes.every(function (box) { return box.checked; });
    }
  }

  document.addEventListener("change", function (event) {
    var box = event.target;
    if (!box.form) {
      return;
    }
    if (box.hasAttribute("data-select-all")) {
      rows(box.form).forEach(function (row) { row.checked = box.checked; });
    } else if (box.name === "ids") {
      sync(box.form);
    }
  });

  // The inbox's live refresh may bring rows nobody ticked yet.
  document.addEventListener("htmx:afterSettle", function (event) {
    var form = event.target.closest && event.target.closest("form");
    if (form && form.querySelector("[data-select-all]")) {
      sync(form);
    }
  });
})();
