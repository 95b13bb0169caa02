// Restore and download forms (data-restore-form): a select-all box per list, and the buttons
// stay disabled until something is chosen, so that nothing ticked can never mean "everything".
// Loaded with <script src defer>: the pages allow no inline script.
(function () {
  "use strict";

  function chosen(form) {
    return form.querySelector(
      'input[name="parts"]:checked, input[name="paths"]:checked, input[name="paths_b64"]:checked, ' +
        'input[name="whole_account"]:checked'
    ) !== null;
  }

  // The boxes a select-all box stands for. Paths whose names are not UTF-8 are sent as
  // paths_b64 (the base64url of their bytes, see destinations/names.py): they are paths too.
  function boxesOf(form, name) {
    var selector = 'input[name="' + name + '"]';
    if (name === "paths") {
      selector += ', input[name="paths_b64"]';
    }
    return form.querySelectorAll(selector);
  }

  function refresh(form) {
    var any = chosen(form);
    form.querySelectorAll("[data-needs-selection]").forEach(function (button) {
      button.disabled = !any;
    });
    var whole = form.querySelector("[data-whole-account]");
    var wholeChecked = whole !== null && whole.checked;
    form.querySelectorAll("[data-select-all]").forEach(function (all) {
      var boxes = boxesOf(form, all.dataset.selectAll);
      var ticked = 0;
      boxes.forEach(function (box) {
        // The whole account covers every part: the single boxes say so and are not sent.
        if (all.dataset.selectAll === "parts") {
          box.disabled = wholeChecked;
        }
        if (box.checked) {
          ticked += 1;
        }
      });
      all.disabled = wholeChecked;
      all.checked = boxes.length > 0 && ticked === boxes.length;
      all.indeterminate = ticked > 0 && ticked < boxes.length;
    });
  }

  function setUp(form) {
    form.addEventListener("change", function (event) {
      var target = event.target;
      if (target.dataset && target.dataset.selectAll) {
        boxesOf(form, target.dataset.selectAll).forEach(function (box) {
          box.checked = target.checked;
        });
      }
      refresh(form);
    });
    refresh(form);
  }

  document.querySelectorAll("[data-restore-form]").forEach(setUp);
})();
