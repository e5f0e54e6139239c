"""Our disentanglement scores beside the reference implementation, disent (nmichlo/disent, the
maintained PyTorch port of disentanglement_lib), on the same codes and factors: the mutual
information gap and the Gaussian total correlation agree to rounding (the same discretization and
the same contingency-table mutual information); DCI and SAP, which fit scikit-learn's classifiers as
disent does, agree within 0.01 (the trees and the SVMs break ties with their own randomness).
disent has no explicitness: it is checked against disentanglement_lib's recipe written out here."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from disent.metrics._dci import _compute_dci
from disent.metrics._mig import _compute_mig
from disent.metrics._sap import _compute_sap
from disent.metrics._unsupervised import _gaussian_total_correlation

from vaezoo.evaluation.disentanglement import gaussian_total_correlation, mig
from vaezoo.evaluation.predictive_scores import dci, explicitness, sap


def _codes_and_factors(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes that carry the factors partly, mixed and noisy: a case neither 0 nor 1."""
    generator = torch.Generator().manual_seed(seed)
    factors = torch.stack([torch.randint(size, (3000,), generator=generator) for size in (3, 6, 10, 8)], dim=1)
    mixing = torch.randn(4, 6, generator=generator, dtype=torch.float64)
    codes = factors.double() @ mixing + 2.0 * torch.randn(3000, 6, generator=generator, dtype=torch.float64)
    codes[:, 5] = 1.5  # a dead code: a constant
    return codes, factors


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mig_agrees_with_disent(seed):
    codes, factors = _codes_and_factors(seed)
    reference = _compute_mig(codes.T.numpy(), factors.T.numpy())["mig.discrete_score"]
    assert 0.01 < reference < 0.99  # a case that tells implementations apart
    assert mig(codes, factors) == pytest.approx(reference, abs=1e-12)


def test_gaussian_total_correlation_agrees_with_disent():
    codes, _ = _codes_and_factors(3)
    codes = codes[:, :5]  # the dead code has no variance: no covariance to invert
    reference = _gaussian_total_correlation(np.cov(codes.T.numpy()))
    assert gaussian_total_correlation(codes) == pytest.approx(reference, rel=1e-10)


def _train_and_test(seed: int, train: int = 2000):
    codes, factors = _codes_and_factors(seed)
    return codes[:train], factors[:train], codes[train:], factors[train:]


def test_dci_agrees_with_disent():
    draws = _train_and_test(4)
    reference = _compute_dci(*(t.T.numpy() for t in draws))
    ours = dci(*draws)
    assert 0.05 < reference["dci.disentanglement"] < 0.95
    assert ours["disentanglement"] == pytest.approx(reference["dci.disentanglement"], abs=0.01)
    assert ours["completeness"] == pytest.approx(reference["dci.completeness"], abs=0.01)
    assert ours["informativeness"] == pytest.approx(reference["dci.informativeness_test"], abs=0.01)
    assert ours["informativeness_train"] == pytest.approx(reference["dci.informativeness_train"], abs=0.01)


def test_sap_agrees_with_disent():
    draws = _train_and_test(5)
    reference = _compute_sap(*(t.T.numpy() for t in draws), continuous_factors=False)["sap.score"]
    assert 0.01 < reference < 0.99
    assert sap(*draws) == pytest.approx(reference, abs=0.01)


def test_explicitness_follows_disentanglement_libs_recipe():
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.preprocessing import MultiLabelBinarizer

    train_codes, train_factors, test_codes, test_factors = (t.numpy() for t in _train_and_test(6))
    train_codes, test_codes = train_codes[:, :5], test_codes[:, :5]  # the reference divides by a dead code's 0 deviation
    mean, deviation = train_codes.mean(0), train_codes.std(0)
    x_train, x_test = (train_codes - mean) / deviation, (test_codes - mean) / deviation
    scores = []
    for k in range(train_factors.shape[1]):
        classifier = LogisticRegression().fit(x_train, train_factors[:, k])
        onehot = MultiLabelBinarizer().fit_transform(test_factors[:, k:k + 1])
        scores.append(roc_auc_score(onehot, classifier.predict_proba(x_test)))
    ours = explicitness(*(torch.from_numpy(a) for a in (train_codes, train_factors, test_codes, test_factors)))
    assert 0.55 < np.mean(scores) < 0.99
    assert ours["test"] == pytest.approx(np.mean(scores), abs=1e-9)
