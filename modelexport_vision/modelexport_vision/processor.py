"""`ONNXImageProcessor`: a HF image processor whose every output has the ONNX model's fixed pixel shape."""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

import numpy as np

from modelexport_core import ModelExportError
from modelexport_core.serve.fixed import FixedShapeProcessor

if TYPE_CHECKING:
    from transformers import BaseImageProcessor, BatchFeature

# PIL modes that hold the model's channels (by channel count); any other mode is converted to one of them.
_PIL_MODES = {1: "L", 3: "RGB", 4: "RGBA"}
# Intermediate modes for conversions PIL cannot do in one step (e.g. "La" -> "RGB" goes through "LA").
_PIL_BRIDGES = ("RGB", "LA", "RGBA")
# ITU-R 601-2 luma, the weights PIL uses for RGB -> L.
_LUMA = np.array([0.299, 0.587, 0.114])
# Outputs of the processor laid out per pixel (their last two dims are height and width).
_PIXEL_OUTPUTS = ("pixel_values", "pixel_mask")


class ONNXImageProcessor(FixedShapeProcessor):
    """An image processor for a fixed-shape ONNX model: `pixel_values` is always [n, C, height, width].

    Any image goes in: PIL images of any size and mode, numpy arrays (HW, HWC, or CHW when the last axis
    cannot hold channels or `input_data_format="channels_first"` says so), torch tensors, lists of them.
    Their channels are fitted to C first (mode conversion as PIL does it, alpha dropped, grey repeated), then
    the wrapped processor does its own resizing, cropping, rescaling and normalizing, told to produce exactly
    height x width (see `fitting`), channels first. Everything else (post-processing, `size`,
    `save_pretrained`, ...) is the wrapped processor's.
    """

    _fitting: dict[str, Any] | None = None

    def __init__(
        self,
        image_processor: BaseImageProcessor,
        batch_size: int,
        height: int,
        width: int,
        num_channels: int = 3,
        shape_source: str = "given",
    ) -> None:
        shapes = {"batch_size": batch_size, "num_channels": num_channels, "height": height, "width": width}
        if any(not isinstance(value, numbers.Integral) or value < 1 for value in shapes.values()):
            raise ModelExportError(f"ONNXImageProcessor needs positive integer shapes, got {shapes}")
        shapes = {name: int(value) for name, value in shapes.items()}
        super().__init__(image_processor, shapes, shape_source)

    @property
    def height(self) -> int:
        return self.shapes["height"]

    @property
    def width(self) -> int:
        return self.shapes["width"]

    @property
    def num_channels(self) -> int:
        return self.shapes["num_channels"]

    @property
    def fitting(self) -> dict[str, Any]:
        """The keyword arguments that make the wrapped processor produce height x width, chosen once by trial.

        In order, the first that gives height x width for two images of different aspect ratios:
        1. none: the processor's own settings already give the fixed size for any image (ViT, SegFormer,
           ConvNeXt / ResNet at their own size), so outputs equal the processor's own;
        2. `size={"height": H, "width": W}` (and `crop_size` the same): the whole image is resized to exactly
           H x W, aspect ratio not kept (DETR, YOLOS, any processor exported at another size);
        3. `size={"shortest_edge": H}` for a square H x H, for processors that only take a shortest edge
           (ConvNeXt at another size).
        Failing all three, the processor runs as configured and its normalized output is resized (bilinear,
        antialiased) to H x W.
        """
        if self._fitting is None:
            self._fitting = self._choose_fitting()
        return self._fitting

    def __call__(self, images: Any, *args: Any, **kwargs: Any) -> BatchFeature:
        return self.preprocess(images, *args, **kwargs)

    def preprocess(self, images: Any, *args: Any, **kwargs: Any) -> BatchFeature:
        """Preprocess as the wrapped processor does, with `pixel_values` of exactly [n, C, height, width]."""
        layout = kwargs.pop("input_data_format", None)
        fitted = self.fit_images(images, layout)
        kwargs.update(self.fitting, input_data_format="channels_last", data_format="channels_first")
        encoding = self.wrapped.preprocess(fitted, *args, **kwargs)
        return self._resampled(encoding)

    def fit_images(self, images: Any, input_data_format: Any = None) -> list[np.ndarray]:
        """Every image as an HWC array of exactly `num_channels` channels (a single image becomes a list)."""
        if images is None:
            raise ModelExportError("No images given: pass a PIL image, a numpy array, or a list of them")
        if getattr(images, "ndim", None) == 4:  # a batch as one array or tensor
            images = list(images)
        if not isinstance(images, (list, tuple)):
            images = [images]
        if len(images) == 0:
            raise ModelExportError("An empty list of images was given: pass at least one image")
        return [self._fit_channels(_as_hwc(image, input_data_format)) for image in images]

    def _fit_channels(self, image: Any) -> np.ndarray:
        """An HWC array of `num_channels` channels from a PIL image (converted as PIL does) or HWC array."""
        wanted = self.num_channels
        if not isinstance(image, np.ndarray):  # a PIL image
            image = np.asarray(_pil_converted(image, _PIL_MODES.get(wanted, "RGB")))
            if image.ndim == 2:
                image = image[:, :, None]
        channels = image.shape[2]
        if channels == wanted:
            return image
        if wanted == 1 and channels >= 3:
            luma = image[:, :, :3].astype(np.float64) @ _LUMA
            return (np.rint(luma) if np.issubdtype(image.dtype, np.integer) else luma).astype(image.dtype)[:, :, None]
        if channels > wanted:  # alpha (or anything past the model's channels) is dropped
            return image[:, :, :wanted]
        if channels in (1, 2):  # grey (with alpha): the grey channel, repeated
            return np.repeat(image[:, :, :1], wanted, axis=2)
        raise ModelExportError(f"Cannot make a {wanted}-channel image from a {channels}-channel one")

    def _choose_fitting(self) -> dict[str, Any]:
        height, width = self.height, self.width
        exact = {"height": height, "width": width}
        crop = {"crop_size": dict(exact)} if getattr(self.wrapped, "crop_size", None) is not None else {}
        candidates: list[dict[str, Any]] = [{}, {"size": dict(exact), **crop}]
        if height == width:
            candidates.append({"size": {"shortest_edge": height}, **crop})
        probes = [
            np.zeros((height + height // 2 + 1, 2 * width + 1, self.num_channels), dtype=np.uint8),
            np.zeros((2 * height + 1, width + width // 2 + 1, self.num_channels), dtype=np.uint8),
        ]
        for candidate in candidates:
            if all(self._gives_fixed_size(probe, candidate) for probe in probes):
                return candidate
        return {}

    def _gives_fixed_size(self, probe: np.ndarray, kwargs: dict[str, Any]) -> bool:
        try:
            encoding = self.wrapped.preprocess(
                [probe], return_tensors="np", input_data_format="channels_last", **kwargs
            )
        except Exception:  # a processor that refuses these settings is not fitted by them
            return False
        return np.asarray(encoding["pixel_values"]).shape[1:] == (self.num_channels, self.height, self.width)

    def _resampled(self, encoding: BatchFeature) -> BatchFeature:
        """Resize any per-pixel output that is not height x width (the last resort of `fitting`)."""
        for key in _PIXEL_OUTPUTS:
            if key in encoding and _spatial_sizes(encoding[key]) != {(self.height, self.width)}:
                encoding[key] = _resized(encoding[key], self.height, self.width, mask=key == "pixel_mask")
        return encoding


def _pil_converted(image: Any, mode: str) -> Any:
    """`image` in PIL `mode`, through an intermediate mode where PIL has no direct conversion."""
    if image.mode == mode:
        return image
    try:
        return image.convert(mode)
    except ValueError:
        for bridge in _PIL_BRIDGES:
            try:
                return image.convert(bridge).convert(mode)
            except ValueError:
                continue
        raise ModelExportError(f"Cannot convert a PIL image of mode {image.mode} to {mode}") from None


def _as_hwc(image: Any, input_data_format: Any) -> Any:
    """A PIL image as it is; an array or tensor as an HWC numpy array (HW gets a channel axis)."""
    from PIL import Image

    if isinstance(image, Image.Image):
        return image
    if hasattr(image, "numpy") and hasattr(image, "detach"):  # a torch tensor
        image = image.detach().cpu().numpy()
    if not isinstance(image, np.ndarray):
        raise ModelExportError(
            f"Unsupported image type {type(image).__name__}: pass a PIL image, a numpy array or a tensor"
        )
    if image.ndim == 2:
        return image[:, :, None]
    if image.ndim != 3:
        raise ModelExportError(f"An image array must have 2 or 3 dims (HW, HWC or CHW), got shape {image.shape}")
    layout = getattr(input_data_format, "value", input_data_format)
    if layout == "channels_first" or (layout is None and image.shape[2] > 4 and image.shape[0] <= 4):
        return np.moveaxis(image, 0, 2)
    if layout is None and image.shape[2] > 4:
        raise ModelExportError(
            f"Cannot tell the channel axis of an image array of shape {image.shape}: "
            "pass input_data_format='channels_last' or 'channels_first'"
        )
    return image


def _spatial_sizes(value: Any) -> set[tuple[int, int]]:
    rows = value if isinstance(value, (list, tuple)) else [value]
    return {tuple(np.shape(row)[-2:]) for row in rows}


def _resized(value: Any, height: int, width: int, mask: bool) -> Any:
    """Per-pixel rows resized to height x width (bilinear; a pixel mask becomes ones), in value's type."""
    import torch

    def one(row: Any) -> torch.Tensor:
        tensor = torch.as_tensor(np.asarray(row) if not isinstance(row, torch.Tensor) else row)
        if mask:
            return torch.ones((*tensor.shape[:-2], height, width), dtype=tensor.dtype)
        batched = tensor.float().reshape(-1, 1, *tensor.shape[-2:])
        out = torch.nn.functional.interpolate(batched, size=(height, width), mode="bilinear", antialias=True)
        return out.reshape(*tensor.shape[:-2], height, width).to(tensor.dtype)

    if isinstance(value, torch.Tensor):
        return one(value)
    if isinstance(value, np.ndarray):
        return one(value).numpy()
    return [one(row).numpy() for row in value]
