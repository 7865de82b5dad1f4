// Times are rendered in UTC by the server; show them in the viewer's own time zone, with the
// UTC time kept on hover. A static file (never inline code): the Content-Security-Policy allows
// scripts from Warden itself only.
(function () {
  function localize(root) {
    root.querySelectorAll("time[data-local]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (isNaN(when)) return;
      el.textContent = when.toLocaleString(undefined, {
        year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
      });
      el.removeAttribute("data-local");
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    localize(document);
    // A form kept through a step-up sign-in is sent again at once (the button stays for no-JS).
    var replay = document.querySelector("form[data-autosubmit]");
    if (replay) replay.requestSubmit ? replay.requestSubmit() : replay.submit();
  });
  document.addEventListener("htmx:afterSwap", function (event) { localize(event.target); });
})();
