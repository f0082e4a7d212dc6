import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'coverage/**', '.tap/**', '.local/**', '.cache/**'] }),
  {
    // TypeBox's idiom: a schema and its Static type share one name (`const User`, `type User`).
    rules: { '@typescript-eslint/no-redeclare': 'off' }
  }
]
