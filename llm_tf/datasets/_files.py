"""Where datasets live, how their files are read, and how missing ones are downloaded and verified.

Data directory, first match wins: the loader's `data_dir` argument, the `LLM_TF_DATA_DIR` environment
variable, `~/.cache/llm_tf/datasets`. Each dataset sits in its own folder below it, laid out as in the
project's `shared/data` (e.g. `<data_dir>/bbc_news/bbc/<class>/NNN.txt`).

When a dataset's files are missing, the loader downloads them from the dataset's public source with
`keras.utils.get_file` into that folder and verifies them: single files against their sha256, archives by a
digest of the extracted files (sha256 over the sorted "relative path<TAB>file sha256" lines), computed from
the verified copy in `shared/data`. Without network access (or with `download=False`, or with the
`LLM_TF_OFFLINE` environment variable set to 1) the loader raises `FileNotFoundError` naming the files it
expected and the variable to set.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import socket
import tempfile
import urllib.parse
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

DATA_DIR_ENV = "LLM_TF_DATA_DIR"
OFFLINE_ENV = "LLM_TF_OFFLINE"
DEFAULT_DATA_DIR = pathlib.Path("~/.cache/llm_tf/datasets")


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> pathlib.Path:
    """The data directory: `data_dir`, else `$LLM_TF_DATA_DIR`, else `~/.cache/llm_tf/datasets`.

    Args:
        data_dir: an explicit directory, or None.

    Returns:
        The directory as an absolute `Path` (it need not exist yet).

    Example:
        >>> resolve_data_dir("/tmp/data").as_posix()
        '/tmp/data'
    """
    if data_dir is None:
        data_dir = os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR
    return pathlib.Path(data_dir).expanduser().absolute()


# --------------------------------------------------------------------------------------------------
# Reading text.


@dataclass
class DecodedText:
    text: str
    fallback_used: bool


def decode_bytes(data: bytes, *, fallback_encoding: str = "cp1252") -> DecodedText:
    """Decodes UTF-8 (a leading byte-order mark is dropped); bytes that are not UTF-8 use `fallback_encoding`.

    Windows-1252 is the fallback because real corpora that are not UTF-8 are almost always Latin-1 /
    Windows-1252 (BBC News `sport/199.txt` holds one 0xA3 byte, "£"); the few bytes cp1252 leaves undefined
    become U+FFFD.
    """
    try:
        return DecodedText(data.decode("utf-8-sig"), False)
    except UnicodeDecodeError:
        return DecodedText(data.decode(fallback_encoding, errors="replace"), True)


def normalize_newlines(text: str) -> str:
    """CRLF and lone CR become LF."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_text(path: pathlib.Path, *, fallback_encoding: str = "cp1252") -> DecodedText:
    """Reads a text file: UTF-8 (BOM dropped) with `fallback_encoding` for non-UTF-8 files; newlines -> LF."""
    decoded = decode_bytes(path.read_bytes(), fallback_encoding=fallback_encoding)
    return DecodedText(normalize_newlines(decoded.text), decoded.fallback_used)


# --------------------------------------------------------------------------------------------------
# Verification.


def sha256_file(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def tree_digest(root: pathlib.Path, relative_paths: Iterable[str], prefix: str = "") -> str:
    """sha256 over the sorted lines "prefix + relative path<TAB>sha256 of the file" (verifies archives).

    Example:
        >>> tree_digest(pathlib.Path("shared/data/bbc_news"), ["bbc/tech/001.txt"])  # doctest: +SKIP
    """
    lines = sorted(f"{prefix}{relative}\t{sha256_file(root / relative)}\n" for relative in relative_paths)
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------------------------------
# Downloading.


@dataclass(frozen=True)
class RemoteFile:
    """One file to fetch: `url` -> `<dataset folder>/<target>`, checked against `sha256`."""

    url: str
    target: str
    sha256: str


@dataclass(frozen=True)
class RemoteArchive:
    """A zip to fetch and unpack into the dataset folder.

    Members under `member_prefix` are extracted (prefix removed) below `destination`. Verification, one of:
    `file_sha256` (relative path -> sha256: only those files are kept, each checked), or `files_glob` +
    `file_count` + `digest` (every matching file kept; their `tree_digest` must equal `digest`).
    """

    url: str
    member_prefix: str = ""
    destination: str = ""
    file_sha256: tuple[tuple[str, str], ...] = ()
    files_glob: str = ""
    file_count: int = 0
    digest: str = ""


def network_reachable(url: str, timeout: float = 3.0) -> bool:
    """True when a TCP connection to the host of `url` succeeds within `timeout` seconds."""
    if os.environ.get(OFFLINE_ENV, "").strip() not in ("", "0"):
        return False
    parsed = urllib.parse.urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def _get_file(url: str, directory: pathlib.Path, name: str, sha256: str | None) -> pathlib.Path:
    """Downloads `url` to `directory/name` with keras, checking `sha256` when given."""
    import keras

    directory.mkdir(parents=True, exist_ok=True)
    try:
        path = keras.utils.get_file(
            fname=name,
            origin=url,
            file_hash=sha256,
            hash_algorithm="sha256",
            cache_dir=str(directory),
            cache_subdir=".",
        )
    except ValueError as error:  # keras reports a checksum mismatch as ValueError
        raise ValueError(f"download of {url} failed verification: {error}") from None
    return pathlib.Path(path)


def download_files(dataset_dir: pathlib.Path, files: Sequence[RemoteFile]) -> None:
    """Fetches every missing file of `files` into `dataset_dir`, each verified against its sha256."""
    for remote in files:
        target = dataset_dir / remote.target
        if target.is_file() and sha256_file(target) == remote.sha256:
            continue
        path = _get_file(remote.url, target.parent, target.name, remote.sha256)
        # Verified here too: keras trusts an existing file whose hash matches, and falls back to
        # /tmp/.keras when the folder is not writable.
        if sha256_file(path) != remote.sha256:
            path.unlink(missing_ok=True)
            raise ValueError(f"`{remote.url}` gave a file whose sha256 is not {remote.sha256}; removed it.")
        if path.resolve() != target.resolve():
            shutil.move(str(path), str(target))


def download_archive(dataset_dir: pathlib.Path, archive: RemoteArchive) -> None:
    """Fetches a zip, extracts the members under `archive.member_prefix`, and verifies the extracted tree."""
    with tempfile.TemporaryDirectory(prefix="llm_tf_download_") as scratch:
        scratch_dir = pathlib.Path(scratch)
        zip_path = _get_file(archive.url, scratch_dir, "archive.zip", None)
        staging = scratch_dir / "staging"
        prefix = archive.member_prefix
        with zipfile.ZipFile(zip_path) as bundle:
            for member in bundle.infolist():
                if member.is_dir() or not member.filename.startswith(prefix):
                    continue
                relative = pathlib.PurePosixPath(member.filename[len(prefix) :])
                if relative.is_absolute() or ".." in relative.parts:
                    raise ValueError(
                        f"unsafe path {member.filename!r} in {archive.url}; refusing to extract."
                    )
                target = staging / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                with bundle.open(member) as source, open(target, "wb") as sink:
                    shutil.copyfileobj(source, sink)
        if archive.file_sha256:
            relative_files = []
            for relative, expected in archive.file_sha256:
                if not (staging / relative).is_file():
                    raise ValueError(f"{archive.url} has no {prefix}{relative}.")
                if sha256_file(staging / relative) != expected:
                    raise ValueError(f"{archive.url}: {relative} does not have the sha256 {expected}.")
                relative_files.append(relative)
        else:
            relative_files = sorted(
                p.relative_to(staging).as_posix() for p in staging.glob(archive.files_glob) if p.is_file()
            )
            if len(relative_files) != archive.file_count:
                raise ValueError(
                    f"{archive.url} unpacked {len(relative_files)} files matching {archive.files_glob!r}; "
                    f"expected {archive.file_count}."
                )
            found = tree_digest(staging, relative_files)
            if found != archive.digest:
                raise ValueError(
                    f"{archive.url}: the extracted files' digest is {found}, expected {archive.digest}; "
                    "the download is corrupt or a different version."
                )
        final = dataset_dir / archive.destination
        final.mkdir(parents=True, exist_ok=True)
        for relative in relative_files:
            (final / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(staging / relative), str(final / relative))


def ensure_dataset(
    *,
    name: str,
    data_dir: str | os.PathLike | None,
    folder: str,
    required: Sequence[str],
    files: Sequence[RemoteFile] = (),
    archives: Sequence[RemoteArchive] = (),
    download: bool = True,
    source_note: str = "",
) -> pathlib.Path:
    """Returns `<data dir>/<folder>` once every path in `required` exists there, downloading if needed.

    Args:
        name: the dataset's display name for messages.
        data_dir: the loader's `data_dir` argument.
        folder: the dataset's folder under the data directory.
        required: relative paths (files or folders) that must exist.
        files, archives: what to download when something is missing.
        download: allow downloading.
        source_note: extra text for the error message (the canonical source).

    Returns:
        The dataset folder.

    Raises:
        FileNotFoundError: when files are missing and cannot be downloaded.
    """
    root = resolve_data_dir(data_dir)
    dataset_dir = root / folder
    missing = [relative for relative in required if not (dataset_dir / relative).exists()]
    if not missing:
        return dataset_dir
    urls = [remote.url for remote in files] + [archive.url for archive in archives]
    reason = "downloading is disabled (download=False)"
    if download and urls:
        if network_reachable(urls[0]):
            for archive in archives:
                download_archive(dataset_dir, archive)
            if files:
                # Files land in a staging folder first and move into place only when all are verified, so
                # an interrupted download never looks like a complete dataset; a retry reuses what was verified.
                staging = dataset_dir.parent / f".{folder}.partial"
                download_files(staging, files)
                for remote in files:
                    target = dataset_dir / remote.target
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.move(str(staging / remote.target), str(target))
                shutil.rmtree(staging, ignore_errors=True)
            missing = [relative for relative in required if not (dataset_dir / relative).exists()]
            if not missing:
                return dataset_dir
            reason = "the download did not produce them"
        else:
            reason = f"the network is unreachable (or {OFFLINE_ENV}=1)"
    shown = ", ".join(missing[:5]) + (f", ... ({len(missing)} in all)" if len(missing) > 5 else "")
    raise FileNotFoundError(
        f"{name} not found: expected {shown} under {str(dataset_dir)!r}, and {reason}. "
        f"Download it from {urls[0] if urls else 'its source'}{' ' + source_note if source_note else ''} "
        f"into that folder, or pass data_dir= / set the {DATA_DIR_ENV} environment variable to a directory "
        f"that holds {folder}/."
    )
