"""gRPC adapter: fleetnas.agent.v1 messages <-> AgentService calls, and the one error table. Nothing else."""
from __future__ import annotations

import logging
import time
import traceback
from dataclasses import replace
from typing import Callable, Iterator, Optional

import grpc

from fleetnas.agent import __version__
from fleetnas.agent.rpc import convert
from fleetnas.agent.rpc.admission import (DEFAULT_LIMITS, DEFAULT_UPLOAD_IDLE_S, Admission, IdleWatch,
                                          cancel_with_status, thread_wait_ms)
from fleetnas.agent.errors import (AgentError, Busy, InvalidModel, InvalidRequest, ModelNotFound,
                                   RuntimeUnavailable, ShuttingDown)
from fleetnas.agent.measure.service import AgentService, DeadlineExceeded, describe_result
from fleetnas.agent.v1 import agent_pb2 as pb
from fleetnas.agent.v1 import agent_pb2_grpc

log = logging.getLogger("fleetnas.agent")

# Most specific first: DeadlineExceeded is a Busy.
ERROR_CODES = (
    (DeadlineExceeded, grpc.StatusCode.DEADLINE_EXCEEDED),
    (InvalidModel, grpc.StatusCode.INVALID_ARGUMENT),
    (InvalidRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (ModelNotFound, grpc.StatusCode.NOT_FOUND),
    (RuntimeUnavailable, grpc.StatusCode.FAILED_PRECONDITION),
    (Busy, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (ShuttingDown, grpc.StatusCode.UNAVAILABLE),  # the host re-dispatches, as for an agent that went away
)


def status_for(exc: AgentError) -> grpc.StatusCode:
    for cls, code in ERROR_CODES:
        if isinstance(exc, cls):
            return code
    return grpc.StatusCode.INTERNAL


class AgentServicer(agent_pb2_grpc.AgentServicer):
    def __init__(self, service: AgentService, device_info: Callable[[], pb.DeviceInfo], device_id: str,
                 admission: Optional[Admission] = None, idle: Optional[IdleWatch] = None) -> None:
        self.service = service
        self._device_info = device_info
        self.device_id = device_id
        measure_slots = service.max_queue + 1
        self.admission = admission or Admission({**DEFAULT_LIMITS, "measure": (measure_slots, measure_slots)})
        self.idle = idle or IdleWatch(DEFAULT_UPLOAD_IDLE_S)

    def _call(self, method: str, context: grpc.ServicerContext, body: Callable[[], object], detail=lambda r: ""):
        start = time.perf_counter()
        waited_ms = thread_wait_ms()
        try:
            response = body()
        except AgentError as exc:
            code = status_for(exc)
            log.info("%s from %s: %s %s (%.1f ms, %.1f ms waiting for a thread)", method, context.peer(), code.name,
                     exc, 1e3 * (time.perf_counter() - start), waited_ms)
            context.abort(code, str(exc))
        except Exception as exc:  # a bug: keep serving, tell the caller, keep the traceback in the log
            log.error("%s from %s failed:\n%s", method, context.peer(), traceback.format_exc())
            # an OSError's text names a file under the store: the caller gets the error, the log keeps the path
            why = f"{exc.strerror} (errno {exc.errno})" if isinstance(exc, OSError) and exc.strerror else str(exc)
            context.abort(grpc.StatusCode.INTERNAL, f"agent bug in {method}: {type(exc).__name__}: {why}")
        log.info("%s from %s: OK %s(%.1f ms, %.1f ms waiting for a thread)", method, context.peer(),
                 detail(response), 1e3 * (time.perf_counter() - start), waited_ms)
        return response

    def GetDeviceInfo(self, request, context):
        return self._call("GetDeviceInfo", context, lambda: pb.GetDeviceInfoResponse(info=self._device_info()))

    def UploadModel(self, request_iterator: Iterator[pb.UploadModelRequest], context):
        def body():
            with self.admission.slot("upload", context.peer(), "uploads"):
                touch, end = self.idle.watch(
                    lambda why: cancel_with_status(context, grpc.StatusCode.DEADLINE_EXCEEDED, why))
                try:
                    return receive(touch)
                except grpc.RpcError:  # the stream was cancelled: idle past the limit, or by the caller
                    raise InvalidRequest(f"upload stream ended before it was complete (idle for more than "
                                         f"{self.idle.idle_s:g} s, or cancelled by the caller)") from None
                finally:
                    end()

        def receive(touch):
            first = next(request_iterator, None)
            touch()
            if first is None or first.WhichOneof("part") != "header":
                raise InvalidRequest("the first UploadModel message must carry the header (sha256, size_bytes, format)")
            sha256, size_bytes, fmt, name = convert.upload_header_from_pb(first.header)
            present = self.service.has_model(sha256)
            if present is not None:
                return pb.UploadModelResponse(model=convert.model_to_pb(present), already_present=True)
            upload = self.service.begin_upload(sha256, size_bytes, fmt, name)
            try:
                for part in request_iterator:
                    touch()
                    if part.WhichOneof("part") != "chunk":
                        raise InvalidRequest("only the first UploadModel message may carry a header")
                    upload.write(part.chunk)
                model, evicted = upload.commit()
            finally:
                upload.abort()
            return pb.UploadModelResponse(model=convert.model_to_pb(model), evicted_sha256=evicted)
        return self._call("UploadModel", context, body, lambda r: f"{r.model.sha256[:12]} {r.model.size_bytes} B ")

    def HasModel(self, request, context):
        def body():
            model = self.service.has_model(request.sha256)
            if model is None:
                return pb.HasModelResponse(present=False)
            return pb.HasModelResponse(present=True, model=convert.model_to_pb(model))
        return self._call("HasModel", context, body)

    def ListModels(self, request, context):
        def body():
            models = self.service.list_models()
            store = self.service.store
            return pb.ListModelsResponse(
                models=[convert.model_to_pb(m) for m in models],
                store=pb.StoreStats(models=len(models), used_bytes=store.used_bytes(), quota_bytes=store.quota_bytes))
        return self._call("ListModels", context, body)

    def DeleteModel(self, request, context):
        return self._call("DeleteModel", context,
                          lambda: pb.DeleteModelResponse(deleted=self.service.delete_model(request.sha256)))

    def Measure(self, request: pb.MeasureRequest, context):
        def body():
            with self.admission.slot("measure", context.peer(), "measurement callers (running and queued)"):
                return measure()

        def measure():
            waited_ms = thread_wait_ms()
            result = self.service.measure(
                request.model_sha256, request.runtime or "onnxruntime", convert.options_from_pb(request.options),
                convert.timing_from_pb(request.timing), convert.energy_from_pb(request.energy),
                deadline_s=context.time_remaining(), request_id=request.request_id,
                replay_only=request.replay_only)
            # waiting for a server thread is waiting for the board too: counted with the queue, and kept apart
            result = replace(result, queue_wait_ms=result.queue_wait_ms + waited_ms,
                             extra={**result.extra, "thread_wait_ms": f"{waited_ms:.1f}"})
            return convert.result_to_pb(result, request_id=request.request_id, model_sha256=request.model_sha256,
                                        device_id=self.device_id, agent_version=__version__), result
        response, result = self._call("Measure", context, body, lambda r: f"{r[0].model_sha256[:12]} "
                                      f"{describe_result(r[1])} ")
        return response

