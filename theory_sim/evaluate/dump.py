"""Score dumps: reading a reward-model evaluation into per-prompt arrays.

A dump holds, for each prompt, K responses (K may differ between prompts), one score per
response from each reward model, optionally a gold score or a 0/1 correctness label, and
optionally the policy's log-probability of each response. :func:`load_dump` reads it from a
tidy table (CSV, JSON Lines, Parquet or a pandas DataFrame, wide or long), from ``.npz`` / dicts
of [P, K] arrays, or from RewardBench 2 rows, and returns a :class:`Dump`: [P, K] arrays padded
to the largest K with a mask.

Tables are read with pandas (``pip install "theory_sim[evaluate]"``; Parquet through pyarrow).
Every problem with the input is an error naming the column and the first offending row, or an
exclusion that :class:`Dump` records and the report states: nothing is dropped silently.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

__all__ = ["Dump", "load_dump", "to_table"]

# column names understood without being passed
PROMPT, RESPONSE, MODEL, SCORE = "prompt_id", "response_id", "model", "score"
_TABLE_SUFFIXES = {".csv", ".jsonl", ".json", ".parquet", ".pq"}


@dataclasses.dataclass(frozen=True)
class Dump:
    """A score dump as arrays, one row per prompt, padded to the largest response count.

    Attributes:
        prompts: [P] prompt ids (strings), in order of first appearance.
        mask: [P, K] True where prompt p has a k-th response.
        scores: {model name: [P, K] float64}; 0 where ``mask`` is False.
        gold: [P, K] gold scores or 0/1 labels (0 where masked), or None.
        logprob: [P, K] the policy's log-probabilities (0 where masked), or None.
        excluded: (prompt id, reason) for every prompt left out (one response only).
        source: where the dump came from (a path or "arrays").
        ignored: columns left out because none of their values is a number (text).
    """

    prompts: np.ndarray
    mask: np.ndarray
    scores: dict
    gold: np.ndarray | None = None
    logprob: np.ndarray | None = None
    excluded: tuple = ()
    source: str = "arrays"
    ignored: tuple = ()

    @property
    def num_prompts(self) -> int:
        return int(self.mask.shape[0])

    @property
    def counts(self) -> np.ndarray:
        """[P] responses per prompt."""
        return self.mask.sum(axis=1)

    @property
    def models(self) -> list[str]:
        return list(self.scores)

    @property
    def gold_is_label(self) -> bool:
        """Whether every gold value is 0 or 1 (a correctness label)."""
        return self.gold is not None and bool(np.all(np.isin(self.gold[self.mask], (0.0, 1.0))))

    def weights(self) -> np.ndarray:
        """[P, K] the distribution each prompt's responses stand for: the self-normalised policy
        probabilities exp(logprob) / sum_k exp(logprob) over the prompt's responses when
        log-probabilities are given (the responses are then a fixed candidate set), else 1/K_p
        (the responses are samples from the policy). 0 where masked."""
        if self.logprob is None:
            return self.mask / self.counts[:, None]
        lp = np.where(self.mask, self.logprob, -np.inf)
        w = np.exp(lp - lp.max(axis=1, keepdims=True))
        return w / w.sum(axis=1, keepdims=True)


def _pandas():
    try:
        import pandas as pd
    except ImportError as err:  # pragma: no cover - the extra is installed with the tests
        raise ImportError(
            'Reading score tables needs pandas: pip install "theory_sim[evaluate]".'
        ) from err
    return pd


def _first_bad(values: np.ndarray, bad: np.ndarray, column: str, what: str) -> None:
    """Raise a ValueError naming ``column`` and the first row (0-based, after the header) where
    ``bad`` holds."""
    if np.any(bad):
        i = int(np.argmax(bad))
        value = values[i].item() if isinstance(values[i], np.generic) else values[i]
        raise ValueError(
            f"column {column!r}: {what}; first at row {i} (counting from 0 after the header; "
            f"value {value!r})."
        )


def _numeric(df, column: str) -> np.ndarray:
    pd = _pandas()
    raw = df[column].to_numpy()
    values = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=np.float64)
    _first_bad(raw, np.isnan(values) & pd.notna(df[column]).to_numpy(), column, "non-numeric value")
    _first_bad(raw, ~np.isfinite(values), column, "missing, NaN or infinite value")
    return values


def _require_columns(df, columns: list[str], role: dict) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        c = missing[0]
        raise ValueError(
            f"column {c!r} ({role.get(c, 'a score, `models`')}) is not in the dump; its "
            f"columns are {list(map(str, df.columns))}."
        )


def _read_table(path: Path):
    pd = _pandas()
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(path)
    if suffix in (".jsonl", ".json"):
        lines = suffix == ".jsonl" or path.read_text()[:1] != "["
        return pd.read_json(path, lines=lines, dtype=False)
    return pd.read_parquet(path)


def _from_npz(arrays, gold, logprob, source) -> Dump:
    """[P, K] arrays per model; ``gold`` and ``logprob`` name arrays among them. NaN marks a
    missing response (prompts may have fewer than K)."""
    arrays = {str(k): np.asarray(v) for k, v in dict(arrays).items()}
    for name, value in ((gold, "gold"), (logprob, "logprob")):
        if name is not None and name not in arrays:
            raise ValueError(
                f"array {name!r} (the {value} column) is not in the dump; it holds "
                f"{sorted(arrays)}."
            )
    if "prompt_ids" in arrays:
        prompts = arrays.pop("prompt_ids").astype(str)
    else:
        prompts = None
    models = [k for k in arrays if k not in (gold, logprob)]
    if not models:
        raise ValueError("the dump holds no score arrays (one [P, K] array per reward model).")
    shape = arrays[models[0]].shape
    for name, a in arrays.items():
        if a.ndim != 2 or a.shape != shape:
            raise ValueError(
                f"array {name!r} must be [P, K] with the shape {shape} of {models[0]!r}; got "
                f"{a.shape}."
            )
        if not np.issubdtype(a.dtype, np.number):
            raise ValueError(f"array {name!r} must be numeric; got dtype {a.dtype}.")
    mask = ~np.isnan(arrays[models[0]].astype(np.float64))
    if prompts is None:
        prompts = np.array([str(p) for p in range(shape[0])])
    for name, a in arrays.items():
        a = a.astype(np.float64)
        bad = np.isnan(a) != ~mask
        if np.any(bad):
            p, k = np.argwhere(bad)[0]
            raise ValueError(
                f"array {name!r}: its missing (NaN) entries differ from those of "
                f"{models[0]!r}; first at row {p}, response {k}."
            )
        _first_bad(a[mask], ~np.isfinite(a[mask]), name, "infinite value")
    take = {n: np.where(mask, arrays[n].astype(np.float64), 0.0) for n in arrays}
    return _finish(
        prompts, mask, {m: take[m] for m in models},
        take.get(gold), take.get(logprob), source, logprob,
    )  # fmt: skip


def _rewardbench_long(df):
    """RewardBench 2 rows (one per prompt, or per prompt and model): ``chosen`` and ``rejected``
    lists of completions, scores in ``scores_chosen`` / ``scores_rejected`` lists (or one
    ``scores`` list, chosen first) become one row per completion, gold label 1 for chosen."""
    pd = _pandas()
    prompt = "id" if "id" in df.columns else PROMPT if PROMPT in df.columns else "prompt"
    _require_columns(df, [prompt], {prompt: "the prompt id"})
    rows = []
    for i, rec in enumerate(df.to_dict("records")):
        chosen, rejected = list(rec["chosen"]), list(rec["rejected"])
        if "scores_chosen" in rec:
            scores = list(rec["scores_chosen"]) + list(rec["scores_rejected"])
        elif "scores" in rec:
            scores = list(rec["scores"])
        else:
            raise ValueError(
                "RewardBench 2 rows need `scores_chosen` and `scores_rejected` (or `scores`, "
                f"chosen first) lists; row {i} has columns {sorted(rec)}."
            )
        if len(scores) != len(chosen) + len(rejected):
            raise ValueError(
                f"row {i}: {len(scores)} scores for {len(chosen)} chosen and {len(rejected)} "
                "rejected completions."
            )
        model = rec.get(MODEL, "model")
        for k, s in enumerate(scores):
            rows.append((str(rec[prompt]), f"c{k}" if k < len(chosen) else f"r{k}",
                         model, s, 1.0 if k < len(chosen) else 0.0))  # fmt: skip
    return pd.DataFrame(rows, columns=[PROMPT, RESPONSE, MODEL, SCORE, "gold"])


def load_dump(
    source,
    *,
    gold: str | None = None,
    logprob: str | None = None,
    models: list[str] | None = None,
    prompt: str = PROMPT,
    response: str = RESPONSE,
    gold_labels: bool = False,
) -> Dump:
    """Read a score dump (arXiv 2503.15477's measures need, per prompt, several scored responses).

    Args:
        source: a path (``.csv``, ``.jsonl``, ``.json``, ``.parquet``, ``.npz``), a pandas
            DataFrame, or a dict of [P, K] arrays. Tables have one row per (prompt, response):
            wide, with one score column per reward model, or long, with ``model`` and ``score``
            columns. RewardBench 2 rows (``chosen`` and ``rejected`` lists with their scores)
            are recognised by their columns and get gold label 1 for chosen. ``.npz`` / dicts
            hold one [P, K] array per model (NaN for a missing response), optional
            ``prompt_ids``, and the gold and log-probability arrays named by ``gold`` and
            ``logprob``.
        gold: the gold score (or 0/1 label) column; "gold" when such a column exists and this is
            None.
        logprob: the column of the policy's log-probabilities (<= 0), if any; "logprob" when
            such a column exists and this is None.
        models: the score columns (wide tables). Default: every other column; a column none
            of whose values is a number (response text, say) is left out and listed in
            ``Dump.ignored``, and a column with some numbers and some not is an error.
        prompt, response: the id columns.
        gold_labels: the gold column holds 0/1 correctness labels: any other value is an error
            (without it, gold values that are all 0 or 1 are read as labels anyway).

    Returns:
        A :class:`Dump`. Prompts with a single response are excluded (no pair to compare, no
        spread) and listed in ``Dump.excluded``.

    Raises:
        ValueError: naming the column and the first offending row, for a missing column,
            a non-numeric, NaN or infinite score, a duplicate (prompt, response) row, a
            log-probability above 0, a gold label other than 0 or 1 (``gold_labels``), or a dump
            with no prompt of two responses.
    """
    for name, value in (("gold", gold), ("logprob", logprob)):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"`{name}` must be a column name or None; got {value!r}.")
    for name, value in (("prompt", prompt), ("response", response)):
        if not isinstance(value, str):
            raise ValueError(f"`{name}` must be a column name; got {value!r}.")
    if models is not None and (
        isinstance(models, str) or not all(isinstance(m, str) for m in np.atleast_1d(models))
    ):
        raise ValueError(f"`models` must be a list of column names or None; got {models!r}.")
    if not isinstance(gold_labels, bool):
        raise ValueError(f"`gold_labels` must be True or False; got {gold_labels!r}.")
    dump = _load(source, gold, logprob, models, prompt, response, gold_labels)
    if gold_labels:
        if dump.gold is None:
            raise ValueError(
                "`gold_labels` asks for 0/1 gold labels, but the dump has no gold column."
            )
        bad = dump.mask & ~np.isin(dump.gold, (0.0, 1.0))
        if np.any(bad):
            p, k = np.argwhere(bad)[0]
            raise ValueError(
                f"column {gold or 'gold'!r}: gold labels must be 0 or 1; first offending value "
                f"{float(dump.gold[p, k])!r} at prompt {dump.prompts[p]!r}, response {k}."
            )
    return dump


def _load(source, gold, logprob, models, prompt, response, gold_labels) -> Dump:
    if isinstance(source, dict):
        return _from_npz(source, gold, logprob, "arrays")
    pd = _pandas()
    label = "DataFrame"
    if isinstance(source, str | Path):
        path = Path(source)
        if not path.exists():
            raise ValueError(f"`source`: no such file {str(path)!r}.")
        suffix = path.suffix.lower()
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                return _from_npz(dict(data), gold, logprob, str(path))
        if suffix not in _TABLE_SUFFIXES:
            raise ValueError(
                f"`source` {str(path)!r}: expected a file ending in .csv, .jsonl, .json, "
                f".parquet or .npz; got {suffix or 'no suffix'!r}."
            )
        df, label = _read_table(path), str(path)
    elif isinstance(source, pd.DataFrame):
        df = source
    else:
        raise ValueError(
            f"`source` must be a path, a pandas DataFrame or a dict of arrays; got "
            f"{type(source).__name__}."
        )
    if {"chosen", "rejected"} <= set(df.columns):
        df = _rewardbench_long(df)
        gold = gold or "gold"
    if gold is None and "gold" in df.columns:
        gold = "gold"
    if logprob is None and "logprob" in df.columns:
        logprob = "logprob"
    role = {prompt: "the prompt id, `prompt`", response: "the response id, `response`",
            gold: "the gold score, `gold`", logprob: "the log-probability, `logprob`"}  # fmt: skip
    long = MODEL in df.columns and SCORE in df.columns and models is None
    _require_columns(df, [prompt, response] + [c for c in (gold, logprob) if c], role)
    keys = [prompt, response] + ([MODEL] if long else [])
    dup = df.duplicated(subset=keys, keep="first").to_numpy()
    if np.any(dup):
        i = int(np.argmax(dup))
        raise ValueError(
            f"columns {keys}: duplicate row {i} (prompt {df[prompt].iloc[i]!r}, response "
            f"{df[response].iloc[i]!r}) repeats an earlier one."
        )
    ignored = []
    if long:
        _numeric(df, SCORE)
        extra = [c for c in (gold, logprob) if c]
        wide = df.pivot(index=[prompt, response], columns=MODEL, values=SCORE)
        if wide.isna().any().any():
            bad = wide.isna().to_numpy()
            i, j = np.argwhere(bad)[0]
            model = wide.columns[j]
            raise ValueError(
                f"column {SCORE!r}: model {model!r} has no score for prompt "
                f"{wide.index[i][0]!r}, response {wide.index[i][1]!r}."
            )
        if extra:
            first = df.drop_duplicates(subset=[prompt, response]).set_index([prompt, response])
            wide = wide.join(first[extra])
        df = wide.reset_index()
        models = [str(m) for m in df.columns if m not in (prompt, response, *extra)]
        df.columns = [str(c) for c in df.columns]
    elif models is None:
        skip = {prompt, response, gold, logprob}
        rest = [c for c in df.columns if c not in skip]
        ignored = [c for c in rest if not pd.api.types.is_numeric_dtype(df[c])
                   and pd.to_numeric(df[c], errors="coerce").isna().all()]  # fmt: skip
        models = [c for c in rest if c not in ignored]
        if not models:
            raise ValueError(
                "the dump has no numeric score column besides the ids, gold and log-probability "
                f"columns; its columns are {list(map(str, df.columns))}."
            )
    _require_columns(df, list(models), role)
    values = {m: _numeric(df, m) for m in models}
    gold_values = _numeric(df, gold) if gold else None
    if gold_labels and gold_values is not None:
        bad = ~np.isin(gold_values, (0.0, 1.0))
        _first_bad(gold_values, bad, gold, "gold label other than 0 or 1")
    lp_values = _numeric(df, logprob) if logprob else None
    if lp_values is not None:
        _first_bad(lp_values, lp_values > 0, logprob, "log-probability above 0")
    codes, prompts = pd.factorize(df[prompt].astype(str), sort=False)
    order = np.argsort(codes, kind="stable")  # rows of each prompt together, in file order
    row_of = codes[order]
    counts = np.bincount(codes, minlength=len(prompts))
    slot = np.arange(len(codes)) - (np.cumsum(counts) - counts)[row_of]
    mask = np.zeros((len(prompts), int(counts.max())), dtype=bool)
    mask[row_of, slot] = True

    def grid(v):
        out = np.zeros(mask.shape)
        out[row_of, slot] = v[order]
        return out

    dump = _finish(
        np.asarray(prompts, dtype=str), mask, {str(m): grid(values[m]) for m in models},
        None if gold_values is None else grid(gold_values),
        None if lp_values is None else grid(lp_values), label, logprob,
    )  # fmt: skip
    return dataclasses.replace(dump, ignored=tuple(map(str, ignored)))


def _finish(prompts, mask, scores, gold, logprob, source, logprob_name) -> Dump:
    """Exclude prompts with fewer than two responses (counted), check log-probabilities."""
    if logprob is not None:
        bad = mask & (logprob > 0)
        if np.any(bad):
            p, k = np.argwhere(bad)[0]
            raise ValueError(
                f"column {logprob_name!r}: log-probability above 0; first at prompt "
                f"{prompts[p]!r}, response {k} (value {float(logprob[p, k])!r})."
            )
    # each prompt's responses packed to the left, in their order
    pack = np.argsort(~mask, axis=1, kind="stable")
    mask = np.take_along_axis(mask, pack, axis=1)
    scores = {m: np.take_along_axis(s, pack, axis=1) for m, s in scores.items()}
    gold, logprob = (None if a is None else np.take_along_axis(a, pack, axis=1)
                     for a in (gold, logprob))  # fmt: skip
    keep = mask.sum(axis=1) >= 2
    excluded = tuple((str(p), "one response") for p in prompts[~keep])
    if not np.any(keep):
        raise ValueError(
            "no prompt has two or more responses: the measures compare responses within a prompt."
        )
    width = int(mask[keep].sum(axis=1).max())
    cut = (slice(None), slice(0, width))
    sub = lambda a: None if a is None else a[keep][cut]  # noqa: E731
    return Dump(
        prompts=prompts[keep],
        mask=mask[keep][cut],
        scores={m: s[keep][cut] for m, s in scores.items()},
        gold=sub(gold),
        logprob=sub(logprob),
        excluded=excluded,
        source=source,
    )


def to_table(dump: Dump, *, long: bool = False):
    """The dump as a tidy pandas DataFrame, one row per (prompt, response): ``prompt_id``,
    ``response_id`` (the response's position), ``gold`` and ``logprob`` when present, and one
    score column per model (``long``: ``model`` and ``score`` columns instead). :func:`load_dump`
    reads it back."""
    pd = _pandas()
    p, k = np.nonzero(dump.mask)
    frame = {PROMPT: dump.prompts[p], RESPONSE: k}
    if dump.gold is not None:
        frame["gold"] = dump.gold[p, k]
    if dump.logprob is not None:
        frame["logprob"] = dump.logprob[p, k]
    if not long:
        return pd.DataFrame({**frame, **{m: s[p, k] for m, s in dump.scores.items()}})
    parts = [pd.DataFrame({**frame, MODEL: m, SCORE: s[p, k]}) for m, s in dump.scores.items()]
    return pd.concat(parts, ignore_index=True)
