// Keyboard shortcuts on a request page: "a" twice approves, "r" goes to the rejection reason
// (Ctrl+Enter there rejects), "n" opens the next waiting request. Keys typed into a field are
// text, never shortcuts. Approving takes two presses, so one stray key never approves anything.
// A static file: the Content-Security-Policy allows no inline script.
(function () {
  var armed = 0;
  function typing(el) {
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }
  function say(text) {
    var status = document.querySelector("[data-keys-status]");
    if (status) status.textContent = text;
  }
  function submit(form) {
    if (form.requestSubmit) form.requestSubmit(); else form.submit();
  }
  document.addEventListener("keydown", function (event) {
    var reason = document.getElementById("reject-comment");
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && reason && event.target === reason) {
      event.preventDefault();
      submit(reason.form);
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    var approve = document.querySelector("form[data-decide=approve]");
    if (event.key === "a" && approve) {
      event.preventDefault();
      if (armed && Date.now() - armed < 5000) {
        armed = 0;
        say("Approving…");
        submit(approve);
      } else {
        armed = Date.now();
        approve.querySelector("button[type=submit]").focus();
        say("Press a again to approve.");
      }
      return;
    }
    armed = 0;
    if (event.key === "r" && reason) {
      event.preventDefault();
      reason.focus();
      say("Type the reason, then Ctrl+Enter to reject.");
    } else if (event.key === "n") {
      var next = document.querySelector("a[data-key-next]") || document.querySelector("a[data-key-queue]");
      if (next) { event.preventDefault(); window.location.assign(next.href); }
    }
  });
})();
