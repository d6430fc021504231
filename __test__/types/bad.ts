// Misuses that the types must reject.
import { connect } from '../../index'

async function wrong (): Promise<void> {
  const pm = await connect()
  await pm.start({ script: 'app.js', max_memmory_restart: '1G' })
}
void wrong
