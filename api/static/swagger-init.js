// Starts Swagger UI at /docs from the vendored bundle; a file rather than an inline script
// so the page needs no 'unsafe-inline' in its Content-Security-Policy.
"use strict";

window.ui = SwaggerUIBundle({
  url: "/docs/openapi.json",
  dom_id: "#swagger-container",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
