/* artdag web UI: HTMX settings, the CSRF header, and the few widgets that need script
   (the DAG, live events, uploads with progress, copy buttons). Widgets are found by
   data attributes whenever HTMX loads content, so navigation never reloads the page. */
(function () {
  "use strict";

  htmx.config.historyCacheSize = 0;          // back/forward fetch the page fresh
  htmx.config.scrollBehavior = "instant";
  // The Content-Security-Policy allows no inline script and no eval: behaviour lives in this file.
  // (Script tags stay allowed: htmx would strip the pages' JSON data blocks with them.)
  htmx.config.allowEval = false;
  htmx.config.responseHandling = [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "[45]..", swap: true, error: true },  // error pages and form errors are shown, not dropped
  ];

  function noop() {}

  function cookie(name) {
    var m = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : null;
  }
  // Contract with the auth service: unsafe requests carry the artdag_csrf cookie's value.
  function csrfHeaders() {
    var token = cookie("artdag_csrf");
    return token ? { "X-CSRF-Token": token } : {};
  }
  window.artdagCsrfHeaders = csrfHeaders;
  document.addEventListener("htmx:configRequest", function (e) {
    if (e.detail.verb !== "get") Object.assign(e.detail.headers, csrfHeaders());
  });

  // Live things (event streams) belong to the page that opened them.
  var live = [];
  function closeLive() { live.forEach(function (s) { s.close(); }); live = []; }
  document.addEventListener("htmx:beforeSwap", function (e) {
    if (e.detail.target === document.body) closeLive();
  });
  document.addEventListener("htmx:historyRestore", closeLive);

  function openEvents(url, handlers, owner) {
    var source = new EventSource(url);  // resends Last-Event-ID itself when it reconnects
    Object.keys(handlers).forEach(function (kind) {
      source.addEventListener(kind, function (ev) {
        if (!owner.isConnected) { source.close(); return; }
        handlers[kind](JSON.parse(ev.data), ev);
      });
    });
    live.push(source);
    return source;
  }

  // Fetch the current page again and swap in just these parts (comma-separated selectors).
  function refresh(selectors) {
    selectors.split(",").forEach(function (selector) {
      selector = selector.trim();
      if (!document.querySelector(selector)) return;
      htmx.ajax("GET", window.location.pathname + window.location.search,
                { target: selector, select: selector, swap: "outerHTML" })
        .catch(function () { setTimeout(function () { refresh(selector); }, 1000); });  // offline: try again
    });
  }
  var pending = {};
  function debounce(key, fn, ms) {
    clearTimeout(pending[key]);
    pending[key] = setTimeout(fn, ms);
  }

  function setBadge(el, status) {
    if (!el) return;
    el.className = "badge " + status;
    el.textContent = status;
  }

  // -- the DAG ---------------------------------------------------------------------
  var COLORS = { pending: "#98a2b3", queued: "#84adff", running: "#2f7bf6", completed: "#12a150",
                 cached: "#7a5af8", failed: "#d92d20", recipe: "#6d5dfc", input: "#475467" };

  function layout(nodes) {
    var levels = {};
    nodes.forEach(function (n) { (levels[n.data.level] = levels[n.data.level] || []).push(n); });
    Object.keys(levels).forEach(function (lv) {
      var col = levels[lv];
      col.forEach(function (n, i) { n.position = { x: Number(lv) * 200, y: (i - (col.length - 1) / 2) * 66 }; });
    });
  }

  // Fit the graph, but never blow a small one up past readable size.
  function fitGraph(cy) {
    cy.fit(undefined, 30);
    if (cy.zoom() > 1.1) { cy.zoom(1.1); cy.center(); }
  }

  function initDag(el) {
    var data = JSON.parse(document.getElementById(el.dataset.source).textContent);
    layout(data.nodes);
    var cy = cytoscape({
      container: el.querySelector(".dag-canvas"),
      elements: data.nodes.concat(data.edges),
      layout: { name: "preset", fit: false },
      minZoom: 0.1, maxZoom: 3,
      style: [
        { selector: "node", style: {
            "shape": "round-rectangle", "width": 160, "height": 50, "label": "data(label)",
            "text-wrap": "wrap", "text-valign": "center", "text-halign": "center", "font-size": 13, "font-weight": 600,
            "color": "#fff", "text-max-width": 150,
            "background-color": function (n) { return COLORS[n.data("status")] || COLORS.pending; },
            "border-width": 0 } },
        { selector: "node:selected", style: { "border-width": 3, "border-color": "#fdb022" } },
        { selector: "node[?output]", style: { "border-width": 3, "border-color": "#1c1f2a", "border-style": "double" } },
        { selector: "edge", style: { "width": 1.6, "line-color": "#c0c6d4", "target-arrow-color": "#c0c6d4",
            "target-arrow-shape": "triangle", "curve-style": "bezier", "arrow-scale": .9 } },
      ],
    });
    fitGraph(cy);
    el._cy = cy;
    window.artdagDag = cy;
    el.querySelectorAll("[data-dag-action]").forEach(function (b) {
      b.addEventListener("click", function () {
        var a = b.dataset.dagAction;
        if (a === "fit") fitGraph(cy);
        if (a === "in") cy.zoom({ level: cy.zoom() * 1.25, renderedPosition: { x: cy.width() / 2, y: cy.height() / 2 } });
        if (a === "out") cy.zoom({ level: cy.zoom() / 1.25, renderedPosition: { x: cy.width() / 2, y: cy.height() / 2 } });
      });
    });
    var panel = el.dataset.panel && document.getElementById(el.dataset.panel);
    if (panel && el.dataset.stepUrl) {
      cy.on("tap", "node", function (e) {
        panel.dataset.step = e.target.id();
        htmx.ajax("GET", el.dataset.stepUrl + e.target.id(), { target: "#" + panel.id, swap: "innerHTML" }).catch(noop);
      });
    }
    if (el.dataset.events) followRun(el, cy, panel);
  }

  function followRun(el, cy, panel) {
    var summary = document.getElementById("dag-status");
    function recount() {
      var total = cy.nodes().length, done = cy.nodes().filter(function (n) {
        return n.data("status") === "completed" || n.data("status") === "cached"; }).length;
      if (summary) {
        summary.dataset.done = done; summary.dataset.total = total;
        summary.textContent = done + " / " + total + " steps done";
      }
      var bar = document.querySelector("#run-progress > span");
      if (bar) bar.style.width = (total ? 100 * done / total : 0) + "%";
    }
    // Planning replaces a run's first plan (analysis expands BEAT_SYNC, MAP, …): fetch the graph again.
    function reloadGraph() {
      fetch(el.dataset.graphUrl, { headers: { "Accept": "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; }, function () { return null; })
        .then(function (data) {
          if (!data || !el.isConnected) return;
          layout(data.nodes);
          cy.batch(function () { cy.elements().remove(); cy.add(data.nodes.concat(data.edges)); });
          cy.layout({ name: "preset", fit: false }).run();
          fitGraph(cy);
          recount();
          refresh("#steps-table");
        });
    }
    openEvents(el.dataset.events, {
      step: function (ev) {
        var node = cy.getElementById(ev.step_id);
        if (node.length) node.data("status", ev.status);
        else debounce("graph", reloadGraph, 150);
        var li = document.querySelector('[data-step-row="' + ev.step_id + '"] td.st .badge');
        setBadge(li, ev.status);
        recount();
        if (panel && panel.dataset.step === ev.step_id) {
          debounce("panel", function () {
            htmx.ajax("GET", el.dataset.stepUrl + ev.step_id, { target: "#" + panel.id, swap: "innerHTML" }).catch(noop);
          }, 200);
        }
      },
      run: function (ev) {
        setBadge(document.getElementById("run-status"), ev.status);
        if (ev.status === "running") debounce("graph", reloadGraph, 150);
        if (["completed", "failed", "cancelled"].indexOf(ev.status) >= 0) {
          var bar = document.getElementById("run-progress");
          if (bar) bar.className = "progress " + ev.status;
          debounce("head", function () { refresh("#run-facts"); }, 150);
        }
      },
    }, el);
    recount();
  }

  // A run page shown before planning finished: show the plan as soon as the run moves on.
  function initWaitPlan(el) {
    var again = function () {
      debounce("wait-plan", function () {
        htmx.ajax("GET", window.location.pathname, { target: "body", swap: "innerHTML", select: "body" }).catch(noop);
      }, 200);
    };
    openEvents(el.dataset.waitPlan, { run: again, step: again }, el);
  }

  // -- the runs list ------------------------------------------------------------------
  function initRunsList(el) {
    var seen = {};
    openEvents(el.dataset.runsEvents, {
      run: function (ev) {
        var row = document.querySelector('[data-run-row="' + ev.run_id + '"]');
        if (row) setBadge(row.querySelector("td.st .badge"), ev.status);
        if (!row || ["completed", "failed", "cancelled", "running"].indexOf(ev.status) >= 0) {
          debounce("runs", function () { refresh("#runs-table, #runs-count"); }, 300);
        }
      },
      step: function (ev) {
        if (ev.status !== "completed" && ev.status !== "cached") return;
        var row = document.querySelector('[data-run-row="' + ev.run_id + '"]');
        if (!row) return;
        var key = ev.run_id + "/" + ev.step_id;
        if (seen[key]) return;
        seen[key] = true;
        var done = Number(row.dataset.done) + 1, total = Number(row.dataset.total) || 1;
        row.dataset.done = done;
        var bar = row.querySelector(".progress > span");
        if (bar) bar.style.width = Math.min(100, 100 * done / total) + "%";
        var n = row.querySelector(".progress-n");
        if (n) n.textContent = Math.min(done, total) + "/" + total;
      },
    }, el);
  }

  // -- uploads ------------------------------------------------------------------------
  function uploadFile(file, onProgress) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open("POST", "/cache/upload");
      var h = csrfHeaders();
      Object.keys(h).forEach(function (k) { xhr.setRequestHeader(k, h[k]); });
      xhr.upload.onprogress = function (e) { if (e.lengthComputable) onProgress(e.loaded / e.total); };
      xhr.onload = function () {
        var body = {};
        try { body = JSON.parse(xhr.responseText); } catch (err) { body = { detail: xhr.responseText }; }
        if (xhr.status >= 200 && xhr.status < 300) resolve(body); else reject(new Error(body.detail || ("HTTP " + xhr.status)));
      };
      xhr.onerror = function () { reject(new Error("network error")); };
      var form = new FormData();
      form.append("file", file, file.name);
      xhr.send(form);
    });
  }

  function uploadRow(list, name) {
    var row = document.createElement("div");
    row.className = "upload-row";
    row.innerHTML = '<span class="name"></span><div class="progress"><span style="width:0"></span></div><span class="state muted">0%</span>';
    row.querySelector(".name").textContent = name;
    list.appendChild(row);
    return {
      progress: function (f) { row.querySelector(".progress > span").style.width = (100 * f) + "%";
                               row.querySelector(".state").textContent = Math.round(100 * f) + "%"; },
      done: function (body) { row.classList.add("done"); row.querySelector(".progress").className = "progress completed";
                              var bar = row.querySelector(".progress > span");
                              bar.style.transition = "none"; bar.style.width = "100%";
                              var s = row.querySelector(".state"); s.textContent = "stored"; s.title = body.cid;
                              row.dataset.cid = body.cid; },
      fail: function (err) { row.querySelector(".progress").className = "progress failed";
                             var s = row.querySelector(".state"); s.textContent = err.message; s.className = "state error-list"; },
    };
  }

  function sendToZone(zone, files) {
    var list = document.getElementById(zone.dataset.list);
    var jobs = Array.prototype.map.call(files, function (file) {
      var row = uploadRow(list, file.name);
      return uploadFile(file, row.progress).then(row.done, row.fail);
    });
    Promise.all(jobs).then(function () { if (zone.dataset.refresh) refresh(zone.dataset.refresh); });
  }

  function initDropzone(zone) {
    ["dragenter", "dragover"].forEach(function (t) {
      zone.addEventListener(t, function (e) { e.preventDefault(); zone.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (t) {
      zone.addEventListener(t, function (e) { e.preventDefault(); zone.classList.remove("over"); });
    });
    zone.addEventListener("drop", function (e) { if (e.dataTransfer.files.length) sendToZone(zone, e.dataTransfer.files); });
  }

  // A file picked next to an input's <select> is uploaded, then chosen.
  function uploadInto(input) {
    var file = input.files[0];
    if (!file) return;
    var select = document.getElementById(input.dataset.uploadInto);
    var list = document.getElementById(input.dataset.list);
    var row = uploadRow(list, file.name);
    uploadFile(file, row.progress).then(function (body) {
      row.done(body);
      var opt = document.createElement("option");
      opt.value = body.cid; opt.textContent = (body.name || file.name) + " (uploaded)";
      select.appendChild(opt);
      select.value = body.cid;
    }, row.fail);
    input.value = "";
  }

  // Files picked are listened for on the document: a boosted page's new content is live a
  // moment before htmx's load hook (below) runs.
  document.addEventListener("change", function (e) {
    var input = e.target;
    if (!input || !input.matches || input.type !== "file") return;
    if (input.matches("[data-upload-into]")) { uploadInto(input); return; }
    var zone = input.closest("[data-dropzone]");
    if (zone && input.files.length) { sendToZone(zone, input.files); input.value = ""; }
  });

  function initCopy(btn) {
    btn.addEventListener("click", function (e) {
      e.preventDefault();
      var text = btn.dataset.copy;
      var ok = function () { var t = btn.textContent; btn.textContent = "Copied"; setTimeout(function () { btn.textContent = t; }, 1200); };
      if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(ok);
      else { var ta = document.createElement("textarea"); ta.value = text; document.body.appendChild(ta); ta.select();
             document.execCommand("copy"); ta.remove(); ok(); }
    });
  }

  // A video's thumbnail that cannot be made (not decodable) shows a play sign instead.
  document.addEventListener("error", function (e) {
    var img = e.target;
    if (img && img.matches && img.matches("img[data-fallback]")) img.replaceWith(img.dataset.fallback);
  }, true);

  // "Back" on an error page: the previous page (the link itself goes home when there is none).
  document.addEventListener("click", function (e) {
    var link = e.target && e.target.closest && e.target.closest("a[data-back]");
    if (link && window.history.length > 1) { e.preventDefault(); window.history.back(); }
  });

  // A provider added: the form is emptied for the next one.
  document.addEventListener("htmx:afterRequest", function (e) {
    var form = e.detail.elt;
    if (e.detail.successful && form && form.matches && form.matches("form[data-reset-on-success]")) {
      form.reset();
      var fields = document.getElementById(form.dataset.resetOnSuccess);
      if (fields) fields.innerHTML = "";
    }
  });

  function each(root, selector, fn) {
    if (root.matches && root.matches(selector)) fn(root);
    root.querySelectorAll && root.querySelectorAll(selector).forEach(fn);
  }

  htmx.onLoad(function (root) {
    each(root, "[data-dag]", initDag);
    each(root, "[data-runs-events]", initRunsList);
    each(root, "[data-wait-plan]", initWaitPlan);
    each(root, "[data-dropzone]", initDropzone);
    each(root, "[data-copy]", initCopy);
  });
})();
