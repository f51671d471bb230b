"""ImageDecoder (issue 9): ductile's decoders against onnx's reference implementation (Pillow)
on images generated here, in every format and pixel format, at odd sizes and in the variants
each format has (palettes, gray, alpha, progressive and subsampled JPEG, compressed TIFF,
lossless WebP, interlaced PNG, plain PNM); the bytes as a graph input (an eager engine) and as
a constant; and the refusals' exact messages.

onnx's reference returns np.array(Image.open(...)) for RGB and BGR, which has the *file's*
channels (2-D for a gray file, 4 channels with alpha); ImageDecoder's output is [H, W, 3]
whatever the file holds, so where the file is not RGB the expected RGB is Pillow's
convert("RGB") of the same image. Grayscale is the reference's convert("L") in every case."""
import io
import struct
import zlib

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from ductile import Builder, Error

PIL = pytest.importorskip("PIL.Image")


def model(pixel_format="RGB", const=None):
    node = helper.make_node("ImageDecoder", ["data"], ["out"], pixel_format=pixel_format, name="dec")
    out = [helper.make_tensor_value_info("out", TensorProto.UINT8, ["h", "w", "c"])]
    if const is None:
        g = helper.make_graph([node], "g", [helper.make_tensor_value_info("data", TensorProto.UINT8, ["n"])], out)
    else:
        g = helper.make_graph([node], "g", [], out, [numpy_helper.from_array(const, "data")])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)], ir_version=9)


def build(m, n=None):
    b = Builder()
    net = b.parse_onnx_bytes(m.SerializeToString())
    cfg = b.create_builder_config()
    if n is not None:
        prof = b.create_optimization_profile()
        prof.set_shape("data", (1,), (n,), (1 << 22,))
        cfg.add_optimization_profile(prof)
    return b.build_engine(net, cfg)


def decode(data, pixel_format="RGB"):
    return build(model(pixel_format), len(data)).create_execution_context().run({"data": data})["out"]


def reference(data, pixel_format):
    return ReferenceEvaluator(model(pixel_format)).run(None, {"data": data})[0]


def encode(img, fmt, **kw):
    f = io.BytesIO()
    img.save(f, format=fmt, **kw)
    return np.frombuffer(f.getvalue(), np.uint8)


def picture(h, w, seed=0):
    """Gradients plus noise: smooth enough that lossy codecs do real work, noisy enough that
    an off-by-one anywhere shows."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    a = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) * 7 % 256], -1)
    return (a + rng.integers(0, 40, (h, w, 3))).clip(0, 255).astype(np.uint8)


def assert_decodes_like_pillow(data):
    img = PIL.open(io.BytesIO(data.tobytes()))
    rgb = np.array(img.convert("RGB"))
    want = {"RGB": rgb, "BGR": rgb[:, :, ::-1], "Grayscale": reference(data, "Grayscale")}
    if img.mode == "RGB":  # the reference itself, where it gives [H, W, 3]
        want["RGB"], want["BGR"] = reference(data, "RGB"), reference(data, "BGR")
    for pf, w in want.items():
        got = decode(data, pf)
        assert got.dtype == np.uint8 and got.shape == w.shape, (pf, got.shape, w.shape)
        assert np.array_equal(got, w), (pf, int(np.abs(got.astype(int) - w).max()), int((got != w).sum()))


FORMATS = ["BMP", "JPEG", "JPEG2000", "PNG", "PPM", "TIFF", "WEBP"]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("hw", [(1, 1), (17, 23), (64, 37)])
def test_rgb_images_decode_like_the_reference_in_every_pixel_format(fmt, hw):
    assert_decodes_like_pillow(encode(PIL.fromarray(picture(*hw)), fmt))


def rgb_img():
    return PIL.fromarray(picture(31, 45, seed=1))


def rgba_img():
    """Alpha of every value, so a decoder that multiplies colours by it shows."""
    return PIL.fromarray(np.concatenate([picture(31, 45, seed=1), picture(31, 45, seed=2)[:, :, 1:2]], 2), "RGBA")


def animation(**kw):
    """Three frames; ImageDecoder gives the first, as the reference (Pillow) does."""
    frames = [PIL.fromarray(picture(31, 45, seed=s)) for s in (10, 11, 12)]
    f = io.BytesIO()
    frames[0].save(f, format="WEBP", save_all=True, append_images=frames[1:], duration=100, **kw)
    return np.frombuffer(f.getvalue(), np.uint8)


def cmyk_img():
    """Pillow's RGB -> CMYK leaves K at 0: K here is a channel of its own."""
    return PIL.fromarray(np.concatenate([picture(31, 45, 8), picture(31, 45, 9)[:, :, :1]], 2), "CMYK")


VARIANTS = {
    "png_gray": lambda: encode(rgb_img().convert("L"), "PNG"),
    "png_bilevel": lambda: encode(rgb_img().convert("1"), "PNG"),
    "png_palette": lambda: encode(rgb_img().convert("P", palette=PIL.Palette.ADAPTIVE), "PNG"),
    "png_palette_transparency": lambda: encode(rgb_img().convert("P", palette=PIL.Palette.ADAPTIVE), "PNG",
                                               transparency=3),
    "png_gray_transparency": lambda: encode(rgb_img().convert("L"), "PNG", transparency=7),
    "png_rgb_transparency": lambda: encode(rgb_img(), "PNG", transparency=(1, 2, 3)),
    "png_rgba": lambda: encode(rgba_img(), "PNG"),
    "png_gray_alpha": lambda: encode(rgba_img().convert("LA"), "PNG"),
    "jpeg_gray": lambda: encode(rgb_img().convert("L"), "JPEG"),
    "jpeg_progressive": lambda: encode(rgb_img(), "JPEG", progressive=True, quality=90),
    "jpeg_444": lambda: encode(rgb_img(), "JPEG", subsampling=0),
    "jpeg_422": lambda: encode(rgb_img(), "JPEG", subsampling=1),
    "jpeg_cmyk": lambda: encode(cmyk_img(), "JPEG", quality=95),
    "bmp_palette16": lambda: encode(rgb_img().convert("P", palette=PIL.Palette.ADAPTIVE, colors=16), "BMP"),
    "bmp_palette256": lambda: encode(rgb_img().convert("P", palette=PIL.Palette.ADAPTIVE), "BMP"),
    "bmp_bilevel": lambda: encode(rgb_img().convert("1"), "BMP"),
    "bmp_gray": lambda: encode(rgb_img().convert("L"), "BMP"),
    "bmp_rgba": lambda: encode(rgba_img(), "BMP"),
    "pgm": lambda: encode(rgb_img().convert("L"), "PPM"),
    "pbm": lambda: encode(rgb_img().convert("1"), "PPM"),
    "tiff_lzw": lambda: encode(rgb_img(), "TIFF", compression="tiff_lzw"),
    "tiff_deflate": lambda: encode(rgb_img(), "TIFF", compression="tiff_adobe_deflate"),
    "tiff_packbits": lambda: encode(rgb_img(), "TIFF", compression="packbits"),
    "tiff_jpeg": lambda: encode(rgb_img(), "TIFF", compression="jpeg"),
    "tiff_gray": lambda: encode(rgb_img().convert("L"), "TIFF"),
    "tiff_palette": lambda: encode(rgb_img().convert("P"), "TIFF"),
    "tiff_group4": lambda: encode(rgb_img().convert("1"), "TIFF", compression="group4"),
    "tiff_rgba": lambda: encode(rgba_img(), "TIFF"),
    "tiff_rgba_lzw": lambda: encode(rgba_img(), "TIFF", compression="tiff_lzw"),
    "tiff_gray_alpha": lambda: encode(rgba_img().convert("LA"), "TIFF"),
    "tiff_cmyk": lambda: encode(cmyk_img(), "TIFF"),
    "webp_lossless": lambda: encode(rgb_img(), "WEBP", lossless=True),
    "webp_alpha": lambda: encode(rgba_img(), "WEBP"),
    "webp_alpha_lossless": lambda: encode(rgba_img(), "WEBP", lossless=True),
    "webp_animated": lambda: animation(),
    "webp_animated_lossless": lambda: animation(lossless=True),
    "jpeg2000_gray": lambda: encode(rgb_img().convert("L"), "JPEG2000"),
    "jpeg2000_rgba": lambda: encode(rgba_img(), "JPEG2000"),
    "jpeg2000_irreversible": lambda: encode(rgb_img(), "JPEG2000", irreversible=True),
    "j2k_codestream": lambda: encode(rgb_img(), "JPEG2000", no_jp2=True),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_format_variants_decode_like_pillow(variant):
    assert_decodes_like_pillow(VARIANTS[variant]())


def png(h, w, color_type, depth, rows, interlace=False):
    """A PNG written here: Pillow writes neither interlaced nor 16-bit RGB files. rows(y0, dy,
    x0, dx) gives the raw scanlines of a (sub)image; interlaced files use Adam7's passes."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    passes = [(0, 8, 0, 8), (0, 8, 4, 8), (4, 8, 0, 4), (0, 4, 2, 4), (2, 4, 0, 2), (0, 2, 1, 2), (1, 2, 0, 1)] \
        if interlace else [(0, 1, 0, 1)]
    raw = b"".join(b"".join(b"\0" + r for r in rows(*p)) for p in passes)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, int(interlace))
    return np.frombuffer(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) +
                         chunk(b"IEND", b""), np.uint8)


def test_interlaced_png_decodes_like_pillow():
    a = picture(13, 11, seed=3)
    data = png(13, 11, 2, 8, lambda y0, dy, x0, dx: [a[y, x0::dx].tobytes() for y in range(y0, 13, dy)]
               if x0 < 11 else [], interlace=True)
    assert np.array_equal(np.array(PIL.open(io.BytesIO(data.tobytes()))), a)  # the file is what we meant
    assert_decodes_like_pillow(data)


def test_16_bit_rgb_png_keeps_the_high_byte_as_pillow_does():
    a = picture(9, 14, seed=4).astype(np.uint16) * 257 + np.arange(14, dtype=np.uint16)[None, :, None]
    data = png(9, 14, 2, 16, lambda *_: [r.astype(">u2").tobytes() for r in a])
    assert_decodes_like_pillow(data)
    assert np.array_equal(decode(data), (a >> 8).astype(np.uint8))


def test_16_bit_gray_png_keeps_the_high_byte_where_pillow_clips():
    """Pillow opens it as I;16 and its convert() clips values to 255; ImageDecoder's output is
    8-bit image data, so the sample's high byte, as for 16-bit RGB."""
    g = (picture(9, 14, seed=5)[:, :, 0].astype(np.uint16) * 257 + 3)
    data = png(9, 14, 0, 16, lambda *_: [r.astype(">u2").tobytes() for r in g])
    hi = (g >> 8).astype(np.uint8)
    assert np.array_equal(decode(data), np.repeat(hi[:, :, None], 3, axis=2))
    assert np.array_equal(decode(data, "Grayscale"), hi[:, :, None])


def bmp(w, h, bpp, rows, header=40, compression=0, masks=None, palette=b"", colors=0, top_down=False):
    """A BMP written here, in the layouts Pillow does not write. rows: the rows as stored
    (bottom-up unless top_down), unpadded."""
    stride = (w * bpp + 31) // 32 * 4
    pix = b"".join(r + bytes(stride - len(r)) for r in rows)
    if header == 12:
        info = struct.pack("<IHHHH", 12, w, h, 1, bpp)
    else:
        info = struct.pack("<IiiHHIIiiII", header, w, -h if top_down else h, 1, bpp, compression, len(pix), 2835,
                           2835, colors, 0)
        if header > 40:
            info += struct.pack("<IIII", *(list(masks or []) + [0] * 4)[:4]) + bytes(header - 56)
    extra = b"" if header > 40 or masks is None else struct.pack("<" + "I" * len(masks), *masks)
    off = 14 + len(info) + len(extra) + len(palette)
    return np.frombuffer(b"BM" + struct.pack("<IHHI", off + len(pix), 0, 0, off) + info + extra + palette + pix,
                         np.uint8)


def nibbles(r):
    r = list(r) + [0] * (len(r) % 2)
    return bytes((r[i] << 4) | r[i + 1] for i in range(0, len(r), 2))


def bmp_variants():
    rng = np.random.default_rng(7)
    w, h = 5, 3
    v16 = rng.integers(0, 65536, (h, w)).astype("<u2")
    v32 = rng.integers(0, 2**32, (h, w), dtype=np.uint64).astype("<u4")
    idx = rng.integers(0, 6, (h, w))
    pal4 = b"".join(bytes([b, g, r, 0]) for r, g, b in rng.integers(0, 256, (6, 3)))
    pal3 = b"".join(bytes([b, g, r]) for r, g, b in rng.integers(0, 256, (16, 3)))
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    return {
        "16_bit_555": bmp(w, h, 16, [r.tobytes() for r in v16]),
        "16_bit_565_masks": bmp(w, h, 16, [r.tobytes() for r in v16], compression=3, masks=[0xf800, 0x07e0, 0x001f]),
        "32_bit_masks_top_down": bmp(w, h, 32, [r.tobytes() for r in v32], compression=3,
                                     masks=[0xff0000, 0xff00, 0xff], top_down=True),
        "32_bit_v4_header_alpha_mask": bmp(w, h, 32, [r.tobytes() for r in v32], header=108, compression=3,
                                           masks=[0xff0000, 0xff00, 0xff, 0xff000000]),
        "32_bit_bgrx": bmp(w, h, 32, [r.tobytes() for r in v32]),
        "4_bit_fewer_colours": bmp(w, h, 4, [nibbles(r) for r in idx], palette=pal4, colors=6),
        "os2_core_24_bit": bmp(w, h, 24, [r[:, ::-1].tobytes() for r in rgb], header=12),
        "os2_core_4_bit": bmp(w, h, 4, [nibbles(r) for r in idx], header=12, palette=pal3),
        "v5_header_24_bit": bmp(w, h, 24, [r[:, ::-1].tobytes() for r in rgb], header=124),
    }


@pytest.mark.parametrize("variant", sorted(bmp_variants()))
def test_bmp_layouts_pillow_does_not_write_decode_like_pillow(variant):
    assert_decodes_like_pillow(bmp_variants()[variant])


def test_plain_pnm_decodes_like_pillow_with_comments_and_odd_maxvals():
    assert_decodes_like_pillow(np.frombuffer(b"P3\n# a comment\n3 2\n6\n0 1 2  3 4 5 6 0 1\n2 3 4 5 6 0 1 2 3\n"
                                             b"4 5 6 0 1 2 3 4 5\n", np.uint8))
    assert_decodes_like_pillow(np.frombuffer(b"P2 4 1 100 0 49 50 100\n", np.uint8))
    assert_decodes_like_pillow(np.frombuffer(b"P1\n5 2\n0 1 1 0 1\n1 0 0 1 0\n", np.uint8))
    raw16 = np.array([0, 0x80ff, 0xff00, 0xffff, 0x7f80, 1], ">u2").tobytes()
    assert_decodes_like_pillow(np.frombuffer(b"P6\n2 1\n65535\n" + raw16, np.uint8))


def test_pgm_deeper_than_8_bits_is_scaled_where_pillow_keeps_32_bit_values():
    """Pillow opens a graymap with maxval > 255 as mode I (the raw values; convert() clips
    them); ImageDecoder's output is 8-bit, scaled as Pillow scales pixmaps."""
    got = decode(np.frombuffer(b"P2 4 1 1000 0 499 500 1000\n", np.uint8), "Grayscale")
    assert got.ravel().tolist() == [0, 127, 128, 255]


def test_bytes_given_as_a_constant_decode_at_build_time_shapes():
    data = encode(PIL.fromarray(picture(12, 7, seed=6)), "PNG")
    c = build(model("BGR", const=data)).create_execution_context()
    assert tuple(c.get_tensor_shape("out")) == (12, 7, 3)  # known before any execute: not eager
    assert np.array_equal(c.run({})["out"], reference(data, "BGR"))


def test_one_engine_decodes_images_of_different_sizes_and_formats():
    """The output's shape comes from each image's header: one eager engine, three images."""
    e = build(model("RGB"), 1000)
    c = e.create_execution_context()
    for fmt, hw in (("PNG", (5, 9)), ("JPEG", (33, 16)), ("BMP", (2, 3))):
        data = encode(PIL.fromarray(picture(*hw)), fmt)
        assert np.array_equal(c.run({"data": data})["out"], reference(data, "RGB"))


def failure(data, pixel_format="RGB"):
    with pytest.raises(Error) as e:
        decode(np.asarray(data, np.uint8), pixel_format)
    return str(e.value)


PREFIX = "node 'dec' (ImageDecoder, opset 20): input 0 ('data'): "


def test_bytes_of_no_known_format_are_refused_with_their_first_bytes():
    assert failure(np.zeros(10)) == PREFIX + (
        "the encoded image starts with bytes 00 00 00 00 00 00 00 00, the signature of no supported format "
        "(BMP, JPEG, JPEG 2000, PNG, PNM, TIFF, WebP)")
    assert failure(np.frombuffer(b"GIF89a", np.uint8)) == PREFIX + (
        "the encoded image starts with bytes 47 49 46 38 39 61, the signature of no supported format "
        "(BMP, JPEG, JPEG 2000, PNG, PNM, TIFF, WebP)")


def test_truncated_and_corrupt_files_name_the_format_and_the_byte():
    p = encode(PIL.fromarray(picture(8, 8)), "PNG")
    assert failure(p[:30]) == PREFIX + "PNG: the data ends at byte 30; 4 more bytes were needed at byte 29"
    bad = p.copy()
    bad[29] ^= 0xff  # the IHDR's CRC
    assert failure(bad) == PREFIX + "PNG: IHDR: CRC error (at byte 33 of %d)" % len(p)
    j = encode(PIL.fromarray(picture(8, 8)), "JPEG")
    assert failure(j[:200]) == PREFIX + "JPEG: Premature end of JPEG file (at byte 200 of 200)"
    b = encode(PIL.fromarray(picture(8, 8)), "BMP")
    assert failure(b[:100]) == PREFIX + "BMP: the pixel data needs bytes 54 to 246, but the data ends at byte 100"
    assert failure(b[:20]) == PREFIX + "BMP: the width needs bytes 18 to 22, but the data ends at byte 20"
    assert failure(np.frombuffer(b"P6\n2 2\n255\n" + bytes(5), np.uint8)) == PREFIX + (
        "PNM: the raster needs bytes 11 to 23, but the data ends at byte 16")
    assert failure(np.frombuffer(b"P3\n2 1\n255\n1 2 x", np.uint8)) == PREFIX + (
        "PNM: byte 15 (0x78) starts a sample; expected a decimal number")


def test_an_unknown_pixel_format_is_refused_at_build():
    with pytest.raises(Error) as e:
        build(model("YUV"), 10)
    assert str(e.value) == ("node 'dec' (ImageDecoder, opset 20): attribute 'pixel_format' = 'YUV'; "
                            "expected 'RGB', 'BGR' or 'Grayscale'")


@pytest.mark.parametrize("dtype, shape, text", [(TensorProto.FLOAT, [4], "float32 [4]"),
                                                (TensorProto.UINT8, [2, 3], "uint8 [2,3]")])
def test_input_other_than_1_d_uint8_is_refused(dtype, shape, text):
    node = helper.make_node("ImageDecoder", ["data"], ["out"], name="dec")
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("data", dtype, shape)],
                          [helper.make_tensor_value_info("out", TensorProto.UINT8, None)])
    b = Builder()
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 20)], ir_version=9)
    # The engine is eager (its shapes wait for data), so the check runs with the first execute.
    c = b.build_engine(b.parse_onnx_bytes(m.SerializeToString()), b.create_builder_config()).create_execution_context()
    with pytest.raises(Error) as e:
        c.run({"data": np.zeros(shape, helper.tensor_dtype_to_np_dtype(dtype))})
    assert str(e.value) == (f"node 'dec' (ImageDecoder, opset 20): input 0 ('data') is {text}; "
                            "expected a 1-D uint8 tensor of encoded bytes")
