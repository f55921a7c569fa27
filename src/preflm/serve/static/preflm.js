// preflm pages: A / B / T keys press the matching button, and forms are sent with fetch so that a
// server that cannot be reached gives a clear message instead of the browser's error page.
(function () {
  "use strict";
  var busy = false;

  function say(text) {
    var box = document.getElementById("status");
    box.textContent = text;
    box.hidden = false;
  }

  function setBusy(form, value) {
    busy = value;
    form.querySelectorAll("button").forEach(function (b) { b.disabled = value; });
  }

  function send(form, submitter) {
    if (busy) { return; }
    var data = new FormData(form);
    if (submitter && submitter.name) { data.append(submitter.name, submitter.value); }
    setBusy(form, true);
    fetch(form.action, { method: "POST", body: new URLSearchParams(data), credentials: "same-origin",
                         headers: { "Accept": "text/html" } })
      .then(function (reply) {
        if (reply.ok && reply.redirected) { window.location.replace(reply.url); return; }
        return reply.text().then(function (html) {
          var page = new DOMParser().parseFromString(html, "text/html");
          var main = page.querySelector("main");
          document.title = page.title;
          document.querySelector("main").innerHTML = main ? main.innerHTML : html;
          var next = document.querySelector("main [autofocus]") || document.querySelector("main");
          next.focus();
          busy = false;
        });
      })
      .catch(function () {
        setBusy(form, false);
        say("The server cannot be reached right now. Your earlier answers are saved; " +
            "check your connection and try again in a moment.");
      });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList.contains("js-form")) { return; }
    event.preventDefault();
    send(form, event.submitter);
  });

  document.addEventListener("keydown", function (event) {
    if (event.altKey || event.ctrlKey || event.metaKey || event.repeat) { return; }
    var target = event.target;
    if (target && (target.tagName === "TEXTAREA" || target.tagName === "INPUT" || target.isContentEditable)) { return; }
    var button = document.querySelector('button[data-key="' + event.key.toLowerCase() + '"]');
    if (button && !button.disabled) {
      event.preventDefault();
      button.click();
    }
  });
})();
