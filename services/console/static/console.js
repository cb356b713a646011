// The console's only script: live sections and SLA clocks. Everything it
// shows is HTML the server rendered (and escaped); without it the pages
// still work, a reload away from current.
"use strict";

// A section with data-live="/url" is replaced by each event of that stream.
function followLive(section) {
  const source = new EventSource(section.dataset.live);
  source.addEventListener("update", (event) => {
    section.innerHTML = event.data;
    tickClocks();
  });
  // the browser reconnects by itself; a stream refused for a sign-in that
  // ended closes for good: reload to reach the sign-in page
  source.addEventListener("signed-out", () => {
    source.close();
    window.location.reload();
  });
}

function duration(seconds) {
  seconds = Math.max(0, Math.floor(seconds));
  const days = Math.floor(seconds / 86400);
  const hours = Math.floor(seconds / 3600) % 24;
  const minutes = Math.floor(seconds / 60) % 60;
  if (days > 0) return `${days} d ${hours} h`;
  if (hours > 0) return `${hours} h ${String(minutes).padStart(2, "0")} min`;
  if (minutes > 0) return `${minutes} min`;
  return `${seconds} s`;
}

// SLA clocks count down each second and turn overdue (in words and with a
// sign, not only in colour) the moment they pass.
function tickClocks() {
  const now = Date.now();
  for (const clock of document.querySelectorAll("time.sla")) {
    const left = (Date.parse(clock.dateTime) - now) / 1000;
    const overdue = left < 0;
    clock.textContent = overdue ? `⚠ overdue by ${duration(-left)}` : `${duration(left)} left`;
    clock.classList.toggle("overdue", overdue);
    const row = clock.closest("tr");
    if (row) row.classList.toggle("overdue", overdue);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-live]").forEach(followLive);
  tickClocks();
  setInterval(tickClocks, 1000);
});
