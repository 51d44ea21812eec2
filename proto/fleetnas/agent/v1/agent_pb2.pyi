from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ModelFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MODEL_FORMAT_UNSPECIFIED: _ClassVar[ModelFormat]
    MODEL_FORMAT_ONNX: _ClassVar[ModelFormat]
    MODEL_FORMAT_TFLITE: _ClassVar[ModelFormat]
    MODEL_FORMAT_PTE: _ClassVar[ModelFormat]

class Outcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTCOME_UNSPECIFIED: _ClassVar[Outcome]
    OUTCOME_OK: _ClassVar[Outcome]
    OUTCOME_LOAD_FAILED: _ClassVar[Outcome]
    OUTCOME_TIMEOUT: _ClassVar[Outcome]
    OUTCOME_OOM: _ClassVar[Outcome]
    OUTCOME_CRASHED: _ClassVar[Outcome]
    OUTCOME_UNSTABLE: _ClassVar[Outcome]
    OUTCOME_RUN_FAILED: _ClassVar[Outcome]

class Stability(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STABILITY_UNSPECIFIED: _ClassVar[Stability]
    STABILITY_STABLE: _ClassVar[Stability]
    STABILITY_NOISY: _ClassVar[Stability]
    STABILITY_UNSTABLE: _ClassVar[Stability]
MODEL_FORMAT_UNSPECIFIED: ModelFormat
MODEL_FORMAT_ONNX: ModelFormat
MODEL_FORMAT_TFLITE: ModelFormat
MODEL_FORMAT_PTE: ModelFormat
OUTCOME_UNSPECIFIED: Outcome
OUTCOME_OK: Outcome
OUTCOME_LOAD_FAILED: Outcome
OUTCOME_TIMEOUT: Outcome
OUTCOME_OOM: Outcome
OUTCOME_CRASHED: Outcome
OUTCOME_UNSTABLE: Outcome
OUTCOME_RUN_FAILED: Outcome
STABILITY_UNSPECIFIED: Stability
STABILITY_STABLE: Stability
STABILITY_NOISY: Stability
STABILITY_UNSTABLE: Stability

class GetDeviceInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetDeviceInfoResponse(_message.Message):
    __slots__ = ("info",)
    INFO_FIELD_NUMBER: _ClassVar[int]
    info: DeviceInfo
    def __init__(self, info: _Optional[_Union[DeviceInfo, _Mapping]] = ...) -> None: ...

class DeviceInfo(_message.Message):
    __slots__ = ("device_id", "agent_version", "fingerprint", "fingerprint_sha256", "runtimes", "power_sensors", "state", "clock_unix_ns", "queue_length", "measurements_done", "store", "emulated")
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_FIELD_NUMBER: _ClassVar[int]
    FINGERPRINT_SHA256_FIELD_NUMBER: _ClassVar[int]
    RUNTIMES_FIELD_NUMBER: _ClassVar[int]
    POWER_SENSORS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CLOCK_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_LENGTH_FIELD_NUMBER: _ClassVar[int]
    MEASUREMENTS_DONE_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    EMULATED_FIELD_NUMBER: _ClassVar[int]
    device_id: str
    agent_version: str
    fingerprint: Fingerprint
    fingerprint_sha256: str
    runtimes: _containers.RepeatedCompositeFieldContainer[RuntimeInfo]
    power_sensors: _containers.RepeatedCompositeFieldContainer[PowerSensorInfo]
    state: DeviceState
    clock_unix_ns: int
    queue_length: int
    measurements_done: int
    store: StoreStats
    emulated: bool
    def __init__(self, device_id: _Optional[str] = ..., agent_version: _Optional[str] = ..., fingerprint: _Optional[_Union[Fingerprint, _Mapping]] = ..., fingerprint_sha256: _Optional[str] = ..., runtimes: _Optional[_Iterable[_Union[RuntimeInfo, _Mapping]]] = ..., power_sensors: _Optional[_Iterable[_Union[PowerSensorInfo, _Mapping]]] = ..., state: _Optional[_Union[DeviceState, _Mapping]] = ..., clock_unix_ns: _Optional[int] = ..., queue_length: _Optional[int] = ..., measurements_done: _Optional[int] = ..., store: _Optional[_Union[StoreStats, _Mapping]] = ..., emulated: _Optional[bool] = ...) -> None: ...

class Fingerprint(_message.Message):
    __slots__ = ("cpu_model", "machine", "cpu_count_logical", "cpu_count_physical", "clusters", "ram_bytes", "os_name", "kernel", "python_version", "board_model", "hostname", "thermal_zones", "governors")
    CPU_MODEL_FIELD_NUMBER: _ClassVar[int]
    MACHINE_FIELD_NUMBER: _ClassVar[int]
    CPU_COUNT_LOGICAL_FIELD_NUMBER: _ClassVar[int]
    CPU_COUNT_PHYSICAL_FIELD_NUMBER: _ClassVar[int]
    CLUSTERS_FIELD_NUMBER: _ClassVar[int]
    RAM_BYTES_FIELD_NUMBER: _ClassVar[int]
    OS_NAME_FIELD_NUMBER: _ClassVar[int]
    KERNEL_FIELD_NUMBER: _ClassVar[int]
    PYTHON_VERSION_FIELD_NUMBER: _ClassVar[int]
    BOARD_MODEL_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    THERMAL_ZONES_FIELD_NUMBER: _ClassVar[int]
    GOVERNORS_FIELD_NUMBER: _ClassVar[int]
    cpu_model: str
    machine: str
    cpu_count_logical: int
    cpu_count_physical: int
    clusters: _containers.RepeatedCompositeFieldContainer[CpuCluster]
    ram_bytes: int
    os_name: str
    kernel: str
    python_version: str
    board_model: str
    hostname: str
    thermal_zones: _containers.RepeatedScalarFieldContainer[str]
    governors: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, cpu_model: _Optional[str] = ..., machine: _Optional[str] = ..., cpu_count_logical: _Optional[int] = ..., cpu_count_physical: _Optional[int] = ..., clusters: _Optional[_Iterable[_Union[CpuCluster, _Mapping]]] = ..., ram_bytes: _Optional[int] = ..., os_name: _Optional[str] = ..., kernel: _Optional[str] = ..., python_version: _Optional[str] = ..., board_model: _Optional[str] = ..., hostname: _Optional[str] = ..., thermal_zones: _Optional[_Iterable[str]] = ..., governors: _Optional[_Iterable[str]] = ...) -> None: ...

class CpuCluster(_message.Message):
    __slots__ = ("cpus", "max_khz")
    CPUS_FIELD_NUMBER: _ClassVar[int]
    MAX_KHZ_FIELD_NUMBER: _ClassVar[int]
    cpus: _containers.RepeatedScalarFieldContainer[int]
    max_khz: int
    def __init__(self, cpus: _Optional[_Iterable[int]] = ..., max_khz: _Optional[int] = ...) -> None: ...

class RuntimeInfo(_message.Message):
    __slots__ = ("name", "available", "version", "execution_providers", "message", "formats")
    NAME_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FORMATS_FIELD_NUMBER: _ClassVar[int]
    name: str
    available: bool
    version: str
    execution_providers: _containers.RepeatedScalarFieldContainer[str]
    message: str
    formats: _containers.RepeatedScalarFieldContainer[ModelFormat]
    def __init__(self, name: _Optional[str] = ..., available: _Optional[bool] = ..., version: _Optional[str] = ..., execution_providers: _Optional[_Iterable[str]] = ..., message: _Optional[str] = ..., formats: _Optional[_Iterable[_Union[ModelFormat, str]]] = ...) -> None: ...

class PowerSensorInfo(_message.Message):
    __slots__ = ("name", "source", "rails", "total_rail", "units", "sample_rate_hz", "readable", "message")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    RAILS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_RAIL_FIELD_NUMBER: _ClassVar[int]
    UNITS_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    READABLE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    name: str
    source: str
    rails: _containers.RepeatedScalarFieldContainer[str]
    total_rail: str
    units: str
    sample_rate_hz: float
    readable: bool
    message: str
    def __init__(self, name: _Optional[str] = ..., source: _Optional[str] = ..., rails: _Optional[_Iterable[str]] = ..., total_rail: _Optional[str] = ..., units: _Optional[str] = ..., sample_rate_hz: _Optional[float] = ..., readable: _Optional[bool] = ..., message: _Optional[str] = ...) -> None: ...

class StoreStats(_message.Message):
    __slots__ = ("models", "used_bytes", "quota_bytes")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    USED_BYTES_FIELD_NUMBER: _ClassVar[int]
    QUOTA_BYTES_FIELD_NUMBER: _ClassVar[int]
    models: int
    used_bytes: int
    quota_bytes: int
    def __init__(self, models: _Optional[int] = ..., used_bytes: _Optional[int] = ..., quota_bytes: _Optional[int] = ...) -> None: ...

class ThermalReading(_message.Message):
    __slots__ = ("zone", "type", "temp_c")
    ZONE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TEMP_C_FIELD_NUMBER: _ClassVar[int]
    zone: str
    type: str
    temp_c: float
    def __init__(self, zone: _Optional[str] = ..., type: _Optional[str] = ..., temp_c: _Optional[float] = ...) -> None: ...

class CpuPolicyState(_message.Message):
    __slots__ = ("policy", "cpus", "governor", "cur_khz", "min_khz", "max_khz", "cpuinfo_max_khz")
    POLICY_FIELD_NUMBER: _ClassVar[int]
    CPUS_FIELD_NUMBER: _ClassVar[int]
    GOVERNOR_FIELD_NUMBER: _ClassVar[int]
    CUR_KHZ_FIELD_NUMBER: _ClassVar[int]
    MIN_KHZ_FIELD_NUMBER: _ClassVar[int]
    MAX_KHZ_FIELD_NUMBER: _ClassVar[int]
    CPUINFO_MAX_KHZ_FIELD_NUMBER: _ClassVar[int]
    policy: str
    cpus: _containers.RepeatedScalarFieldContainer[int]
    governor: str
    cur_khz: int
    min_khz: int
    max_khz: int
    cpuinfo_max_khz: int
    def __init__(self, policy: _Optional[str] = ..., cpus: _Optional[_Iterable[int]] = ..., governor: _Optional[str] = ..., cur_khz: _Optional[int] = ..., min_khz: _Optional[int] = ..., max_khz: _Optional[int] = ..., cpuinfo_max_khz: _Optional[int] = ...) -> None: ...

class DeviceState(_message.Message):
    __slots__ = ("captured_unix_ns", "thermal", "cpu_policies", "throttle", "max_temp_c")
    class ThrottleEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CAPTURED_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    THERMAL_FIELD_NUMBER: _ClassVar[int]
    CPU_POLICIES_FIELD_NUMBER: _ClassVar[int]
    THROTTLE_FIELD_NUMBER: _ClassVar[int]
    MAX_TEMP_C_FIELD_NUMBER: _ClassVar[int]
    captured_unix_ns: int
    thermal: _containers.RepeatedCompositeFieldContainer[ThermalReading]
    cpu_policies: _containers.RepeatedCompositeFieldContainer[CpuPolicyState]
    throttle: _containers.ScalarMap[str, str]
    max_temp_c: float
    def __init__(self, captured_unix_ns: _Optional[int] = ..., thermal: _Optional[_Iterable[_Union[ThermalReading, _Mapping]]] = ..., cpu_policies: _Optional[_Iterable[_Union[CpuPolicyState, _Mapping]]] = ..., throttle: _Optional[_Mapping[str, str]] = ..., max_temp_c: _Optional[float] = ...) -> None: ...

class UploadHeader(_message.Message):
    __slots__ = ("sha256", "size_bytes", "format", "name")
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    size_bytes: int
    format: ModelFormat
    name: str
    def __init__(self, sha256: _Optional[str] = ..., size_bytes: _Optional[int] = ..., format: _Optional[_Union[ModelFormat, str]] = ..., name: _Optional[str] = ...) -> None: ...

class UploadModelRequest(_message.Message):
    __slots__ = ("header", "chunk")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    header: UploadHeader
    chunk: bytes
    def __init__(self, header: _Optional[_Union[UploadHeader, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("sha256", "size_bytes", "format", "name", "stored_unix_s", "last_used_unix_s")
    SHA256_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STORED_UNIX_S_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_UNIX_S_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    size_bytes: int
    format: ModelFormat
    name: str
    stored_unix_s: int
    last_used_unix_s: int
    def __init__(self, sha256: _Optional[str] = ..., size_bytes: _Optional[int] = ..., format: _Optional[_Union[ModelFormat, str]] = ..., name: _Optional[str] = ..., stored_unix_s: _Optional[int] = ..., last_used_unix_s: _Optional[int] = ...) -> None: ...

class UploadModelResponse(_message.Message):
    __slots__ = ("model", "already_present", "evicted_sha256")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ALREADY_PRESENT_FIELD_NUMBER: _ClassVar[int]
    EVICTED_SHA256_FIELD_NUMBER: _ClassVar[int]
    model: ModelInfo
    already_present: bool
    evicted_sha256: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model: _Optional[_Union[ModelInfo, _Mapping]] = ..., already_present: _Optional[bool] = ..., evicted_sha256: _Optional[_Iterable[str]] = ...) -> None: ...

class HasModelRequest(_message.Message):
    __slots__ = ("sha256",)
    SHA256_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    def __init__(self, sha256: _Optional[str] = ...) -> None: ...

class HasModelResponse(_message.Message):
    __slots__ = ("present", "model")
    PRESENT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    present: bool
    model: ModelInfo
    def __init__(self, present: _Optional[bool] = ..., model: _Optional[_Union[ModelInfo, _Mapping]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "store")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    store: StoreStats
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ..., store: _Optional[_Union[StoreStats, _Mapping]] = ...) -> None: ...

class DeleteModelRequest(_message.Message):
    __slots__ = ("sha256",)
    SHA256_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    def __init__(self, sha256: _Optional[str] = ...) -> None: ...

class DeleteModelResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: bool
    def __init__(self, deleted: _Optional[bool] = ...) -> None: ...

class RuntimeOptions(_message.Message):
    __slots__ = ("threads", "execution_provider", "provider_options", "allow_spinning", "cpu_affinity", "graph_optimization_level")
    class ProviderOptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    THREADS_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_PROVIDER_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    ALLOW_SPINNING_FIELD_NUMBER: _ClassVar[int]
    CPU_AFFINITY_FIELD_NUMBER: _ClassVar[int]
    GRAPH_OPTIMIZATION_LEVEL_FIELD_NUMBER: _ClassVar[int]
    threads: int
    execution_provider: str
    provider_options: _containers.ScalarMap[str, str]
    allow_spinning: bool
    cpu_affinity: _containers.RepeatedScalarFieldContainer[int]
    graph_optimization_level: str
    def __init__(self, threads: _Optional[int] = ..., execution_provider: _Optional[str] = ..., provider_options: _Optional[_Mapping[str, str]] = ..., allow_spinning: _Optional[bool] = ..., cpu_affinity: _Optional[_Iterable[int]] = ..., graph_optimization_level: _Optional[str] = ...) -> None: ...

class TimingConfig(_message.Message):
    __slots__ = ("warmup_runs", "warmup_s", "blocks", "min_runs_per_block", "min_block_s", "timeout_s", "input_seed")
    WARMUP_RUNS_FIELD_NUMBER: _ClassVar[int]
    WARMUP_S_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    MIN_RUNS_PER_BLOCK_FIELD_NUMBER: _ClassVar[int]
    MIN_BLOCK_S_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_S_FIELD_NUMBER: _ClassVar[int]
    INPUT_SEED_FIELD_NUMBER: _ClassVar[int]
    warmup_runs: int
    warmup_s: float
    blocks: int
    min_runs_per_block: int
    min_block_s: float
    timeout_s: float
    input_seed: int
    def __init__(self, warmup_runs: _Optional[int] = ..., warmup_s: _Optional[float] = ..., blocks: _Optional[int] = ..., min_runs_per_block: _Optional[int] = ..., min_block_s: _Optional[float] = ..., timeout_s: _Optional[float] = ..., input_seed: _Optional[int] = ...) -> None: ...

class EnergyConfig(_message.Message):
    __slots__ = ("enabled", "min_window_s", "idle_s")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    MIN_WINDOW_S_FIELD_NUMBER: _ClassVar[int]
    IDLE_S_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    min_window_s: float
    idle_s: float
    def __init__(self, enabled: _Optional[bool] = ..., min_window_s: _Optional[float] = ..., idle_s: _Optional[float] = ...) -> None: ...

class MeasureRequest(_message.Message):
    __slots__ = ("model_sha256", "runtime", "options", "timing", "energy", "request_id", "replay_only")
    MODEL_SHA256_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    TIMING_FIELD_NUMBER: _ClassVar[int]
    ENERGY_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    REPLAY_ONLY_FIELD_NUMBER: _ClassVar[int]
    model_sha256: str
    runtime: str
    options: RuntimeOptions
    timing: TimingConfig
    energy: EnergyConfig
    request_id: str
    replay_only: bool
    def __init__(self, model_sha256: _Optional[str] = ..., runtime: _Optional[str] = ..., options: _Optional[_Union[RuntimeOptions, _Mapping]] = ..., timing: _Optional[_Union[TimingConfig, _Mapping]] = ..., energy: _Optional[_Union[EnergyConfig, _Mapping]] = ..., request_id: _Optional[str] = ..., replay_only: _Optional[bool] = ...) -> None: ...

class LatencyStats(_message.Message):
    __slots__ = ("n", "min_ms", "median_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "cv", "max_ms")
    N_FIELD_NUMBER: _ClassVar[int]
    MIN_MS_FIELD_NUMBER: _ClassVar[int]
    MEDIAN_MS_FIELD_NUMBER: _ClassVar[int]
    P90_MS_FIELD_NUMBER: _ClassVar[int]
    P99_MS_FIELD_NUMBER: _ClassVar[int]
    MEAN_MS_FIELD_NUMBER: _ClassVar[int]
    STD_MS_FIELD_NUMBER: _ClassVar[int]
    CV_FIELD_NUMBER: _ClassVar[int]
    MAX_MS_FIELD_NUMBER: _ClassVar[int]
    n: int
    min_ms: float
    median_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    cv: float
    max_ms: float
    def __init__(self, n: _Optional[int] = ..., min_ms: _Optional[float] = ..., median_ms: _Optional[float] = ..., p90_ms: _Optional[float] = ..., p99_ms: _Optional[float] = ..., mean_ms: _Optional[float] = ..., std_ms: _Optional[float] = ..., cv: _Optional[float] = ..., max_ms: _Optional[float] = ...) -> None: ...

class PhaseTimes(_message.Message):
    __slots__ = ("load_ms", "first_inference_ms", "warmup_ms", "warmup_runs", "steady_ms")
    LOAD_MS_FIELD_NUMBER: _ClassVar[int]
    FIRST_INFERENCE_MS_FIELD_NUMBER: _ClassVar[int]
    WARMUP_MS_FIELD_NUMBER: _ClassVar[int]
    WARMUP_RUNS_FIELD_NUMBER: _ClassVar[int]
    STEADY_MS_FIELD_NUMBER: _ClassVar[int]
    load_ms: float
    first_inference_ms: float
    warmup_ms: float
    warmup_runs: int
    steady_ms: float
    def __init__(self, load_ms: _Optional[float] = ..., first_inference_ms: _Optional[float] = ..., warmup_ms: _Optional[float] = ..., warmup_runs: _Optional[int] = ..., steady_ms: _Optional[float] = ...) -> None: ...

class RuntimeConfigUsed(_message.Message):
    __slots__ = ("runtime", "runtime_version", "execution_provider", "provider_options", "intra_op_threads", "inter_op_threads", "allow_spinning", "cpu_affinity", "graph_optimization_level", "input_shapes")
    class ProviderOptionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_VERSION_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_PROVIDER_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_OPTIONS_FIELD_NUMBER: _ClassVar[int]
    INTRA_OP_THREADS_FIELD_NUMBER: _ClassVar[int]
    INTER_OP_THREADS_FIELD_NUMBER: _ClassVar[int]
    ALLOW_SPINNING_FIELD_NUMBER: _ClassVar[int]
    CPU_AFFINITY_FIELD_NUMBER: _ClassVar[int]
    GRAPH_OPTIMIZATION_LEVEL_FIELD_NUMBER: _ClassVar[int]
    INPUT_SHAPES_FIELD_NUMBER: _ClassVar[int]
    runtime: str
    runtime_version: str
    execution_provider: str
    provider_options: _containers.ScalarMap[str, str]
    intra_op_threads: int
    inter_op_threads: int
    allow_spinning: bool
    cpu_affinity: _containers.RepeatedScalarFieldContainer[int]
    graph_optimization_level: str
    input_shapes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, runtime: _Optional[str] = ..., runtime_version: _Optional[str] = ..., execution_provider: _Optional[str] = ..., provider_options: _Optional[_Mapping[str, str]] = ..., intra_op_threads: _Optional[int] = ..., inter_op_threads: _Optional[int] = ..., allow_spinning: _Optional[bool] = ..., cpu_affinity: _Optional[_Iterable[int]] = ..., graph_optimization_level: _Optional[str] = ..., input_shapes: _Optional[_Iterable[str]] = ...) -> None: ...

class EnergyResult(_message.Message):
    __slots__ = ("energy_mj", "dynamic_energy_mj", "idle_power_w", "mean_power_w", "min_power_w", "max_power_w", "samples", "sample_rate_hz", "window_s", "inferences", "sensor", "rails", "calibration_scale", "calibration_offset_w")
    ENERGY_MJ_FIELD_NUMBER: _ClassVar[int]
    DYNAMIC_ENERGY_MJ_FIELD_NUMBER: _ClassVar[int]
    IDLE_POWER_W_FIELD_NUMBER: _ClassVar[int]
    MEAN_POWER_W_FIELD_NUMBER: _ClassVar[int]
    MIN_POWER_W_FIELD_NUMBER: _ClassVar[int]
    MAX_POWER_W_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    WINDOW_S_FIELD_NUMBER: _ClassVar[int]
    INFERENCES_FIELD_NUMBER: _ClassVar[int]
    SENSOR_FIELD_NUMBER: _ClassVar[int]
    RAILS_FIELD_NUMBER: _ClassVar[int]
    CALIBRATION_SCALE_FIELD_NUMBER: _ClassVar[int]
    CALIBRATION_OFFSET_W_FIELD_NUMBER: _ClassVar[int]
    energy_mj: float
    dynamic_energy_mj: float
    idle_power_w: float
    mean_power_w: float
    min_power_w: float
    max_power_w: float
    samples: int
    sample_rate_hz: float
    window_s: float
    inferences: int
    sensor: str
    rails: _containers.RepeatedScalarFieldContainer[str]
    calibration_scale: float
    calibration_offset_w: float
    def __init__(self, energy_mj: _Optional[float] = ..., dynamic_energy_mj: _Optional[float] = ..., idle_power_w: _Optional[float] = ..., mean_power_w: _Optional[float] = ..., min_power_w: _Optional[float] = ..., max_power_w: _Optional[float] = ..., samples: _Optional[int] = ..., sample_rate_hz: _Optional[float] = ..., window_s: _Optional[float] = ..., inferences: _Optional[int] = ..., sensor: _Optional[str] = ..., rails: _Optional[_Iterable[str]] = ..., calibration_scale: _Optional[float] = ..., calibration_offset_w: _Optional[float] = ...) -> None: ...

class MeasureResponse(_message.Message):
    __slots__ = ("outcome", "message", "crash_signal", "request_id", "model_sha256", "device_id", "agent_version", "phases", "overall", "blocks", "block_median_cv", "stability", "attempts", "peak_rss_bytes", "state_before", "state_after", "config", "queue_wait_ms", "run_wall_ms", "started_unix_ns", "energy", "energy_unavailable_reason", "emulated", "drift_suspect", "replayed")
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    CRASH_SIGNAL_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_SHA256_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    PHASES_FIELD_NUMBER: _ClassVar[int]
    OVERALL_FIELD_NUMBER: _ClassVar[int]
    BLOCKS_FIELD_NUMBER: _ClassVar[int]
    BLOCK_MEDIAN_CV_FIELD_NUMBER: _ClassVar[int]
    STABILITY_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    PEAK_RSS_BYTES_FIELD_NUMBER: _ClassVar[int]
    STATE_BEFORE_FIELD_NUMBER: _ClassVar[int]
    STATE_AFTER_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    QUEUE_WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    RUN_WALL_MS_FIELD_NUMBER: _ClassVar[int]
    STARTED_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    ENERGY_FIELD_NUMBER: _ClassVar[int]
    ENERGY_UNAVAILABLE_REASON_FIELD_NUMBER: _ClassVar[int]
    EMULATED_FIELD_NUMBER: _ClassVar[int]
    DRIFT_SUSPECT_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    outcome: Outcome
    message: str
    crash_signal: int
    request_id: str
    model_sha256: str
    device_id: str
    agent_version: str
    phases: PhaseTimes
    overall: LatencyStats
    blocks: _containers.RepeatedCompositeFieldContainer[LatencyStats]
    block_median_cv: float
    stability: Stability
    attempts: int
    peak_rss_bytes: int
    state_before: DeviceState
    state_after: DeviceState
    config: RuntimeConfigUsed
    queue_wait_ms: float
    run_wall_ms: float
    started_unix_ns: int
    energy: EnergyResult
    energy_unavailable_reason: str
    emulated: bool
    drift_suspect: bool
    replayed: bool
    def __init__(self, outcome: _Optional[_Union[Outcome, str]] = ..., message: _Optional[str] = ..., crash_signal: _Optional[int] = ..., request_id: _Optional[str] = ..., model_sha256: _Optional[str] = ..., device_id: _Optional[str] = ..., agent_version: _Optional[str] = ..., phases: _Optional[_Union[PhaseTimes, _Mapping]] = ..., overall: _Optional[_Union[LatencyStats, _Mapping]] = ..., blocks: _Optional[_Iterable[_Union[LatencyStats, _Mapping]]] = ..., block_median_cv: _Optional[float] = ..., stability: _Optional[_Union[Stability, str]] = ..., attempts: _Optional[int] = ..., peak_rss_bytes: _Optional[int] = ..., state_before: _Optional[_Union[DeviceState, _Mapping]] = ..., state_after: _Optional[_Union[DeviceState, _Mapping]] = ..., config: _Optional[_Union[RuntimeConfigUsed, _Mapping]] = ..., queue_wait_ms: _Optional[float] = ..., run_wall_ms: _Optional[float] = ..., started_unix_ns: _Optional[int] = ..., energy: _Optional[_Union[EnergyResult, _Mapping]] = ..., energy_unavailable_reason: _Optional[str] = ..., emulated: _Optional[bool] = ..., drift_suspect: _Optional[bool] = ..., replayed: _Optional[bool] = ...) -> None: ...
