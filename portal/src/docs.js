// Starts Swagger UI (loaded before this module by docs.html) on this deployment's own OpenAPI
// document, with "try it out" aimed at this origin, whatever the document's `servers` say.

const root = document.getElementById("swagger-ui");

async function start() {
  const response = await fetch("/openapi.json", { headers: { accept: "application/json" }, credentials: "omit" });
  if (!response.ok) throw new Error(`/openapi.json answered ${response.status}`);
  const spec = await response.json();
  spec.servers = [{ url: location.origin, description: "This deployment" }];
  root.replaceChildren();
  window.SwaggerUIBundle({
    spec,
    domNode: root,
    deepLinking: true,
    // No third party: the online validator badge would call validator.swagger.io.
    validatorUrl: null,
    // Authorizations stay in memory; persisting them would write tokens to localStorage.
    persistAuthorization: false,
    displayRequestDuration: true,
    defaultModelsExpandDepth: 0,
    docExpansion: "list",
    tryItOutEnabled: false,
    presets: [window.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    onComplete: () => root.setAttribute("aria-busy", "false"),
  });
}

start().catch((error) => {
  root.setAttribute("aria-busy", "false");
  const message = document.createElement("p");
  message.setAttribute("role", "alert");
  message.textContent = `The API reference could not load: ${error.message}`;
  root.replaceChildren(message);
});
