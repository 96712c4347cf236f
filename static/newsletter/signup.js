// The signup box answers in place: a refused try (too fast, a typo) keeps the reader on the
// page with the address filled in and the reason beside the form. Without scripts, or when
// anything goes wrong, the form posts as a plain form does.
(function () {
  "use strict";
  function wire(section) {
    var form = section.querySelector("form.nl-form");
    if (!form || !window.fetch) { return; }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = form.querySelector("button[type=submit]");
      if (button) { button.disabled = true; }
      fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { "X-Signup-Box": "1" },
        credentials: "same-origin"
      }).then(function (response) {
        if (response.ok) { window.location.assign(response.url); return null; }
        if (response.status !== 400) { form.submit(); return null; }
        return response.text().then(function (html) {
          var holder = document.createElement("div");
          holder.innerHTML = html;
          var fresh = holder.querySelector("section.nl-box");
          if (!fresh) { form.submit(); return; }
          section.replaceWith(fresh);
          wire(fresh);
          var input = fresh.querySelector("input[type=email]");
          if (input) { input.focus(); }
        });
      }).catch(function () { form.submit(); });
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll("section.nl-box"), wire);
}());
