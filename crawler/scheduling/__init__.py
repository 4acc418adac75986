"""Scheduled operation: targets and their schedules, crawl tasks, the daemon, workers, shutdown.

A newcomer's map::

    targets.py    TargetRepo: the ``targets`` collection (CLI-added and approved discoveries)
    plan.py       Schedule: config groups + DB targets → one schedule per target, due times
    tasks.py      CrawlTasks: one crawl task per target per due time (``<target>/<due epoch>``)
    runners.py    method (web | mtproto) → the real crawl driver, with run records and metrics
    worker.py     Worker: claim tasks with leases, heartbeat, run, ack/nack; clean stop
    daemon.py     Daemon: APScheduler timers that create tasks; optional in-process worker
    children.py   child ``tgwatch worker`` processes started and stopped by ``tgwatch run``
    shutdown.py   signals → a stop event (first) and cancellation (second)
    api.py        the ``/metrics`` route
"""
