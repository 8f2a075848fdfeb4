import NIOHTTP1

/// The inspector page at `/`: one HTML file with its style and plain JavaScript, built into
/// the binary (nothing fetched from elsewhere, no build step). It holds no data: it asks for
/// the token once (or takes it from the URL fragment, `/#token=…`, which is never sent to
/// the server), keeps it in the tab's `sessionStorage`, and reads the JSON API with it.
enum InspectorPage {
    static let answer = BridgeAnswer(
        status: .ok,
        headers: [
            ("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-cache"),
            // Inline style and script only; the page talks to its own origin and nothing else.
            (
                "Content-Security-Policy",
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
            ),
            ("Referrer-Policy", "no-referrer"),
        ],
        body: Array(html.utf8))

    static let html = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>webhook-bridge inspector</title>
        <link rel="icon" href="data:,">
        <style>
        :root {
          --bg: #f6f7f9; --panel: #fff; --text: #1b1f24; --muted: #5c6570; --line: #dde1e6; --accent: #2457c5;
          --ok: #17733a; --ok-bg: #e3f4e8; --warn: #8a5a00; --warn-bg: #fff2d6; --bad: #b42318; --bad-bg: #fde7e5;
          --info: #3a4a5c; --info-bg: #e8edf3; --dead: #6b21a8; --dead-bg: #f1e6fb;
          font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
          font-size: 14px; color: var(--text); background: var(--bg);
        }
        * { box-sizing: border-box; }
        body { margin: 0; }
        header { display: flex; align-items: center; gap: 16px; padding: 10px 16px; background: #14213d; color: #fff; flex-wrap: wrap; }
        header h1 { font-size: 16px; margin: 0; font-weight: 600; letter-spacing: .2px; }
        header nav { display: flex; gap: 4px; }
        header nav button { background: transparent; color: #c9d3e6; border: 0; padding: 6px 10px; border-radius: 6px; font: inherit; cursor: pointer; }
        header nav button[aria-selected="true"] { background: #2a3a5e; color: #fff; }
        #live { margin-left: auto; font-size: 13px; color: #c9d3e6; display: flex; align-items: center; gap: 6px; }
        #live::before { content: ""; width: 8px; height: 8px; border-radius: 50%; background: #8a94a6; }
        #live.on::before { background: #3ccf6e; }
        #live.error::before { background: #ff6b5a; }
        main { padding: 12px 16px; }
        .filters { display: flex; gap: 8px; flex-wrap: wrap; margin-bottom: 10px; align-items: center; }
        .filters label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); gap: 2px; }
        select, input, button { font: inherit; }
        select, input[type=text], input[type=search], input[type=password] { padding: 6px 8px; border: 1px solid var(--line); border-radius: 6px; background: #fff; min-width: 140px; }
        button.action { padding: 6px 12px; border: 1px solid var(--accent); background: var(--accent); color: #fff; border-radius: 6px; cursor: pointer; }
        button.action.secondary { background: #fff; color: var(--accent); }
        button.action:disabled { opacity: .5; cursor: default; }
        .layout { display: grid; grid-template-columns: minmax(0, 1fr); gap: 12px; }
        .layout.with-detail { grid-template-columns: minmax(0, 1.6fr) minmax(320px, 1fr); }
        .panel { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
        .scroll { overflow: auto; max-height: calc(100vh - 150px); }
        table { border-collapse: collapse; width: 100%; }
        th, td { text-align: left; padding: 7px 10px; border-bottom: 1px solid var(--line); vertical-align: top; white-space: nowrap; }
        th { position: sticky; top: 0; background: #eef1f5; font-size: 12px; color: var(--muted); font-weight: 600; z-index: 1; }
        tbody tr { cursor: pointer; }
        tbody tr:hover { background: #f3f6fb; }
        tbody tr.selected { background: #e6eefc; }
        tbody tr.fresh { animation: fresh 1.5s ease-out; }
        @keyframes fresh { from { background: #fff7c2; } to { background: transparent; } }
        td.wrap { white-space: normal; word-break: break-word; max-width: 320px; }
        .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
        .muted { color: var(--muted); }
        .outcome { display: inline-block; padding: 2px 8px; border-radius: 999px; font-size: 12px; font-weight: 600; }
        .o-accepted { color: var(--ok); background: var(--ok-bg); }
        .o-queued { color: var(--warn); background: var(--warn-bg); }
        .o-duplicate, .o-filtered, .o-handshake { color: var(--info); background: var(--info-bg); }
        .o-rejected { color: var(--bad); background: var(--bad-bg); }
        .o-dead-lettered { color: var(--dead); background: var(--dead-bg); }
        .cause { display: block; font-size: 12px; color: var(--bad); margin-top: 2px; white-space: nowrap; }
        .status { font-weight: 600; }
        .s2 { color: var(--ok); } .s4, .s5 { color: var(--bad); }
        .sink { display: block; font-size: 12px; }
        .sink .err { color: var(--bad); display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; overflow: hidden; }
        #detail { padding: 12px 14px; overflow: auto; max-height: calc(100vh - 150px); }
        .layout.with-detail th.wide, .layout.with-detail td.wide { display: none; }
        #detail h2 { font-size: 15px; margin: 0 0 8px; display: flex; align-items: center; gap: 8px; }
        #detail h3 { font-size: 13px; margin: 14px 0 6px; color: var(--muted); text-transform: uppercase; letter-spacing: .4px; }
        #detail dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 12px; margin: 0; }
        #detail dt { color: var(--muted); }
        #detail dd { margin: 0; word-break: break-word; }
        #detail table td { white-space: normal; word-break: break-all; }
        pre { margin: 0; padding: 10px; background: #f7f8fa; border: 1px solid var(--line); border-radius: 6px; overflow: auto; max-height: 50vh; font-size: 12.5px; }
        .masked { color: var(--muted); font-style: italic; }
        .close { margin-left: auto; border: 0; background: transparent; font-size: 20px; cursor: pointer; color: var(--muted); }
        .empty { padding: 24px; text-align: center; color: var(--muted); }
        #login { max-width: 420px; margin: 60px auto; background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 20px; }
        #login h2 { margin-top: 0; font-size: 17px; }
        #login form { display: flex; gap: 8px; }
        #login input { flex: 1; }
        .error-text { color: var(--bad); }
        .notice { padding: 8px 12px; margin-bottom: 10px; border-radius: 6px; background: var(--info-bg); }
        [hidden] { display: none !important; }
        @media (max-width: 900px) {
          .layout.with-detail { grid-template-columns: minmax(0, 1fr); }
          th.wide, td.wide { display: none; }
          .scroll { max-height: none; }
          select, input[type=text], input[type=search] { min-width: 0; width: 100%; }
          .filters label { flex: 1 1 45%; }
        }
        </style>
        </head>
        <body>
        <header>
          <h1>webhook-bridge inspector</h1>
          <nav role="tablist">
            <button id="tab-requests" role="tab" aria-selected="true">Requests</button>
            <button id="tab-dead" role="tab" aria-selected="false">Dead letters</button>
          </nav>
          <span id="live">connecting</span>
        </header>
        <section id="login" hidden>
          <h2>Admin token</h2>
          <p class="muted">The bearer token of this bridge's <span class="mono">admin</span> settings. It is kept in this tab only.</p>
          <form id="login-form"><input id="token" type="password" autocomplete="off" placeholder="token" aria-label="token"><button class="action" type="submit">Open</button></form>
          <p id="login-error" class="error-text" hidden></p>
        </section>
        <main id="app" hidden>
          <section id="requests-view">
            <div class="filters">
              <label>Source <select id="f-source"><option value="">all</option></select></label>
              <label>Outcome <select id="f-outcome"><option value="">all</option></select></label>
              <label>Type <input id="f-type" type="text" placeholder="e.g. invoice.*"></label>
              <label>Text <input id="f-text" type="search" placeholder="id, cause, body…"></label>
            </div>
            <div id="layout" class="layout">
              <div class="panel scroll">
                <table>
                  <thead><tr><th>Time</th><th>Source</th><th class="wide">Request</th><th class="wide">Client</th><th>Status</th><th>Outcome</th><th>Event</th><th class="wide">Key</th><th class="wide">Sinks</th><th>Latency</th></tr></thead>
                  <tbody id="rows"></tbody>
                </table>
                <div id="rows-empty" class="empty">No requests yet. They appear here as they arrive.</div>
              </div>
              <aside id="detail" class="panel" hidden></aside>
            </div>
          </section>
          <section id="dead-view" hidden>
            <div class="filters">
              <label>Sink <select id="d-sink"><option value="">all</option></select></label>
              <label>Source <select id="d-source"><option value="">all</option></select></label>
              <label>Type <input id="d-type" type="text" placeholder="e.g. invoice.*"></label>
              <label>Text <input id="d-text" type="search" placeholder="id, reason…"></label>
              <button id="replay-selected" class="action" disabled>Replay selected</button>
              <button id="replay-matching" class="action secondary">Replay all that match</button>
            </div>
            <div id="dead-notice" class="notice" hidden></div>
            <div class="panel scroll">
              <table>
                <thead><tr><th><input id="d-all" type="checkbox" aria-label="select all"></th><th>Time</th><th>Sink</th><th>Reason</th><th>Event</th><th class="wide">Source</th><th class="wide">Details</th><th>Replay</th></tr></thead>
                <tbody id="dead-rows"></tbody>
              </table>
              <div id="dead-empty" class="empty">No dead letters.</div>
            </div>
          </section>
        </main>
        <script>
        "use strict";
        const $ = (id) => document.getElementById(id);
        const state = { token: null, last: 0, rows: [], selected: null, recent: 1000, timer: null, deadTimer: null, generation: 0, deadGeneration: 0 };

        function el(tag, attrs, ...children) {
          const node = document.createElement(tag);
          for (const [name, value] of Object.entries(attrs || {})) {
            if (name === "class") node.className = value; else if (name.startsWith("on")) node.addEventListener(name.slice(2), value); else node.setAttribute(name, value);
          }
          for (const child of children) if (child != null) node.append(child instanceof Node ? child : String(child));
          return node;
        }

        function takeToken() {
          const match = location.hash.match(/token=([^&]+)/);
          if (match) {
            sessionStorage.setItem("inspector-token", decodeURIComponent(match[1]));
            history.replaceState(null, "", location.pathname + location.search);
          }
          return sessionStorage.getItem("inspector-token");
        }

        async function api(path, options) {
          const response = await fetch(path, Object.assign({ headers: { "Authorization": "Bearer " + state.token, "Content-Type": "application/json" }, cache: "no-store" }, options || {}));
          if (response.status === 401) { logout("The token was refused."); throw new Error("unauthorized"); }
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        }

        function logout(message) {
          sessionStorage.removeItem("inspector-token");
          state.token = null;
          clearTimeout(state.timer); clearTimeout(state.deadTimer);
          $("app").hidden = true; $("login").hidden = false;
          $("login-error").hidden = !message; $("login-error").textContent = message || "";
          setLive("signed out", "");
        }

        function setLive(text, cls) { $("live").textContent = text; $("live").className = cls; }

        function option(select, value) { select.append(el("option", { value }, value)); }

        async function start() {
          $("login").hidden = true; $("app").hidden = false;
          try {
            const info = await api("/api/info");
            state.recent = info.recent;
            for (const source of info.sources) { option($("f-source"), source); option($("d-source"), source); }
            for (const outcome of info.outcomes) option($("f-outcome"), outcome);
            for (const sink of info.sinks) option($("d-sink"), sink);
          } catch (error) { if (error.message === "unauthorized") return; }
          reload();
        }

        function filterQuery(prefix, names) {
          const params = new URLSearchParams();
          for (const [field, name] of names) { const value = $(prefix + field).value.trim(); if (value) params.set(name, value); }
          return params;
        }
        const requestFilters = [["source", "source"], ["outcome", "outcome"], ["type", "type"], ["text", "q"]];
        const deadFilters = [["sink", "sink"], ["source", "source"], ["type", "type"], ["text", "q"]];

        // Each reload starts a generation: an answer to an earlier one (filters since changed)
        // is dropped, and only the newest schedules the next poll.
        function reload() {
          state.generation++;
          state.last = 0; state.rows = [];
          $("rows").replaceChildren();
          poll(true);
        }

        async function poll(first) {
          clearTimeout(state.timer);
          const generation = state.generation;
          const params = filterQuery("f-", requestFilters);
          if (!first) params.set("after", state.last);
          params.set("limit", String(state.recent));
          try {
            const page = await api("/api/requests?" + params);
            if (generation !== state.generation) return;
            if (page.requests.length) {
              state.last = Math.max(state.last, page.requests[0].seq);
              addRows(page.requests, !first);
            }
            if (first && !page.requests.length) state.last = page.lastSequence;
            setLive("live", "on");
          } catch (error) {
            if (error.message === "unauthorized" || generation !== state.generation) return;
            setLive("reconnecting", "error");
          }
          state.timer = setTimeout(() => poll(false), 1000);
        }

        function fmtTime(text) {
          const date = new Date(text);
          return isNaN(date) ? text : date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
        }

        function outcomeCell(request) {
          const cell = el("td", { class: "wrap" }, el("span", { class: "outcome o-" + request.outcome }, request.outcome));
          if (request.cause) cell.append(el("span", { class: "cause" }, request.cause));
          return cell;
        }

        function sinksCell(request) {
          const cell = el("td", { class: "wide wrap" });
          for (const sink of request.sinks) {
            const line = el("span", { class: "sink" }, el("b", {}, sink.sink), " ");
            if (sink.position) line.append(el("span", { class: "mono" }, sink.position));
            if (sink.error) line.append(el("span", { class: "err", title: sink.error }, sink.error));
            if (sink.fate) line.append(" → " + sink.fate);
            cell.append(line);
          }
          return cell;
        }

        function row(request, fresh) {
          const statusClass = "status s" + String(request.status)[0];
          const event = el("td", { class: "wrap" });
          if (request.type) event.append(el("div", {}, request.type));
          if (request.id) event.append(el("div", { class: "mono muted" }, request.id));
          if (request.batch) event.append(el("div", { class: "muted" }, "batch of " + request.batch));
          const tr = el("tr", { "data-seq": request.seq, class: fresh ? "fresh" : "", onclick: () => openDetail(request.seq) },
            el("td", { class: "mono", title: request.time }, fmtTime(request.time)),
            el("td", {}, request.source),
            el("td", { class: "wide mono" }, request.method + " " + request.path),
            el("td", { class: "wide mono" }, request.client || ""),
            el("td", { class: statusClass }, request.status),
            outcomeCell(request), event,
            el("td", { class: "wide" }, request.key == null ? "" : "#" + request.key),
            sinksCell(request),
            el("td", { class: "mono" }, request.latencyMs + " ms"));
          if (request.seq === state.selected) tr.classList.add("selected");
          return tr;
        }

        function addRows(requests, fresh) {
          const body = $("rows");
          const nodes = requests.map((request) => row(request, fresh));
          body.prepend(...nodes);
          while (body.children.length > state.recent) body.lastChild.remove();
          $("rows-empty").hidden = body.children.length > 0;
        }

        function prettyBody(detail) {
          if (detail.bodyBase64 != null) return "(binary, " + detail.bodyBytes + " bytes; base64)\n" + detail.bodyBase64;
          let text = detail.body || "";
          if (!detail.truncated) { try { text = JSON.stringify(JSON.parse(text), null, 2); } catch (_) { } }
          if (detail.truncated) text += "\n… (" + detail.bodyBytes + " bytes in all; the inspector keeps the first part)";
          return text;
        }

        async function openDetail(seq) {
          state.selected = seq;
          for (const tr of $("rows").children) tr.classList.toggle("selected", Number(tr.dataset.seq) === seq);
          const pane = $("detail");
          let detail;
          try { detail = await api("/api/requests/" + seq); } catch (error) {
            pane.replaceChildren(el("p", { class: "error-text" }, "This request is no longer held."));
            pane.hidden = false; return;
          }
          const facts = el("dl", {});
          const add = (name, value, mono) => { if (value != null && value !== "") facts.append(el("dt", {}, name), el("dd", { class: mono ? "mono" : "" }, value)); };
          add("Time", detail.time); add("Source", detail.source); add("Request", detail.method + " " + detail.path, true);
          add("Client", detail.client, true); add("Status", detail.status); add("Cause", detail.cause); add("Detail", detail.detail);
          add("Event id", detail.id, true); add("Type", detail.type); add("Batch", detail.batch);
          add("Secret", detail.key == null ? null : "#" + detail.key + " of the source's secrets"); add("Latency", detail.latencyMs + " ms");
          const sinks = el("div", {});
          for (const sink of detail.sinks) sinks.append(el("div", {}, el("b", {}, sink.sink + (sink.required ? "" : " (not required)") + ": "), sink.position || sink.error || "no answer yet", sink.fate ? " → " + sink.fate : ""));
          const headers = el("table", { id: "detail-headers" });
          for (const [name, value] of detail.headers) {
            headers.append(el("tr", {}, el("td", { class: "mono" }, name), el("td", { class: "mono" + (value.startsWith("(masked") ? " masked" : "") }, value)));
          }
          pane.replaceChildren(
            el("h2", {}, el("span", { class: "outcome o-" + detail.outcome }, detail.outcome), "Request #" + detail.seq,
              el("button", { class: "close", "aria-label": "close", onclick: closeDetail }, "×")),
            facts,
            el("h3", {}, "Sinks"), detail.sinks.length ? sinks : el("p", { class: "muted" }, "none"),
            el("h3", {}, "Headers"), headers,
            el("h3", {}, "Body"), el("pre", { id: "detail-body", class: "mono" }, prettyBody(detail)));
          pane.hidden = false;
          $("layout").classList.add("with-detail");
        }

        function closeDetail() {
          state.selected = null; $("detail").hidden = true; $("layout").classList.remove("with-detail");
          for (const tr of $("rows").children) tr.classList.remove("selected");
        }

        async function loadDead() {
          clearTimeout(state.deadTimer);
          const generation = ++state.deadGeneration;
          const params = filterQuery("d-", deadFilters);
          let page;
          try { page = await api("/api/dead-letters?" + params); } catch (error) {
            // Tried again later, unless signed out or superseded.
            if (error.message !== "unauthorized" && generation === state.deadGeneration) state.deadTimer = setTimeout(loadDead, 5000);
            return;
          }
          if (generation !== state.deadGeneration) return;
          const body = $("dead-rows");
          const checked = new Set([...body.querySelectorAll("input:checked")].map((box) => box.value));
          body.replaceChildren();
          for (const letter of page.deadLetters) {
            const box = el("input", { type: "checkbox", value: letter.offset, "aria-label": "select" });
            box.checked = checked.has(String(letter.offset));
            box.addEventListener("change", updateSelection);
            const details = Object.entries(letter.details).map(([name, value]) => name + ": " + value).join("\n");
            let replay;
            if (letter.replayed) replay = el("span", { class: "outcome " + (letter.replayed.result === "delivered" ? "o-accepted" : "o-rejected"), title: letter.replayed.error || letter.replayed.time }, "replay " + letter.replayed.result);
            else if (letter.raw) replay = el("span", { class: "muted" }, "damaged line");
            else replay = el("button", { class: "action secondary replay", onclick: () => replayLetters({ offsets: [letter.offset] }) }, "Replay");
            body.append(el("tr", { "data-offset": letter.offset },
              el("td", {}, box), el("td", { class: "mono", title: letter.time || "" }, letter.time ? fmtTime(letter.time) : ""),
              el("td", {}, letter.sink), el("td", { class: "wrap" }, el("span", { class: "outcome o-dead-lettered" }, "dead-lettered"), el("span", { class: "cause" }, letter.reason)),
              el("td", { class: "wrap" }, el("div", {}, letter.type || ""), el("div", { class: "mono muted" }, letter.id || "")),
              el("td", { class: "wide" }, letter.source || ""), el("td", { class: "wide wrap mono" }, details), el("td", {}, replay)));
          }
          $("dead-empty").hidden = page.deadLetters.length > 0;
          $("dead-empty").textContent = page.spool ? "No dead letters." : "This bridge has no spool, so no dead letters.";
          updateSelection();
          state.deadTimer = setTimeout(loadDead, 5000);
        }

        function updateSelection() { $("replay-selected").disabled = !$("dead-rows").querySelector("input:checked"); }

        async function replayLetters(request) {
          const notice = $("dead-notice");
          try {
            const result = await api("/api/dead-letters/replay", { method: "POST", body: JSON.stringify(request) });
            notice.textContent = "Replayed: " + result.delivered + " delivered, " + result.failed + " failed." +
              result.results.filter((r) => r.error).slice(0, 3).map((r) => " " + (r.id || r.offset) + ": " + r.error).join("");
          } catch (error) { notice.textContent = "Replay failed: " + error.message; }
          notice.hidden = false;
          loadDead();
        }

        function showTab(dead) {
          $("tab-requests").setAttribute("aria-selected", String(!dead)); $("tab-dead").setAttribute("aria-selected", String(dead));
          $("requests-view").hidden = dead; $("dead-view").hidden = !dead;
          if (dead) loadDead(); else clearTimeout(state.deadTimer);
        }

        $("tab-requests").addEventListener("click", () => showTab(false));
        $("tab-dead").addEventListener("click", () => showTab(true));
        for (const id of ["f-source", "f-outcome"]) $(id).addEventListener("change", reload);
        for (const id of ["f-type", "f-text"]) { let wait; $(id).addEventListener("input", () => { clearTimeout(wait); wait = setTimeout(reload, 250); }); }
        for (const id of ["d-sink", "d-source"]) $(id).addEventListener("change", loadDead);
        for (const id of ["d-type", "d-text"]) { let wait; $(id).addEventListener("input", () => { clearTimeout(wait); wait = setTimeout(loadDead, 250); }); }
        $("d-all").addEventListener("change", (event) => { for (const box of $("dead-rows").querySelectorAll("input")) box.checked = event.target.checked; updateSelection(); });
        $("replay-selected").addEventListener("click", () => replayLetters({ offsets: [...$("dead-rows").querySelectorAll("input:checked")].map((box) => Number(box.value)) }));
        $("replay-matching").addEventListener("click", () => {
          const request = { all: true };
          for (const [field, name] of deadFilters) { const value = $("d-" + field).value.trim(); if (value) request[name] = value; }
          if (confirm("Replay every dead letter that matches the filters into its sink?")) replayLetters(request);
        });
        $("login-form").addEventListener("submit", (event) => {
          event.preventDefault();
          const value = $("token").value.trim();
          if (!value) return;
          sessionStorage.setItem("inspector-token", value); state.token = value; $("token").value = ""; start();
        });

        state.token = takeToken();
        if (state.token) start(); else logout();
        </script>
        </body>
        </html>
        """#
}
