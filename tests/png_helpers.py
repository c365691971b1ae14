"""Read a PNG's size without an imaging library, checking every chunk on the way (PNG spec, sec. 5)."""
import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data):
    """``(width, height)`` of the PNG bytes ``data``; raises ``ValueError`` for anything that is not a
    whole PNG (bad signature, a chunk whose CRC does not match, image data that does not inflate to
    height rows of the right length, or no IEND)."""
    if not data.startswith(SIGNATURE):
        raise ValueError("not a PNG signature")
    at, size, idat, ended = len(SIGNATURE), None, b"", False
    while at < len(data):
        length, kind = struct.unpack(">I4s", data[at:at + 8])
        body = data[at + 8:at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length:at + 12 + length])
        if zlib.crc32(kind + body) != crc:
            raise ValueError(f"chunk {kind!r} fails its CRC")
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            size = (width, height)
            channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
            row = 1 + (width * channels * depth + 7) // 8
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            ended = True
        at += 12 + length
    if size is None or not ended:
        raise ValueError("no IHDR or no IEND")
    if len(zlib.decompress(idat)) != row * size[1]:
        raise ValueError("image data of the wrong length")
    return size


def png_file_size(path):
    with open(path, "rb") as f:
        return png_size(f.read())
