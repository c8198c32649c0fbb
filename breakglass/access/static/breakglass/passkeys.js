// Account page: once django-otp-webauthn has registered a passkey, reload so the list shows
// it. A file of its own because the console's CSP allows no inline script.
document.addEventListener("otp_webauthn.register_complete", () => {
  window.location.reload();
});
