"""How the beat tracker's level choice was tuned: its features per candidate level, on the corpus' tune half.

For each piece of the chosen split, tracks beats at every candidate metrical level
(`track_levels`), marks the levels whose tempo is right (within 4% of the truth),
and prints each level's features and score, the level chosen and whether it is right.

``--fit`` fits the weights of `_level_score` and prints them. The model is a
conditional logit: per piece, a softmax over its levels of the weighted features,
fitted for the likelihood of the right levels with an L2 penalty on standardised
weights. The penalty is chosen by validation inside the tune side: weights fitted on
the tune half and its variants (the same pieces 10% slower and faster,
`tune_variants`) less one piece and its variants are scored on what was left out, for
each piece in turn, and the best penalty is refitted on all of them. The report half
is never read here unless asked for with ``--split report``; `bench/beats.py`
reports on it.

    .venv/bin/python -m bench.tune_beats [--split tune] [--fit] [--only NAME]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import mir_eval  # type: ignore[import-untyped]
import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize

from bench.beat_corpus import SPECS, VARIANT_MARK, CorpusPiece, build_corpus
from services.analyzer.features import beats as tracker
from services.analyzer.features.analyze import onset_bands

FloatArray = npt.NDArray[np.float64]
PENALTIES = (0.03, 0.1, 0.3, 1.0, 3.0)


@dataclass
class Case:
    piece: CorpusPiece
    names: list[str]
    features: FloatArray  # (levels, features)
    right: npt.NDArray[np.bool_]  # per level: tempo within 4%
    bpms: FloatArray
    f_measure: float  # of the whole tracker's beats, with the weights in beats.py


def cases(split: str, only: str | None, *, variants: bool = False) -> list[Case]:
    found: list[Case] = []
    table = {spec.name for spec in SPECS}
    for piece in build_corpus(variants=variants):
        variant = piece.name not in table
        if split == "variants" and not variant:
            continue
        if split not in ("all", "variants") and (piece.split != split or variant):
            continue
        if only and only not in piece.name:
            continue
        bands = onset_bands(piece.path("wav"))
        levels = tracker.track_levels(bands, 40.0, 240.0).levels
        names = list(tracker._WEIGHTS)
        features = np.array([[level.features[n] for n in names] for level in levels])
        bpms = np.array([level.bpm for level in levels])
        right = np.abs(bpms - piece.tempo) <= 0.04 * piece.tempo
        result = tracker.track_beats(bands, 40.0, 240.0)
        f = float(mir_eval.beat.f_measure(piece.beats, result.beat_times))
        found.append(Case(piece, names, features, right, bpms, f))
    return found


def right_count(all_cases: list[Case], weights: FloatArray) -> int:
    return sum(bool(case.right[int((case.features @ weights).argmax())]) for case in all_cases)


def report(all_cases: list[Case], weights: FloatArray) -> int:
    for case in all_cases:
        scores = case.features @ weights
        pick = int(scores.argmax())
        ok = bool(case.right[pick])
        reachable = "" if case.right.any() else "  (no level is right)"
        verdict = "ok" if ok else "WRONG"
        chose = case.bpms[pick]
        name, truth = case.piece.name, case.piece.tempo
        print(f"{name:34} truth {truth:6.1f}  chose {chose:6.1f}  {verdict:5}  F {case.f_measure:.3f}")
        if not ok:
            for i in np.argsort(-scores):
                marks = " ".join(f"{n}={v:+.2f}" for n, v in zip(case.names, case.features[i], strict=True))
                flag = "*" if case.right[i] else " "
                print(f"    {flag} {case.bpms[i]:6.1f} score {scores[i]:+.2f}  {marks}")
            print(reachable, end="\n" if reachable else "")
    correct = right_count(all_cases, weights)
    mean_f = np.mean([case.f_measure for case in all_cases])
    print(f"\nright level on {correct}/{len(all_cases)}; mean F of the tracker as it stands {mean_f:.3f}")
    return correct


def fit(all_cases: list[Case], penalty: float, scale: FloatArray) -> FloatArray:
    """Weights that make the right levels likely: a softmax over each piece's levels, L2 on standardised weights.

    Pieces where no level is right, or every level is, say nothing about the choice and are left out.
    """
    usable = [(c.features / scale, c.right) for c in all_cases if c.right.any() and not c.right.all()]

    def loss(w: FloatArray) -> tuple[float, FloatArray]:
        total, grad = penalty * float(w @ w), 2 * penalty * w
        for features, right in usable:
            scores = features @ w
            p = np.exp(scores - scores.max())
            p /= p.sum()
            p_right = float(p[right].sum())
            total -= np.log(max(p_right, 1e-300))
            grad -= (p * right / max(p_right, 1e-300) - p) @ features
        return total, grad

    result = minimize(loss, np.zeros(scale.size), jac=True, method="L-BFGS-B")
    standardised = np.asarray(result.x, dtype=np.float64)
    return standardised / scale


def fit_validated(tune: list[Case], variants: list[Case]) -> FloatArray:
    """The penalty that does best when each piece (with its variants) is left out of the fit, refitted on all.

    A piece's variants share its style and arrangement, so they are left out with it: scored
    on them, a penalty would be judged on pieces the fit has half seen.
    """
    cases = tune + variants
    scale = np.vstack([c.features for c in cases]).std(axis=0) + 1e-9
    groups = sorted({_origin(c) for c in cases})
    best_penalty, best_right = PENALTIES[0], -1
    for penalty in PENALTIES:
        right = 0
        for group in groups:
            weights = fit([c for c in cases if _origin(c) != group], penalty, scale)
            right += right_count([c for c in cases if _origin(c) == group], weights)
        print(f"penalty {penalty:5}: right on {right}/{len(cases)} left out")
        if right > best_right:
            best_penalty, best_right = penalty, right
    print(f"chosen penalty {best_penalty}; refitted on the tune half and its variants")
    return fit(cases, best_penalty, scale)


def _origin(case: Case) -> str:
    """The tune piece a case is, or is a variant of."""
    return case.piece.name.split(VARIANT_MARK)[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--split", default="tune", choices=["tune", "report", "variants", "all"])
    parser.add_argument("--only")
    parser.add_argument("--fit", action="store_true", help="fit on the tune half and its variants")
    args = parser.parse_args()
    weights = np.array(list(tracker._WEIGHTS.values()))
    if not args.fit:
        report(cases(args.split, args.only, variants=args.split in ("variants", "all")), weights)
        return 0
    tune, variants = cases("tune", args.only), cases("variants", args.only, variants=True)
    report(tune + variants, weights)
    fitted = fit_validated(tune, variants)
    print("\nfitted weights:", {n: round(float(w), 3) for n, w in zip(tracker._WEIGHTS, fitted, strict=True)})
    report(tune + variants, fitted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
