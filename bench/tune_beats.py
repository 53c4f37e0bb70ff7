"""How the beat tracker's level choice was tuned: its features per candidate level, on the corpus' tune half.

For each piece of the chosen split, tracks beats at every candidate metrical level
(`track_levels`), marks the levels whose tempo is right (within 4% of the truth),
and prints each level's features and score, the level chosen and whether it is right.
``--fit`` fits the weights of `_level_score` for margin (see `fit`) and prints them.
Fit on the tune half only; `bench/beats.py` reports on the other.

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

from bench.beat_corpus import CorpusPiece, build_corpus
from services.analyzer.features import beats as tracker
from services.analyzer.features.analyze import onset_bands

FloatArray = npt.NDArray[np.float64]


@dataclass
class Case:
    piece: CorpusPiece
    names: list[str]
    features: FloatArray  # (levels, features)
    right: npt.NDArray[np.bool_]  # per level: tempo within 4%
    bpms: FloatArray
    f_measure: float  # of the whole tracker's beats, with the weights in beats.py


def cases(split: str, only: str | None) -> list[Case]:
    found: list[Case] = []
    for piece in build_corpus():
        if split != "all" and piece.split != split:
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


def report(all_cases: list[Case], weights: FloatArray) -> int:
    correct = 0
    for case in all_cases:
        scores = case.features @ weights
        pick = int(scores.argmax())
        ok = bool(case.right[pick])
        correct += ok
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
    mean_f = np.mean([case.f_measure for case in all_cases])
    print(f"\nright level on {correct}/{len(all_cases)}; mean F of the tracker as it stands {mean_f:.3f}")
    return correct


def fit(all_cases: list[Case], start: FloatArray) -> FloatArray:
    """Weights that put a right level on top for as many pieces as possible, by a wide margin.

    The loss per piece is a hinge on the margin between its best right level and its best wrong
    one (a count of mistakes made smooth), plus a little L2 shrinkage; Powell's method from the
    current weights and from a few perturbations of them, keeping the best.
    """
    usable = [c for c in all_cases if c.right.any() and not c.right.all()]

    def loss(w: FloatArray) -> float:
        total = 0.0
        for case in usable:
            s = case.features @ w
            total += max(0.0, 1.0 + float(s[~case.right].max()) - float(s[case.right].max()))
        return total + 0.01 * float(np.sum(w**2))

    rng = np.random.default_rng(0)
    best = start
    for attempt in range(6):
        begin = start if attempt == 0 else start * rng.uniform(0.5, 1.5, start.size)
        result = minimize(loss, begin, method="Powell", options={"maxiter": 20000, "xtol": 1e-3, "ftol": 1e-5})
        if loss(result.x) < loss(best):
            best = np.asarray(result.x, dtype=np.float64)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--split", default="tune", choices=["tune", "report", "all"])
    parser.add_argument("--only")
    parser.add_argument("--fit", action="store_true")
    args = parser.parse_args()
    all_cases = cases(args.split, args.only)
    weights = np.array(list(tracker._WEIGHTS.values()))
    report(all_cases, weights)
    if args.fit:
        fitted = fit(all_cases, weights)
        print("\nfitted weights:", {n: round(float(w), 3) for n, w in zip(tracker._WEIGHTS, fitted, strict=True)})
        report(all_cases, fitted)
    return 0


if __name__ == "__main__":
    sys.exit(main())
