"""``customlabels pipeline run|status`` and ``customlabels worker`` (Celery or SQS)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from customlabels.errors import InvalidParameterError

pipeline_app = typer.Typer(
    help="Run the model on every image that lands under a bucket prefix; results as <key>.json.",
    no_args_is_help=True,
)


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(process)d %(levelname)s %(message)s",
    )


@pipeline_app.command("run")
def run_cmd(
    bucket: Annotated[
        Path | None,
        typer.Option("--bucket", help="Local folder used as the bucket (embedded mode)."),
    ] = None,
    store: Annotated[
        str | None, typer.Option("--store", help="s3://BUCKET (scale-out mode, with --broker).")
    ] = None,
    broker: Annotated[
        str | None,
        typer.Option("--broker", help="redis://HOST:6379/0: dispatch to `customlabels worker`s."),
    ] = None,
    prefix: Annotated[
        str, typer.Option("--prefix", help="Only keys under this prefix are inputs.")
    ] = "test_images/",
    model: Annotated[
        Path | None, typer.Option("--model", help="Model version folder (model.onnx + model.json).")
    ] = None,
    workers: Annotated[int, typer.Option("--workers", help="Embedded worker processes.")] = 1,
    min_confidence: Annotated[
        float | None,
        typer.Option("--min-confidence", help="0–100; default: each label's assumed threshold."),
    ] = None,
    max_results: Annotated[
        int | None, typer.Option("--max-results", help="At most this many labels per image.")
    ] = None,
    settle: Annotated[
        float,
        typer.Option("--settle", help="Seconds a file must stay unchanged before it is read."),
    ] = 1.0,
    rescan: Annotated[
        float, typer.Option("--rescan", help="Seconds between full listings of the prefix.")
    ] = 30.0,
    lease: Annotated[
        float, typer.Option("--lease", help="Visibility timeout of a job, seconds.")
    ] = 300.0,
    max_attempts: Annotated[
        int, typer.Option("--max-attempts", help="Deliveries before a job is dead-lettered.")
    ] = 3,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir", help="Where the queue lives (default BUCKET/.customlabels-pipeline)."
        ),
    ] = None,
    once: Annotated[bool, typer.Option("--once", help="Process what is there, then exit.")] = False,
    events: Annotated[
        str | None,
        typer.Option("--events", help="Redis list name receiving S3 event JSON (scale-out)."),
    ] = None,
    events_url: Annotated[
        str | None,
        typer.Option("--events-url", help="Redis URL of --events (default: the broker)."),
    ] = None,
    s3_endpoint_url: Annotated[
        str | None, typer.Option("--s3-endpoint-url", help="S3-compatible endpoint.")
    ] = None,
    ledger: Annotated[
        str | None,
        typer.Option("--ledger", help="redis:// URL of the pipeline ledger (default: the broker)."),
    ] = None,
    seaweed_filer: Annotated[
        str | None,
        typer.Option("--seaweed-filer", help="HOST:PORT of a SeaweedFS filer: follow its feed."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Watch a prefix and write <key>.json (or <key>.error.json) beside every image."""
    _logging(verbose)
    if broker:
        from customlabels.pipeline.dispatch import DispatchConfig, run_dispatcher

        if not store:
            raise InvalidParameterError("--broker: needs --store s3://BUCKET")
        sent = run_dispatcher(
            DispatchConfig(
                store_url=store,
                broker=broker,
                prefix=prefix,
                s3_endpoint_url=s3_endpoint_url,
                events_list=events,
                events_url=events_url,
                reconcile_s=rescan,
                model_dir=model,
                seaweed_filer=seaweed_filer,
                ledger_url=ledger,
                exit_when_idle=once,
            )
        )
        typer.echo(json.dumps({"dispatched": sent}))
        return
    from customlabels.pipeline.embedded import EmbeddedConfig, run_embedded
    from customlabels.pipeline.sqlite_queue import QueueConfig
    from customlabels.pipeline.worker import WorkerOptions

    if bucket is None or model is None:
        raise InvalidParameterError("pipeline run: expected --bucket DIR and --model MODEL")
    delay = float(os.environ.get("CUSTOMLABELS_PIPELINE_DELAY_S", "0") or 0)
    summary = run_embedded(
        EmbeddedConfig(
            bucket=bucket,
            prefix=prefix,
            model_dir=model,
            workers=workers,
            options=WorkerOptions(min_confidence, max_results, delay_s=delay),
            queue=QueueConfig(lease_s=lease, max_attempts=max_attempts),
            state_dir=state_dir,
            settle_s=settle,
            rescan_s=rescan,
            exit_when_idle=once,
        )
    )
    typer.echo(
        json.dumps(
            {"queued": summary.queued, "restarts": summary.restarts, "counts": summary.counts}
        )
    )


@pipeline_app.command("status")
def status_cmd(
    bucket: Annotated[
        Path | None, typer.Option("--bucket", help="Local bucket folder (embedded mode).")
    ] = None,
    state_dir: Annotated[
        Path | None, typer.Option("--state-dir", help="Queue folder, if not the default.")
    ] = None,
    broker: Annotated[
        str | None, typer.Option("--broker", help="redis://... (scale-out mode, with --store).")
    ] = None,
    store: Annotated[
        str | None, typer.Option("--store", help="s3://BUCKET (scale-out mode).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ledger: Annotated[
        str | None,
        typer.Option("--ledger", help="redis:// URL of the pipeline ledger (default: the broker)."),
    ] = None,
) -> None:
    """Queued / in-progress / done / failed counts and the oldest waiting job."""
    from customlabels.pipeline.status import embedded_status, render_status, scaleout_status

    if broker:
        if not store:
            raise InvalidParameterError("--broker: needs --store s3://BUCKET")
        report = scaleout_status(broker, store, ledger)
    else:
        if bucket is None and state_dir is None:
            raise InvalidParameterError("pipeline status: expected --bucket DIR (or --broker)")
        report = embedded_status(bucket, state_dir)
    typer.echo(json.dumps(report, indent=1) if as_json else render_status(report))


def worker_cmd(
    store: Annotated[
        str | None,
        typer.Option("--store", help="s3://BUCKET (or, with --broker, a shared folder)."),
    ] = None,
    model: Annotated[
        Path | None, typer.Option("--model", help="Model version folder or bundle.")
    ] = None,
    queues: Annotated[
        str,
        typer.Option(
            "--queues",
            help="Celery queue: customlabels (detection, the default) or train (the server's "
            "training jobs; needs the server's home at the same path, see docs/service.md).",
        ),
    ] = "customlabels",
    broker: Annotated[
        str | None,
        typer.Option("--broker", help="Celery: redis://HOST:6379/0 or amqp://..."),
    ] = None,
    sqs_queue_url: Annotated[
        str | None,
        typer.Option("--sqs-queue-url", help="SQS: the queue of the S3 event notifications."),
    ] = None,
    prefix: Annotated[
        str, typer.Option("--prefix", help="SQS: only keys under this prefix are inputs.")
    ] = "",
    s3_endpoint_url: Annotated[
        str | None, typer.Option("--s3-endpoint-url", help="S3-compatible endpoint.")
    ] = None,
    sqs_endpoint_url: Annotated[
        str | None, typer.Option("--sqs-endpoint-url", help="SQS-compatible endpoint.")
    ] = None,
    min_confidence: Annotated[float | None, typer.Option("--min-confidence", help="0–100.")] = None,
    max_results: Annotated[int | None, typer.Option("--max-results")] = None,
    sse: Annotated[
        str | None,
        typer.Option("--sse", help="Server-side encryption of results: aws:kms or AES256."),
    ] = None,
    sse_kms_key_id: Annotated[
        str | None, typer.Option("--sse-kms-key-id", help="KMS key for --sse aws:kms.")
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", help="Celery: worker processes on this machine.")
    ] = 1,
    threads: Annotated[
        int, typer.Option("--threads", help="ONNX Runtime threads per process.")
    ] = 1,
    visibility_timeout: Annotated[
        float | None,
        typer.Option(
            "--visibility-timeout",
            help="Redis: redelivery of unacked jobs (default 3600 s); SQS: how far ahead the "
            "heartbeat keeps a running image's message invisible (default 60 s).",
        ),
    ] = None,
    max_retries: Annotated[
        int, typer.Option("--max-retries", help="Celery: retries before a dead letter.")
    ] = 3,
    sqs_wait: Annotated[
        int, typer.Option("--sqs-wait", help="SQS: long-poll wait of a receive, 0–20 s.")
    ] = 20,
    outage_wait: Annotated[
        float,
        typer.Option("--outage-wait", help="Seconds a store outage is waited out per job."),
    ] = 300.0,
    ledger: Annotated[
        str | None,
        typer.Option("--ledger", help="redis:// URL of the pipeline ledger (default: the broker)."),
    ] = None,
) -> None:
    """A worker: image keys from Celery (--broker) or S3 events from SQS, results to the store;
    or, with --queues train, the training jobs of a `serve --train-runner celery`."""
    _logging(False)
    if queues not in QUEUES:
        raise InvalidParameterError(
            f"--queues: expected one of {', '.join(QUEUES)}, got {queues!r}"
        )
    if queues == "train":
        _train_worker(broker, concurrency, visibility_timeout)
        return
    if store is None or model is None:
        raise InvalidParameterError("worker: detection needs --store and --model")
    from customlabels.pipeline.retry import OutagePolicy
    from customlabels.pipeline.worker import WorkerOptions
    from customlabels.storage.s3 import sse_params

    if (broker is None) == (sqs_queue_url is None):
        raise InvalidParameterError("worker: expected exactly one of --broker and --sqs-queue-url")
    delay = float(os.environ.get("CUSTOMLABELS_PIPELINE_DELAY_S", "0") or 0)
    options = WorkerOptions(min_confidence, max_results, delay_s=delay)
    outage = OutagePolicy(give_up_s=outage_wait)
    if sqs_queue_url is not None:
        from customlabels.pipeline.sqs import SqsSettings, run_sqs_worker

        counts = run_sqs_worker(
            SqsSettings(
                queue_url=sqs_queue_url,
                store_url=store,
                model_dir=model,
                prefix=prefix,
                s3_endpoint_url=s3_endpoint_url,
                sqs_endpoint_url=sqs_endpoint_url,
                sse=sse_params(sse, sse_kms_key_id),
                options=options,
                threads=threads,
                visibility_s=int(visibility_timeout or 60),
                wait_s=sqs_wait,
                outage=outage,
            )
        )
        typer.echo(json.dumps(counts))
        return
    from customlabels.pipeline.celery_app import WorkerSettings, run_worker

    settings = WorkerSettings(
        store_url=store,
        model_dir=model,
        s3_endpoint_url=s3_endpoint_url,
        sse=sse_params(sse, sse_kms_key_id),
        options=options,
        threads=threads,
        outage=outage,
        max_retries=max_retries,
        ledger_url=ledger,
    )
    run_worker(
        str(broker),
        settings,
        concurrency=concurrency,
        visibility_timeout_s=visibility_timeout or 3600.0,
    )


def _train_worker(broker: str | None, concurrency: int, visibility_timeout: float | None) -> None:
    from customlabels.service.train_celery import run_train_worker

    if broker is None:
        raise InvalidParameterError("worker --queues train: needs --broker redis://HOST:6379/0")
    run_train_worker(
        broker, concurrency=concurrency, visibility_timeout_s=visibility_timeout or 3600.0
    )


#: The queues a worker serves (``--queues``).
QUEUES = ("customlabels", "train")


def register(app: typer.Typer) -> None:
    """Add ``pipeline run|status`` and ``worker`` to ``app``."""
    app.add_typer(pipeline_app, name="pipeline")
    app.command("worker")(worker_cmd)
