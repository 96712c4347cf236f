// Confirms by POST as soon as a real browser shows the page; scanners that only GET the link
// confirm nobody. The button stays as the fallback without JavaScript.
(function () {
  "use strict";
  var form = document.querySelector("form[data-nl-autosubmit]");
  if (form && !form.dataset.nlSubmitted) {
    form.dataset.nlSubmitted = "1";
    form.submit();
  }
})();
