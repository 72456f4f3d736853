"""Resumable, verified HTTP downloads for :mod:`deg.datasets` (stdlib + tqdm only).

The bytes go to ``<dest>.part`` and reach ``dest`` only by one ``os.replace`` after every check
passed, so a reader never sees a half-written or unverified dataset file.
"""

import hashlib
import http.client
import os
import re
import urllib.error
import urllib.request
from pathlib import Path

_CHUNK = 1 << 20
# Some dataset hosts answer Python's default agent with 403, so say who is asking.
_USER_AGENT = "deg-datasets/0.1 (+https://ann-benchmarks.com dataset loader; python urllib)"
_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)")


class DownloadError(OSError):
    """A download failed, came short, or did not match the expected size or checksum."""


def sha256_file(path):
    """Hex sha256 digest of a file, read in 1 MiB chunks.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    str
        64 lowercase hex digits.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(url, dest, *, size=None, sha256=None, progress=True, timeout=60.0):
    """Download ``url`` to ``dest``, resuming a partial ``<dest>.part`` with an HTTP Range request.

    Parameters
    ----------
    url : str
        Any ``http(s)://`` (or ``file://``) URL; tests point it at a local server.
    dest : str or os.PathLike
        Final path. Its folder is created if needed.
    size : int, optional
        Expected size in bytes (e.g. from the registry). A server announcing another size is
        refused before any byte is written.
    sha256 : str, optional
        Expected hex digest, checked once the file is complete.
    progress : bool
        Show a tqdm progress bar.
    timeout : float
        Socket timeout in seconds.

    Returns
    -------
    pathlib.Path
        ``dest``.

    Raises
    ------
    DownloadError
        On HTTP errors, a connection lost mid-way or a body shorter than announced (the
        ``.part`` file is kept so the next call resumes), and on a size or checksum mismatch
        (the ``.part`` file is deleted: resuming a wrong file cannot help). ``dest`` is never
        created in any of these cases.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:
        part.unlink()  # longer than the real file: not a prefix of it
        have = 0
    if size is None or have < size:
        total = _fetch(url, part, have, size, progress, timeout, dest.name)
    else:
        total = size  # a previous run got every byte but stopped before the checks
    got = part.stat().st_size
    if total is not None and got < total:
        raise DownloadError(
            f"download of {url} is truncated: {got} of {total} bytes; kept "
            f"{part}, call again to resume"
        )
    if (total is not None and got > total) or (size is not None and got != size):
        part.unlink()
        raise DownloadError(
            f"download of {url} has {got} bytes, expected "
            f"{size if size is not None else total}; deleted {part}"
        )
    if sha256 is not None:
        digest = sha256_file(part)
        if digest != sha256.lower():
            part.unlink()
            raise DownloadError(
                f"download of {url} has sha256 {digest}, expected {sha256}; deleted {part}"
            )
    os.replace(part, dest)
    _fsync_dir(dest.parent)
    return dest


def _fetch(url, part, have, size, progress, timeout, label):
    """Append the rest of ``url`` to ``part`` (``have`` bytes long); return the announced total
    size, or None when the server does not say."""
    headers = {"User-Agent": _USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        response = urllib.request.urlopen(
            urllib.request.Request(url, headers=headers), timeout=timeout
        )
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # our part file is not shorter than the remote file
            total = _total_from_range(e.headers.get("Content-Range"))
            e.close()
            if total == have:
                return total
            part.unlink()
            raise DownloadError(
                f"{part} does not match {url} (HTTP 416); deleted it, call again to start over"
            ) from None
        e.close()
        raise DownloadError(f"download of {url} failed: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        raise DownloadError(f"download of {url} failed: {getattr(e, 'reason', e)}") from None
    with response:
        status = getattr(response, "status", 200)
        length = response.headers.get("Content-Length")
        length = int(length) if length is not None else None
        if have and status == 206:
            match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
            if match is None or match.group(1) is None or int(match.group(1)) != have:
                raise DownloadError(
                    f"{url} answered the resume from byte {have} with "
                    f"Content-Range {response.headers.get('Content-Range')!r}"
                )
            total = _total_from_range(match.group(0))
            if total is None and length is not None:
                total = have + length
        else:
            have = 0  # no range asked for, or the server ignored it: start over
            total = length
        if size is not None and total is not None and total != size:
            raise DownloadError(
                f"{url} announces {total} bytes but {size} are expected; not downloading it"
            )
        _stream(response, part, have, total, progress, label)
    return total


def _total_from_range(header):
    match = _CONTENT_RANGE.fullmatch((header or "").strip())
    return int(match.group(3)) if match and match.group(3) != "*" else None


def _stream(response, part, have, total, progress, label):
    from tqdm.auto import tqdm

    bar = tqdm(
        total=total,
        initial=have,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=label,
        disable=not progress,
    )
    try:
        with open(part, "ab" if have else "wb") as f:
            try:
                while chunk := response.read(_CHUNK):
                    f.write(chunk)
                    bar.update(len(chunk))
            finally:  # keep what arrived, durably, so the next call can resume from it
                f.flush()
                os.fsync(f.fileno())
    except (OSError, http.client.HTTPException) as e:
        raise DownloadError(
            f"download into {part} interrupted ({type(e).__name__}: {e}); "
            f"kept it, call again to resume"
        ) from None
    finally:
        bar.close()


def _fsync_dir(folder):
    """Make a rename durable; some platforms cannot open folders, which is harmless."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
