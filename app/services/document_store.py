"""Where the bytes of documents live: a small interface (`put`, `get`, `delete`) with a
filesystem store (the default) and an S3-compatible one (boto3).

Keys are made by Liaison from a document's id (`documents/<uuid>`), never from anything a
client sent, and each store checks them again: a key that is not one of Liaison's own is
refused before any file or object is touched. The database row says which key holds a
document; a store knows nothing about cases or children.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
import uuid
from pathlib import Path
from typing import Any, Protocol

from app.config import Settings

_KEY = re.compile(r"documents/[0-9a-f]{32}")


def key_for(document_id: uuid.UUID) -> str:
    """The storage key of a document: its id, and nothing the client chose."""
    return f"documents/{document_id.hex}"


def _checked(key: str) -> str:
    if not _KEY.fullmatch(key):
        raise ValueError("not a document storage key")
    return key


class DocumentMissing(Exception):
    """The store holds nothing under the key."""


class DocumentStore(Protocol):
    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str) -> bytes:
        """The bytes under `key`; `DocumentMissing` when there are none."""
        ...

    async def delete(self, key: str) -> None:
        """Remove `key`; nothing happens when it is already gone."""
        ...


class FilesystemStore:
    """Files under one directory. A write goes to a temporary file in the same directory,
    is flushed to disk and renamed over the final name, so a reader never sees half a
    document and a crash leaves at most a stray temporary file."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / _checked(key)

    def _put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def _get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise DocumentMissing(key) from None

    def _delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._put, key, data)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._get, key)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete, key)


class S3Store:
    """Objects in one bucket of an S3-compatible store, under an optional prefix. boto3 is
    synchronous: each call runs in a worker thread. An object is written whole by one
    PUT, so a reader never sees half of one."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Store:
        import boto3

        def secret(value: Any) -> str | None:
            return value.get_secret_value() if value is not None else None

        client = boto3.client(
            "s3",
            endpoint_url=settings.document_s3_endpoint_url,
            region_name=settings.document_s3_region,
            aws_access_key_id=secret(settings.document_s3_access_key_id),
            aws_secret_access_key=secret(settings.document_s3_secret_access_key),
        )
        assert settings.document_s3_bucket is not None  # checked by Settings
        return cls(client, settings.document_s3_bucket, settings.document_s3_prefix)

    def _name(self, key: str) -> str:
        return self.prefix + _checked(key)

    def _get(self, key: str) -> bytes:
        try:
            found = self.client.get_object(Bucket=self.bucket, Key=self._name(key))
        except self.client.exceptions.NoSuchKey:
            raise DocumentMissing(key) from None
        body: bytes = found["Body"].read()
        return body

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(
            self.client.put_object, Bucket=self.bucket, Key=self._name(key), Body=data
        )

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._get, key)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=self._name(key))


def store_for(settings: Settings) -> DocumentStore:
    """The store the settings name."""
    if settings.document_store == "s3":
        return S3Store.from_settings(settings)
    return FilesystemStore(settings.document_dir)
