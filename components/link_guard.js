// Countersign's link guard: see components/link_guard.py.
(function () {
  if (window.__countersignLinkGuard) return;
  window.__countersignLinkGuard = true;
  const LINKS = 'a[data-testid="stPageLink-NavLink"], a[data-testid="stSidebarNavLink"]';
  const app = () => document.querySelector('[data-testid="stApp"]');
  const running = () => { const a = app(); return !!a && a.getAttribute("data-test-script-state") === "running"; };
  // When a widget was last used and its run has not been seen to end. The run it
  // starts is announced by the server a moment later, so "not running" right after a
  // click does not yet mean idle.
  let touchedAt = 0;
  let sawRun = false;
  const observe = () => {
    const a = app();
    if (!a) { setTimeout(observe, __POLL_MS__); return; }
    new MutationObserver(() => {
      if (running()) sawRun = true;
      else if (sawRun) { sawRun = false; touchedAt = 0; }
    }).observe(a, { attributes: true, attributeFilter: ["data-test-script-state"] });
  };
  observe();
  const touched = (event) => {
    const t = event.target;
    if (!t || !t.closest || t.closest(LINKS)) return;
    if (t.closest("input, button, textarea, select, [role='option'], [role='checkbox']")) {
      touchedAt = Date.now();
      sawRun = running();
    }
  };
  document.addEventListener("click", touched, true);
  document.addEventListener("change", touched, true);
  const busy = () => running() || (touchedAt > 0 && Date.now() - touchedAt < __SETTLE_MS__);
  let releasing = null;
  document.addEventListener("click", (event) => {
    const link = event.target && event.target.closest && event.target.closest(LINKS);
    if (!link || link === releasing || !busy()) return;
    event.preventDefault();
    event.stopImmediatePropagation();
    const until = Date.now() + __MAX_WAIT_MS__;
    const release = () => {
      if (busy() && Date.now() < until) { setTimeout(release, __POLL_MS__); return; }
      releasing = link;
      try { link.click(); } finally { releasing = null; }
    };
    setTimeout(release, __POLL_MS__);
  }, true);
})();
