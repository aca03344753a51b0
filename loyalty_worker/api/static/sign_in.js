// The sign-in page: Firebase Authentication checks the e-mail and password (the password never
// reaches this server), then the form posts the account's ID token, which the server checks once
// and exchanges for its own session. The SDK keeps nothing in the browser (persistence NONE).
"use strict";

(function () {
  const form = document.getElementById("sign-in-form");
  if (!form || typeof firebase === "undefined") {
    return;
  }
  const shown = document.getElementById("js-error");
  const button = document.getElementById("sign-in");
  const app = firebase.initializeApp({
    apiKey: form.dataset.apiKey,
    authDomain: form.dataset.authDomain,
    projectId: form.dataset.project,
  });
  const auth = app.auth();
  if (form.dataset.emulator) {
    auth.useEmulator(form.dataset.emulator, { disableWarnings: true });
  }
  const reasons = {
    "auth/invalid-credential": "That e-mail and password do not match a Markitbot account.",
    "auth/wrong-password": "That e-mail and password do not match a Markitbot account.",
    "auth/user-not-found": "That e-mail and password do not match a Markitbot account.",
    "auth/invalid-email": "That is not an e-mail address.",
    "auth/user-disabled": "This Markitbot account is disabled.",
    "auth/too-many-requests": "Too many attempts: wait a minute, then try again.",
    "auth/network-request-failed": "The sign-in service cannot be reached; try again.",
  };

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    shown.hidden = true;
    button.disabled = true;
    try {
      await auth.setPersistence(firebase.auth.Auth.Persistence.NONE);
      const email = document.getElementById("email").value.trim();
      const password = document.getElementById("password").value;
      const credential = await auth.signInWithEmailAndPassword(email, password);
      document.getElementById("id-token").value = await credential.user.getIdToken();
      await auth.signOut();
      form.submit();
    } catch (error) {
      shown.textContent = reasons[error && error.code] || "Signing in failed; try again.";
      shown.hidden = false;
      button.disabled = false;
    }
  });
})();
