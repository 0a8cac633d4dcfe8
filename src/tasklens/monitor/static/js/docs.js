// The API reference at /docs: Swagger UI, shipped with the monitor, reading this monitor's
// /openapi.json. No validator badge: it would ask a server elsewhere to check the document.
window.addEventListener("DOMContentLoaded", () => {
  window.SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", validatorUrl: null });
});
