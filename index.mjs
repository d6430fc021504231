// pmr's JS API as an ES module: `import pmr from 'pmr'` or named imports.
import api from './lib/api.js'

export const { connect, Supervisor, Client, PmrError } = api
export default api
