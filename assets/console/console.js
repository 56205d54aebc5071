// Latency Sentinel's console: draws the charts whose data a page carries in
// <script type="application/json" data-for="NAME"> blocks (uPlot, served by the daemon),
// and refreshes the page's <main> in place every data-refresh seconds while it is visible.
(function () {
  "use strict";

  var COLORS = ["#1f5fbf", "#c2410c", "#15803d", "#7e22ce", "#0e7490", "#a16207", "#be123c", "#4d7c0f"];
  var charts = [];

  function envColor(env, envs) {
    var i = envs.indexOf(env);
    return COLORS[(i < 0 ? 0 : i) % COLORS.length];
  }

  function fmtSecs(v) {
    if (v == null || !isFinite(v)) return "–";
    if (Math.abs(v) < 1) return Math.round(v * 1000) + "ms";
    if (Math.abs(v) < 60) return v.toFixed(2) + "s";
    return Math.round(v / 60) + "m";
  }

  function width(el) {
    return Math.max(280, Math.floor(el.getBoundingClientRect().width || el.clientWidth || 600));
  }

  // Alert periods shaded behind the lines.
  function bandsPlugin(bands) {
    return {
      hooks: {
        drawClear: [function (u) {
          var ctx = u.ctx;
          ctx.save();
          ctx.fillStyle = "rgba(220, 38, 38, 0.12)";
          bands.forEach(function (b) {
            var x0 = u.valToPos(b[0], "x", true), x1 = u.valToPos(b[1], "x", true);
            ctx.fillRect(x0, u.bbox.top, Math.max(1, x1 - x0), u.bbox.height);
          });
          ctx.restore();
        }]
      }
    };
  }

  function linesChart(el, d) {
    var envs = [];
    d.series.forEach(function (s) { if (s.env && envs.indexOf(s.env) < 0) envs.push(s.env); });
    var series = [{ label: "time" }];
    var data = [d.x];
    d.series.forEach(function (s) {
      var opts = { label: s.label, value: function (u, v) { return fmtSecs(v); }, spanGaps: false };
      if (s.budget) {
        opts.stroke = "#dc2626"; opts.dash = [8, 6]; opts.width = 2;
      } else {
        opts.stroke = envColor(s.env, envs);
        opts.width = s.quantile === "p95" ? 2.5 : 1;
        if (s.quantile === "p99") opts.dash = [3, 3];
        opts.show = s.quantile !== "p50" || envs.length === 1;
      }
      series.push(opts);
      data.push(s.values);
    });
    return new uPlot({
      width: width(el), height: 300, series: series,
      axes: [{}, { values: function (u, vals) { return vals.map(fmtSecs); }, size: 60 }],
      scales: { y: { range: function (u, min, max) { return [0, Math.max(max || 0, 0.001) * 1.1]; } } },
      plugins: [bandsPlugin(d.bands || [])]
    }, data, el);
  }

  function barsChart(el, d) {
    var n = d.labels.length;
    var xs = []; for (var i = 0; i < n; i++) xs.push(i);
    var series = [{ label: "operation", value: function (u, v) { return v == null ? "" : d.labels[v]; } }];
    var data = [xs];
    var bars = uPlot.paths.bars({ size: [0.7, 48] });
    if (d.kind === "bars") {
      series.push({
        label: d.title, paths: bars, points: { show: false },
        fill: "rgba(31, 95, 191, 0.5)", stroke: "#1f5fbf",
        value: function (u, v) { return v == null ? "–" : (v > 0 ? "+" : "") + v.toFixed(0) + "%"; }
      });
      data.push(d.values);
    } else {
      d.series.forEach(function (s, k) {
        series.push({ label: s.label, paths: uPlot.paths.stepped({ align: 1 }), points: { show: false }, stroke: COLORS[k % COLORS.length], width: 2 });
        data.push(s.values);
      });
    }
    return new uPlot({
      width: width(el), height: d.kind === "bars" ? 320 : 260, series: series,
      scales: { x: { time: false, range: [-0.5, n - 0.5] } },
      axes: [{ values: function (u, vals) { return vals.map(function (v) { var l = d.labels[v]; return l == null ? "" : (l.length > 22 ? l.slice(0, 21) + "…" : l); }); }, rotate: d.kind === "bars" ? -35 : 0, size: d.kind === "bars" ? 110 : 40, space: 14, incrs: [1] }, {}]
    }, data, el);
  }

  function draw(root) {
    charts.forEach(function (c) { c.destroy(); });
    charts = [];
    if (typeof uPlot === "undefined") return;
    root.querySelectorAll("div.plot[data-chart]").forEach(function (el) {
      var name = el.getAttribute("data-chart");
      var block = el.parentNode.querySelector('script[type="application/json"][data-for="' + name + '"]');
      if (!block) return;
      var d = JSON.parse(block.textContent);
      el.textContent = "";
      var c = d.kind === "lines" ? linesChart(el, d) : barsChart(el, d);
      c.root.setAttribute("data-drawn", "true");
      charts.push(c);
    });
  }

  function refresh(main) {
    if (document.hidden) return;
    // Never under someone's fingers: a filter being typed into stays as it is.
    var active = document.activeElement;
    if (active && main.contains(active) && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName)) return;
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.text(); })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("main");
        if (!fresh) return;
        main.innerHTML = fresh.innerHTML;
        main.removeAttribute("data-stale");
        draw(main);
      })
      .catch(function () { main.setAttribute("data-stale", "true"); });
  }

  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(function () {
      charts.forEach(function (c) { c.setSize({ width: width(c.root.parentNode), height: c.height }); });
    }, 150);
  });

  document.addEventListener("DOMContentLoaded", function () {
    var main = document.getElementById("main");
    if (!main) return;
    draw(main);
    var every = parseInt(main.getAttribute("data-refresh"), 10);
    if (every > 0) setInterval(function () { refresh(main); }, every * 1000);
  });
})();
