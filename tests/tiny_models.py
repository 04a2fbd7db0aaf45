"""Tiny HuggingFace models built locally from configs (there is no Hub here), saved with their tokenizer."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

WORDS = [
    "the",
    "a",
    "an",
    "is",
    "was",
    "are",
    "of",
    "to",
    "and",
    "in",
    "on",
    "for",
    "with",
    "my",
    "name",
    "his",
    "her",
    "it",
    "this",
    "that",
    "what",
    "who",
    "where",
    "when",
    "paris",
    "london",
    "berlin",
    "france",
    "city",
    "capital",
    "lives",
    "live",
    "works",
    "work",
    "john",
    "mary",
    "sarah",
    "google",
    "apple",
    "company",
    "cat",
    "dog",
    "happy",
    "sad",
    "good",
    "bad",
    "great",
    "terrible",
    "movie",
    "film",
    "love",
    "hate",
    "day",
    "today",
    "weather",
    "sunny",
    "rain",
    "hello",
    "world",
    "question",
    "answer",
    "model",
    "onnx",
    "fixed",
    "shape",
    "static",
    "batch",
    "sequence",
    "text",
    "token",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "how",
    "export",
    "context",
    "length",
]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
ENTAILMENT_LABELS = {0: "contradiction", 1: "neutral", 2: "entailment"}
TOKEN_LABELS = {0: "O", 1: "B-PER", 2: "I-PER", 3: "B-LOC", 4: "I-LOC"}


def vocabulary() -> list[str]:
    """Special tokens, words, and every lowercase letter / digit / punctuation as word and ## piece."""
    pieces = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab = SPECIAL + pieces + [f"##{p}" for p in string.ascii_lowercase + string.digits] + WORDS
    return list(dict.fromkeys(vocab))


def write_tiny_tokenizer(directory: Path) -> Path:
    """Save a real BertTokenizerFast (model_max_length 512, as BERT's) over a locally written WordPiece vocabulary."""
    from transformers import BertTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.txt").write_text("\n".join(vocabulary()) + "\n")
    BertTokenizerFast(vocab_file=str(directory / "vocab.txt"), model_max_length=512).save_pretrained(directory)
    return directory


def tiny_bert_config(**overrides: object):
    from transformers import BertConfig

    settings = dict(
        vocab_size=len(vocabulary()),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=128,
    )
    settings.update(overrides)
    return BertConfig(**settings)


TEXT_TASK_MODELS = {
    "text-classification": ("BertForSequenceClassification", {"num_labels": 3}),
    "zero-shot-classification": (
        "BertForSequenceClassification",
        {"id2label": ENTAILMENT_LABELS, "label2id": {v: k for k, v in ENTAILMENT_LABELS.items()}},
    ),
    "token-classification": (
        "BertForTokenClassification",
        {"id2label": TOKEN_LABELS, "label2id": {v: k for k, v in TOKEN_LABELS.items()}},
    ),
    "question-answering": ("BertForQuestionAnswering", {}),
    "feature-extraction": ("BertModel", {}),
    "fill-mask": ("BertForMaskedLM", {}),
}


def write_tiny_text_model(directory: Path, task: str, seed: int = 0) -> Path:
    """Save a randomly initialised tiny BERT for `task`, with its tokenizer, to `directory`."""
    import torch
    import transformers

    class_name, overrides = TEXT_TASK_MODELS[task]
    torch.manual_seed(seed)
    model = getattr(transformers, class_name)(tiny_bert_config(**overrides)).eval()
    model.save_pretrained(directory)
    write_tiny_tokenizer(directory)
    return directory


def spread_weights(model: Any, std: float, seed: int, module_types: tuple[type, ...]) -> Any:
    """Redraw the weights of every module of `module_types` from N(0, std), reproducibly.

    At their default init (std 0.02) random tiny models give near-uniform scores, so ties would decide
    labels; with a larger spread, answers differ clearly from input to input and parity means something.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, module_types):
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * std)
    return model


def write_spread_text_model(directory: Path, task: str, seed: int = 0, std: float = 0.5) -> Path:
    """`write_tiny_text_model` with its Linear / Embedding weights redrawn (see `spread_weights`)."""
    import torch
    import transformers

    write_tiny_text_model(directory, task, seed)
    model = getattr(transformers, TEXT_TASK_MODELS[task][0]).from_pretrained(directory)
    spread_weights(model, std, seed, (torch.nn.Linear, torch.nn.Embedding))
    model.config.initializer_range = std
    model.save_pretrained(directory)
    return directory
