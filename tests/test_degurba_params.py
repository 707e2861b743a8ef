"""DegurbaParams: defaults of degurba.md section 5, validation, settings strings, presets."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys

import pytest

from pari_geo.config import DegurbaParams
from pari_geo.errors import ConfigError

# degurba.md section 5, copied by hand
SPEC_DEFAULTS = {
    "UC_density_threshold": 1500,
    "UC_size_threshold": 50000,
    "UC_contiguity_rule": 4,
    "UC_built_criterium": True,
    "UC_built_threshold": 0.2,
    "UC_smooth_pop": False,
    "UC_smooth_pop_window": 5,
    "UC_gap_fill": True,
    "UC_max_gap": 15,
    "UC_smooth_edge": True,
    "UC_smooth_edge_fun": "majority_rule_R2023A",
    "UCL_density_threshold": 300,
    "UCL_size_threshold": 5000,
    "UCL_contiguity_rule": 8,
    "UCL_smooth_pop": False,
    "UCL_smooth_pop_window": 5,
    "DUC_density_threshold": 1500,
    "DUC_size_threshold": 5000,
    "DUC_built_criterium": True,
    "DUC_built_threshold": 0.2,
    "DUC_contiguity_rule": 4,
    "SDUC_density_threshold": 900,
    "SDUC_size_threshold": 2500,
    "SDUC_contiguity_rule": 4,
    "SDUC_buffer_size": 2,
    "SUrb_density_threshold": 300,
    "SUrb_size_threshold": 5000,
    "SUrb_contiguity_rule": 8,
    "RC_density_threshold": 300,
    "RC_size_threshold": 500,
    "RC_contiguity_rule": 8,
    "LDR_density_threshold": 50,
    "water_land_threshold": 0.5,
    "water_pop_threshold": 0,
    "water_built_threshold": 0,
    "values": None,
}

BOOLS = [
    "UC_built_criterium",
    "UC_smooth_pop",
    "UC_gap_fill",
    "UC_smooth_edge",
    "UCL_smooth_pop",
    "DUC_built_criterium",
]
CONTIGUITY = [k for k in SPEC_DEFAULTS if k.endswith("_contiguity_rule")]
WINDOWS = ["UC_smooth_pop_window", "UCL_smooth_pop_window"]
INTS = ["UC_max_gap", "SDUC_buffer_size"]
BUILT = ["UC_built_threshold", "DUC_built_threshold"]
SHARES = ["water_land_threshold", "water_built_threshold"]
NUMBERS = [
    k
    for k in SPEC_DEFAULTS
    if k.endswith(("_density_threshold", "_size_threshold")) or k == "water_pop_threshold"
]


def test_every_section5_parameter_with_its_default():
    p = DegurbaParams()
    d = p.to_dict()
    assert set(d) == set(SPEC_DEFAULTS)
    for name, value in SPEC_DEFAULTS.items():
        assert d[name] == value, name
        assert type(getattr(p, name)) is type(value) or isinstance(value, float | int), name
    assert len(SPEC_DEFAULTS) == len(dataclasses.fields(DegurbaParams))


def test_frozen_and_replace_returns_a_copy():
    p = DegurbaParams()
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.UC_max_gap = 3  # type: ignore[misc]
    q = p.replace(UC_max_gap=3)
    assert q.UC_max_gap == 3 and p.UC_max_gap == 15
    assert q != p and p.replace() == p


def test_numbers_coerced_to_canonical_types():
    p = DegurbaParams().replace(UC_density_threshold=1000, UC_contiguity_rule=8.0, UC_max_gap=10.0)
    assert p.UC_density_threshold == 1000.0 and isinstance(p.UC_density_threshold, float)
    assert p.UC_contiguity_rule == 8 and isinstance(p.UC_contiguity_rule, int)
    assert p.UC_max_gap == 10 and isinstance(p.UC_max_gap, int)


# ----------------------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------------------
def test_unknown_name_is_an_error_with_a_hint():
    with pytest.raises(ConfigError) as err:
        DegurbaParams().replace(uc_gap_fill=False)
    assert err.value.key == "uc_gap_fill"
    assert "unknown" in str(err.value) and "UC_gap_fill" in str(err.value)
    with pytest.raises(ConfigError) as err:
        DegurbaParams().replace(UC_gapfill=False)
    assert "unknown" in str(err.value)
    with pytest.raises(ConfigError) as err:
        DegurbaParams.from_mapping({"sduc_BUFFER_SIZE": 2}, source="my.toml")
    assert "SDUC_buffer_size" in str(err.value) and "my.toml" in str(err.value)


@pytest.mark.parametrize("name", BOOLS)
@pytest.mark.parametrize("bad", [1, 0, "true", None, 1.0])
def test_bools_reject_non_bools(name, bad):
    with pytest.raises(ConfigError) as err:
        DegurbaParams().replace(**{name: bad})
    assert err.value.key == name
    assert getattr(DegurbaParams().replace(**{name: False}), name) is False


@pytest.mark.parametrize("name", CONTIGUITY)
@pytest.mark.parametrize("bad", [6, 0, 4.5, "4", True, None, 16])
def test_contiguity_must_be_4_or_8(name, bad):
    with pytest.raises(ConfigError):
        DegurbaParams().replace(**{name: bad})
    assert getattr(DegurbaParams().replace(**{name: 8}), name) == 8
    assert getattr(DegurbaParams().replace(**{name: 4}), name) == 4


@pytest.mark.parametrize("name", WINDOWS)
@pytest.mark.parametrize("bad", [4, 2, 0, -1, -3, 3.5, "5", True])
def test_windows_positive_odd_integers(name, bad):
    with pytest.raises(ConfigError):
        DegurbaParams().replace(**{name: bad})
    for ok in (1, 3, 7, 9.0):
        assert getattr(DegurbaParams().replace(**{name: ok}), name) == int(ok)


@pytest.mark.parametrize("name", INTS)
def test_integer_parameters(name):
    for bad in (2.5, "15", None, True):
        with pytest.raises(ConfigError):
            DegurbaParams().replace(**{name: bad})
    # zero and negative values are meaningful (max_gap <= 1 fills every hole;
    # SDUC_buffer_size n < 1 means 2 - n steps)
    for ok in (0, 1, -1, 20):
        assert getattr(DegurbaParams().replace(**{name: ok}), name) == ok


@pytest.mark.parametrize("name", BUILT)
def test_built_thresholds_share_or_optimal(name):
    for bad in (1.5, -0.1, "Optimal", "0.2", True, None, float("nan")):
        with pytest.raises(ConfigError):
            DegurbaParams().replace(**{name: bad})
    for ok in (0, 0.5, 1, "optimal"):
        assert getattr(DegurbaParams().replace(**{name: ok}), name) == ok


@pytest.mark.parametrize("name", SHARES)
def test_water_shares_in_0_1(name):
    for bad in (1.01, -0.5, "0.5", None, float("nan")):
        with pytest.raises(ConfigError):
            DegurbaParams().replace(**{name: bad})
    for ok in (0, 0.25, 1):
        assert getattr(DegurbaParams().replace(**{name: ok}), name) == ok


@pytest.mark.parametrize("name", NUMBERS)
def test_numeric_thresholds(name):
    for bad in ("abc", "100", None, True, float("nan"), [1]):
        with pytest.raises(ConfigError):
            DegurbaParams().replace(**{name: bad})
    assert getattr(DegurbaParams().replace(**{name: 0}), name) == 0
    assert getattr(DegurbaParams().replace(**{name: 1e9}), name) == 1e9
    if name == "water_pop_threshold":
        assert DegurbaParams().replace(water_pop_threshold=-1).water_pop_threshold == -1
    else:
        with pytest.raises(ConfigError):
            DegurbaParams().replace(**{name: -1})


def test_edge_function_names():
    p = DegurbaParams().replace(UC_smooth_edge_fun="majority_rule_R2022A")
    assert p.UC_smooth_edge_fun == "majority_rule_R2022A"
    for bad in ("majority_rule", "R2022A", "MAJORITY_RULE_R2023A", None, 1):
        with pytest.raises(ConfigError):
            DegurbaParams().replace(UC_smooth_edge_fun=bad)


def test_values_codes():
    assert DegurbaParams().replace(values=[3, 2, 1, 0]).values == (3, 2, 1, 0)
    assert DegurbaParams().replace(values=range(8)).values == tuple(range(8))
    assert DegurbaParams().replace(values="9, 8,7,6").values == (9, 8, 7, 6)
    assert DegurbaParams().replace(values=None).values is None
    for bad in ([1, 2, 3], [1] * 4, [1, 2, 3, 4, 5], [0, 1, 2, 255], [-1, 0, 1, 2], ["a"] * 4, 5):
        with pytest.raises(ConfigError):
            DegurbaParams().replace(values=bad)


def test_values_length_checked_per_level():
    import numpy as np

    from pari_geo.typology.degurba import (
        classify_level1_array,
        classify_level2_array,
        degurba_layers,
    )

    lay = degurba_layers(
        np.zeros((2, 2)),
        np.zeros((2, 2)),
        np.ones((2, 2)),
        1000,
        built_unit="share",
        land_unit="share",
    )
    four = DegurbaParams().replace(values=(4, 3, 2, 1))
    eight = DegurbaParams().replace(values=(8, 7, 6, 5, 4, 3, 2, 1))
    assert classify_level1_array(lay, four)[0].tolist() == [[2, 2], [2, 2]]  # rural
    assert classify_level2_array(lay, eight)[0].tolist() == [[2, 2], [2, 2]]  # VLDR
    with pytest.raises(ConfigError) as err:
        classify_level1_array(lay, eight)
    assert err.value.key == "values"
    with pytest.raises(ConfigError):
        classify_level2_array(lay, four)


# ----------------------------------------------------------------------------------------
# NAME=VALUE settings
# ----------------------------------------------------------------------------------------
def test_with_settings_parsing():
    p = DegurbaParams().with_settings(
        [
            "UC_gap_fill=false",
            "UC_smooth_pop = TRUE",
            "UC_max_gap=10",
            "UC_density_threshold=1e3",
            "RC_size_threshold=499.5",
            "UC_built_threshold=optimal",
            "DUC_built_threshold=0.25",
            "UC_smooth_edge_fun=majority_rule_R2022A",
            "SDUC_contiguity_rule=8",
            "values=9,8,7,6",
            "water_pop_threshold=-1",
        ]
    )
    assert p.UC_gap_fill is False and p.UC_smooth_pop is True
    assert p.UC_max_gap == 10 and p.UC_density_threshold == 1000.0
    assert p.RC_size_threshold == 499.5
    assert p.UC_built_threshold == "optimal" and p.DUC_built_threshold == 0.25
    assert p.UC_smooth_edge_fun == "majority_rule_R2022A"
    assert p.SDUC_contiguity_rule == 8 and p.values == (9, 8, 7, 6)
    assert p.water_pop_threshold == -1
    for word, value in (("t", True), ("yes", True), ("1", True), ("F", False), ("no", False)):
        assert DegurbaParams().with_settings([f"UC_gap_fill={word}"]).UC_gap_fill is value
    # later settings win
    assert DegurbaParams().with_settings(["UC_max_gap=3", "UC_max_gap=4"]).UC_max_gap == 4


@pytest.mark.parametrize(
    "setting",
    [
        "UC_gap_fill",  # no '='
        "=5",  # no name
        "UC_gap_fill=maybe",
        "UC_density_threshold=abc",
        "UC_max_gap=2.5",
        "UC_smooth_pop_window=4",
        "UC_contiguity_rule=6",
        "water_land_threshold=2",
        "UC_built_threshold=0.2x",
        "values=1,2,3",
        "UC_smooth_edge_fun=nope",
    ],
)
def test_with_settings_errors(setting):
    with pytest.raises(ConfigError):
        DegurbaParams().with_settings([setting])


def test_with_settings_unknown_name_hint():
    with pytest.raises(ConfigError) as err:
        DegurbaParams().with_settings(["uc_max_gap=3"])
    assert "UC_max_gap" in str(err.value)


# ----------------------------------------------------------------------------------------
# presets and hash
# ----------------------------------------------------------------------------------------
def test_presets_load_and_differ_as_documented():
    current = DegurbaParams.from_preset("degurba")
    assert current == DegurbaParams()
    old = DegurbaParams.from_preset("degurba_2023")
    diff = {k: (v, old.to_dict()[k]) for k, v in current.to_dict().items() if old.to_dict()[k] != v}
    # before the July-2024 update: semi-dense clusters 300 / 5000 / queen; the buffer is
    # 2 queen steps in both (flexurba < 0.2.0 wrote 3, meaning 3 - 1)
    assert diff == {
        "SDUC_density_threshold": (900.0, 300.0),
        "SDUC_size_threshold": (2500.0, 5000.0),
        "SDUC_contiguity_rule": (4, 8),
    }
    assert DegurbaParams.from_preset() == current
    with pytest.raises(ConfigError):
        DegurbaParams.from_preset("degurba_2099")


def test_hash_is_stable_and_content_based():
    p = DegurbaParams()
    h = p.hash()
    assert len(h) == 16 and all(c in "0123456789abcdef" for c in h)
    # sha-256 of the sorted-key JSON of the parameters
    text = json.dumps(p.to_dict(), sort_keys=True, separators=(",", ":"), default=str)
    assert h == hashlib.sha256(text.encode()).hexdigest()[:16]
    assert DegurbaParams.from_preset("degurba").hash() == h
    assert p.replace(UC_max_gap=15).hash() == h
    assert p.replace(UC_max_gap=14).hash() != h
    assert p.replace(UC_density_threshold=1500).hash() == h  # int 1500 -> 1500.0
    assert DegurbaParams.from_preset("degurba_2023").hash() != h
    # same value in a fresh interpreter with a different string-hash seed
    code = "from pari_geo.config import DegurbaParams; print(DegurbaParams().hash())"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    )
    assert out.stdout.strip() == h


def test_to_dict_is_json_serialisable():
    p = DegurbaParams().replace(values=(1, 2, 3, 4), UC_built_threshold="optimal")
    d = json.loads(json.dumps(p.to_dict()))
    assert d["values"] == [1, 2, 3, 4] and d["UC_built_threshold"] == "optimal"
    assert DegurbaParams.from_mapping(d) == p
