// pretoken console: read-only views of the policy, served by `pretoken console`.
// No framework and no build step; the matrix draws only the cells on screen,
// so a 10,000-role policy stays usable.
"use strict";
const base = location.pathname.replace(/[^/]*$/, "");
const api = (path, params) => fetch(base + "api/" + path + (params ? "?" + params : "")).then(r => r.json());
const $ = id => document.getElementById(id);
let model = null, rows = [], cols = [];
const RH = 24, CW = 110, HW = 260; // row height, column width, row header width

function show(view) {
  for (const b of document.querySelectorAll("nav button")) b.classList.toggle("active", b.dataset.view === view);
  for (const s of document.querySelectorAll("main > section")) s.hidden = s.id !== view;
  if (view === "history") loadHistory();
}
for (const b of document.querySelectorAll("nav button")) b.onclick = () => show(b.dataset.view);

// The matrix: permissions (rows) by roles (columns).
function filter() {
  const q = $("search").value.trim().toLowerCase();
  const onlyGranted = $("granted").checked;
  const match = s => s.toLowerCase().includes(q);
  if (!q) {
    rows = model.permissions; cols = model.roles;
  } else {
    // A search finds permissions (and every role that holds them, directly or
    // through inheritance) or, failing that, roles (and what they hold).
    const roleHits = model.roles.filter(r => match(r.name));
    rows = model.permissions.filter(match);
    if (rows.length === 0) rows = model.permissions.filter(p => roleHits.some(r => grant(r, p)));
    cols = model.roles.filter(r => roleHits.includes(r) || rows.some(p => grant(r, p)));
  }
  if (onlyGranted) rows = rows.filter(p => cols.some(r => grant(r, p)));
  $("counts").textContent = rows.length + " permissions × " + cols.length + " roles";
  $("gridsize").style.width = (HW + cols.length * CW) + "px";
  $("gridsize").style.height = ((rows.length + 1) * RH) + "px";
  draw();
}
function grant(role, perm) {
  if (role.direct.includes(perm)) return "direct";
  if (role.inherited && role.inherited[perm]) return "inherited";
  return "";
}
function cell(cls, x, y, w, text, title) {
  const d = document.createElement("div");
  d.className = "c " + cls;
  d.style.left = x + "px"; d.style.top = y + "px"; d.style.width = w + "px";
  d.textContent = text;
  if (title) d.title = title;
  return d;
}
function draw() {
  const g = $("grid"), out = $("cells");
  const r0 = Math.max(0, Math.floor(g.scrollTop / RH) - 1), r1 = Math.min(rows.length, r0 + Math.ceil(g.clientHeight / RH) + 2);
  const c0 = Math.max(0, Math.floor(Math.max(0, g.scrollLeft - HW) / CW)), c1 = Math.min(cols.length, c0 + Math.ceil(g.clientWidth / CW) + 2);
  const frag = document.createDocumentFragment();
  for (let c = c0; c < c1; c++) {
    const h = cell("colh", HW + c * CW, g.scrollTop, CW, cols[c].name, cols[c].description || cols[c].name);
    h.dataset.role = cols[c].name;
    frag.appendChild(h);
  }
  for (let r = r0; r < r1; r++) {
    const perm = rows[r], y = (r + 1) * RH;
    const h = cell("rowh", g.scrollLeft, y, HW, perm);
    h.dataset.perm = perm;
    h.onclick = () => who(perm);
    frag.appendChild(h);
    for (let c = c0; c < c1; c++) {
      const kind = grant(cols[c], perm);
      if (!kind) { frag.appendChild(cell("blank", HW + c * CW, y, CW, "")); continue; } // drawn for its borders

      const title = kind === "direct" ? cols[c].name + " grants " + perm : cols[c].name + " inherits " + perm + " through " + cols[c].inherited[perm];
      const d = cell("cell " + kind, HW + c * CW, y, CW, kind === "direct" ? "●" : "○", title);
      d.dataset.perm = perm; d.dataset.role = cols[c].name; d.dataset.kind = kind;
      frag.appendChild(d);
    }
  }
  out.replaceChildren(frag);
}
async function who(perm) {
  $("whoperm").textContent = perm;
  const paths = await api("who", "permission=" + encodeURIComponent(perm));
  $("who").replaceChildren(...(paths || []).map(p => {
    const li = document.createElement("li");
    li.textContent = p.from + " → " + p.roles.join(" → ") + " → " + perm;
    return li;
  }));
}
function sources() {
  const lines = [];
  for (const [g, r] of Object.entries(model.groups || {})) lines.push("group " + g + " → " + r.join(", "));
  for (const [g, r] of Object.entries(model.idpGroups || {})) lines.push("IdP group " + g + " → " + r.join(", "));
  if ((model.defaults || []).length) lines.push("defaults → " + model.defaults.join(", "));
  for (const [m, r] of Object.entries(model.machines || {})) lines.push("machine " + m + " → " + r.join(", "));
  if (model.tenancy) lines.push("tenancy: active tenant " + model.tenancy);
  const shown = lines.slice(0, 200);
  if (lines.length > shown.length) shown.push("… and " + (lines.length - shown.length) + " more (search to narrow the matrix)");
  $("sources").replaceChildren(...shown.map(t => { const p = document.createElement("div"); p.textContent = t; return p; }));
}

// App clients: what each profile puts in each token.
function clients() {
  const entry = (dl, k, v) => { const dt = document.createElement("dt"), dd = document.createElement("dd"); dt.textContent = k; dd.textContent = v; dl.append(dt, dd); };
  const claims = t => Object.entries(t.claims || {}).sort().map(([n, src]) => n + " ← " + src).join(", ") || "(none)";
  const reach = t => t.allowAbsent ? "every permission (" + t.reaching.length + ")" : (t.reaching.join(" ") || "(none)") + "  [allow: " + ((t.allow || []).join(" ") || "nothing") + "]";
  $("clist").replaceChildren(...model.profiles.map(p => {
    const d = document.createElement("div"); d.className = "profile"; d.dataset.client = p.client;
    const h = document.createElement("h3"); h.textContent = p.client === "default" ? "default (every client not listed)" : p.client;
    d.appendChild(h);
    for (const [name, t, note] of [["ID token", p.idToken, "every plan (V1_0 and up)"], ["access token", p.accessToken, "V2_0/V3_0 (Essentials or Plus)"]]) {
      const dl = document.createElement("dl"); dl.dataset.token = name;
      entry(dl, name, note);
      entry(dl, "claims", claims(t));
      entry(dl, "permissions", reach(t));
      if (name === "access token") entry(dl, "scopes", t.scopes ? (t.reaching.map(x => (t.scopePrefix || "") + x).join(" ") || "(none)") : "none added");
      if ((t.suppressScopes || []).length) entry(dl, "suppressed scopes", t.suppressScopes.join(" "));
      if ((t.suppressClaims || []).length) entry(dl, "suppressed claims", t.suppressClaims.join(" "));
      d.appendChild(dl);
    }
    return d;
  }));
}

// Token preview: the same resolution as pretoken explain.
$("pform").onsubmit = async ev => {
  ev.preventDefault();
  const f = new FormData($("pform")), q = new URLSearchParams();
  for (const [k, v] of f.entries()) {
    if (["group", "idpGroup", "attr", "membership"].includes(k)) v.split(",").map(s => s.trim()).filter(Boolean).forEach(s => q.append(k, s));
    else if (v) q.append(k, v);
  }
  const r = await api("preview", q.toString());
  if (r.error && !r.text) { $("ptext").textContent = r.error; $("psizes").textContent = ""; return; }
  const size = (n, name) => `<span class="${n > r.budget ? "over" : ""}">${name} +${n} bytes</span>`;
  $("psizes").innerHTML = size(r.idTokenBytes, "ID token") + " · " + size(r.accessTokenBytes, "access token") + " · budget " + r.budget + " bytes each";
  $("ptext").textContent = (r.error ? r.error + "\n\n" : "") + r.text;
};

async function loadHistory() {
  const recs = await api("history");
  const list = $("hlist");
  if (!Array.isArray(recs)) { list.textContent = recs.error; return; }
  list.replaceChildren(...recs.map(r => {
    const d = document.createElement("div"); d.className = "record";
    const h = document.createElement("h3");
    h.textContent = `${r.time} · ${r.actor} · ${r.action} ${r.target} · ${r.oldVersion} → ${r.newVersion}`;
    const ul = document.createElement("ul");
    (r.changes || []).forEach(c => { const li = document.createElement("li"); li.textContent = c; ul.appendChild(li); });
    d.append(h, ul); return d;
  }));
}
$("dform").onsubmit = async ev => {
  ev.preventDefault();
  const f = new FormData($("dform"));
  const r = await api("diff", "from=" + encodeURIComponent(f.get("from")) + "&to=" + encodeURIComponent(f.get("to")));
  $("dtext").hidden = false;
  $("dtext").textContent = Array.isArray(r) ? (r.join("\n") || "no changes") : r.error;
};
$("uform").onsubmit = async ev => {
  ev.preventDefault();
  const u = await api("user", "sub=" + encodeURIComponent(new FormData($("uform")).get("sub")));
  if (u.error) { $("utext").textContent = u.error; return; }
  const lines = ["direct roles: " + ((u.Roles || []).join(" ") || "(none)")];
  for (const [t, roles] of Object.entries(u.Memberships || {}).sort()) lines.push("tenant " + t + (t === u.Active ? " (active)" : "") + ": " + roles.join(" "));
  if (u.Active && !(u.Memberships || {})[u.Active]) lines.push("stored active tenant " + u.Active + " is not a membership: tokens get no tenant");
  if (!Object.keys(u.Memberships || {}).length) lines.push("no tenant memberships");
  $("utext").textContent = lines.join("\n");
};
$("tform").onsubmit = async ev => {
  ev.preventDefault();
  const id = new FormData($("tform")).get("id");
  const m = await api("tenant", "id=" + encodeURIComponent(id));
  if (!Array.isArray(m)) { $("ttext").textContent = m.error || "tenant " + id + " has no members"; return; }
  $("ttext").textContent = m.length ? m.map(x => x.Sub + "  " + (x.Roles || []).join(" ")).join("\n") : "tenant " + id + " has no members";
};

(async () => {
  model = await api("model");
  $("version").textContent = "policy " + model.version + (model.table ? " (table)" : " (file)");
  $("pclients").replaceChildren(...model.clients.filter(c => c !== "default").map(c => { const o = document.createElement("option"); o.value = c; return o; }));
  for (const e of document.querySelectorAll(".table-only")) e.hidden = !model.table;
  sources();
  clients();
  $("search").oninput = filter;
  $("granted").onchange = filter;
  $("grid").onscroll = draw;
  filter();
  // Milliseconds from the start of the navigation to a drawn matrix.
  document.body.dataset.ready = String(Math.round(performance.now()));
})();
