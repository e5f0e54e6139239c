"""The disentanglement scores that fit classifiers to predict the factors from the codes: DCI, SAP
and explicitness, and the BetaVAE score's classifier, with disentanglement_lib's classifiers and
defaults.

They run on scikit-learn (the optional extra ``vaezoo[disentanglement]``): its gradient-boosted
trees, linear SVM and logistic regression are the classifiers that disentanglement_lib and disent
fit, so the scores are comparable with theirs only when fitted by the same library. Every
function takes the codes and factors of a training and a test draw, (N, D) and (N, F).
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from ..errors import UsageError

__all__ = ["require_sklearn", "dci", "sap", "explicitness", "logistic_regression_accuracy"]

_EXTRA = "pip install 'vaezoo[disentanglement]'"


def require_sklearn():
    """The ``sklearn`` module, or a UsageError that says how to install it."""
    try:
        import sklearn  # noqa: F401 - an optional dependency, imported where it is needed
    except ImportError as error:
        raise UsageError(f"DCI, SAP and explicitness fit scikit-learn's classifiers, as disentanglement_lib does: "
                         f"{_EXTRA}") from error
    return sklearn


def _entropy_normalized(p: np.ndarray, axis: int) -> np.ndarray:
    """1 - H(p) / log(K) along ``axis`` (K its length), p normalized there first (scipy's entropy)."""
    p = p + 1e-11  # disentanglement_lib's floor: an all-zero row is uniform, not undefined
    p = p / p.sum(axis=axis, keepdims=True)
    return 1.0 - (-(p * np.log(p)).sum(axis=axis)) / np.log(p.shape[axis])


def dci(train_codes: torch.Tensor, train_factors: torch.Tensor, test_codes: torch.Tensor,
        test_factors: torch.Tensor, seed: int = 0) -> dict[str, float]:
    """Eastwood & Williams 2018: per factor, gradient-boosted trees (scikit-learn's defaults, 100
    stages of depth 3) predict it from the codes; their feature importances form the (D, F)
    matrix R. ``disentanglement``: per code 1 - H(R_i.), weighted by the code's share of the
    importance; ``completeness``: per factor 1 - H(R_.k), weighted likewise;
    ``informativeness``: the trees' mean test accuracy (``informativeness_train`` on the training draw)."""
    require_sklearn()
    from sklearn.ensemble import GradientBoostingClassifier

    x_train, x_test = train_codes.double().numpy(), test_codes.double().numpy()

    def fit(k: int) -> tuple[np.ndarray, float, float]:
        y_train, y_test = train_factors[:, k].numpy(), test_factors[:, k].numpy()
        trees = GradientBoostingClassifier(random_state=seed).fit(x_train, y_train)
        return (np.abs(trees.feature_importances_), float(np.mean(trees.predict(x_train) == y_train)),
                float(np.mean(trees.predict(x_test) == y_test)))

    # one factor per thread: the trees' split search runs outside the GIL, and a factor's fit takes
    # tens of seconds (the 16-valued ones most), so the threads divide the wall time by the cores
    with ThreadPoolExecutor(max_workers=max(1, min(train_factors.shape[1], os.cpu_count() or 1))) as pool:
        # the factors of most values first: the longest fits start first (the pool balances the rest)
        order = sorted(range(train_factors.shape[1]), key=lambda k: -len(train_factors[:, k].unique()))
        fits = dict(zip(order, pool.map(fit, order)))
    fits = [fits[k] for k in range(train_factors.shape[1])]
    importance = np.stack([f[0] for f in fits], axis=1)
    train_accuracy, test_accuracy = [f[1] for f in fits], [f[2] for f in fits]
    weights = importance if importance.sum() > 0 else np.ones_like(importance)
    code_share, factor_share = weights.sum(1) / weights.sum(), weights.sum(0) / weights.sum()
    return {
        "disentanglement": float((_entropy_normalized(importance, axis=1) * code_share).sum()),
        "completeness": float((_entropy_normalized(importance, axis=0) * factor_share).sum()),
        "informativeness": float(np.mean(test_accuracy)),
        "informativeness_train": float(np.mean(train_accuracy)),
    }


def sap(train_codes: torch.Tensor, train_factors: torch.Tensor, test_codes: torch.Tensor,
        test_factors: torch.Tensor) -> float:
    """Kumar et al. 2018's separated attribute predictability for discrete factors: for every
    (code, factor) pair, a linear SVM on that one code (C = 0.01, balanced classes) predicts the
    factor; the score is the mean over factors of the gap between the two best codes' test accuracies."""
    require_sklearn()
    from sklearn.svm import LinearSVC

    scores = np.zeros((train_codes.shape[1], train_factors.shape[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # liblinear's convergence notes on a code with no signal
        for i in range(train_codes.shape[1]):
            x_train, x_test = train_codes[:, i:i + 1].double().numpy(), test_codes[:, i:i + 1].double().numpy()
            for k in range(train_factors.shape[1]):
                svm = LinearSVC(C=0.01, class_weight="balanced", random_state=0).fit(x_train, train_factors[:, k].numpy())
                scores[i, k] = np.mean(svm.predict(x_test) == test_factors[:, k].numpy())
    top = np.sort(scores, axis=0)
    return float(np.mean(top[-1] - top[-2]))


def explicitness(train_codes: torch.Tensor, train_factors: torch.Tensor, test_codes: torch.Tensor,
                 test_factors: torch.Tensor) -> dict[str, float]:
    """Ridgeway & Zemel 2018: per factor, a logistic regression (scikit-learn's defaults) on the codes,
    standardized by the training draw's mean and deviation, predicts it; the score is the mean over
    factors of the one-vs-rest ROC AUC of its class probabilities on the test draw (``train``: on
    the training draw)."""
    require_sklearn()
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    x_train, x_test = train_codes.double().numpy(), test_codes.double().numpy()
    mean, deviation = x_train.mean(0), x_train.std(0)
    deviation[deviation == 0] = 1.0  # a constant code stays 0 rather than dividing by zero
    x_train, x_test = (x_train - mean) / deviation, (x_test - mean) / deviation

    def auc(classifier, x: np.ndarray, y: np.ndarray) -> float:
        onehot = y[:, None] == classifier.classes_[None, :]
        present = onehot.any(0) & ~onehot.all(0)  # a class needs positives and negatives for an AUC
        return float(roc_auc_score(onehot[:, present], classifier.predict_proba(x)[:, present]))

    train_auc, test_auc = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs's iteration cap, as in the reference
        for k in range(train_factors.shape[1]):
            y_train, y_test = train_factors[:, k].numpy(), test_factors[:, k].numpy()
            classifier = LogisticRegression().fit(x_train, y_train)
            train_auc.append(auc(classifier, x_train, y_train))
            test_auc.append(auc(classifier, x_test, y_test))
    return {"test": float(np.mean(test_auc)), "train": float(np.mean(train_auc))}


def logistic_regression_accuracy(train_x: torch.Tensor, train_y: torch.Tensor, eval_x: torch.Tensor,
                                 eval_y: torch.Tensor, seed: int = 0) -> tuple[float, float]:
    """Train and eval accuracy of scikit-learn's default logistic regression (the BetaVAE score's)."""
    require_sklearn()
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs's iteration cap, as in the reference
        classifier = LogisticRegression(random_state=seed).fit(train_x.double().numpy(), train_y.numpy())
    return (float(classifier.score(train_x.double().numpy(), train_y.numpy())),
            float(classifier.score(eval_x.double().numpy(), eval_y.numpy())))
