// The one way the scripts and the tests wait for something: poll the condition and, when it does not
// come, fail with a sentence saying what did not happen, rather than sleep a guessed time.
import { setTimeout as sleep } from 'node:timers/promises'

export interface WaitOptions {
  /** What is awaited, for the error: `timed out after 10000 ms waiting for ${what}`. */
  what: string | (() => string)
  timeoutMs?: number
  intervalMs?: number
}

type Truthy<T> = Exclude<T, false | 0 | '' | null | undefined>

/** Calls `probe` until it returns a truthy value and resolves with it. An error `probe` throws ends the wait. */
export async function waitFor<T> (probe: () => T | Promise<T>, { what, timeoutMs = 10_000, intervalMs = 50 }: WaitOptions): Promise<Truthy<T>> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== false && value !== 0 && value !== '' && value !== null && value !== undefined) return value as Truthy<T>
    if (performance.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'function' ? what() : what}`)
    await sleep(intervalMs)
  }
}
