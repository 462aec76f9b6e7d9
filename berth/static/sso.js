// Single sign-on: submit the add-on's sign-in form at once. Without scripts, its button works.
(function () {
  "use strict";
  var form = document.getElementById("sso-form");
  if (form) {
    form.submit();
  }
})();
