"""Comparing a report with one written by earlier code: reports only ever gain keys, never lose or rename one."""


def only_old_keys(new, old):
    """``new`` cut down to the keys ``old`` has (recursively), so ``only_old_keys(new, old) == old`` checks that
    every figure the earlier report had is still there, unchanged."""
    if isinstance(old, dict) and isinstance(new, dict):
        return {k: only_old_keys(new[k], v) for k, v in old.items() if k in new}
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [only_old_keys(n, o) for n, o in zip(new, old)]
    return new
