// Closedloop console: live updates (server-sent events), SLA countdowns, keyboard shortcuts, charts.
// Plain JavaScript on top of server-rendered pages; every action also works without it (forms post).
(function () {
  "use strict";
  const body = document.body;
  const locale = body.dataset.locale || "en";

  // --- SLA countdowns: the server renders the due time; this keeps the remaining time ticking. ---
  function pad(n) { return String(n).padStart(2, "0"); }
  function remaining(ms) {
    const s = Math.floor(Math.abs(ms) / 1000);
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    return (d ? d + "d " : "") + pad(h) + ":" + pad(m) + ":" + pad(s % 60);
  }
  function tick() {
    const now = Date.now();
    document.querySelectorAll("time.countdown").forEach(function (el) {
      const due = Date.parse(el.getAttribute("datetime"));
      if (isNaN(due)) return;
      const left = due - now;
      el.textContent = left < 0 ? (body.dataset.overdue || "overdue") + " " + remaining(left) : remaining(left);
      el.classList.toggle("overdue", left < 0);
      el.classList.toggle("soon", left >= 0 && left < 3600 * 1000);
    });
  }
  tick();
  setInterval(tick, 1000);

  // --- Live updates ---
  const status = document.getElementById("live-status");
  function announce(text) { if (status && text) status.textContent = text; }
  let refreshTimer = null;
  function refreshLists() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(function () {
      const list = document.getElementById("queue-list");
      if (list && window.htmx) window.htmx.trigger(list, "live-refresh");
    }, 250);
  }
  function refreshTicket(id) {
    const view = document.querySelector(".ticket-view");
    if (!view || view.dataset.ticketId !== id || !window.htmx) return;
    window.htmx.ajax("GET", location.pathname, {target: "#timeline", select: "#timeline", swap: "outerHTML"});
  }
  // Announcements in the user's language (the page carries the translated words).
  const words = {
    "ticket.created": body.dataset.wCreated, "ticket.customer_replied": body.dataset.wCustomerReplied,
    "ticket.sla_warning": body.dataset.wSlaWarning, "ticket.sla_breached": body.dataset.wSlaBreached,
    "alert.raised": body.dataset.wAlert
  };
  if (body.dataset.live === "on" && window.EventSource) {
    const source = new EventSource("/events");
    source.onmessage = function (message) {
      let event;
      try { event = JSON.parse(message.data); } catch (e) { return; }
      document.dispatchEvent(new CustomEvent("console:live", {detail: event}));
      if (event.type.indexOf("ticket.") === 0) {
        refreshLists();
        refreshTicket(event.ticket_id);
      } else if (event.type.indexOf("notification.") === 0) {
        refreshLists();
        document.querySelectorAll(".ticket-view").forEach(function (v) { refreshTicket(v.dataset.ticketId); });
      }
      if (words[event.type]) announce(words[event.type] + ": " + (event.title || event.message || ""));
    };
  }
  document.body.addEventListener("htmx:afterSwap", function () {
    tick();
    if (selectedId === null) return;
    const again = rows().findIndex(function (r) { return r.dataset.ticketId === selectedId; });
    if (again >= 0) select(again);
  });

  // --- Keyboard shortcuts ---
  function rows() { return Array.from(document.querySelectorAll("[data-ticket-row]")); }
  let selected = -1;
  let selectedId = null;  // kept across live refreshes of the list, which replace its rows
  function select(index) {
    const all = rows();
    if (!all.length) return;
    selected = Math.max(0, Math.min(all.length - 1, index));
    selectedId = all[selected].dataset.ticketId;
    all.forEach(function (r, i) { r.classList.toggle("selected", i === selected); r.removeAttribute("aria-selected"); });
    all[selected].setAttribute("aria-selected", "true");
    const link = all[selected].querySelector("a.ticket-link");
    if (link) link.focus({preventScroll: false});
  }
  function focusField(id) {
    const el = document.getElementById(id);
    if (el) { el.focus(); return true; }
    return false;
  }
  const help = document.getElementById("help");
  document.querySelectorAll("[data-help-open]").forEach(function (b) {
    b.addEventListener("click", function () { help.showModal(); });
  });
  document.addEventListener("keydown", function (e) {
    const target = e.target;
    const typing = target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.tagName === "SELECT" || target.isContentEditable);
    if (typing) {
      if (e.key === "Escape") target.blur();
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && target.form) {
        e.preventDefault();
        const note = target.dataset.mode === "note" && document.getElementById("add-note");
        target.form.requestSubmit(note || undefined);
      }
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const key = e.key;
    if (key === "?") { e.preventDefault(); help.open ? help.close() : help.showModal(); return; }
    if (key === "j") { e.preventDefault(); select(selected + 1); return; }
    if (key === "k") { e.preventDefault(); select(selected - 1); return; }
    if ((key === "Enter" || key === "o") && selected >= 0) {
      const link = rows()[selected] && rows()[selected].querySelector("a.ticket-link");
      if (link) { e.preventDefault(); location.href = link.href; }
      return;
    }
    if (/^[1-5]$/.test(key)) {
      const link = document.querySelector('[data-queue-key="' + key + '"]');
      if (link) { e.preventDefault(); location.href = link.href; }
      return;
    }
    const reply = document.getElementById("reply-body");
    if (key === "r" && reply) { e.preventDefault(); reply.dataset.mode = "reply"; reply.focus(); return; }
    if (key === "n" && reply) { e.preventDefault(); reply.dataset.mode = "note"; reply.focus(); return; }
    if (key === "m" && focusField("macro")) { e.preventDefault(); return; }
    if (key === "a" && focusField("assignee")) { e.preventDefault(); return; }
    if (key === "s" && focusField("status")) { e.preventDefault(); return; }
    if (key === "c" && focusField("category-filter")) { e.preventDefault(); return; }
    if (key === "u") {
      const back = document.querySelector("[data-back]");
      if (back) { e.preventDefault(); location.href = back.href; }
    }
  });

  // --- Suggested replies fill the composer; the category picker filters as you type ---
  document.querySelectorAll("[data-macro-picker]").forEach(function (picker) {
    picker.addEventListener("change", function () {
      const option = picker.selectedOptions[0];
      const text = option && option.dataset.body;
      const reply = document.getElementById("reply-body");
      if (reply && text) { reply.value = text; reply.focus(); }
    });
  });
  document.querySelectorAll("[data-filter-for]").forEach(function (input) {
    const selectEl = document.getElementById(input.dataset.filterFor);
    input.addEventListener("input", function () {
      const needle = input.value.toLowerCase();
      Array.from(selectEl.options).forEach(function (o) { o.hidden = needle && o.text.toLowerCase().indexOf(needle) < 0; });
    });
  });

  // --- Taxonomy editor: "Edit" fills the node form with that node ---
  document.querySelectorAll("[data-edit-node]").forEach(function (button) {
    button.addEventListener("click", function () {
      const fields = {"node-path": "path", "node-name": "name", "node-desc": "description", "node-examples": "examples"};
      Object.keys(fields).forEach(function (id) {
        const el = document.getElementById(id);
        if (el) el.value = button.dataset[fields[id]] || "";
      });
      const name = document.getElementById("node-name");
      if (name) name.focus();
    });
  });

  // --- Charts (Chart.js, vendored): data comes from the page, the same numbers as the table below ---
  window.consoleCharts = {};
  const palette = ["#1f5fa8", "#c0392b", "#2e7d32", "#8e44ad", "#b9770e", "#117a8b"];
  // A spec may add, per series, Chart.js dataset options (`styles`: a band's fill, a point-only series)
  // and a link (`links`: a click on that series drills down to it), and lay bars out horizontally.
  function drawCharts(root) {
    if (!window.Chart) return;
    (root || document).querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      const key = canvas.id.replace(/^chart-/, "");
      if (window.consoleCharts[key] && window.consoleCharts[key].canvas === canvas) return;
      if (window.consoleCharts[key]) window.consoleCharts[key].destroy();
      const spec = JSON.parse(canvas.dataset.chart);
      const styles = spec.styles || [];
      const valueAxis = spec.horizontal ? "x" : "y";
      const scales = {};
      if (spec.kind === "bar") {
        scales.x = {stacked: spec.stacked};
        scales.y = {stacked: spec.stacked};
        scales[valueAxis].beginAtZero = true;
      }
      const chart = new window.Chart(canvas, {
        type: spec.kind,
        data: {
          labels: spec.labels,
          datasets: spec.series.map(function (s, i) {
            const colour = palette[i % palette.length];
            return Object.assign({label: s[0], data: s[1], backgroundColor: colour, borderColor: colour},
                                 styles[i] || {});
          })
        },
        options: {
          responsive: true, maintainAspectRatio: false, animation: false, locale: locale,
          indexAxis: spec.horizontal ? "y" : "x", scales: scales,
          onClick: spec.links ? function (event, elements) {
            if (elements.length) window.location.href = spec.links[elements[0].datasetIndex];
          } : undefined
        }
      });
      window.consoleCharts[key] = chart;
    });
  }
  // An htmx swap (the trends explorer's results) brings new canvases: draw them.
  document.body.addEventListener("htmx:afterSettle", function () { drawCharts(); });
  // A view the page refuses (422, e.g. three dimensions) says why in place of the results: swap it in too.
  document.body.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.xhr.status === 422) { event.detail.shouldSwap = true; event.detail.isError = false; }
  });
  drawCharts();
})();
