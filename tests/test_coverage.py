"""The coverage table of the peer libraries: every part and pretrained model it cites exists, every
peer model is in exactly one row, and a false claim is caught."""

from __future__ import annotations

import json

import pytest

from vaezoo.hub.index import list_entries
from vaezoo.maintenance.coverage import CoverageRow, coverage_problems, coverage_table, read_coverage


def test_the_coverage_file_claims_only_what_the_zoo_has():
    coverage = read_coverage()
    # a retired entry loads no weights: the table points to the model that superseded it
    assert coverage_problems(coverage, [e.name for e in list_entries() if e.retired is None]) == []
    assert {"pythae 0.1.2", "PyTorch-VAE", "disent 0.8.0"} == set(coverage.peers)


def test_a_false_claim_is_named():
    coverage = read_coverage()
    coverage.rows.append(CoverageRow(model="Made up", paper="-", peers={"pythae 0.1.2": ["VAE", "Nope"]},
                                     vaezoo=[("objective", "no-such-objective")], pretrained=["fashion-missing"]))
    problems = coverage_problems(coverage, [e.name for e in list_entries()])
    assert "Made up: no registered objective named 'no-such-objective'" in problems
    assert "Made up: no pretrained model named 'fashion-missing'" in problems
    assert "pythae 0.1.2 'VAE' is in 2 rows" in problems
    assert "pythae 0.1.2 'Nope' is not in its list" in problems


def test_the_table_counts_what_is_built_and_shows_each_headline():
    coverage, entries = read_coverage(), list_entries()
    text = "\n".join(coverage_table(coverage, entries))
    pythae = coverage.peers["pythae 0.1.2"].models
    built = {n for row in coverage.rows if row.vaezoo for n in row.peers.get("pythae 0.1.2", [])}
    assert f"pythae 0.1.2: {len(built)} of {len(pythae)}" in text
    iwae = next(e for e in entries if e.name == "fashion-iwae40")
    nll = next(m.value for m in iwae.metrics if m.name == "iwae_nll")
    assert "| IWAE | Burda et al. 2016 |" in text and f"NLL {nll:.2f} nats (`fashion-iwae40`)" in text


def _comparison(tmp_path, rows, notes=None):
    from vaezoo.maintenance.peer_table import read_peer_comparison

    protocol = {"data": "D", "training": "T", "scoring": "S", "command": "python benchmarks/peer_pythae.py",
                "date": "2026-12-06", "versions": {"pythae": "0.1.2", "torch": "2"}}
    (tmp_path / "references").mkdir()
    (tmp_path / "references" / "peer_pythae.json").write_text(
        json.dumps({"protocol": protocol, "rows": rows, "notes": notes or {}}))
    return read_peer_comparison(tmp_path)


def test_the_peer_table_shows_both_libraries_figures_and_the_notes(tmp_path):
    from vaezoo.maintenance.peer_table import peer_table

    scores = {"iwae_nll": 240.123, "neg_elbo": 245.0, "fd-fashion-v1": 20.0, "probe-accuracy": 0.81, "train_s": 100,
              "selected_epoch": 7}
    theirs = {**scores, "iwae_nll": 241.456, "train_s": 150, "selected_epoch": 3}
    row = {"model": "iwae", "config": "fashion-iwae40", "vaezoo_objective": {"name": "iwae", "k": 5},
           "pythae_model": "IWAE", "pythae_settings": {"number_samples": 5}, "vaezoo": scores, "pythae": theirs}
    text = "\n".join(peer_table(_comparison(tmp_path, [row], {"iwae": "the same within the noise"})))
    assert "| iwae (`fashion-iwae40`) | `IWAE` | 240.12 / 241.46 |" in text
    assert "| 7 / 3 | 100 s / 150 s |" in text and "- iwae: the same within the noise" in text
    assert "`python benchmarks/peer_pythae.py`" in text


def test_the_autoencoders_get_a_table_of_their_own_scores(tmp_path):
    from vaezoo.maintenance.peer_table import peer_table

    density = {"iwae_nll": 240.0, "neg_elbo": 245.0, "fd-fashion-v1": 20.0, "probe-accuracy": 0.81, "train_s": 100}
    points = {"squared_error": 12.345, "fd-fashion-v1": 40.0, "fd-gmm-fashion-v1": 15.0, "probe-accuracy": 0.8,
              "train_s": 50}
    rows = [{"model": "vae", "config": "fashion-iwae40", "vaezoo_objective": {}, "pythae_model": "VAE",
             "pythae_settings": {}, "vaezoo": density, "pythae": density},
            {"model": "ae", "config": "fashion-ae", "vaezoo_objective": {"name": "ae"}, "pythae_model": "AE",
             "pythae_settings": {}, "vaezoo": points, "pythae": {**points, "squared_error": 13.0}}]
    text = "\n".join(peer_table(_comparison(tmp_path, rows)))
    density_table, point_table = text.split("The autoencoders, which have no density")
    assert "| vae (`fashion-iwae40`) | `VAE` | 240.00 / 240.00 |" in density_table and "`AE`" not in density_table
    assert "| ae (`fashion-ae`) | `AE` | 12.35 / 13.00 | 40.00 / 40.00 | 15.00 / 15.00 | 0.800 / 0.800 |" in point_table
    assert "squared error vaezoo / pythae" in point_table and "`VAE`" not in point_table
    assert "| - / - | 50 s / 50 s |" in point_table  # rows recorded before the selected epochs were


def test_a_vq_vae_gets_a_table_of_its_code_scores(tmp_path):
    from vaezoo.maintenance.peer_table import peer_table

    codes = {"squared_error": 5.5, "codebook_usage": 0.25, "perplexity": 101.4, "probe-accuracy": 0.85, "train_s": 9}
    rows = [{"model": "vqvae", "config": "fashion-vqvae", "vaezoo_objective": {"name": "vq"}, "pythae_model": "VQVAE",
             "pythae_settings": {}, "vaezoo": codes, "pythae": {**codes, "codebook_usage": 0.125}}]
    text = "\n".join(peer_table(_comparison(tmp_path, rows)))
    _, code_table = text.split("The VQ-VAE, which has neither a density")
    assert "| vqvae (`fashion-vqvae`) | `VQVAE` | 5.50 / 5.50 | 0.250 / 0.125 | 101 / 101 | 0.850 / 0.850 |" in code_table
    assert "perplexity vaezoo / pythae" in code_table


def test_a_peer_row_scored_on_a_mix_of_metrics_is_refused_by_name(tmp_path):
    from vaezoo.errors import ConfigError

    mixed = {"iwae_nll": 240.0, "squared_error": 12.0, "fd-fashion-v1": 20.0, "probe-accuracy": 0.81}
    row = {"model": "ae", "config": "fashion-ae", "vaezoo_objective": {}, "pythae_model": "AE",
           "pythae_settings": {}, "vaezoo": mixed, "pythae": mixed}
    with pytest.raises(ConfigError, match="ae: vaezoo's scores .* neither a density model's"):
        _comparison(tmp_path, [row])


def test_a_peer_row_without_a_score_is_refused_by_name(tmp_path):
    from vaezoo.errors import ConfigError

    row = {"model": "vae", "config": "fashion-iwae40", "vaezoo_objective": {}, "pythae_model": "VAE",
           "pythae_settings": {}, "vaezoo": {"iwae_nll": 1.0}, "pythae": "not a mapping"}
    with pytest.raises(ConfigError, match="pythae"):
        _comparison(tmp_path, [row])


def test_the_shipped_peer_comparison_is_valid_and_rendered():
    from vaezoo.maintenance.peer_table import peer_path, peer_table, read_peer_comparison

    assert peer_path().is_file(), "registry/references/peer_pythae.json: run benchmarks/peer_pythae.py --record"
    comparison = read_peer_comparison()
    assert {row.model for row in comparison.rows} >= {"vae", "iwae"}
    text = "\n".join(peer_table(comparison))
    assert "## Side by side with pythae" in text
    assert all(f"| {row.model} (`{row.config}`) | `{row.pythae_model}` |" in text for row in comparison.rows)
