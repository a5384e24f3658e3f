"""API users and access keys in the core: issued, rotated, disabled, removed, kept across a
restart, and journaled without a secret."""

from __future__ import annotations

import pytest

from hpcbatch.core import events as ev
from hpcbatch.core.users import MAX_KEYS, active_key
from hpcbatch.errors import ConflictError, NotFoundError, ValidationError
from tests.core.sim import Sim

SECRET = "A" * 40


def key(n: int) -> str:
    return f"HPCB{n:016d}"


def add_alice(sim: Sim) -> None:
    sim.do(ev.AddUser, name="alice", unix_user="alice", key_id=key(1), secret=SECRET, by="root")


def test_a_user_key_acts_as_its_unix_user_and_survives_a_restart() -> None:
    sim = Sim()
    add_alice(sim)
    sim.restart()
    found = active_key(sim.state, key(1))
    assert found is not None
    user, access = found
    assert (user.unix_user, user.created_by, access.secret) == ("alice", "root", SECRET)
    assert active_key(sim.state, key(2)) is None


def test_the_journal_names_keys_but_never_a_secret() -> None:
    sim = Sim()
    add_alice(sim)
    sim.do(ev.AddAccessKey, user="alice", key_id=key(2), secret="B" * 40, disable_others=True)
    lines = sim.state.changes.journal
    assert [line.event for line in lines] == ["USER_ADDED", "KEY_ADDED"]
    assert all(SECRET not in line.detail and "B" * 40 not in line.detail for line in lines)
    assert f"disabled {key(1)}" in lines[1].detail


def test_rotation_disables_the_old_key_unless_kept() -> None:
    sim = Sim()
    add_alice(sim)
    sim.do(ev.AddAccessKey, user="alice", key_id=key(2), secret=SECRET, disable_others=False)
    assert active_key(sim.state, key(1)) and active_key(sim.state, key(2))
    sim.do(ev.AddAccessKey, user="alice", key_id=key(3), secret=SECRET, disable_others=True)
    assert active_key(sim.state, key(1)) is None and active_key(sim.state, key(2)) is None
    assert active_key(sim.state, key(3)) is not None


def test_daily_rotations_keep_a_bounded_list_of_keys() -> None:
    sim = Sim()
    add_alice(sim)
    for n in range(2, 40):
        sim.do(ev.AddAccessKey, user="alice", key_id=key(n), secret=SECRET, disable_others=True)
    keys = sim.state.users["alice"].keys
    assert len(keys) <= MAX_KEYS and key(39) in keys and key(1) not in keys
    assert key(1) not in sim.state.user_keys  # invariants (run by sim.do) check the rest


def test_too_many_active_keys_is_refused_and_changes_nothing() -> None:
    sim = Sim()
    add_alice(sim)
    for n in range(2, MAX_KEYS + 1):
        sim.do(ev.AddAccessKey, user="alice", key_id=key(n), secret=SECRET)
    with pytest.raises(ConflictError, match="the most a user may have"):
        sim.do(ev.AddAccessKey, user="alice", key_id=key(99), secret=SECRET)
    assert key(99) not in sim.state.user_keys


def test_a_disabled_key_is_refused_until_enabled() -> None:
    sim = Sim()
    add_alice(sim)
    sim.do(ev.SetAccessKeyActive, user="alice", key_id=key(1), active=False)
    assert active_key(sim.state, key(1)) is None
    sim.restart()
    assert active_key(sim.state, key(1)) is None
    sim.do(ev.SetAccessKeyActive, user="alice", key_id=key(1), active=True)
    assert active_key(sim.state, key(1)) is not None


def test_removing_a_user_removes_its_keys() -> None:
    sim = Sim()
    add_alice(sim)
    sim.do(ev.RemoveUser, name="alice")
    sim.restart()
    assert sim.state.users == {} and sim.state.user_keys == {}
    with pytest.raises(NotFoundError, match="no user 'alice'"):
        sim.do(ev.RemoveUser, name="alice")


@pytest.mark.parametrize(
    ("fields", "error", "phrase"),
    [
        ({"name": ""}, ValidationError, "name: must be 1-64"),
        ({"name": "a b"}, ValidationError, "name: must be 1-64"),
        ({"unix_user": "root;rm"}, ValidationError, "unixUser"),
        ({"name": "alice"}, ConflictError, "already exists"),
    ],
)
def test_bad_users_are_refused_naming_the_field(
    fields: dict[str, str], error: type[Exception], phrase: str
) -> None:
    sim = Sim()
    add_alice(sim)
    base = {"name": "bob", "unix_user": "bob", "key_id": key(5), "secret": SECRET, "by": "root"}
    with pytest.raises(error, match=phrase):
        sim.do(ev.AddUser, **{**base, **fields})
    assert set(sim.state.users) == {"alice"}
