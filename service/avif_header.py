"""The largest frame an AVIF's AV1 stream can hold, read from its sequence header: what its `ispe` box may claim.

libavif trusts the `ispe` (image spatial extents) box for the image's size and upscales a smaller AV1 frame to
it, so a 256x192 picture whose `ispe` says 6000x6500 decodes to 39 MP of invented pixels. The AV1 sequence header
(`max_frame_width_minus_1`, `max_frame_height_minus_1`) bounds every frame the stream holds; `decode_upload`
refuses an `ispe` larger than that. Reached by ISO-BMFF boxes: `meta` -> `pitm` (the primary item) -> `iinf` (its
type: only a coded `av01` item is checked; a `grid` is made of other items) -> `iloc` (where its bytes are) -> the
first OBUs there. Anything this reader does not understand returns None and leaves the file to the decoder.
"""

from __future__ import annotations


class _Malformed(Exception):
    pass


def _boxes(data: bytes, start: int, end: int) -> dict[bytes, tuple[int, int]]:
    """Box type -> (payload start, payload end) of the first box of each type in data[start:end]."""
    found: dict[bytes, tuple[int, int]] = {}
    pos = start
    while pos + 8 <= end:
        size, kind = int.from_bytes(data[pos : pos + 4], "big"), data[pos + 4 : pos + 8]
        header = 8
        if size == 1:
            size, header = int.from_bytes(data[pos + 8 : pos + 16], "big"), 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise _Malformed(kind)
        found.setdefault(kind, (pos + header, pos + size))
        pos += size
    return found


class _Reader:
    def __init__(self, data: bytes, pos: int, end: int) -> None:
        self.data, self.pos, self.end = data, pos, end

    def uint(self, nbytes: int) -> int:
        if self.pos + nbytes > self.end:
            raise _Malformed("short box")
        value = int.from_bytes(self.data[self.pos : self.pos + nbytes], "big")
        self.pos += nbytes
        return value


class _Bits:
    def __init__(self, data: bytes) -> None:
        self.data, self.bit = data, 0

    def read(self, n: int) -> int:
        value = 0
        for _ in range(n):
            if self.bit >= 8 * len(self.data):
                raise _Malformed("short sequence header")
            value = (value << 1) | (self.data[self.bit // 8] >> (7 - self.bit % 8)) & 1
            self.bit += 1
        return value


def _primary_item_bytes(data: bytes) -> bytes | None:
    top = _boxes(data, 0, len(data))
    if b"meta" not in top:
        return None
    meta_start, meta_end = top[b"meta"]
    meta = _boxes(data, meta_start + 4, meta_end)  # meta is a full box: version and flags first
    if not {b"pitm", b"iinf", b"iloc"} <= set(meta):
        return None
    pitm = _Reader(data, *meta[b"pitm"])
    version = pitm.uint(1)
    pitm.uint(3)
    primary = pitm.uint(2 if version == 0 else 4)

    iinf = _Reader(data, *meta[b"iinf"])
    version = iinf.uint(1)
    iinf.uint(3)
    iinf.uint(2 if version == 0 else 4)
    item_type = None
    for kind, (start, end) in _all_boxes(data, iinf.pos, iinf.end):
        if kind != b"infe":
            continue
        infe = _Reader(data, start, end)
        version = infe.uint(1)
        infe.uint(3)
        if version < 2:
            return None
        item_id = infe.uint(2 if version == 2 else 4)
        infe.uint(2)  # protection index
        if item_id == primary:
            item_type = data[infe.pos : infe.pos + 4]
            break
    if item_type != b"av01":
        return None

    iloc = _Reader(data, *meta[b"iloc"])
    version = iloc.uint(1)
    iloc.uint(3)
    sizes = iloc.uint(1)
    offset_size, length_size = sizes >> 4, sizes & 15
    sizes = iloc.uint(1)
    base_offset_size, index_size = sizes >> 4, (sizes & 15 if version in (1, 2) else 0)
    for _ in range(iloc.uint(2 if version < 2 else 4)):
        item_id = iloc.uint(2 if version < 2 else 4)
        method = iloc.uint(2) & 15 if version in (1, 2) else 0
        iloc.uint(2)  # data reference index
        base = iloc.uint(base_offset_size)
        extents = []
        for _ in range(iloc.uint(2)):
            iloc.uint(index_size)
            extents.append((base + iloc.uint(offset_size), iloc.uint(length_size)))
        if item_id == primary:
            if method != 0 or not extents:  # in an idat box or elsewhere: not read here
                return None
            offset, length = extents[0]
            return data[offset : offset + (length or len(data))][:4096]  # the sequence header comes first
    return None


def _all_boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, tuple[int, int]]]:
    out = []
    pos = start
    while pos + 8 <= end:
        size = int.from_bytes(data[pos : pos + 4], "big")
        if size < 8 or pos + size > end:
            raise _Malformed("child box")
        out.append((data[pos + 4 : pos + 8], (pos + 8, pos + size)))
        pos += size
    return out


def _leb128(data: bytes, pos: int) -> tuple[int, int]:
    value = 0
    for i in range(8):
        if pos >= len(data):
            raise _Malformed("short leb128")
        byte = data[pos]
        value |= (byte & 0x7F) << (7 * i)
        pos += 1
        if not byte & 0x80:
            break
    return value, pos


def _sequence_header(obus: bytes) -> bytes | None:
    pos = 0
    while pos < len(obus):
        header = obus[pos]
        obu_type, has_extension, has_size = (header >> 3) & 15, header >> 2 & 1, header >> 1 & 1
        pos += 1 + has_extension
        if not has_size:
            return obus[pos:] if obu_type == 1 else None
        size, pos = _leb128(obus, pos)
        if obu_type == 1:
            return obus[pos : pos + size]
        pos += size
    return None


def _max_frame_size(header: bytes) -> tuple[int, int]:
    """AV1 spec 5.5.1, sequence_header_obu(), up to max_frame_height_minus_1."""
    bits = _Bits(header)
    bits.read(3)  # seq_profile
    bits.read(1)  # still_picture
    if bits.read(1):  # reduced_still_picture_header
        bits.read(5)  # seq_level_idx[0]
    else:
        decoder_model_info_present = False
        buffer_delay_length = 0
        if bits.read(1):  # timing_info_present_flag
            bits.read(32)  # num_units_in_display_tick
            bits.read(32)  # time_scale
            if bits.read(1):  # equal_picture_interval: num_ticks_per_picture_minus_1, uvlc()
                zeros = 0
                while not bits.read(1):
                    zeros += 1
                    if zeros >= 32:
                        raise _Malformed("uvlc")
                bits.read(zeros)
            decoder_model_info_present = bool(bits.read(1))
            if decoder_model_info_present:
                buffer_delay_length = bits.read(5) + 1
                bits.read(32)  # num_units_in_decoding_tick
                bits.read(5)  # buffer_removal_time_length_minus_1
                bits.read(5)  # frame_presentation_time_length_minus_1
        initial_display_delay_present = bits.read(1)
        for _ in range(bits.read(5) + 1):  # operating points
            bits.read(12)  # operating_point_idc
            if bits.read(5) > 7:  # seq_level_idx
                bits.read(1)  # seq_tier
            if decoder_model_info_present and bits.read(1):  # decoder_model_present_for_this_op
                bits.read(2 * buffer_delay_length + 1)  # decoder/encoder buffer delay, low_delay_mode_flag
            if initial_display_delay_present and bits.read(1):
                bits.read(4)  # initial_display_delay_minus_1
    width_bits, height_bits = bits.read(4) + 1, bits.read(4) + 1
    return bits.read(width_bits) + 1, bits.read(height_bits) + 1


def avif_max_frame_size(data: bytes) -> tuple[int, int] | None:
    """(max frame width, max frame height) of the primary item's AV1 stream, or None where it cannot be read."""
    try:
        obus = _primary_item_bytes(data)
        header = _sequence_header(obus) if obus else None
        return _max_frame_size(header) if header else None
    except _Malformed:
        return None
