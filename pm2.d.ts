// Types of `require('pmr/pm2')`, PM2's programmatic API over pmr (see
// index.d.ts: Pm2Api, Pm2Process, Pm2Env).
import type { Pm2Api, PmrError } from './index'

declare const pm2: Pm2Api & {
  /** Another API object, for another pmr home (`pm2_home` or `home`). */
  custom: new (options?: { pm2_home?: string; home?: string }) => Pm2Api
  PmrError: typeof PmrError
}
export = pm2
