"""Worker processes that execute submission runs, on any host, through Celery and Dagster's Celery run launcher.

With `EVENT_IMPORTER_CELERY_BROKER_URL` set when the instance is created, its `dagster.yaml` names
`dagster_celery`'s `CeleryRunLauncher`: every run the queue (or the CLI, the API) launches becomes one
Celery task on the broker, and whichever worker takes it executes the whole run, its three steps in
one process (the job's in-process executor), so the events and payloads handed from step to step
stay in that process's memory. A sharded submission is several runs, spread over the workers.

Start a worker (as many as you like, on any host that reaches the broker and PostgreSQL):

    celery -A event_importer.workers worker --pool solo --queues event-importer

`--pool solo` executes one run at a time in the worker process itself; start one worker per core.
The worker reads the same settings as the CLI (`.env`, the environment); its `DAGSTER_HOME` must hold
the same `dagster.yaml` (storage on PostgreSQL), and its database URL the same event cache.

Why the run launcher and not Dagster's Celery *executor*: the executor sends each step of a run to
the workers, and a step's output would then have to be written to storage shared by all hosts for
the next step to read; a submission's steps are quick and hand on every selected event, so one
process per run is cheaper, and shards give the parallelism. The launcher's task runs the run
directly and never waits on another task's result (the `result.get()` inside a task that fails
with the Celery executor under `CeleryRunLauncher`, dagster-io/dagster#29660, #32915).
"""

import os

from celery import Celery
from dagster_celery.config import DEFAULT_CONFIG
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_execute_job_task, create_resume_job_task
from kombu.entity import Queue

from event_importer.instance import CELERY_BROKER_ENV, CELERY_QUEUE_ENV, prepare_environment

DEFAULT_QUEUE = "event-importer"


def queue_name() -> str:
    """The broker queue the launcher sends runs to and the workers take them from."""
    return os.environ.get(CELERY_QUEUE_ENV) or DEFAULT_QUEUE


def make_worker_app() -> Celery:
    """The Celery app of a worker: the run launcher's tasks, on the configured broker and queue."""
    prepare_environment()
    queue = queue_name()
    app: Celery = make_app(  # type: ignore[no-untyped-call]
        app_args={
            "broker": os.environ.get(CELERY_BROKER_ENV),
            # Results are Dagster's event log (PostgreSQL); Celery's own result is not read.
            "backend": None,
            "include": [],
            "config_source": dict(DEFAULT_CONFIG),
            "task_default_queue": queue,
        }
    )
    app.conf.task_queues = [
        Queue(queue, routing_key=f"{queue}.#", queue_arguments={"x-max-priority": 10})  # type: ignore[no-untyped-call]
    ]
    # A run's task is acknowledged when taken, so a worker killed mid-run does not hand it to another
    # worker behind the ledger's back: its shard is re-run on purpose (`submit --selector pending`).
    app.conf.worker_prefetch_multiplier = 1
    create_execute_job_task(app)
    create_resume_job_task(app)
    return app


app = make_worker_app()
