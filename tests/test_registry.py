import pytest

from tokbench.errors import UnknownNameError
from tokbench.registry import Registry


def make():
    reg = Registry("widget")
    reg.register("alpha", 1, aliases=("a",))
    reg.register("beta", 2)
    return reg


def test_get_by_name_and_alias():
    reg = make()
    assert reg.get("alpha") == 1 and reg.get("a") == 1 and reg.get("beta") == 2
    assert reg.canonical("a") == "alpha"
    assert reg.names() == ["alpha", "beta"] and len(reg) == 2 and "a" in reg
    assert reg.aliases_of("alpha") == ["a"]


@pytest.mark.parametrize("name", ["alpha", "a", "beta"])
def test_duplicates_are_errors(name):
    with pytest.raises(ValueError, match="already registered"):
        make().register(name, 3)


def test_unknown_name_suggests_and_lists():
    with pytest.raises(UnknownNameError) as e:
        make().get("alpah")
    msg = str(e.value)
    assert msg == "unknown widget 'alpah'. Did you mean 'alpha'? Available: alpha, beta"


def test_unknown_name_without_close_match_lists_all():
    with pytest.raises(KeyError, match=r"unknown widget 'zzz'\. Available: alpha, beta"):
        make().get("zzz")


def test_temporary_registration_is_removed():
    reg = make()
    with reg.temporary("gamma", 3, aliases=("g",)):
        assert reg.get("g") == 3
    assert "gamma" not in reg and "g" not in reg
