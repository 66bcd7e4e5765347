"""Checks of audio containers that libsndfile does not make (private to :mod:`.io`).

libsndfile reports the length of an Ogg stream from its last *complete* page and the
length of an MP3 stream as an *estimate* from the first frame's header, so neither a cut
Ogg file nor a cut MP3 file shows up as "fewer frames than declared". These helpers
read the container itself:

- :func:`ogg_end_missing` finds the last complete Ogg page of the file (checked by its
  CRC) and tells whether the stream ends there or is cut inside the next page;
- :func:`mp3_truncation` walks the chain of MPEG audio frames and tells whether the
  last frame runs past the end of the file, or fewer frames are there than a
  Xing/Info/VBRI header declares.

Both return ``None`` when the file looks complete, or a sentence saying why not (a
:class:`Suspect` one where the signs do not prove a cut). They never reject a file
they cannot parse: that is the decoder's job.
"""

import mmap
import os

# --------------------------------------------------------------------------- Ogg
_OGG_TAIL = 2 * 65307  # two pages of the largest size: the last complete page is in it
_EOS = 0x04


class Suspect(str):
    """A reason to doubt that a file is complete, but no proof of a cut."""


def _ogg_crc_table():
    table = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
        table.append(r & 0xFFFFFFFF)
    return tuple(table)


_CRC_TABLE = _ogg_crc_table()


def _ogg_crc(page):
    """The Ogg page checksum (CRC-32, polynomial 0x04C11DB7, not reflected)."""
    crc = 0
    for b in page:
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC_TABLE[((crc >> 24) ^ b) & 0xFF]
    return crc


def _ogg_page_at(buf, i):
    """(end, header_type) of a CRC-valid Ogg page starting at ``buf[i]``, else None."""
    if len(buf) < i + 27 or buf[i + 4] != 0:
        return None
    nseg = buf[i + 26]
    if nseg == 0 or len(buf) < i + 27 + nseg:
        return None
    end = i + 27 + nseg + sum(buf[i + 27 : i + 27 + nseg])
    if end > len(buf):
        return None
    page = bytearray(buf[i:end])
    stored = int.from_bytes(page[22:26], "little")
    page[22:26] = b"\0\0\0\0"
    if _ogg_crc(page) != stored:
        return None
    return end, buf[i + 5]


def ogg_end_missing(fh, size):
    """Why the Ogg file ``fh`` of ``size`` bytes is cut short, or None.

    The file is cut when the bytes after its last complete page begin an Ogg page
    that does not end: a cut inside a page, which is where a cut at an arbitrary byte
    lands. A complete last page without the end-of-stream flag gives a
    :class:`Suspect` reason (the caller warns): the open collections hold such files,
    complete as distributed (libVorbis of 2001), but a cut exactly between two pages
    looks the same.
    """
    start = max(0, size - _OGG_TAIL)
    fh.seek(start)
    tail = fh.read(size - start)
    i = tail.rfind(b"OggS")
    while i >= 0:
        page = _ogg_page_at(tail, i)
        if page is not None:
            end, header_type = page
            rest = tail[end : end + 4]
            if header_type & _EOS:
                return None
            if rest and b"OggS".startswith(rest):
                return (
                    f"the Ogg stream stops inside a page ({len(tail) - end} bytes "
                    "of a page after the last complete one, and no end-of-stream page)"
                )
            return Suspect("its last Ogg page lacks the end-of-stream flag")
        i = tail.rfind(b"OggS", 0, i)
    return None  # no page in the tail: not ours to judge


# --------------------------------------------------------------------------- MP3
_MPEG_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
_KBPS = {
    (3, 3): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (3, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (3, 1): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (2, 3): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (2, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_KBPS[(2, 1)] = _KBPS[(2, 2)]
for _layer in (1, 2, 3):
    _KBPS[(0, _layer)] = _KBPS[(2, _layer)]
_SEARCH = 1 << 16  # how far to look for the first frame or to resynchronise


def _frame(buf, i):
    """((version, layer, rate index), frame length) of an MPEG audio header at i."""
    if i + 4 > len(buf) or buf[i] != 0xFF or buf[i + 1] & 0xE0 != 0xE0:
        return None
    version, layer = (buf[i + 1] >> 3) & 3, (buf[i + 1] >> 1) & 3
    bitrate, rate, pad = buf[i + 2] >> 4, (buf[i + 2] >> 2) & 3, (buf[i + 2] >> 1) & 1
    if version == 1 or layer == 0 or bitrate in (0, 15) or rate == 3:
        return None  # reserved values; free format (0) has no computable length
    kbps = _KBPS[(version, layer)][bitrate]
    hz = _MPEG_RATES[version][rate]
    if layer == 3:  # layer I
        length = (12000 * kbps // hz + pad) * 4
    else:
        coef = 72 if (layer == 1 and version != 3) else 144
        length = coef * 1000 * kbps // hz + pad
    return (version, layer, rate), length


def _first_frame(buf, start):
    """Offset and kind of the first frame confirmed by the frame after it."""
    stop = min(len(buf), start + _SEARCH)
    i = buf.find(b"\xff", start, stop)
    while i >= 0:
        head = _frame(buf, i)
        if head is not None:
            nxt = _frame(buf, i + head[1])
            if nxt is not None and nxt[0] == head[0]:
                return i, head[0]
        i = buf.find(b"\xff", i + 1, stop)
    return None, None


def _audio_end(buf):
    """Where the MPEG frames end: before ID3v1, APEv2 and Lyrics3 tags."""
    end = len(buf)
    for _ in range(4):
        if end >= 128 and buf[end - 128 : end - 125] == b"TAG":
            end -= 128
            if end >= 227 and buf[end - 227 : end - 223] == b"TAG+":
                end -= 227
        elif end >= 32 and buf[end - 32 : end - 24] == b"APETAGEX":
            size = int.from_bytes(buf[end - 20 : end - 16], "little")
            has_header = buf[end - 9] & 0x80
            end -= size + (32 if has_header else 0)
        elif end >= 15 and buf[end - 9 : end] == b"LYRICS200":
            digits = bytes(buf[end - 15 : end - 9])
            end -= 15 + (int(digits) if digits.isdigit() else 0)
        else:
            break
    return max(end, 0)


def _id3v2_end(buf):
    i = 0
    while buf[i : i + 3] == b"ID3" and i + 10 <= len(buf):
        size = 0
        for b in buf[i + 6 : i + 10]:
            size = (size << 7) | (b & 0x7F)
        i += 10 + size + (10 if buf[i + 5] & 0x10 else 0)
    return i


def _declared_frames(buf, i, kind):
    """Frame count of a Xing/Info or VBRI header in the frame at i, else None."""
    version, layer, _ = kind
    if layer != 1:
        return None
    mono = (buf[i + 3] >> 6) == 3
    side = (17 if mono else 32) if version == 3 else (9 if mono else 17)
    x = i + 4 + side
    if buf[x : x + 4] in (b"Xing", b"Info") and buf[x + 7] & 1:
        return int.from_bytes(buf[x + 8 : x + 12], "big")
    if buf[i + 36 : i + 40] == b"VBRI":
        return int.from_bytes(buf[i + 50 : i + 54], "big")
    return None


def _walk(buf, pos, end, kind):
    """Count the frames from ``pos``; (count, offset and length of an overrunning frame)."""
    count, overrun = 0, None
    while pos < end:
        head = _frame(buf, pos)
        if head is not None and head[0] == kind:
            if pos + head[1] > end:
                overrun = (pos, head[1])
                break
            count += 1
            pos += head[1]
            continue
        # not a frame: resynchronise on a frame that the next one confirms
        nxt = None
        j = buf.find(b"\xff", pos + 1, min(end, pos + _SEARCH))
        while j >= 0:
            head = _frame(buf, j)
            if head is not None and head[0] == kind and j + head[1] <= end:
                after = _frame(buf, j + head[1])
                if j + head[1] == end or (after is not None and after[0] == kind):
                    nxt = j
                    break
            j = buf.find(b"\xff", j + 1, min(end, pos + _SEARCH))
        if nxt is None:
            break  # trailing data that is no frame (padding, an unknown tag)
        pos = nxt
    return count, overrun


def mp3_truncation(fh, size, *, slack=2):
    """Why the MP3 file ``fh`` of ``size`` bytes is cut short, or None.

    A file is cut when its last frame runs past the end of the file (a cut inside a
    frame), or when it holds fewer frames than its Xing/Info/VBRI header declares
    (more than ``slack`` frames fewer). A CBR file without such a header that is cut
    exactly between two frames cannot be told from a complete one.
    """
    if size < 8:
        return None
    with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        return _mp3_truncation(buf, slack)


def mp3_truncation_bytes(data, *, slack=2):
    """:func:`mp3_truncation` for the bytes of a file (a file-like source)."""
    return _mp3_truncation(bytes(data), slack)


def _mp3_truncation(buf, slack):
    first, kind = _first_frame(buf, _id3v2_end(buf))
    if first is None:
        return None
    end = _audio_end(buf)
    if end <= first:
        return None  # tags that claim the whole file: not ours to judge
    count, overrun = _walk(buf, first, end, kind)
    if overrun is not None:
        pos, length = overrun
        return (
            f"its last MPEG frame (at byte {pos}, {length} bytes) runs past the end "
            f"of the audio data (byte {end})"
        )
    declared = _declared_frames(buf, first, kind)
    if declared is not None and count - 1 + slack < declared:
        return f"it holds {count - 1} MPEG frames of the {declared} its Xing/VBRI header declares"
    return None


def file_size(fh):
    """Size in bytes of a seekable binary file object; leaves its position alone."""
    pos = fh.tell()
    try:
        return fh.seek(0, os.SEEK_END)
    finally:
        fh.seek(pos)
