"""The synthetic Östergötland-shaped sample region and the issue-3 acceptance facts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pari_geo.datasets.ostergotland import (
    LAYER_FILES,
    MUNICIPALITIES,
    TOWNS,
    make_ostergotland,
    write_ostergotland,
)
from pari_geo.errors import OutputError
from pari_geo.typology.nordic7 import classify_nordic7_array

SHIPPED = Path(__file__).resolve().parents[1] / "data" / "sample_grids" / "ostergotland"
INPUTS = ("built_share", "land_share", "agri_share", "commuting_share", "service_minutes")


def classify(sample):
    L = sample.layers
    return classify_nordic7_array(
        L["population"], cell_size_m=sample.resolution_m, **{k: L[k] for k in INPUTS}
    )


@pytest.fixture(scope="module")
def region():
    sample = make_ostergotland(1000)
    codes, info = classify(sample)
    return sample, codes, info


def seat_code(sample, codes, name):
    town = sample.towns.set_index("name").loc[name]
    return int(codes[town.row, town.col])


def test_grid_and_metadata(region):
    sample, _, _ = region
    assert sample.crs == "EPSG:3006"
    assert sample.transform.a == 1000 and sample.transform.e == -1000
    gdf = sample.municipalities
    assert len(gdf) == 13 and gdf.crs.to_epsg() == 3006
    assert set(gdf.county_code) == {"05"}
    assert dict(zip(gdf.code, gdf.name, strict=True)) == {
        "0580": "Linköping", "0581": "Norrköping", "0583": "Motala", "0586": "Mjölby",
        "0562": "Finspång", "0582": "Söderköping", "0561": "Åtvidaberg", "0513": "Kinda",
        "0563": "Valdemarsvik", "0584": "Vadstena", "0560": "Boxholm", "0509": "Ödeshög",
        "0512": "Ydre",
    }  # fmt: skip
    assert gdf.population.sum() == 473400
    for layer in INPUTS[:4]:
        a = sample.layers[layer]
        assert np.nanmin(a) >= 0 and np.nanmax(a) <= 1, layer


def test_municipal_totals_and_towns_inside(region):
    sample, _, _ = region
    pop, muni = sample.layers["population"], sample.layers["municipality"]
    for code, name, *_, total, _seat, _lat, _lon, _area in MUNICIPALITIES:
        got = float(pop[muni == int(code)].sum())
        assert abs(got - total) <= 0.01 * total, name
        assert got == total  # whole residents, exact by construction
    for tw in TOWNS:
        r, c = sample.cell_of(tw[2], tw[3])
        assert muni[r, c] == int(tw[1]), tw[0]


def test_polygons_match_the_municipality_raster(region):
    from rasterio.features import rasterize

    sample, _, _ = region
    gdf = sample.municipalities
    burnt = rasterize(
        [(g, int(code)) for g, code in zip(gdf.geometry, gdf.code, strict=True)],
        out_shape=sample.layers["municipality"].shape,
        transform=sample.transform,
        dtype="int16",
    )
    np.testing.assert_array_equal(burnt, sample.layers["municipality"])


def test_acceptance_place_types(region):
    sample, codes, info = region
    assert seat_code(sample, codes, "Linköping") == 1
    assert seat_code(sample, codes, "Norrköping") == 1
    assert seat_code(sample, codes, "Motala") in (1, 2)
    for town in ("Mjölby", "Finspång", "Söderköping", "Åtvidaberg", "Vadstena"):
        assert seat_code(sample, codes, town) == 4, town
    # the plain between Mjölby and Linköping: rural heartland or close to urban
    towns = sample.towns.set_index("name")
    a, b = towns.loc["Mjölby"], towns.loc["Linköping"]
    plain = []
    for f in np.linspace(0.2, 0.6, 9):  # 12..24 km from Linköping, 6..18 km from Mjölby
        lat, lon = a.lat + f * (b.lat - a.lat), a.lon + f * (b.lon - a.lon)
        r, c = sample.cell_of(lat, lon)
        if info["settlement_labels"][r, c] == 0:  # villages on the way are not the plain
            plain.append(int(codes[r, c]))
    assert len(plain) >= 7 and set(plain) <= {5, 6}
    # most of Ydre is sparsely populated
    ydre = (sample.layers["municipality"] == 512) & (codes != 0)
    assert (codes[ydre] == 7).mean() > 0.5
    # all seven classes occur
    assert set(range(1, 8)) <= set(np.unique(codes).tolist())


def test_residents_per_municipality_add_up_over_classes(region):
    sample, codes, _ = region
    pop, muni = sample.layers["population"], sample.layers["municipality"]
    for code, name, *_rest in MUNICIPALITIES:
        in_m = muni == int(code)
        classes = (0, 1, 2, 3, 4, 5, 6, 7, 255)
        by_class = sum(float(np.nansum(pop[in_m & (codes == k)])) for k in classes)
        assert by_class == pytest.approx(float(np.nansum(pop[in_m])), abs=1e-6), name
        assert not np.any(codes[in_m] == 255), name


def test_generator_is_deterministic_and_shipped_files_match(region):
    rasterio = pytest.importorskip("rasterio")
    sample, _, _ = region
    again = make_ostergotland(1000)
    for k, a in sample.layers.items():
        np.testing.assert_array_equal(a, again.layers[k])
    if not SHIPPED.is_dir():
        pytest.skip("shipped sample data not present")
    for name, file in LAYER_FILES.items():
        with rasterio.open(SHIPPED / file) as src:
            assert src.crs.to_epsg() == 3006
            assert "SYNTHETIC" in src.tags()["DESCRIPTION"]
            np.testing.assert_array_equal(src.read(1), sample.layers[name])
    import geopandas as gpd

    gdf = gpd.read_file(SHIPPED / "municipalities.gpkg", layer="municipalities")
    assert list(gdf.code) == list(sample.municipalities.code)
    assert (SHIPPED / "README.md").read_text(encoding="utf-8").count("SYNTHETIC") >= 1
    # The typology sample stays small; the actor sample (issue 6) has its own
    # files and its own budget.
    grid_files = [
        p for p in SHIPPED.iterdir() if not p.name.startswith(("actors", "planted", "ACTORS"))
    ]
    assert sum(p.stat().st_size for p in grid_files) < 1_000_000
    assert (SHIPPED / "actors.gpkg").stat().st_size < 4_000_000


def test_write_refuses_to_overwrite(tmp_path):
    paths = write_ostergotland(tmp_path)
    assert {p.name for p in paths.values()} == {*LAYER_FILES.values(), "municipalities.gpkg"}
    before = paths["population"].stat().st_mtime_ns
    with pytest.raises(OutputError, match="exists"):
        write_ostergotland(tmp_path)
    assert paths["population"].stat().st_mtime_ns == before
    write_ostergotland(tmp_path, overwrite=True)


def test_250m_variant_keeps_totals_and_acceptance():
    sample = make_ostergotland(250)
    assert sample.layers["population"].shape == (580, 620)
    pop, muni = sample.layers["population"], sample.layers["municipality"]
    for code, name, *_, total, _seat, _lat, _lon, _area in MUNICIPALITIES:
        assert float(pop[muni == int(code)].sum()) == total, name
    codes, _ = classify(sample)
    assert seat_code(sample, codes, "Linköping") == 1
    assert seat_code(sample, codes, "Norrköping") == 1
    for town in ("Mjölby", "Finspång", "Söderköping", "Åtvidaberg", "Vadstena"):
        assert seat_code(sample, codes, town) == 4, town
    assert set(range(1, 8)) <= set(np.unique(codes).tolist())


def test_bad_resolution():
    with pytest.raises(ValueError, match="divide 1000"):
        make_ostergotland(300)
