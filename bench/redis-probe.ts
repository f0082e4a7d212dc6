// Preloaded into the service by the bench, and only there (`node --import dist/bench/redis-probe.js
// dist/server.js`): the client-side view of the service's Redis traffic, which ioredis does not count.
//
// - commands: every command the service hands to ioredis (Redis.prototype.sendCommand), by name. A
//   script is one command here (EVALSHA), whereas Redis's INFO commandstats also counts each command the
//   script runs inside Redis. While Redis is stopped these are attempts, rejected at once by ioredis.
// - writes: how many times a socket to the Redis port hands data to the kernel: `_write` for one chunk,
//   `_writev` for a batch that queued while the socket was busy. A write is one flight to Redis, so
//   commands per write above 1 means commands shared a flight (pipelining, by ioredis or by the socket).
//
// Each count is one increment, so that the probe does not cost the service measurable CPU.
import net from 'node:net'
import { Redis } from 'ioredis'

const redisPort = Number(process.env.BENCH_REDIS_PORT)
const counters = { commands: 0, writes: 0, bytes: 0, sockets: 0, byCommand: {} as Record<string, number> }

type Chunk = { chunk: Buffer | string }
type WriteFn = (this: net.Socket, chunk: Buffer | string, encoding: BufferEncoding, cb: (err?: Error | null) => void) => void
type WritevFn = (this: net.Socket, chunks: Chunk[], cb: (err?: Error | null) => void) => void

function instrument (socket: net.Socket): void {
  counters.sockets++
  const internals = socket as unknown as { _write: WriteFn, _writev: WritevFn }
  const write = internals._write
  const writev = internals._writev
  internals._write = function (chunk, encoding, cb) {
    counters.writes++
    counters.bytes += chunk.length
    write.call(this, chunk, encoding, cb)
  }
  internals._writev = function (chunks, cb) {
    counters.writes++
    for (const { chunk } of chunks) counters.bytes += chunk.length
    writev.call(this, chunks, cb)
  }
}

const createConnection = net.createConnection
Object.assign(net, {
  createConnection (...args: Parameters<typeof net.createConnection>) {
    const socket = createConnection(...args)
    const options: unknown = args[0]
    const port = typeof options === 'object' && options !== null ? Number((options as { port?: unknown }).port) : Number(options)
    if (port === redisPort) instrument(socket)
    return socket
  }
})

const prototype = Redis.prototype as unknown as { sendCommand: (this: Redis, command: { name: string }, ...rest: unknown[]) => unknown }
const sendCommand = prototype.sendCommand
prototype.sendCommand = function (command, ...rest) {
  counters.commands++
  counters.byCommand[command.name] = (counters.byCommand[command.name] ?? 0) + 1
  return sendCommand.call(this, command, ...rest)
}

// The bench asks over the IPC channel; the channel must not keep the process alive at shutdown.
process.on('message', (message) => {
  if (message === 'redis-probe') process.send?.({ redisProbe: { ...counters, byCommand: { ...counters.byCommand } } })
})
process.channel?.unref()
