"""Sound devices through sounddevice (PortAudio): listing them and finding the one a node names.

Shared by the microphone and speaker nodes and the editor's device pickers.
"""
from __future__ import annotations

from fusegraph.nodes.spec import NodeError


def _sd():
    """sounddevice, or a NodeError when PortAudio itself is missing."""
    try:
        import sounddevice
    except OSError as e:  # the PortAudio library is not installed
        raise NodeError(f"sound devices are unavailable: {e} (install PortAudio: Debian package "
                        "libportaudio2)") from None
    return sounddevice


def devices(kind: str) -> list[str]:
    """Names of the devices that can record (kind "input") or play ("output")."""
    try:
        sd = _sd()
        found = sd.query_devices()
    except (NodeError, Exception):
        return []
    key = "max_input_channels" if kind == "input" else "max_output_channels"
    return [d["name"] for d in found if d[key] > 0]


def find_device(name: str, kind: str, node: str | None) -> int | None:
    """The PortAudio index of the device `name` ("" is the system's default), or a NodeError
    that lists the devices there are."""
    sd = _sd()
    what = "microphone (input)" if kind == "input" else "speaker (output)"
    names = devices(kind)
    if not names:
        raise NodeError(f"no {what} sound device on this machine (PortAudio lists none); use an "
                        f"audio_file {'source' if kind == 'input' else 'or audio_out sink'} instead",
                        node=node)
    if not name:
        default = sd.default.device[0 if kind == "input" else 1]
        return default if default is not None and default >= 0 else _index(sd, names[0], kind)
    if name in names:
        return _index(sd, name, kind)
    partial = [n for n in names if name.lower() in n.lower()]
    if len(partial) == 1:
        return _index(sd, partial[0], kind)
    raise NodeError(f"no {what} device named '{name}'; there are: {', '.join(names)}", node=node)


def _index(sd, name: str, kind: str) -> int:
    key = "max_input_channels" if kind == "input" else "max_output_channels"
    return next(i for i, d in enumerate(sd.query_devices()) if d["name"] == name and d[key] > 0)


def stop_stream(owner) -> None:
    """Stop and close owner.stream (a sounddevice stream) once; safe after a failed open."""
    stream, owner.stream = getattr(owner, "stream", None), None
    if stream is not None:
        stream.stop()
        stream.close()


def open_error(e: Exception, what: str, node: str | None) -> NodeError:
    """A PortAudio refusal (a rate or channel count the device does not take) in plain words."""
    return NodeError(f"the {what} refused the stream: {e}. If it is the sample rate or channel "
                     "count, insert a resample node before/after it with one the device takes",
                     node=node)
