#!/usr/bin/env python3
"""The official RewardBench scores of given per-completion scores, computed
with the rewardbench package's own functions (the reference for
src/eval/rewardbench.cpp; docs/rewardbench.md).

    python tests/rewardbench_reference.py SCORES.json...     # the scores of each, one JSON line each
    python tests/rewardbench_reference.py --make-fixtures DIR  # random scores -> DIR/v{1,2}_scores.json

SCORES.json is {"version": "v1" | "v2", "examples": [{"subset": ..., "id": ...,
"num_correct": N (v2), "chosen": [score, ...], "rejected": [score, ...]}, ...]}:
scores in, scores out. Nothing here loads a dataset or runs a model.

What is the package's and what is written here:
  v1  per-subset accuracy: 1 when chosen > rejected, else 0, averaged per
      subset, as rewardbench/rewardbench.py and scripts/run_rm.py do inline
      (the package has no function for it); sections:
      rewardbench.utils.calculate_scores_per_section; sections, prior sets
      and the overall score: analysis.get_benchmark_results.
      get_average_over_rewardbench (the leaderboard's table code, shipped in
      the same wheel).
  v2  per-example best-of-n credit: rewardbench.utils.reroll_and_score_dataset;
      per-subset mean of that credit, as scripts/run_v2.py does inline; the
      Ties subset: rewardbench.utils.process_single_model; the overall
      score: the mean of the subset scores, as the dataset card of
      allenai/reward-bench-2 says the leaderboard computes it.
"""

import argparse
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import random
import sys
import types
import warnings


_PACKAGE = None


def load_package():
    """rewardbench.constants, rewardbench.utils and analysis.get_benchmark_results.

    `import rewardbench` runs the package's __init__, which imports every
    model wrapper in rewardbench/models; those need the transformers release
    the package was written against (4.51) and fail on the one installed
    here. So "rewardbench" is put in sys.modules as a bare package object
    whose __path__ is the installed folder: its submodules then load from the
    installed files as usual, without the __init__. The one heavy import
    left, rewardbench.models, is a stub holding REWARD_MODEL_CONFIG, the only
    name utils.py takes from it (used by load_model_config, never here).
    torch, datasets, transformers, fastchat and huggingface_hub are the real
    ones: utils.py builds datasets.Dataset objects in the functions used.
    """
    global _PACKAGE
    if _PACKAGE is not None:
        return _PACKAGE
    spec = importlib.util.find_spec("rewardbench")  # finds it without running it
    if spec is None or not spec.submodule_search_locations:
        sys.exit("rewardbench is not installed here (scripts/install-reference.sh)")
    root = list(spec.submodule_search_locations)[0]
    package = types.ModuleType("rewardbench")
    package.__path__ = [root]
    sys.modules["rewardbench"] = package
    models = types.ModuleType("rewardbench.models")
    models.REWARD_MODEL_CONFIG = {}
    sys.modules["rewardbench.models"] = models
    import rewardbench.constants as constants  # noqa: E402
    import rewardbench.utils as utils  # noqa: E402

    # The wheel ships analysis/ next to rewardbench/; load that copy by path
    # so that no other top-level "analysis" package can stand in for it.
    analysis_dir = os.path.join(os.path.dirname(root), "analysis")
    analysis = types.ModuleType("analysis")
    analysis.__path__ = [analysis_dir]
    sys.modules["analysis"] = analysis
    bench_spec = importlib.util.spec_from_file_location(
        "analysis.get_benchmark_results", os.path.join(analysis_dir, "get_benchmark_results.py")
    )
    bench = importlib.util.module_from_spec(bench_spec)
    sys.modules["analysis.get_benchmark_results"] = bench
    bench_spec.loader.exec_module(bench)
    _PACKAGE = (constants, utils, bench)
    return _PACKAGE


def versions():
    import numpy
    import pandas

    out = {"python": platform.python_version(), "numpy": numpy.__version__, "pandas": pandas.__version__}
    for name in ("rewardbench", "datasets"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def number(x):
    x = float(x)
    return x if math.isfinite(x) else None


PRIOR_SETS = ["anthropic_helpful", "anthropic_hhh", "shp", "summarize"]  # checked against the package below


def score_v1(examples, constants, utils, bench):
    import numpy as np
    import pandas as pd

    by_subset = {}
    for ex in examples:
        (chosen,) = ex["chosen"]
        (rejected,) = ex["rejected"]
        by_subset.setdefault(ex["subset"], []).append(1 if chosen > rejected else 0)
    metrics = {s: sum(r) / len(r) for s, r in by_subset.items()}

    per_section = utils.calculate_scores_per_section(constants.EXAMPLE_COUNTS, constants.SUBSET_MAPPING, metrics)

    # One leaderboard row: the core-set subsets in one frame, the prior sets
    # in the other (the leaderboard reads them from separate result files).
    core = {"model": "m", "model_type": "Seq. Classifier"}
    core.update({s: v for s, v in metrics.items() if s in constants.EXAMPLE_COUNTS})
    prefs = {"model": "m", "model_type": "Seq. Classifier"}
    prefs.update({s: metrics.get(s, np.nan) for s in PRIOR_SETS})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmean of no prior set at all
        table = bench.get_average_over_rewardbench(pd.DataFrame([core]), pd.DataFrame([prefs]))
    row = table.iloc[0]
    sections = {s: number(row[s]) for s in constants.SUBSET_MAPPING}
    return {
        "subsets": metrics,
        "sections": sections,
        "sections_calculate_scores_per_section": {s: number(v) for s, v in per_section.items()},
        "prior_sets": number(row["Prior Sets (0.5 weight)"]),
        "overall": number(row["average"]),
    }


def score_v2(examples, utils):
    import datasets
    import numpy as np
    from datasets import Dataset

    datasets.disable_progress_bars()

    # One row per completion, chosen first, as load_bon_dataset_v2 unrolls a
    # record; reroll_and_score_dataset folds them back by total_completions.
    rows = {"text": [], "scores": [], "subset": [], "id": []}
    total_completions, num_correct = [], []
    for ex in examples:
        completions = list(ex["chosen"]) + list(ex["rejected"])
        for k, score in enumerate(completions):
            rows["text"].append(f"completion {k}")
            rows["scores"].append(float(score))
            rows["subset"].append(ex["subset"])
            rows["id"].append(str(ex["id"]))
        total_completions.append(len(completions))
        num_correct.append(int(ex["num_correct"]))
    rerolled = utils.reroll_and_score_dataset(Dataset.from_dict(rows), total_completions, cols_to_combine=["text", "scores"])
    rerolled = rerolled.add_column("num_correct", num_correct)

    subsets = {}
    for subset in np.unique(rerolled["subset"]):
        part = rerolled.filter(lambda example: example["subset"] == subset)
        if subset.lower() == "ties":
            _, subsets[str(subset)] = utils.process_single_model(part)
        else:
            subsets[str(subset)] = sum(part["results"]) / len(part["results"])
    results = [float(x) for x in rerolled["results"]]
    return {
        "subsets": {s: number(v) for s, v in subsets.items()},
        "per_example_results": results,
        "overall": number(np.mean(list(subsets.values()))),
    }


def reference(data):
    constants, utils, bench = load_package()
    # The prior sets of the leaderboard's overall score, as the package has them.
    source = open(bench.__file__).read()
    assert all(f'"{s}"' in source for s in PRIOR_SETS), "the leaderboard's prior sets changed"
    if data["version"] == "v1":
        out = score_v1(data["examples"], constants, utils, bench)
        # The tables the scores came from, for the library's own to be checked against.
        out["constants"] = {
            "example_counts": constants.EXAMPLE_COUNTS,
            "subset_mapping": constants.SUBSET_MAPPING,
            "prior_sets": PRIOR_SETS,
        }
    else:
        out = score_v2(data["examples"], utils)
    return {"versions": versions(), "version": data["version"], **out}


# ---- random fixtures -----------------------------------------------------------


def random_score(rng):
    # Multiples of 1/8 in [-2, 2] (exact in float and double: no rounding on
    # either side) tie often; the finer ones spread the rest.
    return rng.randint(-16, 16) / 8 if rng.random() < 0.6 else rng.randint(-4096, 4096) / 1024


def make_v1(rng):
    constants, _, _ = load_package()
    subsets = [s for group in constants.SUBSET_MAPPING.values() for s in group]
    subsets += ["anthropic_helpful", "anthropic_hhh", "shp", "summarize", "anthropic_harmless", "mtbench_gpt4", "mtbench_human"]
    examples = []
    for subset in subsets:
        for _ in range(rng.randint(3, 12)):
            examples.append({"subset": subset, "id": len(examples), "chosen": [random_score(rng)], "rejected": [random_score(rng)]})
    return {"version": "v1", "examples": examples}


def make_v2(rng):
    examples = []
    for subset in ["Factuality", "Precise IF", "Math", "Safety", "Focus"]:
        for i in range(rng.randint(6, 14)):
            chosen = [random_score(rng)]
            if subset == "Focus" and i == 0:
                chosen.append(random_score(rng))  # only the first chosen counts outside Ties
            rejected = [random_score(rng) for _ in range(3)]
            if i == 1:
                rejected[1] = chosen[0] = 1.5  # a tie for the best: credit 1/2
            examples.append({"subset": subset, "id": str(len(examples)), "num_correct": len(chosen), "chosen": chosen, "rejected": rejected})
    # Ties: reference prompts with one correct answer, tied prompts with
    # several, mostly in pairs; a tied prompt without its reference and the
    # other way round; a tied prompt whose correct answers all score the same
    # (margin 0: left out of the margin term) and one with a single correct
    # answer (left out of the margin comparisons).
    for pid in range(12):
        if pid != 11:
            examples.append({"subset": "Ties", "id": f"ref:{pid}", "num_correct": 1, "chosen": [random_score(rng)], "rejected": [random_score(rng) for _ in range(rng.randint(1, 4))]})
        if pid != 10:
            n = 1 if pid == 9 else rng.randint(2, 6)
            chosen = [random_score(rng) for _ in range(n)]
            if pid == 8:
                chosen = [0.75] * n
            if pid < 4:
                chosen = [c + 3 for c in chosen]  # well separated: accurate, a positive margin ratio
            examples.append({"subset": "Ties", "id": f"tied:{pid}", "num_correct": n, "chosen": chosen, "rejected": [random_score(rng) for _ in range(rng.randint(1, 5))]})
    return {"version": "v2", "examples": examples}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scores", nargs="*", help="SCORES.json files")
    parser.add_argument("--make-fixtures", metavar="DIR", help="write random v1/v2 inputs with their reference scores")
    parser.add_argument("--seed", type=int, default=20240320)
    args = parser.parse_args()
    if args.make_fixtures:
        rng = random.Random(args.seed)
        for name, data in (("v1_scores.json", make_v1(rng)), ("v2_scores.json", make_v2(rng))):
            out = {"seed": args.seed, "input": data, "reference": reference(data)}
            with open(os.path.join(args.make_fixtures, name), "w") as f:
                json.dump(out, f, indent=1)
                f.write("\n")
        return
    if not args.scores:
        parser.error("give SCORES.json or --make-fixtures DIR")
    for path in args.scores:
        with open(path) as f:
            data = json.load(f)
        json.dump(reference(data), sys.stdout)
        sys.stdout.write("\n")


if __name__ == "__main__":
    main()
