"""Interactive figures for the notebooks: controls above a picture that a library function redraws.

``live_figure(draw, controls)`` puts ``ipywidgets`` controls above an ``Output`` widget and, each
time a control is let go, calls ``draw(**values)`` (a tested library function that returns a
``matplotlib.figure.Figure``) and writes the PNG into the ``Output``'s outputs directly. It does
not display inside ``with output:`` as ``ipywidgets.interact`` does: executed by nbconvert or
nbval, a cell that captures output that way sometimes never finishes (an nbclient race, seen in
3 of 8 runs). A ``ValueError`` from ``draw`` (e.g. unreadable input) is shown as text instead.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from typing import Any

from matplotlib.figure import Figure


def figure_output(figure: Figure) -> dict[str, Any]:
    """``figure`` as one ``display_data`` output (PNG), for an ``ipywidgets.Output``'s outputs."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    png = base64.b64encode(buffer.getvalue()).decode("ascii")
    return {
        "output_type": "display_data",
        "data": {"image/png": png, "text/plain": repr(figure)},
        "metadata": {},
    }


def text_output(text: str) -> dict[str, Any]:
    return {"output_type": "stream", "name": "stdout", "text": text + "\n"}


def live_figure(draw: Callable[..., Figure], controls: dict[str, Any]) -> Any:
    """An ``ipywidgets.VBox`` of ``controls`` (name -> widget with a ``value``) above the figure
    ``draw(**values)``, redrawn when a control changes; drawn once at the start."""
    import ipywidgets

    picture = ipywidgets.Output()

    def redraw(change: object = None) -> None:
        try:
            figure = draw(**{name: control.value for name, control in controls.items()})
        except ValueError as error:
            picture.outputs = (text_output(str(error)),)
            return
        picture.outputs = (figure_output(figure),)

    for control in controls.values():
        control.observe(redraw, names="value")
    redraw()
    return ipywidgets.VBox([*controls.values(), picture])
