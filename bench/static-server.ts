import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

import { freePort } from '../test/support/process-server.js'
import { run, startChild, waitForHttp, type Child, type Cleanup } from './processes.js'

const NGINX = '/usr/sbin/nginx'

export interface StaticServer {
  baseUrl: string
  /** What serves the files, for the report: nginx's version or the fallback. */
  description: string
  child: Child
}

/**
 * Serves `root` on loopback for the download reference: Debian's nginx with sendfile, as
 * people deploy it in front of files. Installed with apt-get when missing and we are root
 * (only where policy-rc.d stops the package from starting a system-wide nginx); otherwise
 * a bare node:http server that streams in 1 MiB reads, which the report says.
 */
export async function startStaticServer(
  cleanup: Cleanup,
  root: string,
  workDir: string,
): Promise<StaticServer> {
  const port = await freePort()
  const nginx = await findOrInstallNginx()
  if (nginx) {
    fs.mkdirSync(workDir, { recursive: true })
    const conf = path.join(workDir, 'nginx.conf')
    fs.writeFileSync(conf, nginxConf(workDir, root, port))
    const child = startChild(cleanup, 'nginx', nginx, ['-c', conf, '-p', workDir])
    await waitForHttp(`http://127.0.0.1:${port}/healthz`, child)
    const version = (await run(nginx, ['-v'])).stderr.trim()
    return { baseUrl: `http://127.0.0.1:${port}`, description: `${version}, sendfile on`, child }
  }

  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'file-server.js')
  const child = startChild(cleanup, 'node file server', process.execPath, [script], {
    env: { ...process.env, ROOT: root, PORT: String(port) },
  })
  await waitForHttp(`http://127.0.0.1:${port}/healthz`, child)
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    description: 'nginx NOT available: bare node:http streaming 1 MiB reads (fallback)',
    child,
  }
}

function nginxConf(workDir: string, root: string, port: number): string {
  const temp = (name: string) => path.join(workDir, name)
  return `daemon off;
master_process off;
worker_processes 1;
error_log ${temp('error.log')};
pid ${temp('nginx.pid')};
events {}
http {
  sendfile on;
  tcp_nopush on;
  access_log off;
  client_body_temp_path ${temp('body')};
  proxy_temp_path ${temp('proxy')};
  fastcgi_temp_path ${temp('fastcgi')};
  uwsgi_temp_path ${temp('uwsgi')};
  scgi_temp_path ${temp('scgi')};
  server {
    listen 127.0.0.1:${port};
    root ${root};
    location = /healthz { return 200 'ok'; }
  }
}
`
}

async function findOrInstallNginx(): Promise<string | undefined> {
  if (fs.existsSync(NGINX)) return NGINX
  const root = process.getuid?.() === 0
  const servicesBlocked =
    fs.existsSync('/usr/sbin/policy-rc.d') &&
    /exit\s+101/.test(fs.readFileSync('/usr/sbin/policy-rc.d', 'utf8'))
  if (!root || !servicesBlocked) return undefined
  console.log('nginx is missing: installing it with apt-get (its service stays stopped)')
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  await run('apt-get', ['update'], { env, timeoutMs: 300_000 })
  await run('apt-get', ['install', '-y', '--no-install-recommends', 'nginx'], {
    env,
    timeoutMs: 300_000,
  })
  return fs.existsSync(NGINX) ? NGINX : undefined
}
