"""`ONNXProcessor`: a multimodal HF processor whose every output has the ONNX model's fixed shapes."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from modelexport_core import ModelExportError
from modelexport_core.serve.fixed import FixedShapeProcessor
from modelexport_text import ONNXTokenizer
from modelexport_vision import ONNXImageProcessor

if TYPE_CHECKING:
    from transformers import BatchFeature, ProcessorMixin

# The dims each kind of part needs, and the batch it counts.
TEXT_DIMS = ("text_batch_size", "sequence_length")
IMAGE_DIMS = ("batch_size", "num_channels", "height", "width")


class ONNXProcessor(FixedShapeProcessor):
    """A processor (e.g. `CLIPProcessor`: tokenizer + image processor) for a fixed-shape ONNX model.

    Each part it holds is replaced by its fixed-shape wrapper: the tokenizer by an `ONNXTokenizer`
    (`text_batch_size` x `sequence_length`), the image processor by an `ONNXImageProcessor` (`batch_size` x
    `num_channels` x `height` x `width`); other parts stay as they are. Calling it runs the processor's own
    `__call__` over those wrappers, so `input_ids` is always [n, sequence_length] and `pixel_values`
    [n, num_channels, height, width]. Each input keeps its own fixed batch: `batch_size` counts images,
    `text_batch_size` texts (CLIP's candidate labels); the batch adapter of `create_pipeline` fills them.
    `save_pretrained` writes the wrapped processor, loadable back as its own class.
    """

    fitted: Any = None  # the wrapped processor with its parts replaced by their fixed-shape wrappers

    def __init__(self, processor: ProcessorMixin, shapes: dict[str, int], shape_source: str = "given") -> None:
        super().__init__(processor, shapes, shape_source)
        fitted = copy.copy(processor)
        for attribute in processor.attributes:
            setattr(fitted, attribute, self._fixed(getattr(processor, attribute)))
        self.fitted = fitted

    @property
    def text_batch_size(self) -> int:
        """The fixed batch of the text inputs (CLIP: the number of candidate texts per run)."""
        return self.shapes["text_batch_size"]

    def __getattr__(self, name: str) -> Any:
        if name in ("wrapped", "shapes", "shape_source"):  # not set yet (e.g. while unpickling)
            raise AttributeError(name)
        return getattr(self.fitted, name)

    def __call__(self, *args: Any, **kwargs: Any) -> BatchFeature:
        """Process as the wrapped processor does, with every output of the model's fixed per-sample shape."""
        return self.fitted(*args, **kwargs)

    def _fixed(self, part: Any) -> Any:
        """A part's fixed-shape wrapper (tokenizer, image processor), or the part itself for other kinds."""
        from transformers import BaseImageProcessor, PreTrainedTokenizerBase

        if isinstance(part, PreTrainedTokenizerBase):
            batch, length = self._dims(TEXT_DIMS, part)
            return ONNXTokenizer(part, batch, length, self.shape_source)
        if isinstance(part, BaseImageProcessor):
            batch, channels, height, width = self._dims(IMAGE_DIMS, part)
            return ONNXImageProcessor(part, batch, height, width, channels, self.shape_source)
        return part

    def _dims(self, names: tuple[str, ...], part: Any) -> list[int]:
        missing = [name for name in names if not self.shapes.get(name)]
        if missing:
            raise ModelExportError(
                f"ONNXProcessor needs {', '.join(missing)} in its shapes to fix its {type(part).__name__}"
            )
        return [self.shapes[name] for name in names]
