// The console's only script of its own: ask before a form marked data-confirm is sent
// (cancel, stop). Everything else is htmx (vendor/). No inline script: the CSP forbids it.
document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute && form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
}, true);
