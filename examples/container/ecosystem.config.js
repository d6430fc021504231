// The app the container runs: one worker per CPU the container may use.
module.exports = {
  apps: [{
    name: 'api',
    script: 'server.js',
    instances: 'max',
    exec_mode: 'cluster',
    kill_timeout: 10000,
    max_memory_restart: '400M',
    env_production: { NODE_ENV: 'production', PORT: 3000 },
  }],
}
