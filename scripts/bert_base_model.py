"""A BERT-base-sized text classifier with random weights, for `modelexport benchmark --corpus` (no Hub here):
`python scripts/bert_base_model.py OUT_DIR`.

12 layers, hidden 768, 12 heads, intermediate 3072, 2 labels; the tokenizer is all-MiniLM-L6-v2's (the
bert-base-uncased WordPiece vocabulary), so the corpus tokenizes as it would for bert-base-uncased.
"""

from __future__ import annotations

import sys
from pathlib import Path


def write_bert_base_classifier(directory: Path, seed: int = 0) -> Path:
    """Write the model and its tokenizer to `directory`; return it."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from demo import minilm_dir

    torch.manual_seed(seed)
    config = BertConfig(num_labels=2, id2label={0: "NEGATIVE", 1: "POSITIVE"}, label2id={"NEGATIVE": 0, "POSITIVE": 1})
    BertForSequenceClassification(config).eval().save_pretrained(directory)
    AutoTokenizer.from_pretrained(minilm_dir()).save_pretrained(directory)
    return directory


if __name__ == "__main__":
    print(write_bert_base_classifier(Path(sys.argv[1])))
