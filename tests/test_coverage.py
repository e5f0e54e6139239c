"""The coverage table of the peer libraries: every part and pretrained model it cites exists, every
peer model is in exactly one row, and a false claim is caught."""

from __future__ import annotations

from vaezoo.hub.index import list_entries
from vaezoo.maintenance.coverage import CoverageRow, coverage_problems, coverage_table, read_coverage


def test_the_coverage_file_claims_only_what_the_zoo_has():
    coverage = read_coverage()
    assert coverage_problems(coverage, [e.name for e in list_entries()]) == []
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
