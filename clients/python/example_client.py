#!/usr/bin/python3
"""A short Gate client in Python: register a downloader host, heartbeat it, list clients.

Every call carries a deadline. Each step prints one JSON line, so scripts (and Gate's interop
test) can read the output:

    PYTHONPATH=clients/python /usr/bin/python3 clients/python/example_client.py \
        --target 127.0.0.1:8080 --operator-key gate_...

Through Envoy (TLS): add --tls and, for the self-signed local certificate, --ca-cert FILE.
--show-deadlines adds what an expired deadline and a cancelled stream look like.
"""

import argparse
import json
import sys

import grpc

import gate_sdk  # noqa: F401  (puts the generated stubs on the import path)
from gate.clients.v1 import clients_service_pb2 as clients_pb
from gate.clients.v1 import clients_service_pb2_grpc as clients_grpc
from grpc.health.v1 import health_pb2, health_pb2_grpc


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


def run(args):
    deadline = args.deadline_seconds
    with open_channel(args) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        checked = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=deadline)
        emit("health", status=health_pb2.HealthCheckResponse.ServingStatus.Name(checked.status))

        clients = clients_grpc.ClientsServiceStub(channel)
        registered = clients.RegisterClient(
            clients_pb.RegisterClientRequest(client_name=args.name, client_host=args.host),
            timeout=deadline,
        )
        # The client's key is shown only in this answer; a real host would store it.
        emit("register", client_id=registered.client_id, status=registered.client.status)

        beat = clients.Heartbeat(
            clients_pb.HeartbeatRequest(status="active"),
            metadata=key_metadata(registered.api_key),
            timeout=deadline,
        )
        emit(
            "heartbeat",
            client_id=beat.client_id,
            status=beat.status,
            last_heartbeat=beat.last_heartbeat.ToJsonString(),
        )

        if args.operator_key:
            listed = clients.ListClients(
                clients_pb.ListClientsRequest(page_size=100),
                metadata=key_metadata(args.operator_key),
                timeout=deadline,
            )
            emit(
                "list",
                count=len(listed.clients),
                includes_me=any(c.id == registered.client_id for c in listed.clients),
            )

        if args.show_deadlines:
            show_deadlines(clients, health, registered.api_key)


def show_deadlines(clients, health, client_key):
    """How deadlines and cancellation look to a caller; each prints the status code seen."""
    # A deadline that has passed before the call starts: gRPC fails it locally.
    try:
        clients.Heartbeat(
            clients_pb.HeartbeatRequest(), metadata=key_metadata(client_key), timeout=0
        )
        emit("deadline", code="OK")
    except grpc.RpcError as error:
        emit("deadline", code=error.code().name)

    # A stream (health Watch sends a status, then waits for changes) that outlives its
    # deadline: the server sees the same budget in grpc-timeout and ends its side too.
    watch = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=0.5)
    first = health_pb2.HealthCheckResponse.ServingStatus.Name(next(watch).status)
    try:
        next(watch)  # no change comes, so the deadline ends the stream
        emit("stream_deadline", first=first, code="OK")
    except grpc.RpcError as error:
        emit("stream_deadline", first=first, code=error.code().name)

    # A stream the caller cancels: the server is told (RST_STREAM) and stops its handler.
    watch = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=5)
    next(watch)
    watch.cancel()
    try:
        next(watch)
        emit("stream_cancel", code="OK")
    except grpc.RpcError as error:
        emit("stream_cancel", code=error.code().name)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="127.0.0.1:8080", help="host:port of Gate or Envoy")
    parser.add_argument("--operator-key", help="operator API key, for ListClients")
    parser.add_argument("--name", default="python-example", help="client_name to register")
    parser.add_argument("--host", default="python.example", help="client_host to register")
    parser.add_argument("--deadline-seconds", type=float, default=5.0, help="per-call deadline")
    parser.add_argument("--tls", action="store_true", help="use TLS (e.g. through Envoy)")
    parser.add_argument("--ca-cert", help="PEM file of the CA to trust with --tls")
    parser.add_argument(
        "--show-deadlines", action="store_true", help="also show expired deadlines and a cancel"
    )
    args = parser.parse_args()
    try:
        run(args)
    except grpc.RpcError as error:
        emit("error", code=error.code().name, message=error.details())
        sys.exit(1)


if __name__ == "__main__":
    main()
