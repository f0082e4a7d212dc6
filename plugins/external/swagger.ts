import fastifySwagger from '@fastify/swagger'
import fastifySwaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'
import pkg from '../../package.json' with { type: 'json' }

// The one inline style Swagger UI writes is the <style> of its own logo's SVG; a new version that writes
// another is caught by test/plugins/external/swagger-browser.test.ts, which fails on any CSP violation.
const SWAGGER_LOGO_STYLE = "'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='"
const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  `style-src 'self' ${SWAGGER_LOGO_STYLE}`,
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join('; ')

interface Operation { requestBody?: { required?: boolean, content?: Record<string, { schema?: { nullable?: boolean } }> } }

/**
 * The OpenAPI document, generated from the route schemas (GET /docs/json), and Swagger UI (GET /docs).
 * Both are public and never rate limited; register this after the hooks and before the routes it documents.
 */
export default fp(async function swagger (fastify) {
  await fastify.register(fastifySwagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: 'PulseWatch API', description: pkg.description, version: pkg.version },
      components: {
        securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'An access token from POST /auth/login or /auth/refresh' } }
      },
      tags: [
        { name: 'auth', description: 'Accounts and tokens' },
        { name: 'users', description: 'Users (bearer token required)' },
        { name: 'health', description: 'Liveness and readiness probes' },
        { name: 'operations', description: 'Metrics for operators' }
      ]
    },
    // A schema with an $id (User) becomes a component of that name rather than `def-0`.
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => typeof json.$id === 'string' ? json.$id : `def-${i}` },
    // A prefix's root route (`/users/`) is also served without the slash: document it as the contract names it.
    transform: ({ schema, url }) => ({ schema, url: url.length > 1 ? url.replace(/\/$/, '') : url }),
    // @fastify/swagger marks every body required; a body that may be null (POST /auth/logout's) may also be left out.
    transformObject: (document) => {
      const openapiObject = 'openapiObject' in document ? document.openapiObject : document.swaggerObject
      for (const operation of Object.values(openapiObject.paths ?? {}).flatMap(path => Object.values(path ?? {})) as Operation[]) {
        const body = operation.requestBody
        if (body !== undefined && Object.values(body.content ?? {}).some(media => media.schema?.nullable === true)) body.required = false
      }
      return openapiObject
    }
  })

  // DOCS_ENABLED=false: /docs and /docs/json answer 404 (fastify.swagger() still builds the document).
  if (!fastify.config.DOCS_ENABLED) return
  // Swagger UI takes no route config: set it on every route it adds, in a scope of its own.
  await fastify.register(async function docs (scope) {
    scope.addHook('onRoute', (route) => { route.config = { ...route.config, rateLimit: false } })
    // These routes replace the API's CSP (plugins/external/helmet.ts) with what the page needs: its own
    // scripts, styles and images (the logo is a data: URL) and calls to this origin; inline only the above.
    await scope.register(fastifySwaggerUi, { routePrefix: '/docs', uiConfig: { validatorUrl: null }, staticCSP: DOCS_CSP })
  })
}, { name: 'swagger' })
