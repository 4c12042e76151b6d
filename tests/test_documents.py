"""Documents on a case (issue 17, item 5): uploaded, listed, downloaded with safe headers and
audited, refused when they are not a kind Liaison keeps or are too large (nothing stored
then), out of reach of another LA, in subject access, and gone with their case under the
retention schedule, bytes included. The S3-compatible store is tested against moto."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import boto3
import httpx
import pytest
from fastapi import FastAPI
from moto import mock_aws
from sqlmodel import select

from app.models.audit import AuditEvent
from app.models.document import CaseDocument
from app.services import document_types
from app.services.document_store import DocumentMissing, FilesystemStore, S3Store, key_for
from tests.builders.api import assert_problem, expect, items, standalone
from tests.builders.casework import Casework, casework, open_case, open_case_since, request_closure
from tests.builders.clock import days_ago, today
from tests.builders.documents import (
    DOCX,
    ELF,
    HTML,
    JPEG,
    ODT,
    PDF,
    PNG,
    SCRIPT,
    SVG,
    TEXT,
    WINDOWS_EXE,
    ZIP,
    stored_files,
    upload,
)
from tests.builders.holds import count, disposed, retain
from tests.conftest import TEST_DOCUMENT_DIR, DatabaseUnderTest, World

# --- what a document is, from its bytes alone (no database) ----------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (PDF, "application/pdf"),
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (TEXT, "text/plain"),
        ("Café — réunion à 10h\n".encode(), "text/plain"),
        (DOCX, document_types.DOCX),
        (ODT, document_types.ODT),
        (WINDOWS_EXE, None),
        (ELF, None),
        (b"\xcf\xfa\xed\xfe" + bytes(20), None),
        (SCRIPT, None),
        (HTML, None),
        (SVG, None),
        (b"  \n<html><body>hi</body></html>", None),
        (ZIP, None),
        (b"PK\x03\x04 not really a zip", None),
        (b"plain words\x00with a NUL", None),
        (b"\xff\xfe not UTF-8 \xff", None),
        (b"", None),
    ],
)
def test_content_types_are_detected_from_the_bytes(data: bytes, expected: str | None) -> None:
    found = document_types.detect(data)
    if expected is None:
        assert isinstance(found, document_types.Refused), found
    else:
        assert found == expected


@pytest.mark.parametrize(
    ("name", "media_type", "expected"),
    [
        ("consent.pdf", "application/pdf", "consent.pdf"),
        ("../../etc/passwd", "text/plain", "passwd.txt"),
        ("C:\\Users\\me\\plan.docx", document_types.DOCX, "plan.docx"),
        ('evil"; filename=x.exe\r\n.pdf', "application/pdf", "evil_ filename_x.exe_.pdf"),
        ("report.exe", "application/pdf", "report.exe.pdf"),
        ("Réunion été.txt", "text/plain", "Reunion ete.txt"),
        (None, "image/png", "document.png"),
        ("...", "image/jpeg", "document.jpg"),
        ("a" * 300 + ".pdf", "application/pdf", "a" * 116 + ".pdf"),
    ],
)
def test_file_names_are_made_safe(name: str | None, media_type: str, expected: str) -> None:
    assert document_types.safe_filename(name, media_type) == expected


async def test_the_filesystem_store_writes_whole_files_under_its_own_keys(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path)
    key = key_for(uuid.uuid4())
    await store.put(key, PDF)
    assert await store.get(key) == PDF
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [key.split("/")[1]]
    await store.delete(key)
    await store.delete(key)  # already gone: nothing happens
    with pytest.raises(DocumentMissing):
        await store.get(key)
    for bad in ("../../etc/passwd", "documents/../../x", "/etc/passwd", "documents/ABC"):
        with pytest.raises(ValueError, match="storage key"):
            await store.put(bad, b"x")


async def test_the_s3_store_round_trips_against_moto() -> None:
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-2")
        client.create_bucket(
            Bucket="liaison-docs", CreateBucketConfiguration={"LocationConstraint": "eu-west-2"}
        )
        store = S3Store(client, "liaison-docs", prefix="la-886/")
        key = key_for(uuid.uuid4())
        await store.put(key, DOCX)
        assert await store.get(key) == DOCX
        listed = client.list_objects_v2(Bucket="liaison-docs")["Contents"]
        assert [o["Key"] for o in listed] == [f"la-886/{key}"]
        await store.delete(key)
        with pytest.raises(DocumentMissing):
            await store.get(key)
        with pytest.raises(ValueError, match="storage key"):
            await store.put("../other-bucket-thing", b"x")


# --- through the API -----------------------------------------------------------------------


@pytest.fixture
async def work(world: World, client: httpx.AsyncClient) -> Casework:
    return await casework(world, client, pupils=2)


@pytest.fixture
async def case_id(client: httpx.AsyncClient, work: Casework) -> str:
    case = await open_case(client, work.headers, [work.pupil("P0")])
    return str(case["id"])


@pytest.fixture
async def dpo(world: World, work: Casework) -> dict[str, str]:
    return await world.headers(await world.staff("dpo", schools=[work.school]))


@pytest.fixture
async def stranger(world: World) -> dict[str, str]:
    """A practitioner (with every casework scope) of another LA."""
    school = await world.school(la_code="303")
    return await world.headers(await world.staff("manager", schools=[school]))


async def test_upload_list_read_and_download_round_trip(
    client: httpx.AsyncClient, work: Casework, case_id: str, dpo: dict[str, str]
) -> None:
    response = await upload(client, work.headers, case_id, PDF, filename="Signed consent.pdf")
    made = expect(response, 201)
    assert response.headers["location"] == f"/v1/cases/{case_id}/documents/{made['id']}"
    assert made["content_type"] == "application/pdf"
    assert made["filename"] == "Signed consent.pdf"
    assert made["size_bytes"] == len(PDF)
    assert made["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert made["kind"] == "consent_form" and made["title"] == "Signed consent form"
    assert "storage_key" not in made
    letter = expect(
        await upload(
            client,
            work.headers,
            case_id,
            TEXT,
            filename="note",
            declared="text/plain; charset=utf-8",
            kind="other",
            title="Phone note",
        ),
        201,
    )
    assert letter["filename"] == "note.txt" and letter["content_type"] == "text/plain"

    listed = await items(client, f"/v1/cases/{case_id}/documents", work.headers)
    assert [d["id"] for d in listed] == [made["id"], letter["id"]]
    one = expect(
        await client.get(f"/v1/cases/{case_id}/documents/{made['id']}", headers=work.headers)
    )
    assert one == made

    download = await client.get(made["content_url"], headers=work.headers)
    assert download.status_code == 200
    assert download.content == PDF
    assert download.headers["content-type"] == "application/pdf"
    assert download.headers["content-disposition"] == 'attachment; filename="Signed consent.pdf"'
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["cache-control"] == "no-store"
    assert "sandbox" in download.headers["content-security-policy"]

    # The download is a read of the child's data: audited, naming the child.
    trail = await items(
        client, "/v1/audit-events", dpo, pupil_id=work.pupil("P0"), action="document.download"
    )
    assert [(e["resource_type"], e["resource_id"]) for e in trail] == [
        ("case_document", made["id"])
    ]
    # A data protection officer fetches what a subject access export lists.
    assert (await client.get(made["content_url"], headers=dpo)).content == PDF
    chronology = expect(await client.get(f"/v1/cases/{case_id}/chronology", headers=work.headers))
    assert [i["event"] for i in chronology["items"]].count("document.added") == 2


@pytest.mark.parametrize(
    ("data", "filename", "declared"),
    [
        (WINDOWS_EXE, "consent.pdf", "application/pdf"),
        (ELF, "plan.pdf", "application/octet-stream"),
        (SCRIPT, "notes.txt", "text/plain"),
        (HTML, "letter.pdf", "application/pdf"),
        (SVG, "photo.png", "image/svg+xml"),
        (ZIP, "plan.docx", document_types.DOCX),
        (PNG, "photo.pdf", "application/pdf"),  # declared one thing, is another
    ],
)
async def test_what_liaison_does_not_keep_is_refused_and_nothing_is_stored(
    client: httpx.AsyncClient,
    fresh_app: FastAPI,
    work: Casework,
    case_id: str,
    data: bytes,
    filename: str,
    declared: str,
) -> None:
    before = stored_files(TEST_DOCUMENT_DIR)
    response = await upload(
        client, work.headers, case_id, data, filename=filename, declared=declared
    )
    assert_problem(response, 415, "unsupported-media-type")
    assert await count(fresh_app, CaseDocument) == 0
    assert stored_files(TEST_DOCUMENT_DIR) == before
    assert await items(client, f"/v1/cases/{case_id}/documents", work.headers) == []


async def test_an_oversized_upload_gets_413_and_stores_nothing(
    database: DatabaseUnderTest, fresh_app: FastAPI, world: World, client: httpx.AsyncClient
) -> None:
    work = await casework(world, client, pupils=1)
    case = await open_case(client, work.headers, [work.pupil("P0")])
    limit = 4096
    async with standalone(database.url, document_max_bytes=limit) as (small, http):
        before = stored_files(TEST_DOCUMENT_DIR)
        # Just over the limit: refused once read (the body is within the route's allowance).
        just_over = PDF + b" " * (limit + 1 - len(PDF))
        refused = assert_problem(
            await upload(http, work.headers, case["id"], just_over), 413, "payload-too-large"
        )
        assert str(limit) in refused["detail"]
        # Far over: refused from the declared length, before the body is read.
        far_over = PDF + b" " * (512 * 1024)
        assert_problem(await upload(http, work.headers, case["id"], far_over), 413)

        # Streamed with no length declared: refused as soon as the bytes read pass the limit.
        async def chunks():  # type: ignore[no-untyped-def]
            boundary = b"--liaisonboundary"
            yield boundary + b'\r\nContent-Disposition: form-data; name="kind"\r\n\r\nother\r\n'
            yield boundary + b'\r\nContent-Disposition: form-data; name="title"\r\n\r\nBig\r\n'
            yield (
                boundary + b'\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"'
                b"\r\nContent-Type: application/pdf\r\n\r\n" + PDF
            )
            for _ in range(20):
                yield b" " * 8192
            yield b"\r\n" + boundary + b"--\r\n"

        streamed = await http.post(
            f"/v1/cases/{case['id']}/documents",
            content=chunks(),
            headers={
                **work.headers,
                "Content-Type": "multipart/form-data; boundary=liaisonboundary",
            },
        )
        assert_problem(streamed, 413, "payload-too-large")
        assert await count(small, CaseDocument) == 0
        assert stored_files(TEST_DOCUMENT_DIR) == before
        # At the limit it is kept.
        at_limit = PDF + b" " * (limit - len(PDF))
        expect(await upload(http, work.headers, case["id"], at_limit), 201)


async def test_bad_form_fields_are_422(
    client: httpx.AsyncClient, work: Casework, case_id: str
) -> None:
    for kind, title in (("nonsense", "Plan"), ("other", "a\x00b"), ("other", "x" * 201)):
        response = await upload(client, work.headers, case_id, PDF, kind=kind, title=title)
        assert_problem(response, 422, "validation-failed")
    missing = await client.post(
        f"/v1/cases/{case_id}/documents", data={"kind": "other"}, headers=work.headers
    )
    assert missing.status_code == 422


async def test_another_las_staff_get_404_on_every_document_route(
    client: httpx.AsyncClient,
    fresh_app: FastAPI,
    work: Casework,
    case_id: str,
    stranger: dict[str, str],
) -> None:
    made = expect(await upload(client, work.headers, case_id, PDF), 201)
    base = f"/v1/cases/{case_id}/documents"
    for response in (
        await client.get(base, headers=stranger),
        await client.get(f"{base}/{made['id']}", headers=stranger),
        await client.get(f"{base}/{made['id']}/content", headers=stranger),
        await client.delete(f"{base}/{made['id']}", headers=stranger),
        await upload(client, stranger, case_id, PDF),
    ):
        body = assert_problem(response, 404, "not-found")
        assert body["detail"] == "No such case."
    # A document of one case is not found through another case the caller reaches.
    other = await open_case(client, work.headers, [work.pupil("P1")])
    assert_problem(
        await client.get(f"/v1/cases/{other['id']}/documents/{made['id']}", headers=work.headers),
        404,
    )
    assert await count(fresh_app, CaseDocument) == 1


async def test_a_document_is_deleted_by_its_uploader_or_a_manager(
    world: World, client: httpx.AsyncClient, work: Casework, case_id: str, dpo: dict[str, str]
) -> None:
    colleague = await world.headers(await world.staff("practitioner", schools=[work.school]))
    mine = expect(await upload(client, work.headers, case_id, PDF), 201)
    other = expect(await upload(client, work.headers, case_id, PNG, declared="image/png"), 201)
    before = stored_files(TEST_DOCUMENT_DIR)
    base = f"/v1/cases/{case_id}/documents"
    assert_problem(await client.delete(f"{base}/{mine['id']}", headers=colleague), 403)
    assert (await client.delete(f"{base}/{mine['id']}", headers=work.headers)).status_code == 204
    assert (
        await client.delete(f"{base}/{other['id']}", headers=work.manager_headers)
    ).status_code == 204
    assert await items(client, base, work.headers) == []
    assert len(before - stored_files(TEST_DOCUMENT_DIR)) == 2
    assert_problem(await client.get(f"{base}/{mine['id']}/content", headers=work.headers), 404)
    deleted = await items(
        client, "/v1/audit-events", dpo, pupil_id=work.pupil("P0"), action="document.delete"
    )
    assert {e["resource_id"] for e in deleted} == {mine["id"], other["id"]}


async def test_subject_access_lists_the_documents_of_the_childs_cases(
    client: httpx.AsyncClient, work: Casework, case_id: str, dpo: dict[str, str]
) -> None:
    made = expect(await upload(client, work.headers, case_id, PDF), 201)
    sibling_case = await open_case(client, work.headers, [work.pupil("P1")])
    expect(await upload(client, work.headers, sibling_case["id"], TEXT, declared="text/plain"), 201)
    export = expect(await client.get(f"/v1/pupils/{work.pupil('P0')}/subject-access", headers=dpo))
    [listed] = export["documents"]
    assert listed["id"] == made["id"] and listed["sha256"] == made["sha256"]
    assert listed["content_type"] == "application/pdf" and "storage_key" not in listed
    assert (await client.get(made["content_url"], headers=dpo)).content == PDF


async def test_retention_disposes_of_a_closed_cases_documents_rows_and_bytes(
    client: httpx.AsyncClient, fresh_app: FastAPI, work: Casework
) -> None:
    case = await open_case_since(client, work, [work.pupil("P0")], days_ago(20))
    kept_case = await open_case(client, work.headers, [work.pupil("P1")])
    before = stored_files(TEST_DOCUMENT_DIR)
    gone = expect(await upload(client, work.headers, case["id"], PDF), 201)
    expect(await upload(client, work.headers, case["id"], DOCX, declared=document_types.DOCX), 201)
    kept = expect(await upload(client, work.headers, kept_case["id"], PDF), 201)
    assert len(stored_files(TEST_DOCUMENT_DIR) - before) == 3
    expect(await request_closure(client, work.manager_headers, case["id"]))

    far = today().replace(year=today().year + 26)
    summary = await retain(fresh_app, far, only=["early_help_case"])

    assert disposed(summary, "early_help_case") == 1
    assert await count(fresh_app, CaseDocument, CaseDocument.case_id == uuid.UUID(case["id"])) == 0
    left = stored_files(TEST_DOCUMENT_DIR) - before
    assert [p.name for p in left] == [uuid.UUID(kept["id"]).hex]
    assert_problem(
        await client.get(gone["content_url"], headers=work.manager_headers), 404, "not-found"
    )
    # The disposal's audit event keeps the count, never the content.
    async with fresh_app.state.session_factory() as session:
        found = await session.exec(
            select(AuditEvent).where(AuditEvent.action == "retention.dispose")
        )
        [event] = [e for e in found.all() if case["id"] in e.details.get("ids", [])]
    assert event.details["documents"] == 2


async def test_an_s3_store_serves_the_api_round_trip(
    database: DatabaseUnderTest, fresh_app: FastAPI, world: World, client: httpx.AsyncClient
) -> None:
    work = await casework(world, client, pupils=1)
    case = await open_case(client, work.headers, [work.pupil("P0")])
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="liaison-test")
        settings = {
            "document_store": "s3",
            "document_s3_bucket": "liaison-test",
            "document_s3_region": "us-east-1",
        }
        async with standalone(database.url, **settings) as (_, http):
            made = expect(
                await upload(http, work.headers, case["id"], JPEG, declared="image/jpeg"), 201
            )
            download = await http.get(made["content_url"], headers=work.headers)
            assert download.content == JPEG
            assert download.headers["content-type"] == "image/jpeg"
            objects = boto3.client("s3", region_name="us-east-1").list_objects_v2(
                Bucket="liaison-test"
            )["Contents"]
            assert [o["Key"] for o in objects] == [f"documents/{uuid.UUID(made['id']).hex}"]
