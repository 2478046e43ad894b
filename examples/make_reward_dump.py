"""Write examples/reward_dump.csv: a small score dump sampled from a seeded world, the input of
`theory-sim evaluate` in the README.

The world is the tabular Section 4.1 world of arXiv 2503.15477 (theory_sim.evaluate.worlds):
40 prompts, 64 outputs, the five Bradley-Terry reward models and the accurate low-variance one;
12 responses per prompt are drawn from pi_0 and scored by every model and the gold reward. One
prompt keeps a single response, so the report shows an exclusion.

Run: python examples/make_reward_dump.py
"""

from pathlib import Path

import numpy as np

from theory_sim.evaluate import worlds
from theory_sim.evaluate.dump import to_table

OUT = Path(__file__).resolve().parent / "reward_dump.csv"


def main() -> None:
    world = worlds.section_4_1(seed=0, num_prompts=40, num_outputs=64)
    table = to_table(world.sample(12, seed=0))
    single = table["prompt_id"] == "39"
    table = table[~single | (table["response_id"] == 0)]  # prompt 39: one response
    names = {m: m.replace("% on-policy", "pct_on").replace(" ", "_").replace(",", "")
             for m in world.models}  # fmt: skip
    table = table.rename(columns=names)
    table.to_csv(OUT, index=False, float_format="%.6g")
    print(f"wrote {OUT} ({len(table)} rows, models {', '.join(names.values())})")
    assert np.all(np.isfinite(table.select_dtypes("number").to_numpy()))


if __name__ == "__main__":
    main()
