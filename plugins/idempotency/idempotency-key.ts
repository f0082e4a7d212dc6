// The header's grammar: the draft's structured-field string of 1 to 255 characters (`"…"`, printable
// ASCII, `\"` and `\\` escaped; the draft defines no parameters), or a bare key of visible ASCII for
// clients that send one unquoted (UUIDs, which may begin with a digit; base64), without the delimiters
// of a structured field. A JSON-schema pattern: the route schema validates it and OpenAPI shows it.
export const IDEMPOTENCY_KEY_PATTERN =
  '^(?:"(?:[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]|\\\\[\\\\"]){1,255}"|[\\x21\\x23-\\x2b\\x2d-\\x3a\\x3c-\\x5b\\x5d-\\x7e]{1,255})$'

const GRAMMAR = new RegExp(IDEMPOTENCY_KEY_PATTERN, 'u')

/** The key an `Idempotency-Key` value names (a quoted one unescaped), or undefined when it is malformed. */
export function parseIdempotencyKey (value: string): string | undefined {
  if (!GRAMMAR.test(value)) return undefined
  return value.startsWith('"') ? value.slice(1, -1).replace(/\\(["\\])/g, '$1') : value
}
