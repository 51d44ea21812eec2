from pathlib import Path

import pytest

from fleetnas.host.errors import UsageError
from fleetnas.host.fleet.devices import load_devices, parse_devices

GOOD = """
[[device]]
name = "rpi5-01"
address = "rpi5-01.local:50051"
class = "rpi5"
token_file = "tokens/rpi5-01.token"

[[device]]
name = "rpi5-02"
address = "10.0.0.2:50051"
class = "rpi5"

[[device]]
name = "orin-01"
address = "orin.local:50051"
class = "orin-nano"
tls_ca = "/etc/fleetnas/ca.pem"
"""


def test_parse_groups_by_class_in_file_order(tmp_path):
    path = tmp_path / "devices.toml"
    path.write_text(GOOD)
    reg = load_devices(path)
    assert reg.classes == ["rpi5", "orin-nano"]
    assert [d.name for d in reg.by_class["rpi5"]] == ["rpi5-01", "rpi5-02"]
    first = reg.by_name["rpi5-01"]
    assert first.token_file == tmp_path / "tokens" / "rpi5-01.token"   # relative to the devices file
    assert reg.by_name["orin-01"].tls_ca == Path("/etc/fleetnas/ca.pem") and reg.by_name["orin-01"].uses_tls
    assert not first.uses_tls


def test_token_read_and_missing_token_named(tmp_path):
    (tmp_path / "tokens").mkdir()
    (tmp_path / "tokens" / "rpi5-01.token").write_text("s3cret\n")
    reg = parse_devices(GOOD, tmp_path / "devices.toml")
    assert reg.by_name["rpi5-01"].token() == "s3cret"
    (tmp_path / "tokens" / "rpi5-01.token").unlink()
    with pytest.raises(UsageError, match="rpi5-01: cannot read token_file"):
        reg.by_name["rpi5-01"].token()


@pytest.mark.parametrize("text, message", [
    ("", "no \\[\\[device\\]\\] tables"),
    ("[[device]\n", "not valid TOML"),
    ('[[device]]\nname = "a"\naddress = "h:1"\n', "device #1: missing class"),
    ('[[device]]\nname = "a"\naddress = "nohostport"\nclass = "c"\n', "address must be HOST:PORT"),
    ('[[device]]\nname = "a"\naddress = "h:99999"\nclass = "c"\n', "address must be HOST:PORT"),
    ('[[device]]\nname = "a b"\naddress = "h:1"\nclass = "c"\n', "name 'a b' may hold only"),
    ('[[device]]\nname = "a"\naddress = "h:1"\nclass = "c"\nport = 3\n', "unknown key\\(s\\) port"),
    ('[[device]]\nname = "a"\naddress = "h:1"\nclass = "c"\ntls_cert = "c.pem"\n', "tls_cert and tls_key go together"),
    ('[[device]]\nname = "a"\naddress = "h:1"\nclass = "c"\n[[device]]\nname = "a"\naddress = "h:2"\nclass = "c"\n',
     "appears twice"),
    ('[devices]\nx = 1\n', "unknown top-level key\\(s\\) devices"),
])
def test_bad_files_say_what_is_wrong(tmp_path, text, message):
    with pytest.raises(UsageError, match=message):
        parse_devices(text, tmp_path / "devices.toml")


def test_missing_file_suggests_local(tmp_path):
    with pytest.raises(UsageError, match="--devices local"):
        load_devices(tmp_path / "nope.toml")
