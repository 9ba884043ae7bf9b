"""The floor for bench.browser: stock gradio with a no-op model.

A stock ``gr.Sketchpad`` (the same canvas as the app's) and a Predict button whose event
takes the sketch, as a stock demo wires it, and returns a Label and the 28×28 image the
models would read, without running a model. Whatever a click costs here is gradio's own
cost: the browser's export and upload of the canvas, the queue, the download and the
render. (The 28×28 image lets bench.browser check which drawing the floor answered.)

    GRADIO_SERVER_PORT=7861 python -m bench.floor_app
"""

from __future__ import annotations

import gradio as gr

from digitrec.canvas import SKETCHPAD
from digitrec.preprocess import EmptyDrawingError, preprocess, to_uint8


def noop(sketch):
    """Return a constant label and the 28×28 image of the drawing (the model is skipped)."""
    try:
        return {"0": 1.0}, to_uint8(preprocess(sketch))
    except EmptyDrawingError:
        return None, None


with gr.Blocks(title="floor") as demo:
    sketch = gr.Sketchpad(**SKETCHPAD)
    predict_button = gr.Button("Predict", variant="primary", elem_id="predict")
    label = gr.Label(elem_id="label")
    processed = gr.Image(format="png", elem_id="processed")
    predict_button.click(noop, sketch, [label, processed], api_name="predict")

if __name__ == "__main__":
    demo.launch()
