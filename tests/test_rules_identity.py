"""Who a child is and who may know it, table by table: UPN check letters, the one rule for
how much of a child's identity a caller sees, and what a principal's reach lets it touch.

No database and no HTTP: principals are built as the token check builds them. The HTTP
tests (`test_pupils.py`, `test_referrals.py`, `test_tenancy.py`, the authorisation matrix)
keep checking that every route applies these rules.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest

from app.errors import Forbidden, NotFound
from app.models.referral import ChildRead
from app.reach import readable_las, writable_la
from app.security import Principal, Reach, Scope
from app.services.children import Child, Identity, identity_for, present_child
from app.services.upn import check_letter, upn_problem

# --- UPN check letters --------------------------------------------------------------------

SHAPE = "a UPN is a letter, 11 digits and a final digit or letter (never I, O or S)"


@pytest.mark.parametrize(
    ("body", "letter"),
    [
        # 2·2 + 0·3 + 2·4 + 2·5 + 0·6 + 0·7 + 1·8 + 2·9 + 4·10 + 0·11 + 0·12 + 1·13 = 101;
        # 101 mod 23 = 9, the tenth letter of A-Z without I, O and S.
        ("202200124001", "K"),
        # 8·2 + 8·3 + 6·4 + 4·5 + 1·6 + 0·7 + 1·8 + 2·9 + 5·10 + 0 + 0 + 1·13 = 179 → 18: V
        ("886410125001", "V"),
        # A temporary UPN ends in a letter, counted by its place: A = 0, so 101 - 13 = 88 → W
        ("20220012400A", "W"),
        # Z = 22: 6 + 4 + 8 + 18 + 30 + 22·13 = 352 → 7: H
        ("30100012300Z", "H"),
    ],
)
def test_the_check_letter_worked_by_hand(body: str, letter: str) -> None:
    assert check_letter(body) == letter
    assert upn_problem(letter + body) is None


@pytest.mark.parametrize(
    ("upn", "problem"),
    [
        ("K202200124001", None),
        ("W20220012400A", None),
        ("K20220012400", "a UPN is 13 characters"),
        ("K2022001240011", "a UPN is 13 characters"),
        ("", "a UPN is 13 characters"),
        ("A202200124001", "the UPN's check letter does not match"),
        ("L202200124001", "the UPN's check letter does not match"),
        # I, O and S are never used: they could be read as 1, 0 and 5.
        ("I202200124001", SHAPE),
        ("O202200124001", SHAPE),
        ("K20220012400S", SHAPE),
        ("K2022001X4001", SHAPE),
        ("2202200124001", SHAPE),
    ],
)  # fmt: skip
def test_what_is_wrong_with_a_upn(upn: str, problem: str | None) -> None:
    assert upn_problem(upn) == problem


# --- who may see who a child is --------------------------------------------------------------

SCHOOL = uuid.uuid4()
OTHER_SCHOOL = uuid.uuid4()


def principal(
    scopes: str,
    *,
    kind: str = "client",
    la_code: str | None = None,
    schools: frozenset[uuid.UUID] = frozenset(),
    school_las: frozenset[str] = frozenset(),
    principal_id: uuid.UUID | None = None,
) -> Principal:
    return Principal(
        kind=kind,
        id=principal_id or uuid.uuid4(),
        name="test principal",
        scopes=frozenset(scopes.split()),
        reach=Reach(school_ids=schools, la_code=la_code, school_las=school_las),
    )


HUB = principal("referrals:read referrals:write", la_code="202")
PRACTITIONER = principal("referrals:read cases:read cases:write", kind="staff", la_code="202")
READER = principal("pupils:read referrals:read", schools=frozenset({SCHOOL}))


@pytest.mark.parametrize(
    ("caller", "referrer", "identity"),
    [
        pytest.param(PRACTITIONER, None, Identity.FULL, id="cases:read identifies children"),
        pytest.param(PRACTITIONER, HUB.subject, Identity.FULL, id="whoever referred them"),
        pytest.param(
            HUB, HUB.subject, Identity.AS_SUPPLIED, id="the referrer sees what it supplied"
        ),
        pytest.param(HUB, PRACTITIONER.subject, Identity.NONE, id="another referrer's: ids only"),
        pytest.param(HUB, None, Identity.NONE, id="no referrer: ids only"),
        pytest.param(READER, None, Identity.NONE, id="pupils:read alone: ids only"),
        pytest.param(
            principal("referrals:read", kind="staff", principal_id=HUB.id),
            HUB.subject,
            Identity.NONE,
            id="the same id of another kind is someone else",
        ),
    ],
)
def test_how_much_of_a_child_a_caller_sees(
    caller: Principal, referrer: str | None, identity: Identity
) -> None:
    assert identity_for(caller, referrer) is identity


def test_only_cases_read_identifies() -> None:
    everything_else = " ".join(s.value for s in Scope if s is not Scope.cases_read)
    assert identity_for(principal(everything_else)) is Identity.NONE
    assert identity_for(principal("cases:read")) is Identity.FULL


PUPIL = uuid.uuid4()
HELD = {
    "upn": "K202200124001",
    "given_name": "Amara",
    "family_name": "O'Neil",
    "date_of_birth": date(2015, 3, 14),
}


def child(on_roll: bool = True, supplied: dict[str, Any] | None = None) -> Child:
    """A named child as held: matched to a pupil at SCHOOL, or known by name alone."""
    return Child(
        pupil_id=PUPIL if on_roll else None,
        school_id=SCHOOL if on_roll else None,
        la_code="202",
        supplied=supplied,
        **HELD,  # type: ignore[arg-type]
    )


def shown(
    pupil_id: uuid.UUID | None = None,
    school_id: uuid.UUID | None = None,
    on_roll: bool | None = None,
    **identity: Any,
) -> ChildRead:
    values = {"upn": None, "given_name": None, "family_name": None, "date_of_birth": None}
    return ChildRead(pupil_id=pupil_id, school_id=school_id, on_roll=on_roll, **values | identity)


BY_UPN = {"upn": "k202200124001", "school_code": "2022001"}
BY_NAME = {"given_name": "amara", "family_name": "o'neil", "date_of_birth": "2015-03-14"}


@pytest.mark.parametrize(
    ("row", "identity", "expected"),
    [
        pytest.param(child(), Identity.FULL, shown(PUPIL, SCHOOL, True, **HELD), id="full"),
        pytest.param(
            child(on_roll=False), Identity.FULL, shown(None, None, False, **HELD),
            id="full, on no roll",
        ),
        pytest.param(child(), Identity.NONE, shown(PUPIL, SCHOOL, True), id="ids only"),
        pytest.param(
            child(on_roll=False), Identity.NONE, shown(None, None, False),
            id="ids only, on no roll",
        ),
        pytest.param(
            child(supplied=BY_UPN), Identity.AS_SUPPLIED,
            shown(PUPIL, SCHOOL, True, upn="k202200124001"),
            id="referred by UPN: the UPN as given, never the name",
        ),
        pytest.param(
            child(supplied={"pupil_id": str(PUPIL)}), Identity.AS_SUPPLIED,
            shown(PUPIL, SCHOOL, True),
            id="referred by pupil id: ids only",
        ),
        pytest.param(
            child(supplied=BY_NAME), Identity.AS_SUPPLIED,
            shown(None, None, None, given_name="amara", family_name="o'neil",
                  date_of_birth=date(2015, 3, 14)),
            id="referred by name: the name as given, not even whether on a roll",
        ),
        pytest.param(
            child(on_roll=False, supplied=BY_NAME), Identity.AS_SUPPLIED,
            shown(None, None, None, given_name="amara", family_name="o'neil",
                  date_of_birth=date(2015, 3, 14)),
            id="referred by name, on no roll: the same answer",
        ),
        pytest.param(
            child(supplied=None), Identity.AS_SUPPLIED, shown(), id="nothing supplied: nothing",
        ),
    ],
)  # fmt: skip
def test_what_a_child_looks_like_to_each(
    row: Child, identity: Identity, expected: ChildRead
) -> None:
    assert present_child(row, identity) == expected


# --- reach ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reach", "las", "home"),
    [
        pytest.param(Reach(), frozenset(), None, id="nothing"),
        pytest.param(Reach(la_code="202"), {"202"}, "202", id="an LA"),
        pytest.param(
            Reach(school_ids=frozenset({SCHOOL}), school_las=frozenset({"202"})),
            {"202"}, "202", id="a school: its LA is home",
        ),
        pytest.param(
            Reach(frozenset({SCHOOL, OTHER_SCHOOL}), school_las=frozenset({"202", "303"})),
            {"202", "303"}, None, id="schools of two LAs: no home",
        ),
        pytest.param(
            Reach(frozenset({OTHER_SCHOOL}), la_code="202", school_las=frozenset({"303"})),
            {"202", "303"}, "202", id="an LA and another LA's school: the LA is home",
        ),
    ],
)  # fmt: skip
def test_the_las_a_reach_works_with(reach: Reach, las: set[str], home: str | None) -> None:
    assert reach.las == las
    assert reach.home_la == home


LA_ADMIN = principal("admin directory:write", kind="staff", la_code="202")
SCHOOL_CLIENT = principal(
    "pupils:write", schools=frozenset({SCHOOL}), school_las=frozenset({"202"})
)
UNBOUND = principal("admin")


@pytest.mark.parametrize(
    ("who", "requested", "answer"),
    [
        pytest.param(LA_ADMIN, None, "202", id="its own LA, unasked"),
        pytest.param(LA_ADMIN, "202", "202", id="its own LA, asked for"),
        pytest.param(LA_ADMIN, "303", Forbidden, id="another LA"),
        pytest.param(LA_ADMIN, "999", Forbidden, id="an LA that does not exist: the same"),
        pytest.param(SCHOOL_CLIENT, None, Forbidden, id="bound to a school, not an LA"),
        pytest.param(SCHOOL_CLIENT, "202", Forbidden, id="not even its school's LA"),
        pytest.param(UNBOUND, None, Forbidden, id="bound to nothing"),
    ],
)
def test_the_la_whose_records_a_principal_writes(
    who: Principal, requested: str | None, answer: str | type[Exception]
) -> None:
    if isinstance(answer, str):
        assert writable_la(who, requested) == answer
    else:
        with pytest.raises(answer):
            writable_la(who, requested)


@pytest.mark.parametrize(
    ("who", "requested", "answer"),
    [
        pytest.param(LA_ADMIN, None, {"202"}, id="its LA"),
        pytest.param(LA_ADMIN, "202", {"202"}, id="its LA, asked for"),
        pytest.param(LA_ADMIN, "303", NotFound, id="another LA: not found"),
        pytest.param(SCHOOL_CLIENT, None, {"202"}, id="its school's LA"),
        pytest.param(SCHOOL_CLIENT, "202", {"202"}, id="its school's LA, asked for"),
        pytest.param(SCHOOL_CLIENT, "303", NotFound, id="another LA, from a school"),
        pytest.param(UNBOUND, None, set(), id="bound to nothing: no LA"),
        pytest.param(UNBOUND, "202", NotFound, id="bound to nothing, asking"),
    ],
)
def test_the_las_whose_lists_a_principal_reads(
    who: Principal, requested: str | None, answer: set[str] | type[Exception]
) -> None:
    if isinstance(answer, set):
        assert readable_las(who, requested) == answer
    else:
        with pytest.raises(answer):
            readable_las(who, requested)
