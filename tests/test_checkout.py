"""The tests run on what the repository holds, never on what the operator of this machine edited."""

from __future__ import annotations

import os

import pytest
from conftest import OPERATOR_FILES


@pytest.mark.parametrize("edited", OPERATOR_FILES, ids=lambda p: p.name)
def test_a_test_that_opens_a_file_the_operator_edits_fails_naming_it(edited):
    target = edited / "x.jsonl" if edited.name in ("inbox", "papers") else edited
    with pytest.raises(PermissionError, match="which the README tells the operator to edit"):
        open(target, encoding="utf-8")  # noqa: SIM115 - the open itself is what is refused


def test_the_operators_digest_settings_never_reach_a_test():
    assert not [name for name in os.environ if name.startswith("DIGEST_")]
