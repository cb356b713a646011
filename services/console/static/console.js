// The console's only script: live sections, SLA clocks and the officer's
// position. Everything it shows is HTML the server rendered (and escaped);
// without it the pages still work, a reload away from current.
"use strict";

// A section with data-live="/url" is replaced by each event of that stream.
function followLive(section) {
  const source = new EventSource(section.dataset.live);
  source.addEventListener("update", (event) => {
    // the same version of a part is left alone, so a form being filled
    // in is not wiped by a repeat of what it already shows
    const current = section.firstElementChild;
    const incoming = /data-version="([^"]*)"/.exec(event.data);
    if (incoming && current && current.dataset.version === incoming[1]) return;
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

// Forms with data-position send the device's position: "required" ones
// (on scene) wait for it and say in words why it is missing; "optional"
// ones (the other steps, closing) go without it when there is none.
const POSITION_PROBLEMS = {
  1: "Location is blocked for this site: allow it in the browser's site settings, then tap again.",
  2: "This phone cannot find its position right now: wait a moment or step outside, then tap again.",
  3: "Finding your position took too long: tap again.",
};

function sendPosition(event) {
  const form = event.target.closest("form[data-position]");
  if (!form || form.dataset.positionSent === "yes") return;
  event.preventDefault();
  const required = form.dataset.position === "required";
  const problem = form.querySelector(".position-problem");
  const submit = () => {
    form.dataset.positionSent = "yes";
    form.requestSubmit();
  };
  const fail = (text) => {
    if (!required) return submit();
    problem.textContent = text;
    problem.hidden = false;
  };
  if (!navigator.geolocation) {
    return fail("This browser cannot tell your position: report on scene by radio.");
  }
  navigator.geolocation.getCurrentPosition(
    (position) => {
      form.elements.latitude.value = position.coords.latitude;
      form.elements.longitude.value = position.coords.longitude;
      submit();
    },
    (error) => fail(POSITION_PROBLEMS[error.code] || POSITION_PROBLEMS[2]),
    { enableHighAccuracy: true, timeout: 15000, maximumAge: 30000 },
  );
}

document.addEventListener("DOMContentLoaded", () => {
  // on the document: forms arrive with live updates
  document.addEventListener("submit", sendPosition);
  document.querySelectorAll("[data-live]").forEach(followLive);
  tickClocks();
  setInterval(tickClocks, 1000);
});
