import helmet from 'helmet'
import type { IncomingMessage, ServerResponse } from 'node:http'
import fp from 'fastify-plugin'

/** One year, in seconds: the least ASVS 5 (3.4.1) accepts for HSTS. */
const HSTS_MAX_AGE = 31_536_000

/**
 * What a helmet middleware sets, run once: the headers never depend on the request. Each answer then
 * gets them as Fastify headers, cheaper than @fastify/helmet, which builds helmet's middleware again
 * on every request (docs/benchmarks.md).
 */
function headersOf (middleware: ReturnType<typeof helmet>): Record<string, string> {
  const headers: Record<string, string> = {}
  const response = { setHeader: (name: string, value: unknown) => { headers[name.toLowerCase()] = String(value) }, removeHeader: () => {} }
  middleware({} as IncomingMessage, response as unknown as ServerResponse, () => {})
  return headers
}

/**
 * The security headers of every answer, for a JSON API (OWASP REST Security Cheat Sheet, ASVS 5 V3.4).
 * Register it before any hook that may answer early (rate limit, authentication), so that a 401 or 429
 * carries them too. Swagger UI at /docs replaces the CSP with its own (plugins/external/swagger.ts).
 */
export default fp(async function securityHeaders (fastify) {
  const headers = headersOf(helmet({
    // JSON is never a document: it may load, run, frame or submit nothing, and be framed by no one.
    contentSecurityPolicy: {
      useDefaults: false,
      directives: { defaultSrc: ["'none'"], baseUri: ["'none'"], formAction: ["'none'"], frameAncestors: ["'none'"] }
    },
    // Sent by the app itself, not left to the ingress that terminates TLS: clients only ever see it
    // over HTTPS there, and a browser ignores it over plain HTTP (development). No `preload`: that
    // commits the whole domain, which is its owner's call.
    strictTransportSecurity: { maxAge: HSTS_MAX_AGE, includeSubDomains: true, preload: false },
    xContentTypeOptions: true,
    xFrameOptions: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    // Other sites may call the API with CORS, but may not read its answers as a no-cors subresource.
    crossOriginResourcePolicy: { policy: 'same-origin' },
    crossOriginOpenerPolicy: { policy: 'same-origin' },
    xPermittedCrossDomainPolicies: { permittedPolicies: 'none' },
    // Headers for HTML in old or particular browsers, of no use to JSON; each costs every answer.
    crossOriginEmbedderPolicy: false,
    originAgentCluster: false,
    xDnsPrefetchControl: false,
    xDownloadOptions: false,
    xXssProtection: false
  }))
  // Answers carry tokens and personal data: no cache may keep them unless a route sets its own
  // Cache-Control later (the static files of /docs do), which replaces this one.
  headers['cache-control'] = 'no-store'
  fastify.addHook('onRequest', (_request, reply, done) => {
    reply.headers(headers)
    done()
  })
}, { name: 'helmet' })
