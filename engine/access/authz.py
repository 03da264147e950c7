"""Authorization: who may do which action in which domain (Casbin, RBAC with domains).

The model and the ``p`` rows come from the pack's ``policies/`` (``model.conf``,
``policy.csv``); the ``g`` rows (principal → role in domain) come from the
principals table. A domain is ``<district>/<unit code>``; a role granted in
``gulou/*`` covers every unit of the district (``keyMatch`` on domains).

Decisions are cached per ``(subject, domain, action)`` in a bounded dict and the
cache is dropped whenever policies change. The Casbin matcher is parsed once per
enforcer instead of on every ``enforce()`` (pycasbin re-parses it per call), and
the role manager's default name-matching function is removed (it adds nothing
here and makes building each domain's lookup quadratic) — see
``shared/notes/casbin.md``.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import casbin
from casbin.util import key_match

from govflow.engine.model.errors import PackIssue

logging.getLogger("casbin").setLevel(logging.ERROR)

_CACHE_LIMIT = 200_000


class _ParsedOnceEnforcer(casbin.Enforcer):
    """pycasbin Enforcer that parses each matcher expression once."""

    def _get_expression(self, expr, functions=None):
        cache = self.__dict__.setdefault("_expr_cache", {})
        parsed = cache.get(expr)
        if parsed is None:
            parsed = cache[expr] = casbin.Enforcer._get_expression(expr, functions)
        elif functions:
            parsed.functions.update(functions)  # role managers are rebuilt on reload
        return parsed


@dataclass(frozen=True)
class Grant:
    """A role held by a principal in a domain (a Casbin ``g`` row)."""

    subject: str
    role: str
    domain: str


def parse_policy_rows(text: str, filename: str = "policies/policy.csv") -> tuple[list[list[str]], list[PackIssue]]:
    rows: list[list[str]] = []
    issues: list[PackIssue] = []
    for lineno, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#"):
            continue  # a blank line or a comment; a row with an empty first cell is reported below
        if cells[0] != "p":
            issues.append(
                PackIssue(
                    filename,
                    f"only 'p' rows belong in the pack policy (grants come from principals), got {cells[0]!r}",
                    line=lineno,
                )
            )
            continue
        if len(cells) != 4 or not all(cells[1:]):
            issues.append(PackIssue(filename, "a policy row is: p, role, domain pattern, action", line=lineno))
            continue
        rows.append(cells[1:])
    return rows, issues


class Authorizer:
    """The real Casbin enforcer with a decision cache; one per process and pack version.

    Ordinary actions use ``r = sub, dom, act``. When the model also defines
    ``r2/p2/m2`` it decides call-out powers (呼叫权): ``r2 = dom, cat, unit, now``
    against delegation rows ``p2 = dom, cat, unit, until, id``, with the pack's
    responsibility list reachable from the matcher as ``responsible(cat, dom, unit)``
    (kept out of Casbin's rows: see ``shared/notes/casbin.md``).
    """

    def __init__(
        self,
        model_text: str,
        policy_rows: Iterable[list[str]],
        grants: Iterable[Grant] = (),
        responsible: Callable[[str, str, str], bool] | None = None,
    ) -> None:
        model = casbin.Enforcer.new_model(text=model_text)
        self._enforcer = _ParsedOnceEnforcer(model)
        self.call_outs = "r" in model.keys() and "r2" in model["r"]
        if self.call_outs:
            self._enforcer.add_function("responsible", responsible or (lambda *_: False))
        self._call_cache: dict[tuple[str, str, str], tuple[bool, str, list[str]]] = {}
        self._enforcer.add_named_domain_matching_func("g", key_match)
        for rm in self._enforcer.rm_map.values():
            rm.matching_func = None
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str, str], bool] = {}
        self._explained: dict[tuple[str, str, str], list[str]] = {}
        rows = [list(r) for r in policy_rows]
        if rows:
            self._enforcer.add_policies(rows)
        self.set_grants(grants)

    @classmethod
    def check_model(
        cls, model_text: str, rows: list[list[str]], filename: str = "policies/model.conf"
    ) -> list[PackIssue]:
        """Load the model and rows once; report anything Casbin refuses.

        A model with call-out sections is exercised too (a delegation row, then a call-out
        decision): a broken ``m2`` or ``p2`` would otherwise only fail at the first call-out. A
        matcher calling an unknown function is refused as well (Casbin evaluates lazily: a call
        behind a false condition would only fail on the first request that reaches it)."""
        try:
            authz = cls(model_text, rows)
            model = authz._enforcer.model
            known = set(authz._enforcer.fm.get_functions()) | set(model["g"] if "g" in model.keys() else ())
            for key, matcher in (model["m"] if "m" in model.keys() else {}).items():
                for name in re.findall(r"([A-Za-z_]\w*)\s*\(", matcher.value):
                    if name not in known:
                        raise ValueError(f"matcher {key} calls an unknown function {name!r}")
            authz.allowed("nobody", "x/y", "nothing")
            if authz.call_outs:
                authz.set_delegations([("x/y", "nothing", "nobody", "1970-01-01T00:00:00Z", "0")])
                authz.may_call_out("x/y", "nothing", "nobody", "1970-01-01T00:00:00Z")
        except Exception as exc:  # casbin raises assorted errors for bad models
            return [PackIssue(filename, f"the Casbin model or policy does not load: {exc}")]
        return []

    def set_grants(self, grants: Iterable[Grant]) -> None:
        """Replace all ``g`` rows (principals' roles) and drop cached decisions."""
        with self._lock:
            # a copy: pycasbin hands out its own list, and removing rows from the list being
            # removed skips every other row (and the role links of the rest are never deleted)
            current = [list(r) for r in self._enforcer.get_named_grouping_policy("g")]
            if current:
                self._enforcer.remove_named_grouping_policies("g", current)
            rows = sorted({(g.subject, g.role, g.domain) for g in grants})
            if rows:
                self._enforcer.add_named_grouping_policies("g", [list(r) for r in rows])
            self._cache.clear()
            self._explained.clear()

    def allowed(self, subject: str, domain: str, action: str) -> bool:
        key = (subject, domain, action)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        with self._lock:
            result = bool(self._enforcer.enforce(subject, domain, action))
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = result
        return result

    # -- call-out powers -------------------------------------------------------
    def set_delegations(self, rows: Iterable[tuple[str, str, str, str, str]]) -> None:
        """Replace the delegation rows (``p2``: domain, matter pattern, unit, until, id)."""
        if not self.call_outs:
            return
        with self._lock:
            current = [list(r) for r in self._enforcer.get_named_policy("p2")]  # a copy, as in set_grants
            if current:
                self._enforcer.remove_named_policies("p2", current)
            listed = [list(r) for r in rows]
            if listed:
                self._enforcer.add_named_policies("p2", listed)
            self._call_cache.clear()

    def may_call_out(self, domain: str, matter: str, unit: str, now: str) -> tuple[bool, list[str]]:
        """Whether a street (``domain``) may call out ``unit`` for ``matter`` at ``now`` (ISO ``Z``).

        Returns the decision and the delegation row that allowed it (empty when the
        responsibility list did, or when denied). Cached until the row's expiry.
        """
        if not self.call_outs:
            return False, []
        key = (domain, matter, unit)
        hit = self._call_cache.get(key)
        if hit is not None and now < hit[1]:
            return hit[0], list(hit[2])  # a copy: the caller cannot change the cached row
        with self._lock:
            context = self._enforcer.new_enforce_context("2")
            allowed, row = self._enforcer.enforce_ex(context, domain, matter, unit, now)
            row = list(row)
            if allowed and row and not self._responsible(matter, domain, unit):
                valid_until = row[3]  # a delegation: only until it expires
            else:
                valid_until = "9999"
                row = [] if allowed else row
            if len(self._call_cache) >= _CACHE_LIMIT:
                self._call_cache.clear()
            self._call_cache[key] = (bool(allowed), valid_until, row)
        return bool(allowed), list(row)

    def _responsible(self, matter: str, domain: str, unit: str) -> bool:
        fn = self._enforcer.fm.get_functions().get("responsible")
        return bool(fn and fn(matter, domain, unit))

    def explain(self, subject: str, domain: str, action: str) -> list[str]:
        """The policy row that allowed a request (empty if denied); cached like decisions."""
        key = (subject, domain, action)
        hit = self._explained.get(key)
        if hit is not None:
            return list(hit)  # a copy: the caller cannot change the cached row
        with self._lock:
            _, rule = self._enforcer.enforce_ex(subject, domain, action)
            if len(self._explained) >= _CACHE_LIMIT:
                self._explained.clear()
            self._explained[key] = list(rule)
        return list(rule)
