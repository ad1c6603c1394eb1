"""The mixcal client: a coordinator's sweeps, jobs and metrics as pandas
DataFrames and NumPy arrays.

    import mixcal
    c = mixcal.Client()                       # $MIXCAL_ADDRESS, $MIXCAL_TOKEN
    sweep = c.submit("examples/quickstart.json", wait=True)
    df = c.metrics(sweep, split="test")       # one row per job, epoch, split
    c.summary(sweep, vs="baseline")           # mean, std and paired intervals
    probs, labels = c.predictions(job=3)
"""

import json
import os
import time

import grpc
import numpy as np
import pandas as pd
from google.protobuf import json_format

from mixcal.errors import InvalidArgument, MixcalError, NotFound, from_rpc_error
from mixcal.v1 import (experiment_pb2, experiment_pb2_grpc, jobs_pb2,
                       metrics_pb2, sweep_pb2)

# EpochMetrics fields that identify a row rather than measure it.
_ROW_KEYS = ("job_id", "epoch", "split", "method", "value", "seed", "bins")
_TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}


def _env(name, default=""):
    value = os.environ.get(name, "")
    return value if value else default


def _read(path, what):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError as e:
        raise NotFound("%s %s: %s" % (what, path, e.strerror), "NOT_FOUND") from None
    except OSError as e:
        raise InvalidArgument("%s %s: %s" % (what, path, e.strerror),
                              "INVALID_ARGUMENT") from None


def _is_loopback(address):
    host = address.rsplit(":", 1)[0].strip("[]")
    for scheme in ("ipv4:", "ipv6:", "dns:///", "dns:"):
        if host.startswith(scheme):
            host = host[len(scheme):]
    return host in ("localhost", "::1") or host.startswith("127.")


def _enum_word(enum_type, number):
    """An enum value as the CLI writes it: SWEEP_SUCCEEDED -> succeeded."""
    value = enum_type.values_by_number.get(number)
    if value is None:
        return number
    name = value.name
    prefix = enum_type.name.replace("State", "").upper() + "_"
    if name.startswith(prefix):
        name = name[len(prefix):]
    return name.lower()


def _to_dict(message, defaults=True):
    """A message as plain Python: ints as ints (not JSON's strings), enums
    as words, nested messages as dicts. ``defaults``: also the fields left at
    their default (seed 0, epoch 0); without, only the fields set."""
    out = {}
    if defaults:
        # A field with presence (a message, an `optional` scalar, a oneof
        # member) only when set: an unset optional metric is absent, not 0.
        fields = [(fd, getattr(message, fd.name)) for fd in message.DESCRIPTOR.fields
                  if fd.label == fd.LABEL_REPEATED
                  or not (fd.message_type is not None or fd.containing_oneof is not None)
                  or message.HasField(fd.name)]
    else:
        fields = message.ListFields()
    for fd, value in fields:
        if fd.label == fd.LABEL_REPEATED:
            if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
                vfd = fd.message_type.fields_by_name["value"]
                out[fd.name] = {k: (_to_dict(v, defaults) if vfd.message_type else v)
                                for k, v in value.items()}
            elif fd.message_type is not None:
                out[fd.name] = [_to_dict(v, defaults) for v in value]
            elif fd.enum_type is not None:
                out[fd.name] = [_enum_word(fd.enum_type, v) for v in value]
            else:
                out[fd.name] = list(value)
        elif fd.message_type is not None:
            out[fd.name] = _to_dict(value, defaults)
        elif fd.enum_type is not None:
            out[fd.name] = _enum_word(fd.enum_type, value)
        else:
            out[fd.name] = value
    return out


def _job_dict(j):
    """A Job as job() and watch() give it: the fields set in its config,
    its settings as a dict, what its data turned out to be as a dict, and
    None where a time or worker is not there yet."""
    d = _to_dict(j)
    d["config"] = _to_dict(j.config, defaults=False)
    d["settings"] = {x.name: x.value for x in j.settings}
    d["data"] = json.loads(j.data) if j.data else None
    for key in ("worker_id", "lease_expires_at_us", "started_at_us", "finished_at_us"):
        if not d.get(key):
            d[key] = None
    return d


class Client:
    """A connection to a mixcal coordinator.

    Arguments default as the ``mixcal`` CLI's do: ``address`` to
    ``$MIXCAL_ADDRESS`` (else 127.0.0.1:7707); ``token`` to ``$MIXCAL_TOKEN``,
    else the contents of ``token_file`` or ``$MIXCAL_TOKEN_FILE``; ``tls_ca``
    (a PEM file: TLS on) to ``$MIXCAL_TLS_CA``. A token is sent to an address
    other than this machine only over TLS, unless ``insecure`` is true.
    ``timeout`` bounds each call in seconds (watching and predictions
    excepted).
    """

    def __init__(self, address=None, token=None, tls_ca=None, token_file=None,
                 insecure=False, timeout=60.0):
        self.address = address or _env("MIXCAL_ADDRESS", "127.0.0.1:7707")
        if token is None:
            token = _env("MIXCAL_TOKEN")
            token_file = token_file or (None if token else _env("MIXCAL_TOKEN_FILE"))
            if token_file:
                token = _read(token_file, "token file").decode().strip()
        self._token = token or ""
        tls_ca = tls_ca or _env("MIXCAL_TLS_CA")
        if self._token and not tls_ca and not insecure and not _is_loopback(self.address):
            raise MixcalError(
                "refusing to send the token in plaintext to %s, which is not this "
                "machine: give tls_ca (the coordinator's CA), or insecure=True"
                % self.address)
        options = [("grpc.max_receive_message_length", 64 << 20)]
        if tls_ca:
            creds = grpc.ssl_channel_credentials(_read(tls_ca, "tls_ca"))
            self._channel = grpc.secure_channel(self.address, creds, options)
        else:
            self._channel = grpc.insecure_channel(self.address, options)
        self._api = experiment_pb2_grpc.ExperimentServiceStub(self._channel)
        self.timeout = timeout

    # -- plumbing ---------------------------------------------------------

    def _metadata(self):
        return [("authorization", "Bearer " + self._token)] if self._token else []

    def _call(self, method, request, timeout=-1):
        try:
            return getattr(self._api, method)(
                request, metadata=self._metadata(),
                timeout=self.timeout if timeout == -1 else timeout)
        except grpc.RpcError as e:
            raise from_rpc_error(e, self.address) from None

    def _stream(self, method, request, timeout=None):
        try:
            for message in getattr(self._api, method)(
                    request, metadata=self._metadata(), timeout=timeout):
                yield message
        except grpc.RpcError as e:
            raise from_rpc_error(e, self.address) from None

    def close(self):
        """Closes the connection."""
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- sweeps and jobs --------------------------------------------------

    def submit(self, spec, wait=False, poll_seconds=2.0):
        """Submits a sweep and returns its id.

        ``spec`` is a dict in the JSON form of docs/sweep-spec.md (camelCase
        or snake_case keys) or the path of such a JSON file; unknown fields
        are an error (:class:`InvalidArgument`), as the coordinator refuses
        out-of-range values. With ``wait`` it returns once every job ended.
        """
        if isinstance(spec, (str, os.PathLike)):
            try:
                spec = json.loads(_read(spec, "spec").decode())
            except ValueError as e:
                raise InvalidArgument("spec %s: not JSON: %s" % (spec, e),
                                      "INVALID_ARGUMENT") from None
        message = sweep_pb2.SweepSpec()
        try:
            json_format.ParseDict(spec, message)
        except json_format.ParseError as e:
            raise InvalidArgument("spec: %s" % e, "INVALID_ARGUMENT") from None
        sweep = self._call("SubmitSweep", experiment_pb2.SubmitSweepRequest(spec=message))
        if wait:
            self.wait(sweep.id, poll_seconds)
        return sweep.id

    def wait(self, sweep, poll_seconds=2.0):
        """Blocks until every job of ``sweep`` ended; returns its state as
        ``sweeps()`` writes it (``"succeeded"``, ``"failed"``, ``"cancelled"``)."""
        while True:
            s = self._call("GetSweep", experiment_pb2.GetSweepRequest(sweep_id=sweep))
            name = jobs_pb2.SweepState.Name(s.state).replace("SWEEP_", "")
            if name in _TERMINAL:
                return name.lower()
            time.sleep(poll_seconds)

    def sweep(self, sweep):
        """One sweep as a dict (its spec, state, job counts, submitter)."""
        s = self._call("GetSweep", experiment_pb2.GetSweepRequest(sweep_id=sweep))
        d = _to_dict(s)
        d["spec"] = _to_dict(s.spec, defaults=False)  # the fields it set
        return d

    def job(self, job):
        """One job as a dict: method, value, seed, state, epochs, error, its
        configuration as submitted (``config``, the fields set) and
        ``settings``: every setting it trains with, defaults filled in
        (name -> value, e.g. ``"training.batch_size": "128"``)."""
        return _job_dict(self._call("GetJob", experiment_pb2.GetJobRequest(job_id=job)))

    def sweeps(self, active_only=False, limit=1000):
        """The sweeps, newest first: id, name, state, created, submitter and
        job counts."""
        r = self._call("ListSweeps", experiment_pb2.ListSweepsRequest(
            limit=limit, active_only=active_only))
        rows = []
        for s in r.sweeps:
            c = s.counts
            rows.append({
                "sweep": s.id, "name": s.name,
                "state": jobs_pb2.SweepState.Name(s.state).replace("SWEEP_", "").lower(),
                "created": pd.to_datetime(s.created_at_us, unit="us", utc=True),
                "submitter": s.submitter, "jobs": len(s.job_ids),
                "queued": c.queued, "running": c.running, "succeeded": c.succeeded,
                "failed": c.failed, "cancelled": c.cancelled})
        return pd.DataFrame(rows, columns=[
            "sweep", "name", "state", "created", "submitter", "jobs", "queued",
            "running", "succeeded", "failed", "cancelled"])

    def jobs(self, sweep=None):
        """The jobs of ``sweep`` (or of every sweep): one row each with its
        method, hyperparameter, seed, state, attempts, newest epoch, error
        and the job's full configuration as a dict (column ``config``)."""
        if sweep is not None:
            self._call("GetSweep", experiment_pb2.GetSweepRequest(sweep_id=sweep))
        r = self._call("ListJobs", experiment_pb2.ListJobsRequest(
            sweep_id=sweep or 0, limit=10000))
        rows = []
        for j in r.jobs:
            rows.append({
                "sweep": j.sweep_id, "job": j.id, "method": j.method,
                "hyperparameter": j.value, "seed": j.seed,
                "state": jobs_pb2.JobState.Name(j.state).lower(),
                "device": j.device, "attempt": j.attempt,
                "max_attempts": j.max_attempts, "handbacks": j.handbacks,
                "last_epoch": j.last_epoch, "checkpoint_epoch": j.checkpoint_epoch,
                "error": j.error,
                "config": _to_dict(j.config, defaults=False)})
        return pd.DataFrame(rows, columns=[
            "sweep", "job", "method", "hyperparameter", "seed", "state", "device",
            "attempt", "max_attempts", "handbacks", "last_epoch",
            "checkpoint_epoch", "error", "config"])

    def cancel(self, sweep):
        """Cancels a sweep (its queued and running jobs)."""
        self._call("CancelSweep", experiment_pb2.CancelSweepRequest(sweep_id=sweep))

    # -- metrics ----------------------------------------------------------

    def metrics(self, sweep=None, split=None, job=None, bins=False):
        """Every stored epoch row of ``sweep`` (or of one ``job``): columns
        sweep, job, method, hyperparameter, seed, epoch, split and every
        metric the coordinator stores (accuracy, nll, brier, ece, mce, oe,
        adaptive_ece, ..., temperature, auroc; NaN where a split has none).
        ``split`` keeps one split (test, val, test_ts, train, noise, ood...);
        a split the sweep does not have is :class:`NotFound`, naming those
        it has. With ``bins`` a column of reliability bins (a list of dicts
        per row)."""
        if sweep is None and job is None:
            raise InvalidArgument("metrics: give a sweep or a job", "INVALID_ARGUMENT")
        if job is not None:
            j = self._call("GetJob", experiment_pb2.GetJobRequest(job_id=job))
            if sweep is not None and j.sweep_id != sweep:
                raise InvalidArgument("job %d is in sweep %d, not sweep %d"
                                      % (job, j.sweep_id, sweep), "INVALID_ARGUMENT")
            sweep_id, f = j.sweep_id, metrics_pb2.MetricsFilter(job_ids=[job])
        else:
            self._call("GetSweep", experiment_pb2.GetSweepRequest(sweep_id=sweep))
            sweep_id, f = sweep, metrics_pb2.MetricsFilter(sweep_id=sweep)
        f.page_size = 10000
        f.include_bins = bins
        request = experiment_pb2.QueryMetricsRequest(filter=f)
        fields = [fd for fd in metrics_pb2.EpochMetrics.DESCRIPTOR.fields
                  if fd.name not in _ROW_KEYS]
        rows, splits = [], set()
        while True:
            reply = self._call("QueryMetrics", request)
            for m in reply.rows:
                splits.add(m.split)
                if split is not None and m.split != split:
                    continue
                row = {"sweep": sweep_id, "job": m.job_id, "method": m.method,
                       "hyperparameter": m.value, "seed": m.seed,
                       "epoch": m.epoch, "split": m.split}
                for fd in fields:
                    if fd.has_presence and not m.HasField(fd.name):
                        row[fd.name] = np.nan
                    else:
                        row[fd.name] = getattr(m, fd.name)
                if bins:
                    row["bins"] = [{"count": b.count, "confidence_sum": b.confidence_sum,
                                    "correct": b.correct} for b in m.bins]
                rows.append(row)
            if not reply.next_page_token:
                break
            request.filter.page_token = reply.next_page_token
        if split is not None and split not in splits and splits:
            raise NotFound("no split %s in %s (known: %s)" % (
                split, "job %d" % job if job is not None else "sweep %d" % sweep,
                ", ".join(sorted(splits))), "NOT_FOUND")
        columns = (["sweep", "job", "method", "hyperparameter", "seed", "epoch", "split"]
                   + [fd.name for fd in fields] + (["bins"] if bins else []))
        return pd.DataFrame(rows, columns=columns)

    def summary(self, sweep, at="final", split="test", vs=None, select_split="",
                ensemble=False):
        """Mean and standard deviation over seeds per (method, hyperparameter,
        split), as ``mixcal summary`` prints them: columns ``METRIC_mean``,
        ``METRIC_std``; with ``vs`` (a method such as "baseline", or
        "mixup:0.4") also ``METRIC_diff``, ``METRIC_low``, ``METRIC_high``
        (95% paired Student-t interval) and ``METRIC_significant``.

        ``at``: "final" (each job's newest epoch), an epoch number, or
        "best:METRIC" (the epoch with the best METRIC on the validation
        split; ``select_split="test"`` chooses on test, and the column
        ``selected_on`` says so); "epoch:N" as the CLI writes it is N.
        ``split=None`` summarises every split; a split or epoch the sweep
        does not have raises NotFound naming what it has (a selection split
        without rows: FailedPrecondition). ``ensemble``: also a row per
        configuration for the seeds' averaged kept predictions (column
        ``ensemble``; ``left_out`` names seeds left out, or why there is no
        ensemble), as ``mixcal summary --ensemble``.
        """
        point = metrics_pb2.SummaryPoint()
        best = isinstance(at, str) and at.startswith("best:")
        if select_split and not best:
            raise InvalidArgument("summary: select_split needs at='best:METRIC'",
                                  "INVALID_ARGUMENT")
        if at == "final":
            point.final = True
        elif isinstance(at, int):
            point.epoch = at
        elif isinstance(at, str) and at.startswith("epoch:") and at[6:].isdigit():
            point.epoch = int(at[6:])
        elif best:
            point.best_by = at[len("best:"):]
            point.best_split = select_split
        else:
            raise InvalidArgument("summary: at must be 'final', an epoch or "
                                  "'best:METRIC', got %r" % (at,), "INVALID_ARGUMENT")
        r = self._call("SummarizeSweep", experiment_pb2.SummarizeSweepRequest(
            sweep_id=sweep, at=point, split=split or "", vs=vs or "",
            ensemble=bool(ensemble)))
        rows = []
        for row in r.rows:
            d = {"method": row.method, "hyperparameter": row.value, "split": row.split,
                 "seeds": row.seeds, "epochs": list(row.epochs),
                 "selected_on": row.selected_on}
            if ensemble:
                d["ensemble"] = row.ensemble
                d["left_out"] = list(row.left_out)
            if vs:
                d["vs"] = row.vs_method + ("" if row.vs_method == "baseline" else
                                           " %g" % row.vs_value)
            for s in row.stats:
                d[s.metric + "_mean"] = s.mean
                d[s.metric + "_std"] = s.std
                if vs and s.HasField("vs"):
                    d[s.metric + "_diff"] = s.vs.mean
                    d[s.metric + "_low"] = s.vs.low
                    d[s.metric + "_high"] = s.vs.high
                    d[s.metric + "_significant"] = s.vs.significant
            rows.append(d)
        return pd.DataFrame(rows)

    def predictions(self, job, epoch=None, split="test", log_probs=False,
                    full=False):
        """A job's kept predictions (evaluation.predictions): ``(probs,
        labels)``, float16 examples x classes and int32, of ``epoch`` (default
        the newest kept); with ``log_probs`` also each label's float32
        log-probability (or None where the worker kept none). With ``full``
        a dict: probabilities, labels, label_log_probs, epoch, split."""
        request = experiment_pb2.GetPredictionsRequest(
            job_id=job, epoch=epoch or 0, split=split)
        head, probs, labels, logs = None, [], [], []
        for chunk in self._stream("GetPredictions", request, timeout=600):
            if head is None:
                head = chunk
            probs.append(chunk.probabilities)
            labels.append(chunk.labels)
            logs.append(chunk.label_log_probs)
        if head is None:
            raise NotFound("job %d kept no predictions" % job, "NOT_FOUND")
        p = np.frombuffer(b"".join(probs), dtype="<f2").reshape(head.count, head.classes)
        y = np.frombuffer(b"".join(labels), dtype="<i4")
        lp = np.frombuffer(b"".join(logs), dtype="<f4")
        lp = lp if lp.size == head.count else None
        if full:
            return {"probabilities": p, "labels": y, "label_log_probs": lp,
                    "epoch": head.epoch, "split": head.split}
        return (p, y, lp) if log_probs else (p, y)

    def watch(self, sweep):
        """Follows a sweep live: yields ``("job", dict)`` when a job changes
        state, ``("metrics", dict)`` when an epoch is stored and ``("sweep",
        dict)`` for the sweep's state; ends when the sweep has ended. The
        dicts are the messages as plain Python (ints, states as words such
        as ``"running"``, ``"succeeded"``), as ``job()`` and ``sweep()``."""
        request = experiment_pb2.WatchSweepRequest(sweep_id=sweep)
        for update in self._stream("WatchSweep", request):
            kind = update.WhichOneof("update")
            part = getattr(update, kind)
            yield kind, _job_dict(part) if kind == "job" else _to_dict(part)

    def workers(self):
        """The registered workers: id, name, host, device, state (busy,
        idle, or gone: stopped, lost, out of rotation, silent for over a
        minute; as ``mixcal workers --all``), job and the age of the last
        heartbeat in seconds."""
        r = self._call("ListWorkers", experiment_pb2.ListWorkersRequest())
        now = time.time() * 1e6

        def words(w):  # as `mixcal workers` says it
            if w.state == jobs_pb2.WORKER_ACTIVE:
                if now - w.last_heartbeat_us > 60e6:
                    return "gone (silent)"
                return "busy" if w.current_job_id else "idle"
            return "gone (%s)" % _enum_word(jobs_pb2.WorkerState.DESCRIPTOR, w.state).replace("_", " ")
        rows = [{"worker": w.id, "name": w.name, "host": w.host, "device": w.device,
                 "state": words(w),
                 "job": w.current_job_id or None, "placement": w.placement,
                 "heartbeat_age_s": (now - w.last_heartbeat_us) / 1e6 if w.last_heartbeat_us else None}
                for w in r.workers]
        return pd.DataFrame(rows, columns=["worker", "name", "host", "device", "state",
                                           "job", "placement", "heartbeat_age_s"])

    def backup(self):
        """An online backup of the coordinator's store now (an admin token):
        a dict with its folder, sizes and seconds."""
        r = self._call("BackupStore", experiment_pb2.BackupStoreRequest(), timeout=None)
        return _to_dict(r)
