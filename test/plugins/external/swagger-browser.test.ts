import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { chromium } from 'playwright-core'
import t from 'tap'
import { CHROMIUM } from '../../../scripts/binaries.js'
import { build } from '../../helper.js'

// Debian's chromium, never a downloaded browser: `npm test` installs it with apt-get when run as root.
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--disable-quic', '--no-first-run']
const SCREENSHOT = resolve('.tap', 'screenshots', 'docs.png')

t.test('Swagger UI at /docs renders every operation in a real browser, loading nothing from outside the service', async t => {
  if (!existsSync(CHROMIUM)) {
    t.fail(`${CHROMIUM} is missing: sudo apt-get install -y chromium fonts-liberation (npm test does it when run as root)`)
    return
  }
  const app = await build(t)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const paths: Record<string, Record<string, { responses: object }>> = (await app.inject('/docs/json')).json().paths
  const expected = Object.entries(paths).flatMap(([path, methods]) => Object.keys(methods).map(method => `${method.toUpperCase()} ${path}`))

  const profile = mkdtempSync(join(tmpdir(), 'pw-chromium-'))
  t.teardown(() => rmSync(profile, { recursive: true, force: true }))
  const browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS })
  t.teardown(async () => await browser.close())

  const outside: string[] = []
  await browser.route('**/*', async route => {
    if (route.request().url().startsWith(base)) return await route.continue()
    outside.push(route.request().url())
    await route.abort()
  })
  const page = await browser.newPage()
  const errors: string[] = []
  page.on('pageerror', err => errors.push(err.message))
  // Chromium reports a blocked script, style, image or request both on the console and as an event.
  const console: string[] = []
  page.on('console', message => { if (message.type() === 'error' || message.type() === 'warning') console.push(message.text()) })
  await page.addInitScript({
    content: `window.cspViolations = []
      document.addEventListener('securitypolicyviolation', event => window.cspViolations.push(event.effectiveDirective + ' ' + event.blockedURI))`
  })
  const docs = await page.goto(`${base}/docs`)
  t.match(docs?.headers()['content-security-policy'], /default-src 'none'/, 'the page is served with a CSP of its own, strict by default')
  await page.locator('.opblock').first().waitFor({ timeout: 15_000 })

  // Swagger UI breaks long paths with zero-width spaces.
  const rendered = (await page.locator('.opblock').evaluateAll(blocks => blocks.map(block =>
    `${block.querySelector('.opblock-summary-method')?.textContent ?? ''} ${block.querySelector('.opblock-summary-path')?.textContent ?? ''}`)))
    .map(op => op.replace(/\u200b/g, ''))
  t.same([...rendered].sort(), expected.sort(), 'every operation of the document is listed')

  const one = page.locator('.opblock').nth(rendered.indexOf('GET /users/{id}'))
  await one.locator('.opblock-summary').click()
  await one.locator('.responses-table').first().waitFor()
  const statuses = await one.locator('.responses-table .response .response-col_status').allTextContents()
  t.same(statuses.map(status => status.trim()).sort(), Object.keys(paths['/users/{id}']!.get!.responses).sort(), 'an opened operation shows each of its answers')
  t.match(await page.locator('.info .title').textContent(), /PulseWatch API/)
  // "Try it out" calls the API from the page, which its CSP must allow (connect-src 'self').
  const healthz = page.locator('.opblock').nth(rendered.indexOf('GET /healthz'))
  await healthz.locator('.opblock-summary').click()
  await healthz.locator('.try-out__btn').click()
  await healthz.locator('.execute').click()
  const live = healthz.locator('.live-responses-table .response .response-col_status').first()
  await live.waitFor()
  t.equal((await live.textContent())?.trim(), '200', '"Try it out" gets an answer from the API')
  t.ok(await page.locator('.models').getByText('User', { exact: true }).isVisible(), 'the User schema is listed')
  t.ok(await page.locator('.btn.authorize').isVisible(), 'bearer authorization is offered')

  mkdirSync(join(SCREENSHOT, '..'), { recursive: true })
  await page.screenshot({ path: SCREENSHOT, fullPage: true })
  t.ok(existsSync(SCREENSHOT), `screenshot saved: ${SCREENSHOT}`)
  t.same(errors, [], 'no script errors')
  t.same(await page.evaluate('window.cspViolations'), [], 'no CSP violation event')
  t.same(console.filter(line => /Content Security Policy/i.test(line)), [], 'no CSP violation on the console')
  t.same(outside, [], 'no request left the service')
})
