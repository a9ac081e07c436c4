/**
 * A private Docker daemon for interoperability tests: Debian's docker.io (client and daemon of
 * one version), started on a data root of the test's choosing and stopped by PID.
 *
 * ```ts
 * const d = await startDockerd(root, { driver: 'overlay2' })
 * if ('skip' in d) return t.skip(d.skip)
 * t.after(() => d.stop())              // also when the test fails
 * const id = await dockerBuild(d, contextDir, 'example/a:1')
 * await d.stop()                       // before anything else opens the root
 * ```
 *
 * The daemon is isolated as the benchmarks' (bench-docker.sh) is: its own data root, exec root
 * and pidfile, a unix socket only, no iptables, bridge or userland proxy. It also reads an
 * empty configuration file of its own, so that a host's daemon.json cannot change what it
 * does, and the client an empty configuration directory. Images come without network: the
 * legacy builder makes them `FROM scratch` with COPY, ADD, ENV and LABEL (no RUN).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseDiffId, parseDigest, type DiffId, type Digest } from '../digest/digest.js'
import { overlayUnsupported } from './overlay-mount.js'

/**
 * Debian's docker.io. Named by path: another `docker` earlier on PATH may be a newer client
 * without its daemon.
 */
export const DOCKER = '/usr/bin/docker'
export const DOCKERD = '/usr/sbin/dockerd'

/** How long the daemon may take to answer `docker version`, and to exit once told to. */
const START_TIMEOUT_MS = 30_000
const STOP_TIMEOUT_MS = 20_000

export interface DockerdOptions {
  /** Storage driver (default overlay2). */
  readonly driver?: 'overlay2' | 'vfs'
  /** dockerd's --log-level (default warn; debug shows layers it could not load). */
  readonly logLevel?: 'debug' | 'info' | 'warn'
}

export interface DockerResult {
  readonly stdout: Buffer
  readonly stderr: string
}

/** A running private dockerd. */
export interface Dockerd {
  readonly pid: number
  readonly dataRoot: string
  readonly driver: 'overlay2' | 'vfs'
  /** Runs the matching client against this daemon; rejects on a non-zero exit, with stderr. */
  docker(args: readonly string[], input?: Uint8Array | string): Promise<DockerResult>
  /** The daemon's output so far (all of it, once stopped). */
  log(): string
  /** SIGTERM, then waits for the exit (SIGKILL to its group after 20 s). Idempotent. */
  stop(): Promise<void>
}

/** Daemons still running, stopped when the test process exits whatever happened. */
const running = new Set<number>()
let exitHook = false

function killOnExit(pid: number): void {
  running.add(pid)
  if (exitHook) return
  exitHook = true
  process.on('exit', () => {
    for (const p of running) {
      try {
        process.kill(p, 'SIGTERM')
      } catch {
        // already gone
      }
    }
  })
}

/** Why a private dockerd cannot run here, or undefined when it can. */
export function dockerdUnavailable(driver: 'overlay2' | 'vfs' = 'overlay2'): string | undefined {
  if (process.getuid?.() !== 0) return 'dockerd needs root'
  for (const bin of [DOCKERD, DOCKER])
    if (!existsSync(bin)) return `Debian's docker.io is not installed (no ${bin})`
  if (driver === 'overlay2') {
    const why = overlayUnsupported()
    if (why !== undefined) return `overlay2: ${why}`
  }
  return undefined
}

/**
 * Starts dockerd on `dataRoot` and waits until it answers. Returns `{ skip }` where it cannot
 * run here (not root, not installed, no overlayfs for overlay2); a daemon that is there but
 * fails to start is an error, with its log.
 */
export async function startDockerd(
  dataRoot: string,
  options: DockerdOptions = {},
): Promise<Dockerd | { skip: string }> {
  const driver = options.driver ?? 'overlay2'
  const why = dockerdUnavailable(driver)
  if (why !== undefined) return { skip: why }

  const run = mkdtempSync(join(tmpdir(), 'layerstore-dockerd-'))
  const socket = join(run, 'docker.sock')
  const pidfile = join(run, 'docker.pid')
  const logPath = join(run, 'dockerd.log')
  const configFile = join(run, 'daemon.json')
  const clientConfig = join(run, 'client')
  writeFileSync(configFile, '{}\n')
  mkdirSync(clientConfig)
  const root = resolve(dataRoot)

  const fd = openSync(logPath, 'a')
  let child: ChildProcess
  try {
    child = spawn(
      DOCKERD,
      [
        '--data-root',
        root,
        '--exec-root',
        join(run, 'exec'),
        '--pidfile',
        pidfile,
        '--config-file',
        configFile,
        '--host',
        `unix://${socket}`,
        '--storage-driver',
        driver,
        '--iptables=false',
        '--ip6tables=false',
        '--ip-forward=false',
        '--ip-masq=false',
        '--bridge=none',
        '--userland-proxy=false',
        `--log-level=${options.logLevel ?? 'warn'}`,
      ],
      // Its own session (setsid), as the benchmark starts it: a signal to the test's process
      // group does not reach it, stop() does.
      { detached: true, stdio: ['ignore', fd, fd] },
    )
  } finally {
    closeSync(fd)
  }
  const pid = child.pid
  if (pid === undefined) {
    rmSync(run, { recursive: true, force: true })
    throw new Error(`Cannot start dockerd: spawn failed`)
  }
  killOnExit(pid)
  let exited = false
  const exit = new Promise<void>((done) => {
    child.on('exit', () => {
      exited = true
      running.delete(pid)
      done()
    })
  })
  child.unref()

  const env: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    DOCKER_HOST: `unix://${socket}`,
    DOCKER_CONFIG: clientConfig,
    DOCKER_BUILDKIT: '0', // the legacy builder: no BuildKit, no network
  }

  let finalLog: string | undefined
  const log = (): string => finalLog ?? readFileSync(logPath, 'utf8')

  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      if (!exited) process.kill(pid, 'SIGTERM')
      // The timer keeps the event loop alive while we wait (the child is unref'd); it is
      // cancelled once the daemon exits so that it does not hold the process for 20 s.
      const cancel = new AbortController()
      const timer = sleep(STOP_TIMEOUT_MS, 'timeout' as const, { signal: cancel.signal }).catch(
        () => 'exit' as const,
      )
      const first = await Promise.race([exit.then(() => 'exit' as const), timer])
      cancel.abort()
      if (first === 'timeout') {
        try {
          process.kill(-pid, 'SIGKILL')
        } catch {
          // exited meanwhile
        }
        await exit
      }
      unmountUnder([root, run])
      finalLog = readFileSync(logPath, 'utf8')
      rmSync(run, { recursive: true, force: true })
    })())

  const docker = (args: readonly string[], input?: Uint8Array | string): Promise<DockerResult> =>
    runDocker(env, args, input)

  try {
    const deadline = Date.now() + START_TIMEOUT_MS
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`dockerd exited while starting`)
      if (spawnSync(DOCKER, ['version'], { env, stdio: 'ignore' }).status === 0) break
      if (Date.now() > deadline)
        throw new Error(`dockerd did not answer within ${START_TIMEOUT_MS / 1000} s`)
      await sleep(200)
    }
    const written = readFileSync(pidfile, 'utf8').trim()
    if (written !== String(pid))
      throw new Error(`dockerd wrote pid ${written} to its pidfile, but it was started as ${pid}`)
  } catch (err) {
    await stop()
    throw new Error(`Cannot start dockerd on "${root}" (${driver}): ${String(err)}\n${log()}`, {
      cause: err,
    })
  }
  return { pid, dataRoot: root, driver, docker, log, stop }
}

function runDocker(
  env: NodeJS.ProcessEnv,
  args: readonly string[],
  input: Uint8Array | string | undefined,
): Promise<DockerResult> {
  return new Promise((done, fail) => {
    const p = spawn(DOCKER, args, { env, stdio: ['pipe', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    const err: Buffer[] = []
    p.stdout.on('data', (c: Buffer) => out.push(c))
    p.stderr.on('data', (c: Buffer) => err.push(c))
    p.on('error', fail)
    p.on('close', (code, signal) => {
      const stderr = Buffer.concat(err).toString()
      if (code === 0) done({ stdout: Buffer.concat(out), stderr })
      else
        fail(
          new Error(
            `docker ${args.join(' ')} failed (${signal ?? `exit ${String(code)}`}): ${stderr.trim()}`,
          ),
        )
    })
    p.stdin.on('error', () => undefined) // docker may exit before reading all of its input
    p.stdin.end(input)
  })
}

/** Mount points at or below any of `dirs`, deepest first (from /proc/self/mountinfo). */
function mountsUnder(dirs: readonly string[]): string[] {
  const points = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined)
    .map((p) => p.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
  return points
    .filter((p) => dirs.some((d) => p === d || p.startsWith(`${d}/`)))
    .sort((a, b) => b.length - a.length)
}

/** A daemon killed mid-way may leave mounts; the test's cleanup must not delete through them. */
function unmountUnder(dirs: readonly string[]): void {
  for (const m of mountsUnder(dirs)) spawnSync('umount', ['-l', m])
}

/**
 * Builds `contextDir` (which holds a Dockerfile) with the legacy builder and tags it; returns
 * the image ID.
 */
export async function dockerBuild(d: Dockerd, contextDir: string, tag: string): Promise<Digest> {
  const { stdout } = await d.docker(['build', '--quiet', '--tag', tag, contextDir])
  return parseDigest(stdout.toString().trim())
}

/** What `docker image inspect` says of an image: its ID and its layers' DiffIDs, bottom first. */
export async function inspectImage(
  d: Dockerd,
  ref: string,
): Promise<{ id: Digest; diffIds: DiffId[]; repoTags: string[] }> {
  const { stdout } = await d.docker(['image', 'inspect', ref])
  const [info] = JSON.parse(stdout.toString()) as {
    Id: string
    RepoTags: string[] | null
    RootFS: { Layers?: string[] }
  }[]
  if (info === undefined) throw new Error(`docker image inspect ${ref}: no image`)
  return {
    id: parseDigest(info.Id),
    diffIds: (info.RootFS.Layers ?? []).map(parseDiffId),
    repoTags: info.RepoTags ?? [],
  }
}
