/* Tailored admin charts: every <canvas data-chart="ID"> is drawn from the JSON of <script id="ID"
   type="application/json"> (written by Django's json_script). A canvas with data-poll="URL" is
   refreshed from that URL (JSON: {chart, done, fields}) until the server says done.
   No inline script: this file is loaded with <script src> so a CSP of script-src 'self' holds. */
(function () {
  "use strict";

  function percentTicks(value) {
    return (Math.round(value * 1000) / 10) + "%";
  }

  // Whiskers for dataset.errorBars = [[low, high] | null, ...] (standard errors, confidence intervals).
  var errorBarsPlugin = {
    id: "tailoredErrorBars",
    afterDatasetsDraw: function (chart) {
      var ctx = chart.ctx;
      var horizontal = chart.options.indexAxis === "y";
      chart.data.datasets.forEach(function (ds, i) {
        if (!ds.errorBars || !chart.isDatasetVisible(i)) { return; }
        var meta = chart.getDatasetMeta(i);
        var scale = horizontal ? chart.scales[meta.xAxisID] : chart.scales[meta.yAxisID];
        ctx.save();
        var area = chart.chartArea;
        ctx.beginPath();
        ctx.rect(area.left - 8, area.top - 8, area.right - area.left + 16, area.bottom - area.top + 16);
        ctx.clip();
        ctx.strokeStyle = "#111827";
        ctx.lineWidth = 1.5;
        meta.data.forEach(function (element, j) {
          var bar = ds.errorBars[j];
          if (!bar || bar[0] === null || bar[1] === null) { return; }
          var a = scale.getPixelForValue(bar[0]);
          var b = scale.getPixelForValue(bar[1]);
          var c = horizontal ? element.y : element.x;
          ctx.beginPath();
          if (horizontal) {
            ctx.moveTo(a, c); ctx.lineTo(b, c);
            ctx.moveTo(a, c - 6); ctx.lineTo(a, c + 6);
            ctx.moveTo(b, c - 6); ctx.lineTo(b, c + 6);
          } else {
            ctx.moveTo(c, a); ctx.lineTo(c, b);
            ctx.moveTo(c - 6, a); ctx.lineTo(c + 6, a);
            ctx.moveTo(c - 6, b); ctx.lineTo(c + 6, b);
          }
          ctx.stroke();
        });
        ctx.restore();
      });
    }
  };

  function prepare(spec) {
    var scales = (spec.options && spec.options.scales) || {};
    if (spec.yPercent && scales.y) { scales.y.ticks = { callback: percentTicks }; }
    if (spec.xPercent && scales.x) { scales.x.ticks = { callback: percentTicks }; }
    if (spec.yPercent || spec.xPercent) {
      spec.options.plugins = spec.options.plugins || {};
      spec.options.plugins.tooltip = {
        callbacks: {
          label: function (item) {
            var v = item.raw;
            if (Array.isArray(v)) { return item.dataset.label + ": " + percentTicks(v[0]) + " .. " + percentTicks(v[1]); }
            return item.dataset.label + ": " + (v === null ? "n/a" : percentTicks(v));
          }
        }
      };
    }
    spec.plugins = [errorBarsPlugin];
    return spec;
  }

  function readSpec(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function setFields(fields) {
    Object.keys(fields || {}).forEach(function (name) {
      document.querySelectorAll('[data-poll-field="' + name + '"]').forEach(function (node) {
        node.textContent = fields[name];
      });
    });
  }

  function poll(canvas, chart) {
    var url = canvas.getAttribute("data-poll");
    var seconds = parseInt(canvas.getAttribute("data-poll-seconds") || "4", 10);
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (payload) {
          if (!payload) { return; }
          var spec = prepare(payload.chart);
          chart.data.labels = spec.data.labels;
          chart.data.datasets = spec.data.datasets;
          chart.update();
          setFields(payload.fields);
          canvas.setAttribute("data-points", String(countPoints(chart)));
          if (!payload.done) { window.setTimeout(tick, seconds * 1000); } else { window.location.reload(); }
        })
        .catch(function () { window.setTimeout(tick, seconds * 4000); });
    }
    window.setTimeout(tick, seconds * 1000);
  }

  function countPoints(chart) {
    return chart.data.datasets.reduce(function (n, ds) {
      return n + ds.data.filter(function (v) { return v !== null; }).length;
    }, 0);
  }

  function draw(canvas) {
    var spec = readSpec(canvas.getAttribute("data-chart"));
    if (!spec || typeof window.Chart === "undefined") { return; }
    var chart = new window.Chart(canvas, prepare(spec));
    canvas.setAttribute("data-points", String(countPoints(chart)));
    if (canvas.getAttribute("data-poll")) { poll(canvas, chart); }
  }

  function ready() {
    document.querySelectorAll("canvas[data-chart]").forEach(draw);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", ready);
  } else {
    ready();
  }
})();
