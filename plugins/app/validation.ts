import { Ajv, type Options } from 'ajv'
import formats from 'ajv-formats'
import fp from 'fastify-plugin'

const shared: Options = { useDefaults: true, removeAdditional: false, allErrors: false, strict: false }

/**
 * Two validators where Fastify has one: JSON bodies are taken as sent (a number is not a string,
 * an unknown field is an error, not silently stripped), while the query string and path, which
 * are text by nature, are coerced to the declared types.
 */
export default fp(async function validation (fastify) {
  const body = formats.default(new Ajv({ ...shared, coerceTypes: false }))
  const text = formats.default(new Ajv({ ...shared, coerceTypes: 'array' }))
  // The API speaks JSON only: any other body, text/plain included, is a 415.
  fastify.removeContentTypeParser('text/plain')
  fastify.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? body : text).compile(schema))
}, { name: 'validation' })
