import pytest

from i2h.config import PRESETS, ConfigError, I2HConfig, get_preset


def test_json_round_trip_every_preset():
    for name, cfg in PRESETS.items():
        again = I2HConfig.from_dict(cfg.to_dict())
        assert again == cfg, name
        assert again.preset == name


def test_overrides_are_type_checked():
    cfg = get_preset("tiny")
    assert cfg.replace(**{"image.width": "256"}).image.width == 256
    assert cfg.replace(through_text_encoder="false").through_text_encoder is False
    assert cfg.replace(**{"text.arch.d_model": 96}).d_model == 96
    with pytest.raises(ConfigError, match="unknown config field"):
        cfg.replace(**{"image.widht": 10})
    with pytest.raises(ConfigError, match="expected an integer"):
        cfg.replace(**{"image.width": "wide"})
    with pytest.raises(ConfigError, match="unknown field"):
        I2HConfig.from_dict({**cfg.to_dict(), "colour": 1})


def test_unknown_preset_names_the_choices():
    with pytest.raises(ConfigError, match="tiny"):
        get_preset("huge")


def test_configs_are_frozen():
    cfg = get_preset("tiny")
    with pytest.raises(Exception):
        cfg.max_length = 5
