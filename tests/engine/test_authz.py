"""The Casbin authorizer on its own: role decisions per subject, domain and action; call-out powers
per street, matter and unit and time; what its caches may and may not remember; and the loud
refusal of malformed policy rows and models. (Decisions through the engine's commands are covered by
the case, API and Gherkin tests; here each rule is pinned where it is decided.)"""

from __future__ import annotations

import logging

import pytest

from govflow.engine.access import authz as authz_module
from govflow.engine.access.authz import Authorizer, Grant, parse_policy_rows
from govflow.settings import REFERENCE_PACK

MODEL = (REFERENCE_PACK / "policies" / "model.conf").read_text(encoding="utf-8")
#: the same RBAC model without the call-out sections (r2, p2, e2, m2)
PLAIN_MODEL = "\n".join(
    line for line in MODEL.splitlines() if not line.startswith(("r2 ", "p2 ", "e2 ", "m2 ", "r2=", "m2="))
)
ROWS = [
    ["street_dispatcher", "gulou/*", "sign_for"],
    ["street_dispatcher", "gulou/*", "read_case"],
    ["department_handler", "gulou/*", "read_case"],
    ["command_centre", "*", "dispatch"],
]
LI = Grant("li", "street_dispatcher", "gulou/gulou.dongjie")
WANG = Grant("wang", "street_dispatcher", "gulou/gulou.nanjie")
CHEN = Grant("chen", "command_centre", "*")

DONGJIE, NANJIE, TAIJIANG = "gulou/gulou.dongjie", "gulou/gulou.nanjie", "taijiang/taijiang.chazhong"
BEFORE, UNTIL, AFTER = "2026-10-01T00:00:00.000000Z", "2026-11-01T00:00:00.000000Z", "2026-12-01T00:00:00.000000Z"
#: a delegation: Dongjie may call out the housing bureau for road matters until UNTIL
DELEGATION = (DONGJIE, "road.*", "gulou.housing", UNTIL, "17")


def responsible(matter: str, domain: str, unit: str) -> bool:
    """The responsibility list: the roads bureau answers for road matters everywhere in Gulou."""
    return matter.startswith("road.") and domain.startswith("gulou/") and unit == "gulou.roads"


@pytest.fixture
def authz() -> Authorizer:
    return Authorizer(MODEL, ROWS, [LI, WANG, CHEN], responsible=responsible)


class Calls:
    """Counts the decisions Casbin makes (to tell a cached answer from a fresh one)."""

    def __init__(self, authz: Authorizer) -> None:
        self.made = 0
        enforcer = authz._enforcer
        real = enforcer.enforce_ex  # enforce() calls it too

        def enforce_ex(*args):
            self.made += 1
            return real(*args)

        enforcer.enforce_ex = enforce_ex


# -- role decisions --------------------------------------------------------------------------
def test_a_role_in_a_district_pattern_covers_its_streets_only(authz):
    assert authz.allowed("li", DONGJIE, "sign_for") is True
    assert authz.allowed("li", NANJIE, "sign_for") is False  # granted in Dongjie only
    assert authz.allowed("li", DONGJIE, "dispatch") is False
    assert authz.allowed("chen", TAIJIANG, "dispatch") is True  # "*" covers every district
    assert authz.allowed("nobody", DONGJIE, "sign_for") is False


def test_a_grant_on_a_district_pattern_covers_every_street_of_it():
    authz = Authorizer(MODEL, ROWS, [Grant("zhou", "street_dispatcher", "gulou/*")])
    assert authz.allowed("zhou", DONGJIE, "sign_for") is True
    assert authz.allowed("zhou", NANJIE, "read_case") is True
    assert authz.allowed("zhou", TAIJIANG, "read_case") is False


@pytest.mark.parametrize(
    "first, second",
    [
        (("li", DONGJIE, "sign_for"), ("li", NANJIE, "sign_for")),  # same subject and action, other street
        (("li", DONGJIE, "sign_for"), ("wang", DONGJIE, "sign_for")),  # same street and action, other subject
        (("li", DONGJIE, "sign_for"), ("li", DONGJIE, "dispatch")),  # same subject and street, other action
    ],
)
def test_decisions_are_cached_per_subject_domain_and_action(authz, first, second):
    for _ in range(2):  # the second round answers from the cache
        assert authz.allowed(*first) is True
        assert authz.allowed(*second) is False
        assert authz.explain(*first) == ["street_dispatcher", "gulou/*", "sign_for"]
        assert authz.explain(*second) == []


def test_the_authorizer_keeps_its_own_copy_of_the_policy_rows():
    rows = [list(r) for r in ROWS]
    authz = Authorizer(MODEL, rows, [LI])
    rows[0][2] = "dispatch"  # the caller changing its rows afterwards changes nothing
    rows[0][1] = "*"
    assert authz.allowed("li", DONGJIE, "sign_for") is True
    assert authz.allowed("li", DONGJIE, "dispatch") is False
    assert authz.explain("li", DONGJIE, "sign_for") == ["street_dispatcher", "gulou/*", "sign_for"]


def test_a_cached_refusal_stays_a_refusal(authz):
    calls = Calls(authz)
    assert authz.allowed("wang", DONGJIE, "sign_for") is False
    assert authz.allowed("wang", DONGJIE, "sign_for") is False  # from the cache, still exactly False
    assert calls.made == 1
    assert authz.explain("wang", DONGJIE, "sign_for") == []
    assert authz.explain("wang", DONGJIE, "sign_for") == []


def test_repeated_decisions_come_from_the_cache(authz):
    calls = Calls(authz)
    for _ in range(3):
        assert authz.allowed("li", DONGJIE, "sign_for") is True
        assert authz.allowed("li", NANJIE, "sign_for") is False
        assert authz.explain("li", DONGJIE, "sign_for") == ["street_dispatcher", "gulou/*", "sign_for"]
        assert authz.explain("li", NANJIE, "sign_for") == []
    assert calls.made == 4


def test_the_decision_cache_is_bounded(authz, monkeypatch):
    monkeypatch.setattr(authz_module, "_CACHE_LIMIT", 2)
    calls = Calls(authz)
    for action in ("sign_for", "read_case", "dispatch"):  # the third decision finds the cache full
        authz.allowed("li", DONGJIE, action)
        authz.explain("li", DONGJIE, action)
    assert calls.made == 6
    authz.allowed("li", DONGJIE, "sign_for")  # dropped with the rest when the cache was full
    authz.explain("li", DONGJIE, "sign_for")
    assert calls.made == 8
    authz.allowed("li", DONGJIE, "sign_for")  # and cached again
    authz.explain("li", DONGJIE, "sign_for")
    assert calls.made == 8


def test_explain_hands_out_copies(authz):
    for _ in range(3):  # first answer, cached answer, cached answer again
        rule = authz.explain("li", DONGJIE, "sign_for")
        assert rule == ["street_dispatcher", "gulou/*", "sign_for"]
        rule[2] = "dispatch"  # a caller changing its copy changes neither the cache nor the policy
    assert authz.allowed("wang", NANJIE, "sign_for") is True
    assert authz.allowed("wang", NANJIE, "dispatch") is False


def test_a_revoked_role_stops_working_at_once(authz):
    assert authz.allowed("li", DONGJIE, "sign_for") is True
    assert authz.explain("li", DONGJIE, "sign_for") != []
    authz.set_grants([WANG, CHEN])  # li's grant is gone
    assert authz.allowed("li", DONGJIE, "sign_for") is False
    assert authz.explain("li", DONGJIE, "sign_for") == []
    assert authz.allowed("wang", NANJIE, "sign_for") is True  # the others keep theirs
    authz.set_grants([])
    assert authz.allowed("wang", NANJIE, "sign_for") is False
    assert authz.allowed("chen", TAIJIANG, "dispatch") is False


def test_a_new_grant_works_at_once(authz):
    assert authz.allowed("zhou", NANJIE, "read_case") is False
    assert authz.explain("zhou", NANJIE, "read_case") == []
    authz.set_grants([LI, WANG, CHEN, Grant("zhou", "department_handler", "gulou/*")])
    assert authz.allowed("zhou", NANJIE, "read_case") is True
    assert authz.explain("zhou", NANJIE, "read_case") == ["department_handler", "gulou/*", "read_case"]
    assert authz.allowed("zhou", NANJIE, "sign_for") is False  # the role, not another one


def test_revoking_several_grants_revokes_every_one(authz):
    authz.set_grants([LI, WANG, CHEN])
    authz.set_grants([WANG])
    assert authz._enforcer.get_named_grouping_policy("g") == [["wang", "street_dispatcher", "gulou/gulou.nanjie"]]
    assert authz.allowed("li", DONGJIE, "sign_for") is False
    assert authz.allowed("chen", TAIJIANG, "dispatch") is False
    authz.set_grants([])
    assert authz._enforcer.get_named_grouping_policy("g") == []
    assert authz.allowed("wang", NANJIE, "sign_for") is False


def test_grants_given_twice_count_once_and_revoke_at_once(authz):
    authz.set_grants([LI, LI, WANG])
    assert authz.allowed("li", DONGJIE, "sign_for") is True
    authz.set_grants([WANG])
    assert authz.allowed("li", DONGJIE, "sign_for") is False


# -- call-out powers ---------------------------------------------------------------------------
def test_the_responsibility_list_gives_the_power_without_a_row(authz):
    assert authz.may_call_out(DONGJIE, "road.pothole", "gulou.roads", BEFORE) == (True, [])
    assert authz.may_call_out(TAIJIANG, "road.pothole", "gulou.roads", BEFORE) == (False, [])
    assert authz.may_call_out(DONGJIE, "water.leak", "gulou.roads", BEFORE) == (False, [])


def test_a_delegation_gives_the_power_until_it_expires(authz):
    authz.set_delegations([DELEGATION])
    assert authz.may_call_out(DONGJIE, "road.pothole", "gulou.housing", BEFORE) == (True, list(DELEGATION))
    assert authz.may_call_out(DONGJIE, "road.pothole", "gulou.housing", UNTIL) == (False, [])  # the exact instant
    assert authz.may_call_out(DONGJIE, "road.pothole", "gulou.housing", AFTER) == (False, [])


def test_a_delegation_is_refused_at_its_exact_expiry_without_the_cache():
    authz = Authorizer(MODEL, ROWS, responsible=responsible)
    authz.set_delegations([DELEGATION])
    assert authz.may_call_out(DONGJIE, "road.pothole", "gulou.housing", UNTIL) == (False, [])


def test_a_responsible_unit_with_a_delegation_too_keeps_its_power_after_the_delegation(authz):
    authz.set_delegations([(DONGJIE, "road.*", "gulou.roads", UNTIL, "18")])
    assert authz.may_call_out(DONGJIE, "road.pothole", "gulou.roads", BEFORE) == (True, [])
    assert authz.may_call_out(DONGJIE, "road.pothole", "gulou.roads", AFTER) == (True, [])


def test_any_delegation_row_is_not_mistaken_for_the_reason_of_a_listed_power(authz):
    authz.set_delegations([(NANJIE, "water.*", "gulou.water", UNTIL, "19")])
    assert authz.may_call_out(DONGJIE, "road.pothole", "gulou.roads", BEFORE) == (True, [])


@pytest.mark.parametrize(
    "other",
    [
        (NANJIE, "road.pothole", "gulou.housing"),  # another street
        (DONGJIE, "water.leak", "gulou.housing"),  # another matter
        (DONGJIE, "road.pothole", "gulou.parks"),  # another unit
    ],
)
def test_call_out_decisions_are_cached_per_street_matter_and_unit(authz, other):
    authz.set_delegations([DELEGATION])
    for _ in range(2):  # the second round answers from the cache
        assert authz.may_call_out(DONGJIE, "road.pothole", "gulou.housing", BEFORE)[0] is True
        assert authz.may_call_out(*other, BEFORE) == (False, [])


def test_a_cached_call_out_refusal_stays_a_refusal(authz):
    calls = Calls(authz)
    for _ in range(3):
        allowed, row = authz.may_call_out(DONGJIE, "road.pothole", "gulou.housing", BEFORE)
        assert allowed is False and row == []
    assert calls.made == 1


def test_call_out_powers_are_cached_until_the_delegation_expires(authz):
    authz.set_delegations([DELEGATION])
    calls = Calls(authz)
    for _ in range(3):
        assert authz.may_call_out(DONGJIE, "road.pothole", "gulou.housing", BEFORE)[0] is True
        assert authz.may_call_out(DONGJIE, "road.pothole", "gulou.roads", BEFORE) == (True, [])
    assert calls.made == 2
    assert authz.may_call_out(DONGJIE, "road.pothole", "gulou.housing", UNTIL) == (False, [])  # the cache expired
    assert authz.may_call_out(DONGJIE, "road.pothole", "gulou.roads", AFTER) == (True, [])  # the list never does
    assert calls.made == 3


def test_the_call_out_cache_is_bounded(authz, monkeypatch):
    monkeypatch.setattr(authz_module, "_CACHE_LIMIT", 2)
    calls = Calls(authz)
    for matter in ("road.pothole", "road.manhole_cover", "road.lamp"):
        authz.may_call_out(DONGJIE, matter, "gulou.roads", BEFORE)
    authz.may_call_out(DONGJIE, "road.pothole", "gulou.roads", BEFORE)  # dropped when the cache was full
    assert calls.made == 4
    authz.may_call_out(DONGJIE, "road.pothole", "gulou.roads", BEFORE)
    assert calls.made == 4


def test_a_removed_delegation_stops_working_at_once(authz):
    authz.set_delegations([DELEGATION])
    assert authz.may_call_out(DONGJIE, "road.pothole", "gulou.housing", BEFORE)[0] is True
    authz.set_delegations([])
    assert authz.may_call_out(DONGJIE, "road.pothole", "gulou.housing", BEFORE) == (False, [])


def test_removing_several_delegations_removes_every_one(authz):
    rows = [
        DELEGATION,
        (NANJIE, "road.*", "gulou.housing", UNTIL, "18"),
        (DONGJIE, "water.*", "gulou.water", UNTIL, "19"),
    ]
    authz.set_delegations(rows)
    assert authz._enforcer.get_named_policy("p2") == [list(r) for r in rows]
    authz.set_delegations(rows[1:2])
    assert authz._enforcer.get_named_policy("p2") == [list(rows[1])]
    assert authz.may_call_out(DONGJIE, "road.pothole", "gulou.housing", BEFORE) == (False, [])
    assert authz.may_call_out(NANJIE, "road.pothole", "gulou.housing", BEFORE)[0] is True
    authz.set_delegations([])
    assert authz._enforcer.get_named_policy("p2") == []
    for domain, matter, unit, *_ in rows:
        assert authz.may_call_out(domain, matter.replace("*", "x"), unit, BEFORE) == (False, [])


def test_a_replaced_delegation_answers_with_the_new_row(authz):
    authz.set_delegations([DELEGATION])
    assert authz.may_call_out(DONGJIE, "road.pothole", "gulou.housing", BEFORE)[1][4] == "17"
    renewed = (DONGJIE, "road.*", "gulou.housing", AFTER, "21")
    authz.set_delegations([renewed])
    assert authz.may_call_out(DONGJIE, "road.pothole", "gulou.housing", BEFORE) == (True, list(renewed))
    assert authz.may_call_out(DONGJIE, "road.pothole", "gulou.housing", UNTIL)[0] is True
    assert authz.may_call_out(DONGJIE, "road.pothole", "gulou.housing", AFTER)[0] is False


def test_a_new_delegation_works_at_once_after_a_refusal(authz):
    assert authz.may_call_out(DONGJIE, "road.pothole", "gulou.housing", BEFORE) == (False, [])
    authz.set_delegations([DELEGATION])
    assert authz.may_call_out(DONGJIE, "road.pothole", "gulou.housing", BEFORE)[0] is True


def test_call_out_answers_are_copies(authz):
    authz.set_delegations([DELEGATION])
    for _ in range(3):
        allowed, row = authz.may_call_out(DONGJIE, "road.pothole", "gulou.housing", BEFORE)
        assert (allowed, row) == (True, list(DELEGATION))
        row[2] = "gulou.parks"  # changing the answer changes neither the cache nor the delegation
    assert authz.may_call_out(DONGJIE, "road.pothole", "gulou.parks", BEFORE) == (False, [])


def test_without_a_responsibility_list_only_delegations_give_powers():
    authz = Authorizer(MODEL, ROWS)
    assert authz.call_outs is True
    assert authz.may_call_out(DONGJIE, "road.pothole", "gulou.roads", BEFORE) == (False, [])
    authz.set_delegations([DELEGATION])
    assert authz.may_call_out(DONGJIE, "road.pothole", "gulou.housing", BEFORE)[0] is True


def test_a_model_without_call_out_sections_refuses_every_call_out():
    authz = Authorizer(PLAIN_MODEL, ROWS, [LI], responsible=lambda *_: True)
    assert authz.call_outs is False
    assert authz.allowed("li", DONGJIE, "sign_for") is True
    authz.set_delegations([DELEGATION])  # nothing to delegate in such a model: ignored
    assert authz.may_call_out(DONGJIE, "road.pothole", "gulou.housing", BEFORE) == (False, [])
    assert authz.may_call_out(DONGJIE, "road.pothole", "gulou.roads", BEFORE) == (False, [])
    assert Authorizer.check_model(PLAIN_MODEL, ROWS) == []


def test_a_model_that_defines_r2_only_in_another_section_has_no_call_outs():
    model = PLAIN_MODEL.replace("[policy_definition]\n", "[policy_definition]\nr2 = dom, cat, unit, now\n")
    assert Authorizer(model, ROWS).call_outs is False


# -- policy rows and models --------------------------------------------------------------------
def test_policy_rows_keep_the_rows_and_skip_comments_and_blank_lines():
    text = "# role, domain pattern, action\n\np, street_dispatcher, gulou/*, sign_for\n  \n#p, x, y, z\np,a,b,c\n"
    assert parse_policy_rows(text) == ([["street_dispatcher", "gulou/*", "sign_for"], ["a", "b", "c"]], [])


@pytest.mark.parametrize(
    "row, message",
    [
        ("p, street_dispatcher, gulou/*", "a policy row is: p, role, domain pattern, action"),
        ("p, street_dispatcher, gulou/*, sign_for, extra", "a policy row is: p, role, domain pattern, action"),
        ("p, street_dispatcher, , sign_for", "a policy row is: p, role, domain pattern, action"),
        ("p, , gulou/*, sign_for", "a policy row is: p, role, domain pattern, action"),
        ("p, street_dispatcher, gulou/*, ", "a policy row is: p, role, domain pattern, action"),
        (
            "g, li, street_dispatcher, gulou/*",
            "only 'p' rows belong in the pack policy (grants come from principals), got 'g'",
        ),
        (
            ", street_dispatcher, gulou/*, sign_for",
            "only 'p' rows belong in the pack policy (grants come from principals), got ''",
        ),
    ],
)
def test_a_malformed_policy_row_is_refused_with_its_line(row, message):
    rows, issues = parse_policy_rows(f"# header\np, a, b, c\n{row}\np, d, e, f\n", "policies/district.csv")
    assert rows == [["a", "b", "c"], ["d", "e", "f"]]
    assert [(i.file, i.message, i.line) for i in issues] == [("policies/district.csv", message, 3)]


def test_policy_row_issues_name_the_pack_policy_file_by_default():
    _, issues = parse_policy_rows("x, y\n")
    assert [(i.file, i.line) for i in issues] == [("policies/policy.csv", 1)]


def test_check_model_accepts_the_reference_model_and_rows():
    rows, issues = parse_policy_rows((REFERENCE_PACK / "policies" / "policy.csv").read_text(encoding="utf-8"))
    assert issues == [] and rows
    assert Authorizer.check_model(MODEL, rows) == []


@pytest.mark.parametrize(
    "model",
    [
        MODEL.replace("[matchers]", "[matchers_]"),  # no matcher at all
        MODEL.replace("m = r.act == p.act", "m = r.act === p.act"),  # a matcher that does not parse
        MODEL.replace("keyMatch(r.dom, p.dom)", "nosuch(r.dom, p.dom)"),  # an unknown function
        MODEL.replace("m2 = responsible(r2.cat, r2.dom, r2.unit) ||", "m2 = nosuch(r2.cat) ||"),  # the call-out matcher
        MODEL.replace("p2 = dom, cat, unit, until, id\n", ""),  # call-outs requested, no delegation rows defined
        MODEL.replace("p2 = dom, cat, unit, until, id", "p2 = dom, cat, unit, until"),  # rows have 5 fields
    ],
)
def test_check_model_reports_a_model_that_cannot_decide(model):
    issues = Authorizer.check_model(model, [["street_dispatcher", "gulou/*", "sign_for"]])
    assert [(i.file, i.message.startswith("the Casbin model or policy does not load: ")) for i in issues] == [
        ("policies/model.conf", True)
    ]


def test_check_model_reports_a_row_of_the_wrong_size():
    [issue] = Authorizer.check_model(MODEL, [["street_dispatcher", "gulou/*"]], "policies/district.conf")
    assert issue.file == "policies/district.conf" and "does not load" in issue.message


def test_the_matcher_is_parsed_once_per_enforcer(authz):
    authz.allowed("li", DONGJIE, "sign_for")
    authz.allowed("wang", NANJIE, "sign_for")
    authz.may_call_out(DONGJIE, "road.pothole", "gulou.roads", BEFORE)
    authz.may_call_out(NANJIE, "road.pothole", "gulou.roads", BEFORE)
    cached = authz._enforcer.__dict__["_expr_cache"]
    assert len(cached) == 2  # m and m2, each parsed once


def test_casbin_logs_only_errors():
    # pycasbin logs every policy change and role link at INFO: a reload would flood the log
    assert logging.getLogger("casbin").level == logging.ERROR
