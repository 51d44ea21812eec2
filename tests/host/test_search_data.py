"""`fleetnas search --data`: an image folder or module:callable becomes the accuracy evaluator's data."""
import pytest

from fleetnas.host.errors import UsageError
from fleetnas.host.run.controller import resolve_data


def batches(resolution):  # a module-level callable, as a user's package would provide
    return []


def test_folder_callable_and_default(tmp_path):
    assert resolve_data("") is None
    assert resolve_data(str(tmp_path)) == tmp_path
    assert resolve_data(f"{__name__}:batches") is batches


@pytest.mark.parametrize("spec,message", [
    ("no/such/folder", "give an image folder"),
    ("json:no_such_function", "cannot load 'no_such_function' from module 'json'"),
    ("no_such_module_xyz:f", "cannot load 'f' from module 'no_such_module_xyz'"),
])
def test_bad_data_says_what_to_give(spec, message):
    with pytest.raises(UsageError, match=message):
        resolve_data(spec)
