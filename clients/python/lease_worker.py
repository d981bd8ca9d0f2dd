#!/usr/bin/python3
"""A Gate downloader worker in Python: hold a lease stream, take pushed tasks, complete them.

It opens TasksService.Lease (one bidirectional stream), says hello with its capacity, and
waits: the server pushes an assignment as soon as a task exists, without the worker asking
again. For each task it sends a heartbeat, "does the work" (here: nothing), and completes it
with the lease's fencing token. After --tasks tasks it closes its side of the stream and
exits once the server has closed its own. Each step prints one JSON line:

    PYTHONPATH=clients/python /usr/bin/python3 clients/python/lease_worker.py \
        --target 127.0.0.1:8080 --name my-host

Without --client-key (or GATE_CLIENT_KEY) it registers itself first. The whole stream has a
deadline (--deadline-seconds): a worker that gets no task in time ends with
{"step": "error", "code": "DEADLINE_EXCEEDED"} and exit code 1.
"""

import argparse
import json
import os
import queue
import sys

import grpc
from google.protobuf import struct_pb2

import gate_sdk  # noqa: F401  (puts the generated stubs on the import path)
from gate.clients.v1 import clients_service_pb2 as clients_pb
from gate.clients.v1 import clients_service_pb2_grpc as clients_grpc
from gate.tasks.v1 import tasks_service_pb2 as tasks_pb
from gate.tasks.v1 import tasks_service_pb2_grpc as tasks_grpc


def emit(step, **fields):
    print(json.dumps({"step": step, **fields}), flush=True)


def open_channel(args):
    if not args.tls:
        return grpc.insecure_channel(args.target)
    root = None
    if args.ca_cert:
        with open(args.ca_cert, "rb") as f:
            root = f.read()
    return grpc.secure_channel(args.target, grpc.ssl_channel_credentials(root_certificates=root))


def key_metadata(key):
    # Gate reads the seed's X-API-Key header; gRPC metadata keys are lower-case.
    return (("x-api-key", key),)


class Outbox:
    """The client's half of the stream: gRPC reads the request iterator on its own thread,
    so messages are handed to it through a queue; None closes the client's side."""

    def __init__(self):
        self._queue = queue.Queue()

    def send(self, message):
        self._queue.put(message)

    def close(self):
        self._queue.put(None)

    def __iter__(self):
        while True:
            message = self._queue.get()
            if message is None:
                return
            yield message


def do_work(task):
    """Where a real worker downloads the task's documents. Returns (downloaded, failed,
    skipped) and a summary; a long download would send heartbeats (or progress) every
    heartbeat_interval_ms of the welcome while it runs."""
    summary = struct_pb2.Struct()
    summary.update({"worker": "lease_worker.py", "pages": 0})
    return (0, 0, 0), summary


def work(args, channel, client_key):
    tasks = tasks_grpc.TasksServiceStub(channel)
    outbox = Outbox()
    outbox.send(tasks_pb.LeaseRequest(hello=tasks_pb.LeaseHello(capacity=args.capacity)))
    # One deadline for the whole stream: it travels to the server as grpc-timeout, and both
    # sides end the stream when it passes.
    responses = tasks.Lease(
        iter(outbox), metadata=key_metadata(client_key), timeout=args.deadline_seconds
    )
    done = 0
    try:
        for response in responses:
            kind = response.WhichOneof("kind")
            if kind == "welcome":
                w = response.welcome
                emit(
                    "welcome",
                    client_id=w.client_id,
                    lease_duration_ms=w.lease_duration_ms,
                    heartbeat_interval_ms=w.heartbeat_interval_ms,
                )
            elif kind == "assignment":
                task = response.assignment.task
                emit(
                    "assignment",
                    task_id=task.task_id,
                    lease_token=task.lease_token,
                    lease_expires_at=task.lease_expires_at.ToJsonString(),
                    search_params=dict(task.search_params),
                )
                # Still working: one heartbeat extends every lease this client holds.
                outbox.send(tasks_pb.LeaseRequest(heartbeat=tasks_pb.LeaseHeartbeat()))
                (downloaded, failed, skipped), summary = do_work(task)
                outbox.send(
                    tasks_pb.LeaseRequest(
                        completion=tasks_pb.LeaseCompletion(
                            task_id=task.task_id,
                            lease_token=task.lease_token,  # the fencing token of this lease
                            documents_downloaded=downloaded,
                            documents_failed=failed,
                            documents_skipped=skipped,
                            result_summary=summary,
                        )
                    )
                )
            elif kind == "ack":
                ack = response.ack
                if ack.kind == "heartbeat":
                    emit("heartbeat", lease_expires_at=ack.lease_expires_at.ToJsonString())
                else:
                    emit(ack.kind, task_id=ack.task_id, task_status=ack.task_status)
                    if ack.kind == "completion":
                        done += 1
                        if done >= args.tasks:
                            outbox.close()  # the server ends its side in turn
            elif kind == "rejection":
                r = response.rejection
                emit("rejection", kind=r.kind, task_id=r.task_id, code=r.code, message=r.message)
                return 1
            elif kind == "cancellation":
                # The operator cancelled a task this worker holds: stop working on it.
                c = response.cancellation
                emit("cancellation", task_id=c.task_id, reason=c.reason)
        # The server ended the stream. Before --tasks were done, that is a failure here; a
        # real worker would open a new stream.
        emit("closed", code="OK", tasks=done)
        return 0 if done >= args.tasks else 1
    finally:
        outbox.close()  # lets gRPC's request thread finish when the stream ended early


def run(args):
    with open_channel(args) as channel:
        client_key = args.client_key
        if not client_key:
            clients = clients_grpc.ClientsServiceStub(channel)
            registered = clients.RegisterClient(
                clients_pb.RegisterClientRequest(client_name=args.name, client_host=args.host),
                timeout=5,
            )
            # The client's key is shown only in this answer; a real host would store it.
            emit("register", client_id=registered.client_id)
            client_key = registered.api_key
        return work(args, channel, client_key)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="127.0.0.1:8080", help="host:port of Gate or Envoy")
    parser.add_argument(
        "--client-key",
        default=os.environ.get("GATE_CLIENT_KEY"),
        help="the client's API key (default: $GATE_CLIENT_KEY; without one, register)",
    )
    parser.add_argument("--name", default="python-worker", help="client_name to register")
    parser.add_argument("--host", default="python.example", help="client_host to register")
    parser.add_argument("--capacity", type=int, default=1, help="tasks run at once, 1 to 256")
    parser.add_argument("--tasks", type=int, default=1, help="tasks to complete before exiting")
    parser.add_argument(
        "--deadline-seconds", type=float, default=60.0, help="deadline of the whole stream"
    )
    parser.add_argument("--tls", action="store_true", help="use TLS (e.g. through Envoy)")
    parser.add_argument("--ca-cert", help="PEM file of the CA to trust with --tls")
    args = parser.parse_args()
    try:
        sys.exit(run(args))
    except grpc.RpcError as error:
        emit("error", code=error.code().name, message=error.details())
        sys.exit(1)


if __name__ == "__main__":
    main()
