//! `pmr examples`: the everyday scenarios, each runnable as it is written.

pub(super) const TEXT: &str = "\
Run a server on every CPU core (cluster mode)
  pmr start server.js --name api -i max   one worker per core, all sharing the app's port
  pmr list                                id, status, restarts, CPU and memory of each worker
  pmr logs api                            the last lines, then follow

Deploy without dropping a request
  pmr reload api                          replaces workers one by one, each once its
                                          replacement listens; a replacement that fails
                                          leaves the old worker serving (exit code 1)
  pmr restart api                         stops every worker, then starts them: a gap

An ecosystem file with production settings
  // ecosystem.config.js
  module.exports = {
    apps: [{
      name: 'api',
      script: 'dist/server.js',
      instances: 'max',                   // cluster mode: one worker per core, one port
      max_memory_restart: '1G',
      kill_timeout: '5s',                 // time to drain before SIGKILL
      env: { NODE_ENV: 'development', PORT: 3000 },
      env_production: { NODE_ENV: 'production' },
    }],
  }
  pmr start ecosystem.config.js --env production    env_production over env
  pmr reload ecosystem.config.js --env production   apply the edited file, zero downtime
  pmr startOrReload ecosystem.config.js             start what is missing, reload the rest
  pmr save && pmr startup                           bring the apps back after a reboot

Crash-loop protection
  pmr start worker.js --max-restarts 5 --min-uptime 10s
                                          a run shorter than 10 s is unstable; after 5
                                          unstable restarts in a row the app is errored
                                          and stays down instead of burning CPU
  pmr describe worker                     why it is errored, and its last exit
  pmr logs worker --lines 50 --nostream   the crash itself
  pmr restart worker                      after the fix: the count starts again
  pmr start worker.js --exp-backoff-restart-delay 100ms
                                          or wait longer after each crash (up to 15 s)

Reload on changes and on a schedule
  pmr start server.js -i 2 --watch=src --ignore-watch='*.log'
                                          a change under src/ reloads the app once files
                                          have been quiet for 1 s (--watch-delay)
  pmr stop --watch api                    keep it running, stop watching
  pmr start job.js --cron-restart '0 3 * * *'
                                          reload every day at 03:00 (pmr describe shows
                                          the next run)

Act on several apps at once
  pmr restart all
  pmr reload /^api-/                      every app whose name matches the regex
  pmr stop backend                        every app of namespace 'backend' (--namespace)

Find things out
  pmr describe api                        configuration, restarts by reason, last exit
  pmr pid api                             pids of the running instances
  pmr jlist / pmr prettylist              the process list as JSON (indented)
  pmr sendSignal SIGUSR2 api              a signal to every instance
  pmr reset api                           zero the restart counts
";
