"""The devices file (TOML ``[[device]]`` tables) and the registry that groups devices by class.

    [[device]]
    name = "rpi5-01"
    address = "rpi5-01.local:50051"
    class = "rpi5"
    token_file = "~/.config/fleetnas/rpi5-01.token"   # optional
    tls_ca = "ca.pem"                                   # optional; tls_cert + tls_key for mutual TLS
    tls_server_name = "rpi5-01"                         # optional

    [[device]]                      # a board behind NAT: its agent dials in (`fleetnas-agent connect HOST:PORT`)
    name = "phone-01"
    address = "dial-in"
    class = "pixel7"
    token_file = "~/.config/fleetnas/phone-01.token"    # its own token: proves the agent is this device
    fingerprint = "3fa2c1d09e"                          # optional: the board must have this fingerprint (a prefix)

Devices of one class are interchangeable: a candidate is measured on one of them and the front is per class.
Relative paths are relative to the devices file. Every mistake is reported with the file, the device and the fix.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from fleetnas.host.errors import UsageError

_KNOWN_KEYS = {"name", "address", "class", "token_file", "tls_ca", "tls_cert", "tls_key", "tls_server_name",
               "fingerprint"}
DIAL_IN = "dial-in"   # the address of a device whose agent connects to the host (fleetnas.host.fleet.dial_in)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class Device:
    name: str
    address: str                 # HOST:PORT, or "dial-in"
    device_class: str
    token_file: Optional[Path] = None
    tls_ca: Optional[Path] = None
    tls_cert: Optional[Path] = None
    tls_key: Optional[Path] = None
    tls_server_name: Optional[str] = None
    fingerprint: Optional[str] = None   # expected fingerprint_sha256 (or a prefix of it)

    @property
    def dial_in(self) -> bool:
        return self.address == DIAL_IN

    @property
    def uses_tls(self) -> bool:
        return bool(self.tls_ca or self.tls_cert)

    def token(self) -> Optional[str]:
        if self.token_file is None:
            return None
        try:
            token = self.token_file.expanduser().read_text().strip()
        except OSError as exc:
            raise UsageError(f"device {self.name}: cannot read token_file {self.token_file}: {exc.strerror}") from None
        if not token:
            raise UsageError(f"device {self.name}: token_file {self.token_file} is empty")
        return token

    def client(self, timeout_s: float = 30.0):
        """A connected-on-demand AgentClient for this device (grpc is imported only here); a dial-in device's
        calls go through the hub it connected to."""
        if self.dial_in:
            from fleetnas.host.fleet.dial_in import dial_in_client
            return dial_in_client(self, timeout_s)
        from fleetnas.host.fleet.client import AgentClient, ClientTls
        tls = None
        if self.uses_tls:
            tls = ClientTls(ca=self.tls_ca, cert=self.tls_cert, key=self.tls_key, server_name=self.tls_server_name)
        return AgentClient(self.address, token=self.token(), tls=tls, timeout_s=timeout_s)


class DeviceRegistry:
    """Devices by name and by class, in file order."""

    def __init__(self, devices: Sequence[Device]) -> None:
        if not devices:
            raise UsageError("no devices: add at least one [[device]] table (name, address, class)")
        self.devices: Tuple[Device, ...] = tuple(devices)
        self.by_name: Dict[str, Device] = {}
        for device in devices:
            if device.name in self.by_name:
                raise UsageError(f"device name {device.name!r} appears twice; names must be unique")
            self.by_name[device.name] = device
        self.by_class: Dict[str, List[Device]] = {}
        for device in devices:
            self.by_class.setdefault(device.device_class, []).append(device)

    @property
    def classes(self) -> List[str]:
        return list(self.by_class)

    def __len__(self) -> int:
        return len(self.devices)

    def __iter__(self):
        return iter(self.devices)


def _check_address(address: str, where: str) -> str:
    if address == DIAL_IN:
        return address
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"{where}: address must be HOST:PORT (e.g. rpi5-01.local:50051) or 'dial-in', got "
                         f"{address!r}")
    return address


def _path(value: object, key: str, base: Path, where: str) -> Optional[Path]:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise UsageError(f"{where}: {key} must be a file path string")
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def device_from_table(table: Mapping[str, object], base: Path, where: str) -> Device:
    unknown = sorted(set(table) - _KNOWN_KEYS)
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_KNOWN_KEYS))}")
    for key in ("name", "address", "class"):
        if not isinstance(table.get(key), str) or not table[key]:
            raise UsageError(f"{where}: missing {key} (a non-empty string); each [[device]] needs name, address, class")
    name, cls = str(table["name"]), str(table["class"])
    for key, value in (("name", name), ("class", cls)):
        if not _NAME_RE.match(value):
            raise UsageError(f"{where}: {key} {value!r} may hold only letters, digits, '.', '_' and '-'")
    where = f"{where} ({name})"
    tls = {k: _path(table.get(k), k, base, where) for k in ("tls_ca", "tls_cert", "tls_key")}
    if bool(tls["tls_cert"]) != bool(tls["tls_key"]):
        raise UsageError(f"{where}: tls_cert and tls_key go together (mutual TLS)")
    fingerprint = table.get("fingerprint")
    if fingerprint is not None and (not isinstance(fingerprint, str) or len(fingerprint) < 8
                                    or not re.fullmatch(r"[0-9a-f]+", fingerprint)):
        raise UsageError(f"{where}: fingerprint must be the board's fingerprint_sha256 or a prefix of at least 8 "
                         f"hex digits (see `fleetnas devices check`), got {fingerprint!r}")
    server_name = table.get("tls_server_name")
    if server_name is not None and not isinstance(server_name, str):
        raise UsageError(f"{where}: tls_server_name must be a string")
    return Device(name=name, address=_check_address(str(table["address"]), where), device_class=cls,
                  token_file=_path(table.get("token_file"), "token_file", base, where),
                  tls_server_name=server_name, fingerprint=fingerprint, **tls)


def _load_toml(text: str, path: Path) -> dict:
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            raise UsageError("reading a devices file on Python < 3.11 needs tomli: pip install tomli") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from None


def parse_devices(text: str, path: Path = Path("devices.toml")) -> DeviceRegistry:
    data = _load_toml(text, path)
    unknown = sorted(set(data) - {"device"})
    if unknown:
        raise UsageError(f"{path}: unknown top-level key(s) {', '.join(unknown)}; devices go in [[device]] tables")
    tables = data.get("device")
    if not isinstance(tables, list) or not tables:
        raise UsageError(f"{path}: no [[device]] tables; each needs name, address and class")
    base = path.resolve().parent
    return DeviceRegistry([device_from_table(t, base, f"{path}: device #{i + 1}") for i, t in enumerate(tables)])


def load_devices(path: Path) -> DeviceRegistry:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UsageError(f"devices file {path} not found; write one (see `fleetnas devices --help`) or use "
                         f"--devices local") from None
    except OSError as exc:
        raise UsageError(f"cannot read devices file {path}: {exc.strerror}") from None
    return parse_devices(text, path)
