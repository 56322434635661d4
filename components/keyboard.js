// Countersign's keyboard shortcuts: see components/keyboard.py.
(function () {
  if (window.__countersignKeys) return;
  window.__countersignKeys = true;
  const HELP = __HELP__;
  const state = { selected: null, pending: null };
  const q = (sel, root) => (root || document).querySelector(sel);
  const page = () => {
    const p = window.location.pathname.replace(/\/+$/, "");
    if (p.endsWith("/approval")) return "approval";
    if (p.endsWith("/inbox") || p === "") return "inbox";
    return "other";
  };
  const rows = () => Array.from(document.querySelectorAll('[class*="st-key-inbox-row-"]'));
  const rowId = (row) => {
    const cls = Array.from(row.classList).find((c) => c.startsWith("st-key-inbox-row-"));
    return cls ? cls.slice("st-key-inbox-row-".length) : null;
  };
  const selectedRow = () => rows().find((r) => rowId(r) === state.selected) || null;
  function paint() {
    for (const row of rows()) {
      const on = rowId(row) === state.selected;
      row.style.outline = on ? "3px solid #4f6bed" : "";
      row.setAttribute("data-selected", on ? "true" : "false");
    }
  }
  function move(step) {
    const all = rows();
    if (!all.length) return;
    let index = all.findIndex((r) => rowId(r) === state.selected);
    index = index < 0 ? (step > 0 ? 0 : all.length - 1)
                      : Math.min(all.length - 1, Math.max(0, index + step));
    state.selected = rowId(all[index]);
    paint();
    all[index].scrollIntoView({ block: "nearest" });
  }
  const button = (key) => q(".st-key-" + key + " button");
  // The answer form's first field as drawn (the answer's fields, then the call's, then
  // the comment): querySelectorAll lists matches in document order.
  const FIELDS = ['[class*="st-key-approval-form"]', '[class*="st-key-approval-edit"]',
    ".st-key-approval-comment"].flatMap((w) => [w + " input", w + " textarea"]).join(", ");
  function firstField() {
    // Only once the form is drawn whole: its buttons come after its fields, and a widget
    // whose code is still loading (a number input, say) is a skeleton until it is there.
    const approve = button("approval-approve");
    const form = approve && approve.closest('[data-testid="stForm"]');
    if (!form || q('[data-testid="stSkeleton"]', form)) return null;
    return Array.from(form.querySelectorAll(FIELDS))
      .find((f) => !f.disabled && f.type !== "hidden" && f.getClientRects().length) || null;
  }
  function act(what) {
    if (what === "approve") { const b = button("approval-approve"); if (b) b.click(); }
    else if (what === "reject") { const b = button("approval-reject"); if (b) b.click(); }
    else if (what === "edit") { const f = firstField(); if (f) f.focus(); }
  }
  function focusFor(what) {
    const target = what === "approve" ? button("approval-approve")
      : what === "reject" ? button("approval-reject") : firstField();
    if (!target) return false;
    target.focus();
    target.style.outline = "3px solid #4f6bed";
    return true;
  }
  function toggleHelp(show) {
    let box = document.getElementById("countersign-keys");
    if (!box) {
      box = document.createElement("div");
      box.id = "countersign-keys";
      box.setAttribute("role", "dialog");
      box.setAttribute("aria-label", "Keyboard shortcuts");
      box.style.cssText = "position:fixed;right:24px;bottom:24px;z-index:100000;background:#fff;" +
        "color:#222;border:1px solid #999;border-radius:8px;padding:12px 16px;" +
        "box-shadow:0 4px 16px rgba(0,0,0,.2);font:14px sans-serif;max-width:460px";
      const title = document.createElement("strong");
      title.textContent = "Keyboard shortcuts";
      box.appendChild(title);
      const table = document.createElement("table");
      for (const [key, what] of HELP) {
        const tr = table.insertRow();
        const k = tr.insertCell();
        k.textContent = key;
        k.style.cssText = "padding:2px 12px 2px 0;font-weight:bold";
        tr.insertCell().textContent = what;
      }
      box.appendChild(table);
      document.body.appendChild(box);
      box.hidden = true;
    }
    box.hidden = show === undefined ? !box.hidden : !show;
  }
  setInterval(() => {
    if (page() === "inbox") paint();
    if (state.pending && page() === "approval" && focusFor(state.pending)) state.pending = null;
  }, 300);
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t && (t.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName))) return;
    if (e.key === "?") { toggleHelp(); e.preventDefault(); return; }
    if (e.key === "Escape") { toggleHelp(false); return; }
    const where = page();
    const actions = { a: "approve", r: "reject", e: "edit" };
    if (where === "inbox") {
      if (e.key === "j") move(1);
      else if (e.key === "k") move(-1);
      else if (e.key === "x") {
        const r = selectedRow();
        const box = r && q('input[type="checkbox"]', r);
        if (box) box.click();
      }
      else if (e.key === "Enter" || e.key === "o" || actions[e.key]) {
        const r = selectedRow(); const link = r && q("a", r);
        if (!link) return;
        state.pending = actions[e.key] || null;
        link.click();
      } else return;
      e.preventDefault();
    } else if (where === "approval" && actions[e.key]) {
      act(actions[e.key]);
      e.preventDefault();
    }
  });
})();
