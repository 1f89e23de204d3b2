// xinyong: draws the overview's charts from data attributes (no inline script: the CSP forbids it).
(function () {
  if (typeof echarts === "undefined") return;
  var radar = document.getElementById("radar");
  if (radar) {
    var forces = JSON.parse(radar.dataset.forces), labels = JSON.parse(radar.dataset.labels);
    var pct = JSON.parse(radar.dataset.percentiles).map(function (p) { return p === null ? 0 : p; });
    echarts.init(radar).setOption({
      animation: false,
      legend: { bottom: 0 },
      radar: { indicator: labels.map(function (l) { return { name: l, max: 100 }; }) },
      series: [{ type: "radar", data: [
        { value: forces, name: document.documentElement.lang === "en" ? "Firm" : "本企业" },
        { value: pct, name: document.documentElement.lang === "en" ? "Percentile in industry" : "行业百分位" }
      ] }]
    });
  }
  document.querySelectorAll(".chart.series").forEach(function (el) {
    var pts = JSON.parse(el.dataset.points);
    echarts.init(el).setOption({
      animation: false,
      title: { text: el.dataset.title, textStyle: { fontSize: 14 } },
      tooltip: { trigger: "axis" },
      grid: { left: 60, right: 16, bottom: 30 },
      xAxis: { type: "category", data: pts.map(function (p) { return p[0]; }) },
      yAxis: { type: "value" },
      series: [{ type: "line", data: pts.map(function (p) { return p[1]; }), showSymbol: false }]
    });
  });
})();
// The dashboard's index lines: one series per group, months on the x axis.
(function () {
  if (typeof echarts === "undefined") return;
  var el = document.getElementById("index-chart");
  if (!el) return;
  var months = JSON.parse(el.dataset.months), series = JSON.parse(el.dataset.series);
  var names = Object.keys(series);
  echarts.init(el).setOption({
      animation: false,
    tooltip: { trigger: "axis" },
    legend: { type: "scroll", bottom: 0 },
    grid: { left: 50, right: 16, bottom: 50 },
    xAxis: { type: "category", data: months },
    yAxis: { type: "value", scale: true },
    series: names.map(function (n) { return { name: n, type: "line", data: series[n], showSymbol: false }; })
  });
})();
// The guarantee group around a firm: guarantor → borrower arrows, the firm, its circle and the rest coloured apart,
// node size by network PD.
(function () {
  if (typeof echarts === "undefined") return;
  var el = document.getElementById("circle-graph");
  if (!el) return;
  var nodes = JSON.parse(el.dataset.nodes), links = JSON.parse(el.dataset.links);
  var cats = JSON.parse(el.dataset.categories);
  echarts.init(el).setOption({
    animation: false,
    tooltip: {},
    legend: { data: cats, bottom: 0 },
    series: [{
      type: "graph", layout: "force", roam: true, draggable: true,
      force: { repulsion: 120, edgeLength: 60, layoutAnimation: false },
      categories: cats.map(function (c) { return { name: c }; }),
      edgeSymbol: ["none", "arrow"], edgeSymbolSize: 6,
      label: { show: nodes.length <= 15, position: "right", fontSize: 10 },
      data: nodes.map(function (n) {
        var pd = n[4] === null ? null : n[4];
        return { id: n[0], name: n[1], category: n[2], symbolSize: 10 + Math.min(30, (pd || 0) * 100),
                 value: pd === null ? "—" : (pd * 100).toFixed(2) + "%" };
      }),
      links: links.map(function (l) { return { source: l[0], target: l[1], value: l[2] }; })
    }]
  });
})();

// The inbox, live: new alerts arrive on the event stream (server-sent events, the session's cookie) and are
// added at the top of the table as they happen. Text only (textContent): nothing from the stream is parsed
// as HTML.
(function () {
  var box = document.getElementById("alerts");
  if (!box || !box.dataset.stream || typeof EventSource === "undefined") return;
  var names = JSON.parse(document.getElementById("event-names").textContent);
  var tbody = document.querySelector("#alert-table tbody");
  var tpl = document.getElementById("alert-row");
  var status = document.getElementById("live-status");
  var es = new EventSource(box.dataset.stream);
  es.onopen = function () { status.hidden = false; };
  es.onerror = function () { status.hidden = true; };
  es.addEventListener("credit", function (m) {
    var e = JSON.parse(m.data);
    if (document.querySelector('tr[data-event="' + e.event_id + '"]')) return;
    var row = tpl.content.firstElementChild.cloneNode(true);
    row.dataset.event = e.event_id;
    row.querySelector(".date").textContent = e.date + " · " + names.live;
    var a = row.querySelector(".firm");
    a.href = "/firm/" + encodeURIComponent(e.uscc);
    a.textContent = e.uscc;
    row.querySelector(".kind").textContent = (names[e.kind] || e.kind) + (e.rule ? " #" + e.rule : "");
    row.querySelector(".change").textContent = (e.before || "—") + " → " + (e.after || "—");
    tbody.insertBefore(row, tbody.firstChild);
    var none = document.getElementById("no-alerts");
    if (none) none.hidden = true;
  });
})();
