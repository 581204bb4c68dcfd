"""A small in-process gRPC server for fakes of Google APIs, built on the real messages.

Google's GAPIC clients speak gRPC with proto-plus messages (``Type.serialize`` /
``Type.deserialize``) or, for ``google.longrunning`` and a few others, plain protobuf
messages (``SerializeToString`` / ``FromString``). A fake registers handlers per method
with :meth:`FakeGrpcServer.add_method`; the server decodes requests with the real types,
records every call, applies scripted faults, and encodes the handler's answer.

Pieces:

* :class:`FakeGrpcServer`: a ``grpc.server`` on ``127.0.0.1:0`` with generic handlers,
  :meth:`~FakeGrpcServer.fail` to script faults (a status N times, optionally with a gRPC
  ``RetryInfo`` delay), :attr:`~FakeGrpcServer.calls` to assert what clients sent.
* :class:`OperationStore`: a stateful ``google.longrunning.Operations`` servicer
  (GetOperation, ListOperations, DeleteOperation, CancelOperation, WaitOperation); an
  operation can finish after N polls with a response or an error.
* :class:`RpcFault`: raise it from a handler to answer with a gRPC status.
* :func:`insecure_client`: a real GAPIC client over an insecure channel transport to the
  fake (``client_options`` plus anonymous credentials alone would open TLS and fail).

Example::

    server = FakeGrpcServer()
    server.add_method("google.cloud.aiplatform.v1.DatasetService", "GetDataset",
                      GetDatasetRequest, Dataset, lambda request, context: Dataset(...))
    with server:
        client = insecure_client(DatasetServiceClient, server.address)
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
from google.longrunning import operations_pb2
from google.protobuf import any_pb2, duration_pb2, empty_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

__all__ = [
    "Call",
    "FakeGrpcServer",
    "Fault",
    "OperationStore",
    "RpcFault",
    "insecure_channel",
    "insecure_client",
    "pack_any",
    "to_pb",
]

Handler = Callable[[Any, grpc.ServicerContext], Any]


def to_pb(message: Any) -> Any:
    """Return the raw protobuf message of a proto-plus message (or the message itself).

    Args:
        message: A proto-plus or protobuf message.

    Returns:
        The protobuf message.
    """
    pb = getattr(type(message), "pb", None)
    if pb is not None and not hasattr(message, "SerializeToString"):
        return pb(message)
    return message


def pack_any(message: Any) -> any_pb2.Any:
    """Pack a proto-plus or protobuf message into ``google.protobuf.Any``.

    Args:
        message: The message.

    Returns:
        The ``Any``.
    """
    packed = any_pb2.Any()
    packed.Pack(to_pb(message))
    return packed


def _codec(message_type: Any) -> tuple[Callable[[bytes], Any], Callable[[Any], bytes]]:
    """Return (deserialize, serialize) for a proto-plus or protobuf message type."""
    if hasattr(message_type, "FromString"):
        return message_type.FromString, lambda message: message.SerializeToString()
    return message_type.deserialize, message_type.serialize


class RpcFault(Exception):  # noqa: N818 - it is a fault, not an error of the fake itself
    """Raise from a handler (or script with :meth:`FakeGrpcServer.fail`) to answer a status.

    Args:
        code: The gRPC status, e.g. ``grpc.StatusCode.UNAVAILABLE``.
        message: The status message the client sees.
        retry_after: When set, seconds sent as ``google.rpc.RetryInfo.retry_delay`` in the
            status details (what ``google.api_core`` exposes as ``exc.details``).
    """

    def __init__(
        self, code: grpc.StatusCode, message: str = "", *, retry_after: float | None = None
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message or code.name
        self.retry_after = retry_after

    def status(self) -> grpc.Status:
        """Return the ``grpc.Status`` with rich details for ``context.abort_with_status``."""
        status = status_pb2.Status(code=self.code.value[0], message=self.message)
        if self.retry_after is not None:
            seconds = int(self.retry_after)
            info = error_details_pb2.RetryInfo(
                retry_delay=duration_pb2.Duration(
                    seconds=seconds, nanos=int((self.retry_after - seconds) * 1e9)
                )
            )
            detail = any_pb2.Any()
            detail.Pack(info)
            status.details.append(detail)
        return rpc_status.to_status(status)


class Fault:
    """A scripted fault: answer ``code`` to the next ``times`` calls of one method.

    Attributes:
        method: The short method name (``"GetDataset"``) or the full path
            (``"/google.cloud.aiplatform.v1.DatasetService/GetDataset"``).
        code: The status to answer.
        times: How many calls still fail; ``None`` for every call.
        message: The status message.
        retry_after: Seconds of ``RetryInfo`` to attach, or None.
        after_handler: When True the handler runs first (its side effects happen) and the
            client still gets the fault: a create that succeeded on the server but whose
            answer was lost, as with a DEADLINE_EXCEEDED on the way back.
    """

    def __init__(
        self,
        method: str,
        code: grpc.StatusCode,
        *,
        times: int | None = 1,
        message: str = "",
        retry_after: float | None = None,
        after_handler: bool = False,
    ) -> None:
        self.method = method
        self.code = code
        self.times = times
        self.message = message or f"scripted {code.name}"
        self.retry_after = retry_after
        self.after_handler = after_handler
        self.fired = 0

    def matches(self, full_method: str) -> bool:
        """Tell whether this fault applies to ``full_method`` and still has calls left."""
        if self.times is not None and self.fired >= self.times:
            return False
        if self.method.startswith("/"):
            return self.method == full_method
        return full_method.rsplit("/", 1)[-1] == self.method


class Call:
    """One call the server received.

    Attributes:
        method: The full method path, e.g.
            ``"/google.cloud.aiplatform.v1.DatasetService/GetDataset"``.
        name: The short method name, e.g. ``"GetDataset"``.
        request: The decoded request message.
        metadata: The invocation metadata as a dict (last value wins).
        status: ``"OK"`` or the status name answered.
    """

    def __init__(self, method: str, request: Any, metadata: dict[str, str]) -> None:
        self.method = method
        self.name = method.rsplit("/", 1)[-1]
        self.request = request
        self.metadata = metadata
        self.status = "OK"

    def __repr__(self) -> str:
        return f"Call({self.name}, status={self.status})"


class FakeGrpcServer:
    """An in-process gRPC server on 127.0.0.1 with generic, scriptable method handlers.

    Args:
        max_workers: Threads serving calls (default 4).

    Use as a context manager, or call :meth:`start` and :meth:`stop`. The
    ``google.longrunning.Operations`` service is always present, backed by
    :attr:`operations`.
    """

    def __init__(self, *, max_workers: int = 4) -> None:
        self._methods: dict[str, tuple[Any, Any, Handler]] = {}
        self._lock = threading.RLock()
        self.faults: list[Fault] = []
        self.calls: list[Call] = []
        self.operations = OperationStore()
        self.operations.register(self)
        self._max_workers = max_workers
        self._server: grpc.Server | None = None
        self.port = 0

    # -- setup -------------------------------------------------------------------------

    def add_method(
        self,
        service: str,
        method: str,
        request_type: Any,
        response_type: Any,
        handler: Handler,
    ) -> None:
        """Register a unary-unary method.

        Args:
            service: Full service name, e.g. ``"google.cloud.aiplatform.v1.DatasetService"``.
            method: Method name, e.g. ``"GetDataset"``.
            request_type: Proto-plus or protobuf request class.
            response_type: Proto-plus or protobuf response class (e.g.
                ``operations_pb2.Operation`` for long-running methods).
            handler: ``handler(request, context) -> response``; may raise :class:`RpcFault`.
        """
        self._methods[f"/{service}/{method}"] = (request_type, response_type, handler)

    def fail(
        self,
        method: str,
        code: grpc.StatusCode,
        *,
        times: int | None = 1,
        message: str = "",
        retry_after: float | None = None,
        after_handler: bool = False,
    ) -> Fault:
        """Script a fault: the next ``times`` calls of ``method`` answer ``code``.

        Args:
            method: Short name (``"GetDataset"``) or full path.
            code: The status.
            times: Number of calls to fail (default 1); ``None`` for all.
            message: Status message (default ``"scripted <CODE>"``).
            retry_after: Seconds of ``google.rpc.RetryInfo`` to attach.
            after_handler: Run the handler first, then answer the fault (lost answer).

        Returns:
            The fault; its ``fired`` counts the calls it failed.
        """
        fault = Fault(
            method,
            code,
            times=times,
            message=message,
            retry_after=retry_after,
            after_handler=after_handler,
        )
        with self._lock:
            self.faults.append(fault)
        return fault

    def calls_to(self, method: str) -> list[Call]:
        """Return the calls received for a short method name, oldest first."""
        with self._lock:
            return [call for call in self.calls if call.name == method]

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def address(self) -> str:
        """``"127.0.0.1:PORT"`` once started."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> FakeGrpcServer:
        """Bind 127.0.0.1 on a free port and start serving.

        Returns:
            The server itself.
        """
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=self._max_workers))
        server.add_generic_rpc_handlers((_GenericHandler(self),))
        self.port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        """Stop serving at once (safe to call twice)."""
        if self._server is not None:
            self._server.stop(grace=None)
            self._server = None

    def __enter__(self) -> FakeGrpcServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- dispatch ----------------------------------------------------------------------

    def _take_fault(self, full_method: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(full_method):
                    fault.fired += 1
                    return fault
        return None

    def _behaviour(self, full_method: str) -> grpc.RpcMethodHandler | None:
        entry = self._methods.get(full_method)
        if entry is None:
            return None
        request_type, response_type, handler = entry
        deserialize, _ = _codec(request_type)
        _, serialize = _codec(response_type)

        def behaviour(request: Any, context: grpc.ServicerContext) -> Any:
            metadata = {key: str(value) for key, value in context.invocation_metadata()}
            call = Call(full_method, request, metadata)
            with self._lock:
                self.calls.append(call)
            fault = self._take_fault(full_method)
            try:
                if fault is not None and not fault.after_handler:
                    raise RpcFault(fault.code, fault.message, retry_after=fault.retry_after)
                response = handler(request, context)
                if fault is not None:
                    raise RpcFault(fault.code, fault.message, retry_after=fault.retry_after)
            except RpcFault as rpc_fault:
                call.status = rpc_fault.code.name
                context.abort_with_status(rpc_fault.status())
            return response

        return grpc.unary_unary_rpc_method_handler(
            behaviour, request_deserializer=deserialize, response_serializer=serialize
        )


class _GenericHandler(grpc.GenericRpcHandler):
    def __init__(self, server: FakeGrpcServer) -> None:
        self._server = server

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Any:
        return self._server._behaviour(handler_call_details.method)


class OperationStore:
    """A stateful ``google.longrunning.Operations`` service.

    An operation is created with :meth:`create` and finishes either at once, after a
    number of ``GetOperation`` polls (``done_after``), or when the test calls
    :meth:`finish`. The result is a response message or an error status.
    """

    SERVICE = "google.longrunning.Operations"

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self.ops: dict[str, operations_pb2.Operation] = {}
        self._pending: dict[str, tuple[int, Callable[[], Any]]] = {}
        self.polls: dict[str, int] = {}

    def register(self, server: FakeGrpcServer) -> None:
        """Add the Operations methods to ``server``."""
        service = self.SERVICE
        server.add_method(
            service,
            "GetOperation",
            operations_pb2.GetOperationRequest,
            operations_pb2.Operation,
            lambda request, _context: self.get(request.name),
        )
        server.add_method(
            service,
            "WaitOperation",
            operations_pb2.WaitOperationRequest,
            operations_pb2.Operation,
            lambda request, _context: self.get(request.name),
        )
        server.add_method(
            service,
            "ListOperations",
            operations_pb2.ListOperationsRequest,
            operations_pb2.ListOperationsResponse,
            self._list,
        )
        server.add_method(
            service,
            "DeleteOperation",
            operations_pb2.DeleteOperationRequest,
            empty_pb2.Empty,
            self._delete,
        )
        server.add_method(
            service,
            "CancelOperation",
            operations_pb2.CancelOperationRequest,
            empty_pb2.Empty,
            self._cancel,
        )

    def create(
        self,
        parent: str,
        *,
        metadata: Any | None = None,
        response: Any | None = None,
        done_after: int | None = 0,
        result: Callable[[], Any] | None = None,
    ) -> operations_pb2.Operation:
        """Create an operation named ``{parent}/operations/{n}``.

        Args:
            parent: The resource the operation works on.
            metadata: A message packed into ``Operation.metadata``, or None.
            response: The response message when it is done (or use ``result``).
            done_after: Polls of GetOperation before it is done: 0 means done at once;
                None means only :meth:`finish` ends it.
            result: Called when the operation finishes: returns the response message,
                or raises :class:`RpcFault` to end the operation with that error.

        Returns:
            A copy of the operation as first returned to the client.
        """
        name = f"{parent}/operations/{next(self._ids)}"
        operation = operations_pb2.Operation(name=name)
        if metadata is not None:
            operation.metadata.CopyFrom(pack_any(metadata))
        with self._lock:
            self.ops[name] = operation
            self.polls[name] = 0
            finisher = result if result is not None else (lambda: response)
            if done_after == 0:
                self._finish_with(name, finisher)
            elif done_after is not None:
                self._pending[name] = (done_after, finisher)
            else:
                self._pending[name] = (-1, finisher)
            copy = operations_pb2.Operation()
            copy.CopyFrom(operation)
        return copy

    def _finish_with(self, name: str, finisher: Callable[[], Any]) -> None:
        operation = self.ops[name]
        try:
            response = finisher()
        except RpcFault as fault:
            operation.error.CopyFrom(
                status_pb2.Status(code=fault.code.value[0], message=fault.message)
            )
        else:
            if response is not None:
                operation.response.CopyFrom(pack_any(response))
        operation.done = True

    def finish(self, name: str) -> None:
        """Finish a pending operation now (runs its ``result``)."""
        with self._lock:
            _, finisher = self._pending.pop(name)
            self._finish_with(name, finisher)

    def fail(self, name: str, code: grpc.StatusCode, message: str) -> None:
        """End an operation with an error status now."""
        with self._lock:
            self._pending.pop(name, None)
            operation = self.ops[name]
            operation.error.CopyFrom(status_pb2.Status(code=code.value[0], message=message))
            operation.done = True

    def get(self, name: str) -> operations_pb2.Operation:
        """Answer GetOperation: count the poll and finish the operation when due."""
        with self._lock:
            if name not in self.ops:
                raise RpcFault(grpc.StatusCode.NOT_FOUND, f"operation {name} not found")
            self.polls[name] += 1
            pending = self._pending.get(name)
            if pending is not None and 0 <= pending[0] <= self.polls[name]:
                del self._pending[name]
                self._finish_with(name, pending[1])
            copy = operations_pb2.Operation()
            copy.CopyFrom(self.ops[name])
            return copy

    def _list(
        self, request: operations_pb2.ListOperationsRequest, _context: object
    ) -> operations_pb2.ListOperationsResponse:
        with self._lock:
            ops = [op for name, op in self.ops.items() if name.startswith(request.name)]
            return operations_pb2.ListOperationsResponse(operations=ops)

    def _delete(
        self, request: operations_pb2.DeleteOperationRequest, _context: object
    ) -> empty_pb2.Empty:
        with self._lock:
            self.ops.pop(request.name, None)
            self._pending.pop(request.name, None)
        return empty_pb2.Empty()

    def _cancel(
        self, request: operations_pb2.CancelOperationRequest, _context: object
    ) -> empty_pb2.Empty:
        with self._lock:
            if request.name in self._pending:
                del self._pending[request.name]
                operation = self.ops[request.name]
                operation.error.CopyFrom(
                    status_pb2.Status(code=code_pb2.CANCELLED, message="cancelled")
                )
                operation.done = True
        return empty_pb2.Empty()


def insecure_channel(address: str) -> grpc.Channel:
    """Open an insecure (plaintext) channel to ``address`` (``"127.0.0.1:PORT"``)."""
    return grpc.insecure_channel(address)


def insecure_client(client_class: Any, address: str) -> Any:
    """Build a real GAPIC client that talks plaintext gRPC to ``address``.

    ``client_options={"api_endpoint": ...}`` with anonymous credentials still opens a TLS
    channel, which a plaintext loopback server refuses; giving the transport a ready
    ``grpc.insecure_channel`` avoids that and makes the transport skip credentials.

    Args:
        client_class: E.g. ``aiplatform_v1.DatasetServiceClient`` or
            ``automl_v1.AutoMlClient``.
        address: ``"127.0.0.1:PORT"``.

    Returns:
        The client.
    """
    transport_class = client_class.get_transport_class("grpc")
    transport = transport_class(channel=insecure_channel(address))
    return client_class(transport=transport)
