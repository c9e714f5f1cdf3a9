// The API's interactive documentation: Swagger UI (from the swagger-ui-bundle-v2 package, served here).
window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true});
