"""DeepFilterNet3 (Schröter et al. 2023) streaming in 10 ms hops: numpy DSP around onnxruntime.

The model is the official ONNX export (`fusegraph models fetch deepfilternet3`); its three
graphs are made streamable by nodes/lib/dfn3_graph.py. This module does what DeepFilterNet's own
runtime (libDF, Rust) does around them, frame for frame, with the same constants:

- analysis: 960-point real FFT of the last two hops under a Vorbis window, scaled by 1/960;
- features: the power in 32 ERB bands in dB, minus an exponential running mean (alpha 0.99),
  / 40; and the first 96 bins divided by the square root of a running mean of their magnitude;
- stage 1: the ERB decoder's 32 gains, spread over each band's bins, on the frame two hops
  back (the encoder looks two frames ahead);
- stage 2: on the lowest 96 bins (0-4.8 kHz), a complex 5-tap filter along time over the
  frames t-4 .. t (two ahead, two behind), coefficients from the DF decoder;
- the local-SNR gate of libDF's C API: below -15 dB only noise (zero output), above 35 dB
  clean (the frame passes untouched, the decoders do not run);
- synthesis: inverse FFT, the same window, overlap-add.

Latency: output sample n is input sample n - 1440 (two hops of look-ahead, one of
overlap-add), 40 ms with the 10 ms frame (RNNoise: 30 ms). The same as libDF's, measured.
"""
from __future__ import annotations

import configparser
import tarfile
from collections import deque
from pathlib import Path

import numpy as np

from fusegraph.nodes.lib.dfn3_graph import StreamingSession, make_streaming

HOP = 480
DELAY = 1440  # samples the output lags the input by (two hops of look-ahead, one of overlap-add)
MIN_DB, MAX_DB = -15.0, 35.0  # libDF C API's local-SNR gate (min_db_thresh, max_db_erb/df_thresh)


def _freq2erb(f):
    return 9.265 * np.log1p(f / (24.7 * 9.265))


def _erb2freq(e):
    return 24.7 * 9.265 * (np.exp(e / 9.265) - 1.0)


def erb_widths(sr: int, fft_size: int, nb_bands: int, min_nb_freqs: int) -> np.ndarray:
    """Bins per ERB band, as libDF's erb_fb lays them out (at least min_nb_freqs per band)."""
    width = sr / fft_size
    lo, hi = _freq2erb(0.0), _freq2erb(sr // 2)
    step = (hi - lo) / nb_bands
    erb = np.zeros(nb_bands, int)
    prev = over = 0
    for i in range(1, nb_bands + 1):
        fb = int(np.round(np.float32(_erb2freq(np.float32(lo + i * step))) / np.float32(width)))
        n = fb - prev - over
        if n < min_nb_freqs:
            over = min_nb_freqs - n
            n = min_nb_freqs
        else:
            over = 0
        erb[i - 1] = n
        prev = fb
    erb[-1] += 1
    erb[-1] -= max(0, int(erb.sum()) - (fft_size // 2 + 1))
    return erb


def norm_alpha(sr: int, hop: int, tau: float) -> float:
    """libDF's calc_norm_alpha: exp(-hop / (sr tau)) rounded to the fewest decimals below 1."""
    alpha = float(np.exp(-hop / sr / tau))
    precision = 3
    while True:
        a = round(alpha * 10 ** precision) / 10 ** precision
        if a < 1.0:
            return a
        precision += 1


class Dfn3Model:
    """The three graphs and the config from the official tar.gz, ready for streaming sessions."""

    def __init__(self, archive: Path):
        import onnx

        files: dict[str, bytes] = {}
        try:
            with tarfile.open(archive, "r:gz") as tar:
                for member in tar.getmembers():
                    name = member.name.rsplit("/", 1)[-1]
                    if name in ("enc.onnx", "erb_dec.onnx", "df_dec.onnx", "config.ini") and member.isfile():
                        files[name] = tar.extractfile(member).read()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise ValueError(f"cannot read the DeepFilterNet3 archive {archive}: {exc}") from None
        missing = {"enc.onnx", "erb_dec.onnx", "df_dec.onnx", "config.ini"} - set(files)
        if missing:
            raise ValueError(f"{archive} lacks {', '.join(sorted(missing))}")
        cfg = configparser.ConfigParser()
        cfg.read_string(files["config.ini"].decode())
        df = cfg["df"]
        self.sr, self.fft, self.hop = int(df["sr"]), int(df["fft_size"]), int(df["hop_size"])
        self.nb_erb, self.nb_df, self.order = int(df["nb_erb"]), int(df["nb_df"]), int(df["df_order"])
        self.lookahead = max(int(cfg["deepfilternet"]["conv_lookahead"]), int(df["df_lookahead"]))
        if (self.sr, self.hop, self.fft, self.lookahead) != (48000, HOP, 2 * HOP, 2):
            raise ValueError(f"{archive}: unexpected DeepFilterNet config (sr {self.sr}, hop {self.hop}, "
                             f"fft {self.fft}, look-ahead {self.lookahead})")
        self.erb = erb_widths(self.sr, self.fft, self.nb_erb, int(df["min_nb_erb_freqs"]))
        self.alpha = norm_alpha(self.sr, self.hop, float(df["norm_tau"]))
        ch = int(cfg["deepfilternet"]["conv_ch"])
        shapes = {"feat_erb": (1, self.nb_erb), "feat_spec": (2, self.nb_df), "c0": (ch, self.nb_df)}
        self.graphs = {}
        for name in ("enc", "erb_dec", "df_dec"):
            model = onnx.load_model_from_string(files[f"{name}.onnx"])
            self.graphs[name] = make_streaming(model, shapes)

    def sessions(self, names=("enc", "erb_dec", "df_dec")) -> dict[str, StreamingSession]:
        outs = {"enc": ["e0", "e1", "e2", "e3", "emb", "c0", "lsnr"], "erb_dec": ["m"], "df_dec": ["coefs"]}
        return {n: StreamingSession(*self.graphs[n], outs[n]) for n in names}


class Dfn3Stream:
    """One channel of DeepFilterNet3: process(480 float32 samples) -> 480 samples, DELAY behind.

    atten_lim_db caps the attenuation by mixing the noisy spectrum back in (libDF's
    atten_lim; 100 = no cap). `lsnr` is the model's local SNR estimate for the last frame (dB).
    encoder_only: a stream that only listens (listen(), not process()).
    """

    def __init__(self, model: Dfn3Model, atten_lim_db: float = 100.0, encoder_only: bool = False):
        self.m = model
        self.s = model.sessions(("enc",) if encoder_only else ("enc", "erb_dec", "df_dec"))
        n = model.fft
        i = np.arange(n, dtype=np.float64)
        self.window = np.sin(0.5 * np.pi * np.sin(0.5 * np.pi * (i + 0.5) / (n // 2)) ** 2)
        self.wnorm = 1.0 / (n * n / (2 * model.hop))
        self.bounds = np.concatenate([[0], np.cumsum(model.erb)[:-1]])
        self.set_atten_lim(atten_lim_db)
        self.reset()

    def set_atten_lim(self, db: float) -> None:
        db = abs(float(db))
        self.lim = None if db >= 100 else (1.0 if db < 0.01 else 10.0 ** (-db / 20.0))

    def reset(self) -> None:
        m = self.m
        for s in self.s.values():
            s.reset()
        self.a_mem = np.zeros(m.fft - m.hop)
        self.s_mem = np.zeros(m.fft - m.hop)
        self.mean_norm = np.linspace(-60.0, -90.0, m.nb_erb)
        self.unit_norm = np.linspace(0.001, 0.0001, m.nb_df)
        self.specs = deque([np.zeros(m.fft // 2 + 1, complex)] * max(m.order, m.lookahead + 1), maxlen=m.order)
        self.skip = 0
        self.lsnr = 0.0

    def _analysis(self, x: np.ndarray) -> np.ndarray:
        buf = np.concatenate([self.a_mem, x]) * self.window
        self.a_mem = x.astype(np.float64)
        return np.fft.rfft(buf) * self.wnorm

    def _synthesis(self, spec: np.ndarray) -> np.ndarray:
        x = np.fft.irfft(spec, self.m.fft) * self.m.fft * self.window  # libDF's inverse is unscaled
        out = x[:self.m.hop] + self.s_mem
        self.s_mem = x[self.m.hop:]
        return out

    def _features(self, spec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m, a = self.m, self.m.alpha
        power = np.add.reduceat(spec.real ** 2 + spec.imag ** 2, self.bounds) / m.erb
        erb_db = 10.0 * np.log10(power + 1e-10)
        self.mean_norm = erb_db * (1 - a) + self.mean_norm * a
        feat_erb = ((erb_db - self.mean_norm) / 40.0).astype(np.float32).reshape(1, 1, 1, -1)
        low = spec[:m.nb_df]
        self.unit_norm = np.abs(low) * (1 - a) + self.unit_norm * a
        low = low / np.sqrt(self.unit_norm)
        feat_spec = np.stack([low.real, low.imag]).astype(np.float32).reshape(1, 2, 1, -1)
        return feat_erb, feat_spec

    def listen(self, x: np.ndarray) -> float:
        """The encoder alone on the next 480 samples: the model's local SNR estimate (dB, about
        -15 to 35) without enhancing anything (no decoders, no synthesis; about a third of the cost
        of process). Fed what another stream removed, it says whether that was speech."""
        spec = self._analysis(np.asarray(x, np.float64))
        feat_erb, feat_spec = self._features(spec)
        lsnr = self.s["enc"].run({"feat_erb": feat_erb, "feat_spec": feat_spec})[-1]
        self.lsnr = float(lsnr.reshape(-1)[0])
        return self.lsnr

    def process(self, x: np.ndarray) -> np.ndarray:
        m = self.m
        if float(np.mean(np.square(x, dtype=np.float64))) < 1e-7:  # libDF skips digital silence
            self.skip += 1
        else:
            self.skip = 0
        if self.skip > 5:
            return np.zeros(m.hop, np.float32)
        spec = self._analysis(np.asarray(x, np.float64))
        self.specs.append(spec)
        now = self.specs[m.order - 1 - m.lookahead]  # the frame being output: two hops back
        if self.lim == 1.0:
            return self._synthesis(now.copy()).astype(np.float32)
        feat_erb, feat_spec = self._features(spec)
        e0, e1, e2, e3, emb, c0, lsnr = self.s["enc"].run({"feat_erb": feat_erb, "feat_spec": feat_spec})
        self.lsnr = lsnr = float(lsnr.reshape(-1)[0])
        out = now.copy()
        if lsnr < MIN_DB:  # noise only
            out[:] = 0.0
            self.skip = 0
        elif lsnr <= MAX_DB:
            (gains,) = self.s["erb_dec"].run({"emb": emb, "e3": e3, "e2": e2, "e1": e1, "e0": e0})
            out *= np.repeat(gains.reshape(-1).astype(np.float64), m.erb)
            (coefs,) = self.s["df_dec"].run({"emb": emb, "c0": c0})
            c = coefs.reshape(m.nb_df, m.order, 2).astype(np.float64)
            c = c[..., 0] + 1j * c[..., 1]
            past = np.stack([s[:m.nb_df] for s in self.specs], axis=1)  # (nb_df, order), oldest first
            out[:m.nb_df] = np.sum(past * c, axis=1)
            self.skip = 0
        else:
            self.skip += 1  # clean: libDF counts it as a skipped frame
        if self.lim is not None:
            out = out * (1 - self.lim) + now * self.lim
        return self._synthesis(out).astype(np.float32)
