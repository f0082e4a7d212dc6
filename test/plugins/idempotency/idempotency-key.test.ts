import t from 'tap'
import { parseIdempotencyKey } from '../../../plugins/idempotency/idempotency-key.js'

t.test('the draft\'s structured-field string, and bare keys for clients that send one', async t => {
  const accepted: Array<[string, string]> = [
    ['"8e03978e-40d5-43e8-bc93-6894a57f9324"', '8e03978e-40d5-43e8-bc93-6894a57f9324'],
    ['8e03978e-40d5-43e8-bc93-6894a57f9324', '8e03978e-40d5-43e8-bc93-6894a57f9324'],
    ['"with \\"quotes\\" and \\\\ backslash"', 'with "quotes" and \\ backslash'],
    ['"spaces, commas; all inside"', 'spaces, commas; all inside'],
    ['order-42', 'order-42'],
    ['12345', '12345'],
    ['?1', '?1'],
    ['YWJjZA==', 'YWJjZA=='],
    ['a/b:c', 'a/b:c'],
    [`"${'k'.repeat(255)}"`, 'k'.repeat(255)],
    ['k'.repeat(255), 'k'.repeat(255)],
    ['"x"', 'x'],
    [`"${'\\"'.repeat(255)}"`, '"'.repeat(255)]
  ]
  for (const [header, key] of accepted) t.equal(parseIdempotencyKey(header), key, header)
})

t.test('anything else is refused', async t => {
  const refused = [
    '', '""', `"${'k'.repeat(256)}"`, 'k'.repeat(256),
    '"unterminated', 'unopened"', '"a" "b"', '"a", "b"', 'a, b', 'a b',
    '"\u00e9"', '\u00e9', '"tab\there"', '"nul\u0000"', 'nul\u0000', '"bad \\escape"',
    '(1 2)', 'a\\b', '"a"garbage', '"key";p=1', 'token;flag', ' "padded"', '"\\"', `"${'\\"'.repeat(256)}"`
  ]
  for (const header of refused) t.equal(parseIdempotencyKey(header), undefined, JSON.stringify(header))
})
