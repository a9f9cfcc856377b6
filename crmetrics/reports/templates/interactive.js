// Optional interactive mode (--interactive): sortable tables and a filter box per table. No network, no libraries.
(function () {
  function value(cell) {
    var text = cell.textContent.trim();
    var number = parseFloat(text.replace(/[,%\s]/g, ""));
    return isNaN(number) || !/^[-+]?[\d.,]+%?$/.test(text.replace(/\s/g, "")) ? text.toLowerCase() : number;
  }
  document.querySelectorAll("table.data").forEach(function (table) {
    var body = table.tBodies[0];
    if (!body || body.rows.length < 2) return;
    table.querySelectorAll("th").forEach(function (th, index) {
      th.classList.add("sortable");
      th.setAttribute("aria-sort", "none");
      th.addEventListener("click", function () {
        var up = th.getAttribute("aria-sort") !== "ascending";
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = value(a.cells[index]), y = value(b.cells[index]);
          return (x > y ? 1 : x < y ? -1 : 0) * (up ? 1 : -1);
        });
        rows.forEach(function (row) { body.appendChild(row); });
        table.querySelectorAll("th").forEach(function (other) { other.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", up ? "ascending" : "descending");
      });
    });
    if (body.rows.length > 10) {
      var box = document.createElement("input");
      box.className = "filter";
      box.placeholder = "Filter rows…";
      box.setAttribute("aria-label", "Filter rows");
      box.addEventListener("input", function () {
        var needle = box.value.toLowerCase();
        Array.prototype.forEach.call(body.rows, function (row) {
          row.style.display = row.textContent.toLowerCase().indexOf(needle) >= 0 ? "" : "none";
        });
      });
      table.parentNode.parentNode.insertBefore(box, table.parentNode);
    }
  });
})();
