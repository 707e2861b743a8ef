"""`pari-geo run`: place types → micro-clusters → tables, maps and summary (issue 5)."""

from __future__ import annotations

import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from pari_geo.cli import main

ROOT = Path(__file__).resolve().parents[1]
OST = ROOT / "data" / "sample_grids" / "ostergotland"


def _run_file(tmp_path: Path, n_sim: int = 99, scales="[300, 1000]") -> Path:
    """The example run with fewer simulations and scales (99 is the fewest that lets a
    q-value reach 0.05 with ~70 clusters: the smallest p is 1 / (n_sim + 1))."""
    text = (ROOT / "examples" / "ostergotland_run.toml").read_text()
    text = text.replace("../data/", f"{ROOT}/data/")
    text = text.replace('dir = "../out/ostergotland_run"', 'dir = "out"')
    text = text.replace("n_sim = 999", f"n_sim = {n_sim}")
    text = text.replace("eps_m = [300, 1000, 5000, 20000]", f"eps_m = {scales}")
    f = tmp_path / "run.toml"
    f.write_text(text)
    return f


@pytest.fixture(scope="module")
def run_out(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    assert main(["run", str(_run_file(tmp)), "--quiet"]) == 0
    return tmp / "out"


def test_outputs_are_complete(run_out):
    names = {p.name for p in run_out.iterdir()}
    assert {
        "place_types.tif",
        "place_types.png",
        "clusters.gpkg",
        "clusters.parquet",
        "municipalities.csv",
        "municipalities.gpkg",
        "clusters_map.png",
        "summary.md",
        "provenance.json",
        "maps",
    } <= names
    assert sorted(p.name for p in (run_out / "maps").iterdir())  # one map per municipality
    gpq = gpd.read_parquet(run_out / "clusters.parquet")
    gpkg = gpd.read_file(run_out / "clusters.gpkg")
    assert len(gpq) == len(gpkg) > 0
    assert set(gpq["scale_eps_m"]) == {300.0, 1000.0}


def test_planted_clusters_recovered_and_rungs(run_out):
    """Recall of planted clusters >= 0.95 and false discovery among hidden <= 0.05."""
    from pari_geo.clustering.actors import label_actors

    truth = pd.read_csv(OST / "planted_clusters.csv")
    actors = gpd.read_file(OST / "actors.gpkg")
    clusters = gpd.read_parquet(run_out / "clusters.parquet")
    fine = clusters[clusters["scale_eps_m"] == 300]
    labels = label_actors(actors, eps_m=300, min_actors=5)
    hidden_ids = set(fine.loc[fine["hidden"], "cluster_id"])
    recovered, matched = 0, set()
    for row in truth.itertuples():
        members = actors["planted_cluster"] == row.planted_cluster
        labs = labels[members.to_numpy()]
        lab = labs.mode().iloc[0]
        cluster_members = labels == lab
        share_found = (labs == lab).mean()
        purity = (
            actors.loc[cluster_members.to_numpy(), "planted_cluster"] == row.planted_cluster
        ).mean()
        if lab in hidden_ids and share_found >= 0.8 and purity >= 0.5:
            recovered += 1
            matched.add(lab)
            rung = fine.loc[fine["cluster_id"] == lab, "rung"].iloc[0]
            assert rung == row.expected_rung, (row.planted_cluster, rung)
    recall = recovered / len(truth)
    false_discovery = len(hidden_ids - matched) / max(len(hidden_ids), 1)
    assert recall >= 0.95, recall
    assert false_discovery <= 0.05, false_discovery


def test_municipality_table(run_out):
    munis = pd.read_csv(run_out / "municipalities.csv", dtype={"code": str})
    assert len(munis) == 13
    truth = gpd.read_file(OST / "municipalities.gpkg")
    merged = munis.merge(truth[["code", "population"]], on="code")
    np.testing.assert_allclose(merged["residents"], merged["population"])
    assert munis["actors"].sum() == 20000
    assert munis["hidden_300m_inter_municipal"].sum() == 8  # 4 clusters x 2 municipalities
    assert {"clusters_300m_micro", "hidden_1000m_micro"} <= set(munis.columns)


def test_summary_lists_hidden_rural_clusters(run_out):
    import re

    import pandas as pd

    text = (run_out / "summary.md").read_text(encoding="utf-8")
    assert "Hidden candidates" in text
    assert "Ydre; Kinda" in text  # an inter-municipal planted cluster
    clusters = gpd.read_parquet(run_out / "clusters.parquet")
    cand = pd.read_csv(run_out / "candidates.csv")
    # every count in the summary matches its list
    for eps in sorted(clusters["scale_eps_m"].unique()):
        at = clusters[clusters["scale_eps_m"] == eps]
        row = next(line for line in text.splitlines() if line.startswith(f"| {eps:g} m |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert int(cells[1]) == len(at) and int(cells[2]) == int(at["hidden"].sum())
        rural = at["hidden"] & at["dominant_place_type"].isin([4, 5, 6, 7])
        assert int(cells[3]) == int(rural.sum())
    n = int(re.search(r"(\d+) candidate\(s\), (\d+) of them", text).group(1))
    listed = [line for line in text.splitlines() if re.match(r"\| \d+ \| \d", line)]
    assert n == len(cand) == len(listed) == clusters["candidate_id"].nunique()
    assert n >= 20
    # a place hidden at 300 m and 1 km is one candidate, not two rows
    assert (cand["n_scales"] >= 2).sum() >= 15
    assert set(cand["candidate_id"]) == set(clusters["candidate_id"].dropna().astype(int))
    # every municipality of a listed candidate has its map, and only those
    units = {u for ids in cand["unit_ids"] for u in str(ids).split(";")}
    maps = {p.stem.removeprefix("hidden_") for p in (run_out / "maps").glob("*.png")}
    assert maps == units


def test_same_seed_gives_identical_files(tmp_path, run_out):
    f = _run_file(tmp_path)
    first = tmp_path / "first"
    assert main(["run", str(f), "--quiet"]) == 0
    shutil.move(tmp_path / "out", first)
    assert main(["run", str(f), "--quiet"]) == 0
    for p in sorted(first.rglob("*")):
        if p.is_file():
            assert p.read_bytes() == (tmp_path / "out" / p.relative_to(first)).read_bytes(), p


def test_run_needs_clusters_and_actors(tmp_path, capsys):
    f = _run_file(tmp_path)
    text = f.read_text()
    a = text.index("[clusters]")
    b = text.index("[outputs]")
    f.write_text(text[:a] + text[b:])
    assert main(["run", str(f), "--quiet"]) != 0
    assert "clusters" in capsys.readouterr().err
    f.write_text(text.replace("actors = {", "# actors = {"))
    assert main(["run", str(f), "--quiet"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "inputs.actors" in err[0]
    assert not (tmp_path / "out").exists()


def test_outputs_from_synthetic_inputs_say_so(run_out):
    # issue 16: the summary and the provenance mark outputs of the synthetic sample, and
    # the provenance nests its JSON instead of holding it in strings
    import json

    summary = (run_out / "summary.md").read_text()
    assert "> **Synthetic data.**" in summary
    prov = json.loads((run_out / "provenance.json").read_text())
    assert "population" in prov["synthetic_inputs"]
    assert "SYNTHETIC" in prov["synthetic_inputs"]["population"]
    assert isinstance(prov["classification"]["class_names"], dict)
    munis = pd.read_csv(run_out / "municipalities.csv")
    assert list(munis.columns[:2]) == ["code", "name"]
    assert "Linköping" in set(munis["name"])


def test_report_html_is_one_self_contained_page(run_out):
    import re

    page = (run_out / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    # nothing is loaded from elsewhere: no scripts, no remote or file links
    assert "<script" not in page
    assert not re.search(r'(src|href)="(?!data:)', page)
    assert page.count('src="data:image/png;base64,') == 2
    assert "Synthetic data." in page
    assert "Residents per place type" in page and "Linköping" in page
    assert "Hidden rural micro-clusters" in page
