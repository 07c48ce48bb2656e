import pytest

from dfkd.registry import Registry


def test_register_lookup_and_errors():
    reg = Registry("widget", loose=True)

    @reg.register("Fancy-Widget")
    def fancy():
        return 1

    assert reg.get("fancy_widget") is fancy and "FANCYWIDGET" in reg
    assert reg.names() == ["Fancy-Widget"] and reg.names("x*") == []
    with pytest.raises(ValueError, match="already registered"):
        reg.register("fancy widget".replace(" ", "-"))(fancy)
    with pytest.raises(ValueError, match=r"no widget 'plain' registered: choose one of \['Fancy-Widget'\]"):
        reg.get("plain")
    strict = Registry("thing")
    strict.register("a_b")(object)
    assert "a_b" in strict and "ab" not in strict
