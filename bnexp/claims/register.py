"""Claims fixed before their results: the register a sweep directory keeps in sweep.json.

A claim judged on results its author had already seen is a hypothesis fitted to them,
not a test of it. So a sweep directory records each claim the first time it sees it:
its text, a hash of its definition (everything but the prose `claim` and `source`), the
time, and how many runs of its two sides already had a result. Then:

- a claim registered after any of its runs finished is `post hoc`, in every output;
- a claim removed from the sweep file stays, `withdrawn`, with the verdict it had then;
- a changed definition is a new claim, and the earlier version is withdrawn;
- the Holm family is every claim ever registered in the directory, withdrawn ones
  included, so removing a claim can never shrink it (and never lower the others' p);
- `--check` (bnexp.claims.check_exit_code) fails on a claim that does not hold, on a withdrawn
  claim that was or is contradicted, and on a post-hoc claim unless it also holds on
  fresh seeds: seeds none of whose runs of its sides had finished when it was
  registered (added with `--seeds`), judged as a family of one, a confirmatory test.

Pure bookkeeping over `bnexp.claims.Expect`: no files (bnexp.sweep.manifest reads and writes
sweep.json), no SciPy.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from bnexp.claims.schema import Expect

PROSE = ("claim", "source")  # wording, not definition: rewording a claim does not change its test
ACTIVE, WITHDRAWN = "active", "withdrawn"


def definition_hash(entry: Expect) -> str:
    """SHA-256 (first 16 hex digits) of the claim's definition as canonical JSON."""
    definition = {k: v for k, v in entry.model_dump(mode="json").items() if k not in PROSE}
    return hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Registered:
    """One claim as the directory registered it."""

    name: str
    claim: str
    hash: str
    definition: dict  # Expect.model_dump(mode="json", exclude_unset=True): enough to judge it again once withdrawn
    registered_at: str | None  # None: registered before bnexp kept a register (unknown)
    finished_at_registration: int | None  # runs of its two sides with a result then
    seeds_seen: tuple[int, ...]  # seeds of those runs: not fresh for a confirmatory test
    post_hoc: bool
    status: str = ACTIVE
    withdrawn_at: str | None = None
    withdrawn_verdict: str | None = None  # its verdict when it was withdrawn

    @property
    def entry(self) -> Expect:
        return Expect.model_validate(self.definition)

    def to_json(self) -> dict:
        out = asdict(self)
        out["seeds_seen"] = list(self.seeds_seen)
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> "Registered":
        return cls(**{**raw, "seeds_seen": tuple(raw.get("seeds_seen") or ())})


def register(previous: Sequence[Registered], claims: Sequence[Expect],
             seen: Callable[[Expect], tuple[int, list[int]]], now: str,
             last_verdicts: Mapping[str, str]) -> list[Registered]:
    """The register after the sweep file's `claims`: earlier entries first, in their order.

    `seen(entry)` gives (runs of its sides with a result, their seeds) now; `last_verdicts`
    maps a hash to the verdict sweep.json last recorded for it. A file claim already
    registered (same hash) keeps its registration and is active; a new one is appended;
    an active entry the file no longer has is withdrawn with its last verdict.
    """
    in_file = {definition_hash(e): e for e in claims}
    out = []
    for r in previous:
        if r.hash in in_file:
            out.append(replace(r, claim=in_file[r.hash].claim, status=ACTIVE))
        elif r.status == ACTIVE:
            out.append(replace(r, status=WITHDRAWN, withdrawn_at=now, withdrawn_verdict=last_verdicts.get(r.hash)))
        else:
            out.append(r)
    known = {r.hash for r in previous}
    for h, entry in in_file.items():
        if h not in known:
            finished, seeds = seen(entry)
            out.append(Registered(entry.name, entry.claim, h, entry.model_dump(mode="json", exclude_unset=True), now, finished,
                                  tuple(sorted(seeds)), finished > 0))
    return out


def from_expect(claims: Sequence[Expect]) -> list[Registered]:
    """The register of a sweep.json written before registers were kept: its claims, with
    their registration unknown (neither time nor post hoc can be told any more)."""
    return [Registered(e.name, e.claim, definition_hash(e), e.model_dump(mode="json", exclude_unset=True), None, None, (), False)
            for e in claims]


def annotate(result: dict, r: Registered, fresh: dict | None) -> dict:
    """A claims result (bnexp.claims.judge_entries' dict) with its registration; `fresh` is the
    claim judged on fresh seeds alone (post hoc only), or None."""
    notes = list(result["notes"])
    if r.post_hoc:
        notes.append(f"post hoc: registered at {r.registered_at}, after {r.finished_at_registration} of its runs"
                     " had a result" + (f"; on fresh seeds alone it {fresh['verdict']}" if fresh
                                        else "; --check passes it only on fresh seeds (add them with --seeds)"))
    if r.status == WITHDRAWN:
        notes.append(f"withdrawn at {r.withdrawn_at} (removed from the sweep file or redefined);"
                     f" its verdict then: {r.withdrawn_verdict or 'none recorded'}; still in the Holm family")
    return {**result, "notes": notes, "status": r.status, "post_hoc": r.post_hoc, "hash": r.hash,
            "registered_at": r.registered_at, "finished_at_registration": r.finished_at_registration,
            "withdrawn_verdict": r.withdrawn_verdict,
            "fresh_verdict": fresh["verdict"] if fresh else None,
            "fresh_seeds": fresh["seeds"] if fresh else None}


def fresh_seeds(r: Registered, seeds: Sequence[int]) -> list[int]:
    """The seeds none of whose runs of this claim's sides had finished when it was registered."""
    return [s for s in seeds if s not in set(r.seeds_seen)]
