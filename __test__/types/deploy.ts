// A deploy script as a user would write it; checked with tsc --noEmit.
import pmr, { connect, Supervisor, PmrError, type ExitEvent, type InstanceInfo, type Report } from '../../index'

async function deploy (): Promise<number> {
  const pm = await connect({ home: '/tmp/pmr-home' })
  pm.on('reload', (e) => console.log(`${e.app}#${e.id}: ${e.step} ${e.detail ?? ''}`))
  pm.on('exit', (e: ExitEvent) => { if (!e.expected) console.error(`${e.app} crashed with ${e.code ?? e.signal}`) })
  pm.on('log', (l) => console.log(`${l.app}|${l.stream}| ${l.line}`))
  try {
    const r: Report = await pm.reload('api', { updateEnv: true })
    for (const n of r.notices) console.log(n)
    const rows: InstanceInfo[] = await pm.list()
    console.log(rows.map((i) => `${i.name} ${i.status} ${i.memory} ${i.restart_reasons.crash}`).join('\n'))
    return 0
  } catch (err) {
    if (err instanceof PmrError && err.code === 'PMR_RELOAD') return 1
    throw err
  } finally {
    await pm.close()
  }
}

async function inProcess (): Promise<void> {
  const sup = new Supervisor({ logDir: './logs' })
  await sup.start({ name: 'worker', script: 'worker.js', instances: 'max', max_memory_restart: '300M', env_production: { NODE_ENV: 'production' } }, { env: 'production' })
  await sup.start('ecosystem.config.js', { only: ['api'] })
  for await (const line of sup.logs('worker', { lines: 5, follow: false })) console.log(line.line)
  await sup.scale('worker', '+1')
  await sup.close()
}

void deploy
void inProcess
void pmr.connect
