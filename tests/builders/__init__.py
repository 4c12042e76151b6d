"""The one place tests build their world from. A test module imports `tests.conftest` (the
fixtures and `World`) and these modules, never another test module.

- `api`: an answer of the expected status, a list's items (and every page of it), a
  problem, an app of its own.
- `clock`: dates relative to today.
- `database`: rows read straight from the database, and time made to pass (`move_back`).
- `schools`: UPNs, roster rows, a school with its roll (`make_school`), marks and flags.
- `casework`: referral and case bodies, opening and closing cases, the chronology, goals
  and reviews, and the audit trail about a child.
- `keys`: an outside identity provider's signing keys and JWKs.
- `las`: two whole local authorities holding every kind of object, for tenant isolation.
- `demo`: a live server with the demo data, started as `scripts/demo` starts one (the
  session's `demo` fixture), for tests that talk to Liaison over real HTTP.

Each module imports only the app, `tests.conftest` and the modules above it in this list
(`demo` imports only the app: `tests.conftest` imports it for the fixture).
"""
