"""Train a small BERT-style WordPiece tokenizer on a dataset's own texts (no download needed)."""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = {
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
}


def train_wordpiece(corpus: Iterable[str], vocab_size: int = 8000, min_frequency: int = 2) -> PreTrainedTokenizerFast:
    """Lowercasing WordPiece tokenizer that wraps every text as ``[CLS] … [SEP]``.

    Special tokens come first, so ``[PAD]`` is id 0 like in BERT checkpoints.
    """
    backend = Tokenizer(models.WordPiece(unk_token=SPECIAL_TOKENS["unk_token"]))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece()
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS.values()),
        show_progress=False,
    )
    backend.train_from_iterator(corpus, trainer=trainer)
    # The trainer breaks frequency ties in hash order, so the same corpus gets the same tokens under
    # different ids in every process. Renumbering them (special tokens first, the rest sorted) makes a
    # run repeat exactly for a given seed; WordPiece matching depends on the token set only.
    trained = backend.get_vocab()
    specials = list(SPECIAL_TOKENS.values())
    ordered = specials + sorted(t for t in trained if t not in specials)
    vocab = {t: i for i, t in enumerate(ordered)}
    backend.model = models.WordPiece(vocab=vocab, unk_token=SPECIAL_TOKENS["unk_token"], continuing_subword_prefix="##")
    cls, sep = SPECIAL_TOKENS["cls_token"], SPECIAL_TOKENS["sep_token"]
    backend.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}",
        pair=f"{cls} $A {sep} $B:1 {sep}:1",
        special_tokens=[(cls, backend.token_to_id(cls)), (sep, backend.token_to_id(sep))],
    )
    return PreTrainedTokenizerFast(tokenizer_object=backend, **SPECIAL_TOKENS)
