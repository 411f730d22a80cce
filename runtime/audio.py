"""The audio path: sources of sound, streaming processors and sinks, beside the video plan.

Audio never goes through the GPU: blocks of float32 samples flow from each audio source
through its processors to the sinks. Offline, the engine pumps the path up to the end time
of every video frame, so a muxed track lines up with the frames; processors' latency is
trimmed off and their held-back tail flushed at the end, so outputs line up with inputs
sample for sample. Live, the path runs on its own thread, driven by the microphone's
callback (or by the clock for a file), so sound never waits on a video frame.

Formats are propagated from the sources through every node's `audio_format`; a node that
cannot take what arrives (another rate) stops the open with an error naming it and the
port, which says to insert a resample node: rates are never converted silently.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from fusegraph.nodes import REGISTRY
from fusegraph.nodes.lib.media_files import write_error
from fusegraph.nodes.contract import AudioFormat, AudioProcessor, AudioSource, NodeError, OpenContext, Sink
from fusegraph.runtime.atomic import PublishError, publish
from fusegraph.runtime.graph import Graph

LIVE_BLOCK_S = 0.01  # a file source's block in live mode (10 ms, like a microphone's)


def close_sinks(sinks, ok: bool) -> list[Exception]:
    """Finalise (ok) or discard every sink, each whatever the others do; the errors met.
    Finalising is two-phase: every sink completes its files under temporary names, then all are
    published at once; when any sink fails, every sink is discarded and no existing file changes."""
    sinks, errors, files = list(sinks), [], []
    for sink in sinks if ok else ():
        try:
            files += sink.finish()
        except Exception as exc:
            errors.append(exc)
    if ok and not errors:
        try:
            publish(files)
        except PublishError as exc:
            errors.append(write_error(exc, exc.partial.shown, exc.partial.node))
    for sink in sinks:
        try:
            sink.discard() if errors or not ok else sink.close()  # close: let go of the locks
        except Exception as exc:
            errors.append(exc)
    return errors


def audio_links(graph: Graph) -> list:
    """Links that carry sound (into an audio input)."""
    out = []
    for l in graph.links:
        dst = graph.node(l.dst_node)
        port = REGISTRY[dst.type].input(l.dst_port) if dst else None
        if port is not None and port.type == "audio":
            out.append(l)
    return out


@dataclass
class _Node:
    id: str
    kind: str  # "source" | "audio" | "sink"
    format: AudioFormat | None = None  # what it puts out (sources, processors)
    source: AudioSource | None = None
    proc: AudioProcessor | None = None
    trim: int = 0  # offline: output samples still to drop (the processor's latency)
    consumers: list[tuple[str, str]] = field(default_factory=list)  # (node, port) fed by the output
    read: int = 0  # samples read so far (sources)
    done: bool = False  # a source at its end
    clock: float = 0.0  # live: when its sample 0 was due


class AudioPath:
    """The audio part of a graph (nodes with a path to a sink). Opened, it holds the audio
    sources, the processors and the audio-only sinks (speaker, audio_out); sinks that also
    take video (video_out) are opened by the engine and handed in through `video_sink`."""

    def __init__(self, graph: Graph, params: dict[str, Any], live_nodes: list[str], *, live: bool = False,
                 search_dirs: tuple[str, ...] = (), writes: Callable[[str], bool] = lambda node: True):
        self.graph, self.params, self.live, self.search_dirs = graph, params, live, search_dirs
        self.writes = writes  # whether a sink is opened (a live run records only some file sinks)
        self.links = [l for l in audio_links(graph) if l.src_node in live_nodes and l.dst_node in live_nodes]
        wanted = {l.src_node for l in self.links} | {l.dst_node for l in self.links}
        self.order = [n for n in live_nodes if n in wanted]
        self.nodes: dict[str, _Node] = {}
        self.sinks: dict[str, Sink] = {}  # the audio-only sinks this path opened
        self.video_sink: Callable[[str], Sink | None] = lambda node: None
        self.errors: dict[str, str] = {}  # live: node -> why it stopped
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()  # live: param edits vs the audio thread
        self._work: dict[str, list[float]] = {}  # node -> [seconds of work, seconds of sound]
        self.running = False  # sinks opened (and, live, the thread started)
        self.levels: dict[str, float] = {}  # node -> level of its sound (dBFS, smoothed), shown live
        # --profile: (row, start s, duration s) events are added here, times from trace_t0
        self.trace: list[tuple[str, float, float]] | None = None
        self.trace_t0 = 0.0
        self.plan_only = False  # `fusegraph plan`: device sources are not started

    def __bool__(self) -> bool:
        return bool(self.order)

    # ---- opening ------------------------------------------------------------------------
    def open_sources(self) -> None:
        """Open the sources and check every node's input format, in order."""
        try:
            for node_id in self.order:
                spec = REGISTRY[self.graph.node(node_id).type]
                node = _Node(node_id, "source" if spec.role == "source" else "sink" if spec.role == "sink"
                             else "audio")
                self.nodes[node_id] = node
                ins = self.input_formats(node_id)
                if node.kind == "source":
                    ctx = OpenContext(node_id=node_id, live=self.live, search_dirs=self.search_dirs,
                                      plan_only=self.plan_only)
                    node.source = spec.open(self.params[node_id], ctx)
                    node.format = node.source.format
                elif spec.audio_format is not None:
                    node.format = spec.audio_format(self.params[node_id], ins)
                if node.kind == "audio":
                    node.proc = spec.stream(self.params[node_id], ins)
                    node.trim = 0 if self.live else node.proc.latency
            for l in self.links:
                self.nodes[l.src_node].consumers.append((l.dst_node, l.dst_port))
        except NodeError as exc:
            exc.node = exc.node or node_id
            self.close(ok=False)
            raise

    def input_formats(self, node_id: str) -> dict[str, AudioFormat]:
        return {l.dst_port: self.nodes[l.src_node].format for l in self.links
                if l.dst_node == node_id and l.src_node in self.nodes}

    def sink_format(self, node_id: str) -> AudioFormat | None:
        """What arrives at a sink's audio input (None: nothing linked)."""
        ins = self.input_formats(node_id)
        return next(iter(ins.values()), None)

    def open_sinks(self) -> None:
        """Open the audio-only sinks (after open_sources); from here on the path runs."""
        self.running = True
        for node_id in self.order:
            spec = REGISTRY[self.graph.node(node_id).type]
            if spec.role != "sink" or not spec.audio_only or not self.writes(node_id):
                continue
            ctx = OpenContext(node_id=node_id, live=self.live, audio=self.sink_format(node_id),
                              search_dirs=self.search_dirs)
            try:
                self.sinks[node_id] = spec.open(self.params[node_id], ctx)
            except NodeError as exc:
                exc.node = exc.node or node_id
                self.close(ok=False)
                raise

    @property
    def sources(self) -> list[_Node]:
        return [n for n in self.nodes.values() if n.kind == "source" and n.source is not None]

    def duration(self) -> float | None:
        """Seconds of sound the longest finite source holds (None: a device, endless)."""
        if any(n.source.frames is None for n in self.sources):
            return None
        return max((n.source.frames / n.format.rate for n in self.sources), default=0.0)

    # ---- offline: pumped by the engine ---------------------------------------------------
    def pump_to(self, seconds: float) -> None:
        """Read every source up to `seconds` from its start and push it through."""
        for node in self.sources:
            want = int(round(seconds * node.format.rate)) - node.read
            while want > 0 and not node.done:
                block = node.source.read(want)
                if len(block) == 0:
                    node.done = True
                    break
                node.read += len(block)
                want -= len(block)
                self._push(node, block)

    def finish(self, drain: bool = False) -> None:
        """End of stream: flush what the processors hold back, in order. drain: first read the
        sources to their very end (a graph of sound alone, whose length was an estimate)."""
        while drain and not all(n.done or n.source.frames is None for n in self.sources):
            self.pump_to(max(n.read / n.format.rate for n in self.sources) + 1.0)
        for node_id in self.order:
            node = self.nodes[node_id]
            if node.proc is not None:
                self._emit(node, node.proc.flush())

    def _push(self, node: _Node, block: np.ndarray) -> None:
        self._meter(node.id, block)
        for dst, port in node.consumers:
            target = self.nodes[dst]
            if target.proc is not None:
                # CPU time of this thread: the node's own work, not its waits for the GIL while
                # the engine and the UI run Python
                t, wall = time.thread_time(), time.perf_counter()
                try:
                    out = target.proc.process(block)
                except NodeError as exc:
                    exc.node = exc.node or dst
                    raise
                acc = self._work.setdefault(dst, [0.0, 0.0])
                acc[0] += time.thread_time() - t
                if self.trace is not None:
                    self.trace.append((f"audio:{dst}", wall - self.trace_t0, time.perf_counter() - wall))
                acc[1] += len(block) / node.format.rate
                self._emit(target, out)
            else:
                if node.id in self.levels:  # a sink shows the level of what it gets
                    self.levels[dst] = self.levels[node.id]
                self._deliver(dst, block)

    def _emit(self, node: _Node, out: np.ndarray) -> None:
        """A processor's output: drop its latency's worth first (offline), then pass it on."""
        if node.trim:
            cut = min(node.trim, len(out))
            out, node.trim = out[cut:], node.trim - cut
        if len(out):
            self._push(node, out.astype(np.float32, copy=False))

    def _meter(self, node_id: str, block: np.ndarray) -> None:
        """A level meter's reading: RMS in dBFS, rising at once and falling by 10 dB a second."""
        if not self.live or len(block) == 0:
            return
        db = 10.0 * float(np.log10(float(np.mean(np.square(block, dtype=np.float32))) + 1e-10))
        fall = 10.0 * len(block) / self.nodes[node_id].format.rate if self.nodes[node_id].format else 0.0
        self.levels[node_id] = max(db, self.levels.get(node_id, -100.0) - fall)

    def _deliver(self, node_id: str, block: np.ndarray) -> None:
        sink = self.sinks.get(node_id) or self.video_sink(node_id)
        if sink is None:
            return
        try:
            sink.write_audio(block)
        except NodeError as exc:
            exc.node = exc.node or node_id
            raise

    # ---- live: a thread of its own --------------------------------------------------------
    def start(self) -> None:
        """Live: run the path on its own thread until stop()."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run_live, name="audio", daemon=True)
        self._thread.start()

    def _run_live(self) -> None:
        for node in self.sources:
            node.clock = time.perf_counter()
        while not self._stop.is_set() and self.sources:
            progressed = False
            for node in self.sources:
                if node.id in self.errors:
                    continue
                try:
                    block = self._live_block(node)
                    if block is None:
                        continue
                    with self._lock:
                        self._push(node, block)
                    progressed = True
                except NodeError as exc:
                    self.errors[exc.node or node.id] = exc.message
                except Exception as exc:  # a bug: say so on the node rather than go silent
                    self.errors[node.id] = f"{type(exc).__name__}: {exc}"
            if not progressed:
                time.sleep(0.002)

    def _live_block(self, node: _Node) -> np.ndarray | None:
        """The next block of a live source: a device's as it arrives, a file's when it is due
        (a file starts again at its end, as the editor loops video files)."""
        if node.source.device:  # read() waits for the device's callback
            block = node.source.read(int(node.format.rate * LIVE_BLOCK_S))
            return block if len(block) else None
        due = int((time.perf_counter() - node.clock) * node.format.rate)
        if node.read >= due:
            return None
        block = node.source.read(max(1, int(node.format.rate * LIVE_BLOCK_S)))
        if len(block) == 0:  # the end of a file: from the start again
            spec = REGISTRY[self.graph.node(node.id).type]
            ctx = OpenContext(node_id=node.id, live=True, search_dirs=self.search_dirs)
            node.source.close()
            node.source = spec.open(self.params[node.id], ctx)
            node.read, node.clock = 0, time.perf_counter()
            return None
        node.read += len(block)
        return block

    def set_params(self, node_id: str, params: Any) -> bool:
        """A param edit on a processor, taken without a restart; False if it needs one (a
        source or sink to reopen, or a format that changes downstream)."""
        node = self.nodes.get(node_id)
        if node is None or node.proc is None:
            return False
        spec = REGISTRY[self.graph.node(node_id).type]
        try:
            if spec.audio_format(params, self.input_formats(node_id)) != node.format:
                return False
        except NodeError:
            return False  # the rebuild reports it
        with self._lock:
            if node.proc.set_params(params) is False:  # the processor cannot take it live (a new latency)
                return False
            self.params[node_id] = params
        return True

    def describe(self) -> str:
        """The audio path as text (`fusegraph plan`, the editor's plan view): each node with
        what it puts out and the delay it adds, and where its sound goes."""
        if not self.order:
            return ""
        lines = ["audio path (CPU, its own thread live; offline pumped to each frame's end):"]
        missing = {n: node.source.missing for n, node in self.nodes.items()
                   if node.source is not None and getattr(node.source, "missing", None)}
        needs = self._downstream(missing)
        for node_id in self.order:
            node = self.nodes.get(node_id)
            if node is None:
                continue
            kind = self.graph.node(node_id).type
            what = str(node.format) if node.format else ""
            if node.proc is not None and node.proc.latency:
                what += f", delays {1000.0 * node.proc.latency / node.format.rate:.0f} ms (trimmed offline)"
            to = ", ".join(f"{d}.{p}" for d, p in node.consumers)
            lines.append(f"  {node.kind:6s}  {node_id} ({kind}){': ' + what if what else ''}"
                         f"{' -> ' + to if to else ''}")
            if node_id in missing:
                lines.append(f"          MISSING DEVICE: {missing[node_id]} (planned from its params)")
            elif node_id in needs:
                lines.append(f"          depends on the missing {', '.join(needs[node_id])}")
        return "\n".join(lines)

    def _downstream(self, roots) -> dict[str, list[str]]:
        """node -> the roots (missing devices) whose sound reaches it."""
        out: dict[str, list[str]] = {}
        for root in roots:
            todo = [root]
            while todo:
                for dst, _ in self.nodes[todo.pop()].consumers:
                    if root not in out.setdefault(dst, []):
                        out[dst].append(root)
                        todo.append(dst)
        return out

    def node_ms(self, fps: float) -> dict[str, float]:
        """Each processor's work in one frame's time of sound (1/fps s), like the video nodes'
        per-frame times; recent sound weighs most."""
        out = {}
        for node_id, acc in list(self._work.items()):
            if acc[1] > 0:
                out[node_id] = 1000.0 / fps * acc[0] / acc[1]
                if acc[1] > 1.0:  # forget slowly: halve the history past a second of sound
                    acc[0], acc[1] = acc[0] / 2, acc[1] / 2
        return out

    def counters(self) -> dict[str, dict[str, int]]:
        """Per node: blocks lost at a device (overruns in, underruns out); shown live."""
        out = {}
        for node in self.sources:
            out[node.id] = {"overruns": int(getattr(node.source, "overruns", 0))}
        for node_id, sink in self.sinks.items():
            out[node_id] = {"underruns": int(getattr(sink, "underruns", 0))}
        return out

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5)
            self._thread = None

    def close(self, ok: bool = True) -> None:
        self.stop()
        errors = close_sinks(self.sinks.values(), ok)
        for node in self.sources:
            if node.source is not None:  # None: the open failed before it
                node.source.close()
        self.sinks, self.nodes = {}, {}
        if errors:
            raise errors[0]
